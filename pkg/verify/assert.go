package verify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/vm"
)

// egressSetup counts, in the guest, every packet sent to an address that is
// not the guest itself, slirp's host-only 10.0.2.0/24, or the test's private
// network: an air-gapped install must send none. Destinations are also
// logged to the kernel log, as evidence.
func egressSetup(nodes []*node, exp *expected) string {
	local := []string{"127.0.0.0/8", "10.0.2.0/24", "255.255.255.255/32", "224.0.0.0/4", "0.0.0.0/32"}
	if len(nodes) > 1 && nodes[0].addr.IsValid() {
		local = append(local, nodes[0].addr.Masked().String())
	}
	local = append(local, clusterNetworks(exp)...)
	var b strings.Builder
	// mangle POSTROUTING sees every packet leaving an interface, sent by the
	// host or forwarded from a pod, after routing and DNAT, and neither
	// kube-proxy nor a CNI accepts packets there before this chain counts them.
	b.WriteString("set -e; iptables -t mangle -N CNSTACK_EGRESS 2>/dev/null || iptables -t mangle -F CNSTACK_EGRESS; ")
	b.WriteString("iptables -t mangle -C POSTROUTING -j CNSTACK_EGRESS 2>/dev/null || iptables -t mangle -I POSTROUTING -j CNSTACK_EGRESS; ")
	b.WriteString("iptables -t mangle -A CNSTACK_EGRESS -p udp --dport 53 -m comment --comment dns -j RETURN -d 127.0.0.0/8; ")
	// Any address of the guest itself (dummy0's, a bridge's) is local too.
	b.WriteString("iptables -t mangle -A CNSTACK_EGRESS -m addrtype --dst-type LOCAL -j RETURN; ")
	for _, l := range local {
		b.WriteString("iptables -t mangle -A CNSTACK_EGRESS -d " + l + " -j RETURN; ")
	}
	b.WriteString("iptables -t mangle -A CNSTACK_EGRESS -j LOG --log-prefix 'cnstack-egress ' 2>/dev/null || true; ")
	b.WriteString("iptables -t mangle -A CNSTACK_EGRESS -m comment --comment non-local -j RETURN; ")
	// Self-test: one SYN to TEST-NET-1 (routed into dummy0, so it goes
	// nowhere) must be counted, or the guard proves nothing. Then zero it.
	b.WriteString("timeout 1 bash -c 'exec 3<>/dev/tcp/" + selfTestAddr + "/9' 2>/dev/null || true; ")
	b.WriteString("iptables -t mangle -L CNSTACK_EGRESS -v -n -x | grep -q '^ *[1-9][0-9]* .*non-local' || { echo 'egress counter did not count a test packet' >&2; exit 1; }; ")
	b.WriteString("iptables -t mangle -Z CNSTACK_EGRESS; dmesg -C 2>/dev/null || true")
	return b.String()
}

// clusterNetworks are the addresses a Kubernetes image's cluster uses on
// the nodes themselves: pod and service networks (the image's PodCIDR and
// SvcCIDR env, else kubeadm's usual ones) and sealer's apiserver VIP.
func clusterNetworks(exp *expected) []string {
	if exp == nil || !exp.Kube {
		return nil
	}
	pod, svc := "10.244.0.0/16", "10.96.0.0/12"
	if exp.Extension != nil {
		if v := exp.Extension.Env["PodCIDR"]; v != "" {
			pod = v
		}
		if v := exp.Extension.Env["SvcCIDR"]; v != "" {
			svc = v
		}
	}
	return []string{pod, svc, sealerVIP + "/32"}
}

// sealerVIP is sealer v0.11's apiserver virtual IP on workers (IPVS).
const sealerVIP = "10.103.97.2"

// selfTestAddr is TEST-NET-1 (RFC 5737), reserved for documentation.
const selfTestAddr = "192.0.2.1"

var counterLine = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+.*/\*\s*(non-local|dns)\s*\*/`)

func assertAll(ctx context.Context, opts Options, nodes []*node, exp *expected, r *Report) {
	for i, n := range nodes {
		if r.Installs[i] == nil {
			continue
		}
		r.add(assertRootfs(ctx, n, exp))
		r.add(assertHosts(ctx, n))
	}
	if r.Installs[0] != nil {
		reg, err := plainRegistryProbe(nodes[0])
		if err != nil {
			r.add(Assertion{Name: "embedded registry serves every container image with the recorded digest", Node: nodes[0].name, Status: Failed, Evidence: err.Error()})
		} else {
			r.add(assertRegistry(ctx, nodes[0], reg, exp))
		}
		for _, n := range nodes[1:] {
			r.add(assertRegistryReachable(ctx, n))
		}
		for _, c := range exp.Checks {
			r.add(runImageCheck(ctx, nodes[0], c))
		}
	}
	kubeChecks := []string{"every node Ready", "every pod Running or Completed", "no ImagePullBackOff"}
	for _, name := range kubeChecks {
		a := Assertion{Name: "kubernetes: " + name}
		if exp.Kube {
			a.Status, a.Evidence = NotRun, "the image brings Kubernetes, but cnstack's installer does not run kubeadm yet: these are not checked (and not faked)"
		} else {
			a.Status, a.Evidence = Skipped, "the image carries no Kubernetes (no bin/kubeadm): delivery, rootfs and registry assertions ran instead"
		}
		r.add(a)
	}
	for _, n := range nodes {
		r.add(assertNoEgress(ctx, n))
	}
}

// assertRootfs compares every file the image carries with what landed in
// the guest's rootfs, by sha256.
func assertRootfs(ctx context.Context, n *node, exp *expected) Assertion {
	t0 := time.Now()
	a := Assertion{Name: "rootfs laid out as sealer does (" + rootfsDir + ")", Node: n.name}
	out, err := n.vm.Run(ctx, "cd "+rootfsDir+" && find . -type f -print0 | xargs -0 -r sha256sum")
	a.Duration = time.Since(t0)
	if err != nil {
		a.Status, a.Evidence = Failed, err.Error()
		return a
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out.Stdout), "\n") {
		f := strings.SplitN(line, "  ", 2)
		if len(f) == 2 {
			got[strings.TrimPrefix(f[1], "./")] = f[0]
		}
	}
	var missing, differ []string
	for _, p := range sortedKeys(exp.Files) {
		switch g, ok := got[p]; {
		case !ok:
			missing = append(missing, p)
		case g != exp.Files[p]:
			differ = append(differ, p)
		}
	}
	extra := 0
	for p := range got {
		if _, ok := exp.Files[p]; !ok {
			extra++ // rendered templates and logs the install wrote
		}
	}
	if len(missing)+len(differ) > 0 {
		a.Status = Failed
		a.Evidence = fmt.Sprintf("%d of %d image files missing: %s\n%d differ: %s", len(missing), len(exp.Files), head(missing, 10), len(differ), head(differ, 10))
		return a
	}
	a.Status = Passed
	a.Evidence = fmt.Sprintf("all %d files of the image present with identical sha256 (%d more written by the install: rendered templates, logs)", len(exp.Files), extra)
	return a
}

func assertHosts(ctx context.Context, n *node) Assertion {
	a := Assertion{Name: "sea.hub resolves to the registry node", Node: n.name}
	out, err := n.vm.Run(ctx, "getent hosts sea.hub")
	if err != nil {
		a.Status, a.Evidence = Failed, err.Error()
		return a
	}
	a.Status, a.Evidence = Passed, strings.TrimSpace(string(out.Stdout))
	return a
}

// assertRegistry pulls every image the image lists from the embedded
// registry (through the VM's forwarded port), by tag and by digest, and
// checks each digest against the registry tree the image carries and that
// every blob of the platform manifest is served.
func assertRegistry(ctx context.Context, n *node, reg *registryProbe, exp *expected) (a Assertion) {
	t0 := time.Now()
	a = Assertion{Name: "embedded registry serves every container image with the recorded digest", Node: n.name}
	defer func() { a.Duration = time.Since(t0) }()
	if len(exp.Images) == 0 {
		a.Status, a.Evidence = Skipped, "the image lists no container images (sealer.image.container.images)"
		return a
	}
	var lines []string
	failed := 0
	for _, ci := range exp.Images {
		repoName, tag, err := registrytree.Locate(ci.Image)
		if err != nil {
			failed++
			lines = append(lines, fmt.Sprintf("FAIL %s: %v", ci.Image, err))
			continue
		}
		want := exp.Tags[repoName+":"+tag]
		line, ok := checkImage(ctx, reg, repoName, tag, want, exp.Platform)
		if !ok {
			failed++
		}
		lines = append(lines, fmt.Sprintf("%s (sea.hub:5000/%s:%s): %s", ci.Image, repoName, tag, line))
	}
	sort.Strings(lines)
	a.Evidence = fmt.Sprintf("%d of %d images served correctly\n%s", len(exp.Images)-failed, len(exp.Images), strings.Join(lines, "\n"))
	a.Status = Passed
	if failed > 0 {
		a.Status = Failed
	}
	return a
}

func checkImage(ctx context.Context, reg *registryProbe, repoName, tag string, want digest.Digest, platform string) (string, bool) {
	repo, err := remote.NewRepository(reg.host + "/" + repoName)
	if err != nil {
		return "FAIL " + err.Error(), false
	}
	repo.PlainHTTP = reg.plain
	repo.Client = reg.client
	byTag, err := repo.Resolve(ctx, tag)
	if err != nil {
		return "FAIL by tag: " + err.Error(), false
	}
	if want != "" && byTag.Digest != want {
		return fmt.Sprintf("FAIL by tag: digest %s, the tree records %s", byTag.Digest, want), false
	}
	byDigest, err := repo.Resolve(ctx, byTag.Digest.String())
	if err != nil || byDigest.Digest != byTag.Digest {
		return fmt.Sprintf("FAIL by digest: %v", err), false
	}
	// The platform manifest and its blobs.
	m := byTag
	if store.IsIndex(byTag.MediaType) {
		b, err := content.FetchAll(ctx, repo, byTag)
		if err != nil {
			return "FAIL index: " + err.Error(), false
		}
		children, err := store.ManifestChildren(b)
		if err != nil {
			return "FAIL index: " + err.Error(), false
		}
		found := false
		for _, c := range children {
			if c.Platform != nil && c.Platform.OS+"/"+c.Platform.Architecture == platform {
				m, found = c, true
				break
			}
		}
		if !found {
			return "FAIL: the index has no " + platform + " image", false
		}
	}
	b, err := content.FetchAll(ctx, repo, m)
	if err != nil {
		return "FAIL platform manifest " + m.Digest.String() + ": " + err.Error(), false
	}
	blobs, err := store.ManifestChildren(b)
	if err != nil {
		return "FAIL: " + err.Error(), false
	}
	for _, bl := range blobs {
		if _, err := repo.Blobs().Resolve(ctx, bl.Digest.String()); err != nil {
			return "FAIL blob " + bl.Digest.String() + ": " + err.Error(), false
		}
	}
	return fmt.Sprintf("OK %s by tag and digest; %s manifest %s and its %d blobs served", byTag.Digest, platform, shortDigest(m.Digest), len(blobs)), true
}

func shortDigest(d digest.Digest) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

func assertRegistryReachable(ctx context.Context, n *node) Assertion {
	a := Assertion{Name: "the embedded registry answers at sea.hub:5000", Node: n.name}
	out, err := n.vm.Run(ctx, `exec 3<>/dev/tcp/sea.hub/5000 && printf 'GET /v2/ HTTP/1.0\r\nHost: sea.hub\r\n\r\n' >&3 && head -n1 <&3`)
	line := strings.TrimSpace(string(out.Stdout))
	if err != nil || !strings.Contains(line, " 200") {
		a.Status, a.Evidence = Failed, fmt.Sprintf("%q %v", line, err)
		return a
	}
	a.Status, a.Evidence = Passed, line
	return a
}

// CheckNotRunExit is the exit status with which an image's checks/*.sh says
// it could not run (a prerequisite it needs is missing, e.g. no kubectl or no
// cluster to test against): the assertion is NotRun, with the script's output
// as the reason. It never passes, and it is not a failure of what the check
// tests. Any other non-zero status is Failed; 0 is Passed.
const CheckNotRunExit = 3

func runImageCheck(ctx context.Context, n *node, script string) Assertion {
	t0 := time.Now()
	a := Assertion{Name: "image check " + script, Node: n.name}
	out, err := n.vm.Run(ctx, "cd "+rootfsDir+" && bash "+script)
	a.Duration = time.Since(t0)
	a.Status, a.Evidence = checkVerdict(out, err)
	return a
}

// checkVerdict turns the outcome of an image check script into a status and
// its evidence (everything the script printed, then why it did not pass).
func checkVerdict(out vm.Result, err error) (status, evidence string) {
	evidence = strings.TrimSpace(string(out.Stdout) + string(out.Stderr))
	if err == nil {
		return Passed, evidence
	}
	var ee *vm.ExitError
	if errors.As(err, &ee) && ee.Status == CheckNotRunExit {
		return NotRun, evidence + fmt.Sprintf("\n(exit status %d: the check could not run)", CheckNotRunExit)
	}
	return Failed, evidence + "\n" + err.Error()
}

// assertNoEgress reads the egress counters: any packet to a non-local
// address means the install tried to reach outside.
func assertNoEgress(ctx context.Context, n *node) Assertion {
	a := Assertion{Name: "no attempt to reach outside the VM (packets to non-local addresses)", Node: n.name}
	out, err := n.vm.Run(ctx, "iptables -t mangle -L CNSTACK_EGRESS -v -n -x")
	if err != nil {
		a.Status, a.Evidence = Failed, "cannot read the egress counters: "+err.Error()
		return a
	}
	var nonLocal, dns int64 = -1, 0
	for _, line := range strings.Split(string(out.Stdout), "\n") {
		if m := counterLine.FindStringSubmatch(line); m != nil {
			pk, _ := strconv.ParseInt(m[1], 10, 64)
			if m[3] == "non-local" {
				nonLocal = pk
			} else {
				dns = pk
			}
		}
	}
	if nonLocal < 0 {
		a.Status, a.Evidence = Failed, "the egress counter rule is missing:\n"+string(out.Stdout)
		return a
	}
	ev := fmt.Sprintf("%d packets to non-local addresses; %d DNS queries (to the guest's own resolver address, unanswered)", nonLocal, dns)
	if nonLocal > 0 {
		logged, _ := n.vm.Run(ctx, "dmesg | grep cnstack-egress | tail -n 20")
		a.Status, a.Evidence = Failed, ev+"\n"+string(logged.Stdout)
		return a
	}
	a.Status, a.Evidence = Passed, ev
	return a
}

func head(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], ", ") + fmt.Sprintf(" … (%d more)", len(list)-n)
	}
	return strings.Join(list, ", ")
}
