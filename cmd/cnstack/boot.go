package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/install"
	"github.com/cnstack/cnstack/pkg/transfer"
	"github.com/cnstack/cnstack/pkg/verify"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"

	"github.com/cnstack/cnstack/internal/atomicfile"
)

func bootCommand() *cli.Command {
	return &cli.Command{
		Name:      "boot",
		Usage:     "prove an image installs: boot air-gapped VMs, deliver it offline, install it, assert, report",
		ArgsUsage: "REF",
		Description: `Boots --nodes throw-away QEMU VMs with no route out (KVM when it works, else TCG),
delivers REF into them as an offline bundle, installs it and asserts what it promises.
Writes report.json, junit.xml, report.html and the serial and install logs to --report;
exits 0 only when everything passed.

An image that brings Kubernetes (bin/kubeadm) is installed by the operators' own installer:
the real sealer v0.11 (--sealer, or sealer on PATH; make tools builds one) loads the
sealer-format bundle on node0 and runs "sealer run -f Clusterfile" with node0 as master and
every other node as a worker, over SSH. Then: every node Ready; every pod Running or
Completed; no image pull ever failed; every pod image was served by the in-VM registry at
the digest containerd ran; kubernetes.default resolves from a pod; a Service routes to its
pod; with 2+ nodes a pod on a worker reaches a pod on the master; the image's checks/*.sh;
no packet to a non-local address, from the host or a pod.

An app-installer image goes onto a running cluster, as operators install one: sealer run
installs its base (--base, default the image it was built FROM), then "sealer run REF"
installs the app; every assertion above runs on the cluster with the app, plus the app's
files in the cluster rootfs, its images in the live registry and its checks/*.sh.

An image without Kubernetes (or --installer cnstack) is laid out as "sealer run" does
(rootfs, templates, sea.hub, the image's init-registry.sh) by cnstack itself, and checked:
the bundle arrived intact and checks, every file landed, the embedded registry serves every
listed container image with its recorded digest, no egress.

--vm-image is a recipe directory or a qcow2 file. The default is the debian12 recipe built
into cnstack (the repository's images/debian12), whatever the working directory; the
image is built once (root, debootstrap, from the machine's Debian mirror) and cached by
content under $CNSTACK_HOME/vm.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 1, Usage: "VMs to boot (joined on a private network): node0 the master, the others workers"},
			&cli.StringFlag{Name: "vm-image", Usage: "VM image: a recipe `DIR` or a qcow2 FILE (default: the built-in debian12 recipe)"},
			&cli.StringFlag{Name: "report", Value: "boot-report", Usage: "report `DIR`"},
			&cli.IntFlag{Name: "memory", Usage: "`MiB` per VM (default 4096 for an image with Kubernetes, else 2048)"},
			&cli.IntFlag{Name: "cpus", Usage: "virtual `CPUs` per VM (default 2; 1 per VM for several nodes without Kubernetes)"},
			&cli.StringFlag{Name: "binary", Usage: "static linux/amd64 cnstack `FILE` for the guests (default: this executable)"},
			&cli.StringFlag{Name: "sealer", Sources: cli.EnvVars("CNSTACK_SEALER"), Usage: "real sealer v0.11 `FILE` (default: sealer on PATH; make tools builds one): installs a Kubernetes image with sealer run, or loads and inspects another"},
			&cli.StringFlag{Name: "installer", Usage: "`sealer` (default for an image with Kubernetes) or cnstack (lay the image out without Kubernetes)"},
			&cli.StringFlag{Name: "base", Usage: "for an app-installer image: the kube-installer `REF` whose cluster it is installed onto (default: the image it was built FROM)"},
			&cli.StringFlag{Name: "probe-image", Value: verify.DefaultProbeImage, Usage: "toolbox `REF` the Kubernetes assertions' pods run (the image must carry it)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			// A missing image fails now, not after minutes of VM image building.
			loc, err := locate(ctx, c, c.Args().First(), transfer.InStore)
			if err != nil {
				return err
			}
			loc.Close()
			img, err := vmImage(ctx, c, c.String("vm-image"))
			if err != nil {
				return err
			}
			bin := c.String("binary")
			if bin == "" {
				if bin, err = os.Executable(); err != nil {
					return err
				}
			}
			rep, err := verify.Boot(ctx, verify.Options{Store: s, Ref: c.Args().First(), Nodes: c.Int("nodes"),
				VMImage: img, Binary: bin, Sealer: sealerBinary(c.String("sealer")), Installer: c.String("installer"),
				Base: c.String("base"), ProbeImage: c.String("probe-image"), MemoryMiB: c.Int("memory"), CPUs: c.Int("cpus"), Log: c.ErrWriter})
			if err != nil {
				return err
			}
			dir := c.String("report")
			if err := rep.Write(dir); err != nil {
				return err
			}
			firstFailure := true
			for _, a := range rep.Assertions {
				fmt.Fprintf(c.Writer, "%-8s %-6s %s\n", a.Status, a.Node, a.Name)
				if a.Status == verify.Failed {
					// The first failure usually explains the rest: show its
					// evidence (for sealer run, the tail of sealer's log);
					// later ones get a line each.
					lines := 1
					if firstFailure {
						lines, firstFailure = 15, false
					}
					for _, l := range lastLines(a.Evidence, lines) {
						fmt.Fprintf(c.Writer, "           | %s\n", l)
					}
				}
			}
			counts := rep.Counts()
			fmt.Fprintf(c.Writer, "\n%d passed, %d failed, %d not run, %d skipped in %s; report in %s\n",
				counts[verify.Passed], counts[verify.Failed], counts[verify.NotRun], counts[verify.Skipped], rep.Duration.Round(1e7), filepath.Join(dir, "report.html"))
			if rep.Error != "" {
				fmt.Fprintln(c.Writer, "error:", rep.Error)
			}
			if !rep.Passed {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// vmImage is the VM image --vm-image names (see vmimage.Resolve).
func vmImage(ctx context.Context, c *cli.Command, path string) (*vmimage.Image, error) {
	img, err := vmimage.Resolve(ctx, path, vmimage.Options{Output: c.ErrWriter})
	if err != nil && path != "" {
		return nil, fmt.Errorf("--vm-image %s: %w", path, err)
	}
	return img, err
}

func vmCommand() *cli.Command {
	return &cli.Command{
		Name:  "vm",
		Usage: "VM images for cnstack boot",
		Commands: []*cli.Command{{
			Name:      "image",
			Usage:     "VM images",
			ArgsUsage: "",
			Commands: []*cli.Command{{
				Name:      "build",
				Usage:     "build a VM image from a recipe directory (debootstrap from the Debian mirror), cached by content",
				ArgsUsage: "[DIR]",
				Description: `Builds the recipe DIR (image.yaml and rootfs/; default: the debian12 recipe built into
cnstack) into $CNSTACK_HOME/vm/images, once: a second run prints the cached image.`,
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.NArg() > 1 {
						return usageError(c, "takes one recipe directory, got %d arguments", c.NArg())
					}
					img, err := vmImage(ctx, c, c.Args().First())
					if err != nil {
						return err
					}
					fmt.Fprintf(c.Writer, "%s %s\n  disk   %s\n  kernel %s\n", img.Name, img.Key, img.Disk, img.Kernel)
					return nil
				},
			}},
		}},
	}
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "lay a cluster image out on this host as sealer run does (used inside cnstack boot's VMs)",
		ArgsUsage: "REF",
		Description: `Loads --input (a bundle) into the store if given, then copies the image root to
<data-root>/<cluster>/rootfs, renders its *.tmpl files with the cluster env, maps sea.hub in
/etc/hosts and, with --run-registry, runs the image's scripts/init-registry.sh. Container
runtime, Kubernetes and application steps are reported as not run: use the real sealer for them.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "bundle `FILE` to load first"},
			&cli.StringFlag{Name: "data-root", Value: "/var/lib/sealer/data", Usage: "sealer's data root"},
			&cli.StringFlag{Name: "cluster", Value: "my-cluster", Usage: "cluster name"},
			&cli.BoolFlag{Name: "run-registry", Usage: "start the embedded registry on this host"},
			&cli.StringFlag{Name: "registry-ip", Value: "127.0.0.1", Usage: "address sea.hub resolves to"},
			&cli.StringSliceFlag{Name: "env", Usage: "cluster `KEY=VALUE` env (wins over the image env)"},
			&cli.StringFlag{Name: "report", Usage: "write the result as JSON to `FILE`"},
			&cli.StringFlag{Name: "hosts-file", Value: "/etc/hosts", Usage: "hosts `FILE` that maps sea.hub"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			if in := c.String("input"); in != "" {
				if _, err := bundle.Load(ctx, s, bundle.LoadOptions{Input: in}); err != nil {
					return err
				}
			}
			env, err := parseKV("env", c.StringSlice("env"))
			if err != nil {
				return err
			}
			res, err := install.Run(ctx, s, install.Options{Ref: c.Args().First(), ClusterName: c.String("cluster"),
				DataRoot: c.String("data-root"), RunRegistry: c.Bool("run-registry"), RegistryIP: c.String("registry-ip"),
				Env: env, HostsFile: c.String("hosts-file"), Log: c.Writer})
			if err != nil {
				return err
			}
			if p := c.String("report"); p != "" {
				b, err := json.MarshalIndent(res, "", "  ")
				if err != nil {
					return err
				}
				if err := atomicfile.WriteFile(p, b, 0o644); err != nil {
					return err
				}
			}
			if !res.OK {
				return cli.Exit("install failed", 1)
			}
			return nil
		},
	}
}

// sealerBinary is the sealer to use: the one named, else sealer on PATH.
func sealerBinary(named string) string {
	if named != "" {
		return named
	}
	if p, err := exec.LookPath("sealer"); err == nil {
		return p
	}
	return ""
}

// lastLines is at most n of evidence's last non-empty lines (the first line
// when n is 1: it names what failed), as plain text (printable.Log).
func lastLines(evidence string, n int) []string {
	var lines []string
	for _, l := range strings.Split(printable.Log(evidence), "\n") {
		if l = strings.TrimRight(l, " \t"); l != "" {
			lines = append(lines, l)
		}
	}
	if n == 1 && len(lines) > 0 {
		return lines[:1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
