package verify

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/pkg/clusterimage"
)

// Installers boot can install an image with.
const (
	// InstallerSealer is the operators' own installer: the real sealer v0.11
	// loads the offline bundle on master0 and runs `sealer run -f Clusterfile`,
	// reaching the other nodes over SSH. The default for kube-installer images.
	InstallerSealer = "sealer"
	// InstallerCnstack lays the image out as sealer run does (rootfs,
	// templates, registry) without Kubernetes: for images that carry none.
	InstallerCnstack = "cnstack"
)

// Guest paths of the sealer install.
const (
	guestClusterfile = "/root/Clusterfile"
	guestSealerLog   = "/root/sealer-run.log"
	guestSSHKey      = "/root/.ssh/id_ed25519"
	sealerTimeout    = 40 * time.Minute
)

// nodeIP is the address sealer knows a node by: the user-network address
// for a single node, the private network's for several.
func (n *node) ip() netip.Addr {
	if n.addr.IsValid() {
		return n.addr.Addr()
	}
	return netip.MustParseAddr("10.0.2.15")
}

// clusterfile is what boot asks sealer to install: node0 the master, every
// other node a worker. A single master is untainted so workloads (and the
// assertions' pods) run on it.
func clusterfile(ref string, nodes []*node) *clusterimage.Clusterfile {
	cf := &clusterimage.Clusterfile{Name: clusterName, Image: ref, SSH: clusterimage.SSH{User: "root", PrivateKey: guestSSHKey}}
	master := clusterimage.ClusterHost{IPs: []netip.Addr{nodes[0].ip()}, Roles: []string{clusterimage.RoleMaster}}
	if len(nodes) == 1 {
		master.Taints = []string{clusterimage.UntaintControlPlane}
	}
	cf.Hosts = append(cf.Hosts, master)
	if len(nodes) > 1 {
		w := clusterimage.ClusterHost{Roles: []string{clusterimage.RoleNode}}
		for _, n := range nodes[1:] {
			w.IPs = append(w.IPs, n.ip())
		}
		cf.Hosts = append(cf.Hosts, w)
	}
	return cf
}

// sealerInstall installs the image the way an operator does: the sealer
// binary and the sealer-format bundle go to master0 only, `sealer load -i`
// stores the image, and `sealer run -f Clusterfile` installs every node,
// reaching the workers over SSH with a key master0 made and every node trusts.
func sealerInstall(ctx context.Context, opts Options, nodes []*node, sealerBundle, bundleSum string, exp *expected, r *Report) error {
	n0 := nodes[0]
	var mu sync.Mutex
	record := func(name, node string, fn func() error) error {
		p := Phase{Name: name, Node: node, Start: time.Now()}
		err := fn()
		p.Duration = time.Since(p.Start)
		mu.Lock()
		r.Phases = append(r.Phases, p)
		mu.Unlock()
		fmt.Fprintf(opts.Log, "%s %s: %s\n", name, node, orOK(err))
		return err
	}
	add := func(a Assertion) {
		mu.Lock()
		r.add(a)
		mu.Unlock()
	}
	// Egress accounting starts before anything of the image runs.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if len(nodes) > 1 {
				if err := record("network: the cluster network carries the default route", n.name, func() error {
					_, err := n.vm.Run(ctx, defaultRouteOnClusterNetwork(n))
					return err
				}); err != nil {
					add(Assertion{Name: "sealer run installs the image", Node: n.name, Status: Failed, Evidence: "could not move the default route to the cluster network: " + err.Error()})
				}
			}
			if err := record("guard: count packets to non-local addresses (self-tested)", n.name, func() error {
				_, err := n.vm.Run(ctx, egressSetup(nodes, exp))
				return err
			}); err != nil {
				add(Assertion{Name: "no traffic leaves the VM", Node: n.name, Status: Failed, Evidence: "could not install the egress counters: " + err.Error()})
			}
		}()
	}
	wg.Wait()

	if err := record("deliver: copy sealer and the sealer-format bundle to master0", n0.name, func() error {
		t0 := time.Now()
		if err := n0.vm.UploadFile(ctx, opts.Sealer, guestSealer); err != nil {
			return fmt.Errorf("upload sealer: %w", err)
		}
		tb := time.Now()
		if err := n0.vm.UploadFile(ctx, sealerBundle, guestSealerBundle); err != nil {
			return fmt.Errorf("upload the bundle: %w", err)
		}
		d := time.Since(tb)
		if fi, err := os.Stat(sealerBundle); err == nil {
			r.Figures["bundle delivery ("+n0.name+")"] = fmt.Sprintf("%.1f MB in %s (%.1f MB/s); sealer in %s",
				float64(fi.Size())/1e6, d.Round(time.Millisecond), float64(fi.Size())/1e6/d.Seconds(), tb.Sub(t0).Round(time.Millisecond))
		}
		out, err := n0.vm.Run(ctx, "chmod 0755 "+guestSealer+" && sha256sum "+guestSealerBundle)
		if err != nil {
			return err
		}
		if got := strings.Fields(string(out.Stdout) + " ")[0]; got != bundleSum {
			add(Assertion{Name: "bundle delivered intact", Node: n0.name, Status: Failed, Evidence: fmt.Sprintf("sha256 in the VM %q, on the host %s", got, bundleSum)})
			return fmt.Errorf("the bundle arrived damaged")
		}
		add(Assertion{Name: "bundle delivered intact", Node: n0.name, Status: Passed, Evidence: "sha256 " + bundleSum + " in the VM and on the host"})
		return nil
	}); err != nil {
		return err
	}

	// master0's key, trusted by every node (itself included: sealer checks
	// files on every host over SFTP).
	if err := record("ssh: master0's key trusted by every node", n0.name, func() error {
		out, err := n0.vm.Run(ctx, "test -f "+guestSSHKey+" || ssh-keygen -q -t ed25519 -N '' -f "+guestSSHKey+"; cat "+guestSSHKey+".pub")
		if err != nil {
			return err
		}
		pub := strings.TrimSpace(string(out.Stdout))
		for _, n := range nodes {
			if _, err := n.vm.Run(ctx, "grep -qxF "+shellQuote(pub)+" /root/.ssh/authorized_keys || echo "+shellQuote(pub)+" >> /root/.ssh/authorized_keys"); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}

	if err := record("sealer load: store the image from the offline bundle", n0.name, func() error {
		out, err := n0.vm.Run(ctx, guestSealer+" --log-to-file=false load -i "+guestSealerBundle)
		r.logText["sealer-load"] = append(out.Stdout, out.Stderr...)
		if err != nil {
			return fmt.Errorf("sealer load: %w", err)
		}
		return nil
	}); err != nil {
		add(Assertion{Name: "sealer run installs the image", Node: n0.name, Status: Failed, Evidence: err.Error() + "\n" + sealerLogTail(string(r.logText["sealer-load"]), 40)})
		return nil
	}

	cf := clusterfile(opts.Ref, nodes)
	doc, err := cf.Marshal()
	if err != nil {
		return err
	}
	r.logText["Clusterfile"] = doc
	runErr := record("sealer run: install the cluster (sealer run -f Clusterfile)", n0.name, func() error {
		if err := n0.vm.Upload(ctx, strings.NewReader(string(doc)), guestClusterfile, 0o600); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, sealerTimeout)
		defer cancel()
		out, err := n0.vm.Run(rctx, guestSealer+" --log-to-file=false run -f "+guestClusterfile+" > "+guestSealerLog+" 2>&1")
		var log strings.Builder
		if l, lerr := n0.vm.Run(ctx, "cat "+guestSealerLog); lerr == nil {
			log.Write(l.Stdout)
		}
		log.Write(out.Stderr)
		r.logText["sealer-run"] = []byte(log.String())
		return err
	})
	a := Assertion{Name: "sealer run installs the image", Node: n0.name, Status: Passed}
	if runErr != nil {
		a.Status = Failed
		a.Evidence = fmt.Sprintf("sealer run -f Clusterfile failed: %v\n%s", runErr, sealerLogTail(string(r.logText["sealer-run"]), 40))
	} else {
		a.Evidence = fmt.Sprintf("sealer run -f Clusterfile (%d master, %d workers) exited 0; the log is sealer-run", len(cf.Masters()), len(cf.Workers()))
	}
	add(a)
	return nil
}

// defaultRouteOnClusterNetwork moves the guest's nowhere-leading default
// route from dummy0 to the NIC on the nodes' private network, as on a real
// node whose main NIC is the cluster's: sealer v0.11 checks on each worker
// that the default route's interface holds the node's address
// (`seautil route check`, k8s ChooseHostInterface) and otherwise adds a
// route to the API VIP via the node itself, which the kernel refuses.
// The route still leads nowhere: the private network joins only the VMs,
// and the egress guard counts whatever is sent along it.
func defaultRouteOnClusterNetwork(n *node) string {
	return fmt.Sprintf(`set -e; nic=$(ip -o -4 addr show | awk '$4 == "%s" { print $2; exit }'); `+
		`[ -n "$nic" ] || { echo "no interface holds %s" >&2; exit 1; }; `+
		`ip route del default dev dummy0 2>/dev/null || true; ip route replace default dev "$nic" scope link`, n.addr, n.addr)
}

// tailString is the last n lines of s.
func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sealerLogTail is the last n lines of a sealer log that say something, as
// plain text: on an error sealer (cobra) prints the command's whole usage
// text between the failing command's output and its ERROR line, which would
// otherwise fill the evidence. Blank lines and colour codes go too.
func sealerLogTail(log string, n int) string {
	var kept []string
	inUsage := false
	for _, l := range strings.Split(printable.Log(log), "\n") {
		plain := strings.TrimSpace(l)
		switch {
		case plain == "Usage:":
			inUsage = true
		case inUsage && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") || strings.HasSuffix(plain, ":") ||
			strings.HasPrefix(plain, "Use \"") || plain == ""):
			// Still usage text: indented flags and examples, section headings.
		default:
			inUsage = false
			if plain != "" {
				kept = append(kept, l)
			}
		}
	}
	return tailString(strings.Join(kept, "\n"), n)
}

// assertSealerCluster checks what `sealer run` left: the rootfs on every
// node, the registry on master0 (over TLS, trusting sealer's CA), the
// Kubernetes cluster, the image's own checks, and no egress anywhere.
func assertSealerCluster(ctx context.Context, opts Options, nodes []*node, exp *expected, r *Report) {
	if !installed(r) {
		for _, name := range append([]string{"kubernetes: every node Ready", "kubernetes: every pod Running or Completed"}, probeAssertionNames(len(nodes))...) {
			r.add(Assertion{Name: name, Node: nodes[0].name, Status: Failed, Evidence: "sealer run did not install the cluster (see \"sealer run installs the image\")"})
		}
	} else {
		r.add(assertRootfs(ctx, nodes[0], exp))
		for _, n := range nodes {
			r.add(assertHosts(ctx, n))
		}
		reg, err := newRegistryProbe(ctx, nodes[0], "sea.hub")
		if err != nil {
			r.add(Assertion{Name: "embedded registry serves every container image with the recorded digest", Node: nodes[0].name, Status: Failed, Evidence: err.Error()})
		} else {
			r.add(assertRegistry(ctx, nodes[0], reg, exp))
		}
		assertKubernetes(ctx, opts, nodes, exp, reg, r)
		for _, c := range exp.Checks {
			r.add(runImageCheck(ctx, nodes[0], c))
		}
	}
	for _, n := range nodes {
		r.add(assertNoEgress(ctx, n))
	}
}

// installed reports whether sealer run installed the cluster.
func installed(r *Report) bool {
	ok := false
	for _, a := range r.Assertions {
		if a.Name == "sealer run installs the image" {
			ok = a.Status == Passed
		}
	}
	return ok
}

// readBase reads the kube-installer image an app-installer goes onto:
// opts.Base, else the image it was built FROM.
func readBase(ctx context.Context, opts Options, app *expected) (*expected, error) {
	base := opts.Base
	if base == "" {
		base = app.BaseName
	}
	if base == "" {
		return nil, fmt.Errorf("%s is an app-installer built FROM scratch: say which cluster to install it onto with --base REF (a kube-installer image in the store)", opts.Ref)
	}
	exp, err := readExpected(ctx, opts.Store, base, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		return nil, fmt.Errorf("the base %s of app-installer %s: %w", base, opts.Ref, err)
	}
	if !exp.Kube {
		return nil, fmt.Errorf("the base %s of app-installer %s brings no Kubernetes (no bin/kubeadm): give a kube-installer image with --base", base, opts.Ref)
	}
	return exp, nil
}

// clusterOf is the image that brings the cluster: the base for an
// app-installer, else the image itself.
func clusterOf(exp, base *expected) *expected {
	if base != nil {
		return base
	}
	return exp
}

// sealerInstallApp installs an app-installer onto the running cluster as an
// operator does: `sealer load -i` the bundle on master0, then
// `sealer run REF`, which reads the cluster from its sealer-clusterfile
// ConfigMap, merges the image's registry/ into the live registry and
// launches the apps.
func sealerInstallApp(ctx context.Context, opts Options, n0 *node, bundlePath, bundleSum string, r *Report) error {
	record := func(name string, fn func() error) error {
		return r.phase(opts.Log, name, n0.name, fn)
	}
	const guestAppBundle = "/root/app-sealer.tar"
	a := Assertion{Name: "sealer run installs the app onto the cluster", Node: n0.name, Status: Passed}
	err := record("deliver: copy the app's sealer-format bundle to master0", func() error {
		if err := n0.vm.UploadFile(ctx, bundlePath, guestAppBundle); err != nil {
			return err
		}
		out, err := n0.vm.Run(ctx, "sha256sum "+guestAppBundle)
		if err != nil {
			return err
		}
		if got := strings.Fields(string(out.Stdout) + " ")[0]; got != bundleSum {
			return fmt.Errorf("the app bundle arrived damaged: sha256 %q in the VM, %s on the host", got, bundleSum)
		}
		return nil
	})
	if err == nil {
		err = record("sealer load: store the app image from its bundle", func() error {
			out, err := n0.vm.Run(ctx, guestSealer+" --log-to-file=false load -i "+guestAppBundle)
			r.logText["sealer-load-app"] = append(out.Stdout, out.Stderr...)
			if err != nil {
				return fmt.Errorf("sealer load: %w\n%s", err, sealerLogTail(string(r.logText["sealer-load-app"]), 20))
			}
			return nil
		})
	}
	if err == nil {
		// An operator installs an app onto a cluster that admits pods. Right after
		// kubeadm returns it may not yet: the controller-manager creates each
		// namespace's default ServiceAccount a moment later, and until then every pod
		// is refused (`serviceaccount "default" not found`: make demo's app, once).
		err = record("wait: the cluster admits pods (the default ServiceAccount exists)", func() error {
			return waitDefaultServiceAccount(ctx, kubectl{n0}, "default", nodesReadyTimeout)
		})
	}
	if err == nil {
		err = record("sealer run: install the app onto the cluster (sealer run REF)", func() error {
			rctx, cancel := context.WithTimeout(ctx, sealerTimeout)
			defer cancel()
			out, err := n0.vm.Run(rctx, guestSealer+" --log-to-file=false run "+shellQuote(opts.Ref)+" 2>&1")
			r.logText["sealer-run-app"] = append(out.Stdout, out.Stderr...)
			if err != nil {
				return fmt.Errorf("sealer run %s: %w\n%s", opts.Ref, err, sealerLogTail(string(r.logText["sealer-run-app"]), 40))
			}
			return nil
		})
	}
	if err != nil {
		a.Status, a.Evidence = Failed, err.Error()
	} else {
		a.Evidence = fmt.Sprintf("sealer run %s on the cluster of %s exited 0; the log is sealer-run-app", opts.Ref, opts.Base)
	}
	r.add(a)
	return nil
}

// assertApp checks what the app-installer added to the running cluster: its
// files in the cluster rootfs on master0, its images in the live registry,
// its own checks. The cluster-wide assertions (every pod Running, pulls from
// the registry, no egress) already cover its workloads.
func assertApp(ctx context.Context, n0 *node, app *expected, r *Report) {
	if !installedApp(r) {
		r.add(Assertion{Name: "app: files and images in the cluster", Node: n0.name, Status: Failed, Evidence: "the app was not installed (see \"sealer run installs the app onto the cluster\")"})
		return
	}
	a := assertRootfs(ctx, n0, app)
	a.Name = "app: " + a.Name
	r.add(a)
	if len(app.Images) > 0 {
		reg, err := newRegistryProbe(ctx, n0, "sea.hub")
		if err != nil {
			r.add(Assertion{Name: "app: the live registry serves its container images", Node: n0.name, Status: Failed, Evidence: err.Error()})
		} else {
			a := assertRegistry(ctx, n0, reg, app)
			a.Name = "app: " + a.Name
			r.add(a)
		}
	}
	for _, c := range app.Checks {
		a := runImageCheck(ctx, n0, c)
		a.Name = "app: " + a.Name
		r.add(a)
	}
}

func installedApp(r *Report) bool {
	for _, a := range r.Assertions {
		if a.Name == "sealer run installs the app onto the cluster" {
			return a.Status == Passed
		}
	}
	return false
}
