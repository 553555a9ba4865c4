module github.com/cnstack/cnstack/tools/lvscare

go 1.26.0

require github.com/labring/lvscare v1.1.3-beta.2

require (
	github.com/inconshreveable/mousetrap v1.0.0 // indirect
	github.com/konsorten/go-windows-terminal-sequences v1.0.1 // indirect
	github.com/lithammer/dedent v1.1.0 // indirect
	github.com/moby/ipvs v1.0.1 // indirect
	github.com/sirupsen/logrus v1.4.2 // indirect
	github.com/spf13/cobra v1.2.1 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	github.com/vishvananda/netlink v1.1.0 // indirect
	github.com/vishvananda/netns v0.0.0-20191106174202-0a2b9b5464df // indirect
	golang.org/x/sys v0.0.0-20210510120138-977fb7262007 // indirect
)

// The proxy serves github.com/labring/lvscare at v1.1.3-beta.2 only (beta.3 to beta.8
// return 403). sealer v0.11.0 itself replaces the module with this fork commit, which is
// newer than beta.2 and has the `care --vs --rs --health-path --health-schem` command that
// sealer's lvscare static pod runs; the replace block below is sealer v0.11.0's and the
// fork's own, verbatim.
replace (
	github.com/labring/lvscare => github.com/fanux/lvscare v1.1.3-beta.2.0.20220525083355-d8f3f86677d1
	github.com/moby/ipvs => github.com/moby/ipvs v1.0.1
	github.com/vishvananda/netlink => github.com/vishvananda/netlink v1.1.0
	github.com/vishvananda/netns => github.com/vishvananda/netns v0.0.0-20200728191858-db3c7e526aae
)
