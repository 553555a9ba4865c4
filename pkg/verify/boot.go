// Package verify proves a cluster image installs on a machine that has
// nothing but the artifact: it boots throw-away, air-gapped QEMU VMs,
// delivers the image as an offline bundle (the path a private cloud uses),
// installs it the way `sealer run` lays it out, asserts what the image
// promises, and writes JUnit XML, JSON and an HTML timeline.
package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/install"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/vm"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// Options configure a boot.
type Options struct {
	Store   *store.Store
	Ref     string
	Nodes   int            // default 1
	VMImage *vmimage.Image // the base image the VMs boot
	Binary  string         // a static linux/amd64 cnstack for the guests
	// Sealer, if set, is the real sealer v0.11 binary: node0 then also loads
	// the image with `sealer load -i` and inspects it, as an operator would.
	Sealer string
	// Installer is InstallerSealer or InstallerCnstack; default sealer for
	// an image that brings Kubernetes (bin/kubeadm), cnstack otherwise.
	Installer string
	// Base is, for an app-installer image, the kube-installer image whose
	// cluster it is installed onto (default: the image it was built FROM,
	// when that is in the store). sealer run installs the base, then
	// `sealer run REF` installs the app onto the running cluster.
	Base string
	// ProbeImage is the toolbox the Kubernetes assertions' pods run
	// (default DefaultProbeImage); the image under test must carry it.
	ProbeImage string
	CPUs       int       // per VM; default 2 for one node or Kubernetes, else 1 each
	MemoryMiB  int       // per VM; default 2048, 4096 with Kubernetes
	Work       string    // scratch directory (bundle); default a temp dir
	Log        io.Writer // progress lines; nil: quiet
}

// Guest paths.
const (
	guestBin          = "/usr/local/bin/cnstack"
	guestBundle       = "/root/image.tar"
	guestSealerBundle = "/root/image-sealer.tar"
	guestSealer       = "/usr/local/bin/sealer"
	guestHome         = "/root/.cnstack"
	guestReport       = "/root/install.json"
	registryPort      = 5000
	clusterName       = "my-cluster"
	dataRoot          = "/var/lib/sealer/data"
)

var rootfsDir = dataRoot + "/" + clusterName + "/rootfs"

type node struct {
	name string
	vm   *vm.VM
	addr netip.Prefix // on the private network (multi-node)
}

// Boot runs the whole verification. The report is complete even when it
// fails; err is set only when the boot could not run at all.
func Boot(ctx context.Context, opts Options) (*Report, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	r := &Report{Image: opts.Ref, Nodes: opts.Nodes, Started: time.Now(), Platform: "linux/amd64",
		Logs: map[string]string{}, Figures: map[string]string{}, logText: map[string][]byte{}}
	if opts.VMImage != nil {
		r.VMImage = opts.VMImage.Name + " " + opts.VMImage.Key
	}
	err := boot(ctx, opts, r)
	if err != nil {
		r.Error = err.Error()
	}
	r.Duration = time.Since(r.Started)
	r.finish()
	return r, nil
}

func (r *Report) phase(log io.Writer, name, node string, fn func() error) error {
	p := Phase{Name: name, Node: node, Start: time.Now()}
	fmt.Fprintf(log, "%s %s...\n", name, node)
	err := fn()
	p.Duration = time.Since(p.Start)
	r.Phases = append(r.Phases, p)
	status := "done"
	if err != nil {
		status = "failed: " + err.Error()
	}
	fmt.Fprintf(log, "%s %s %s in %s\n", name, node, status, p.Duration.Round(10*time.Millisecond))
	return err
}

func boot(ctx context.Context, opts Options, r *Report) error {
	if opts.Store == nil || opts.VMImage == nil || opts.Binary == "" {
		return errors.New("boot needs a store, a VM image and a cnstack binary for the guests")
	}
	work := opts.Work
	if work == "" {
		d, err := os.MkdirTemp("", "cnstack-boot-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	var exp, baseExp *expected
	bundlePath := filepath.Join(work, "image.tar")
	baseBundle := filepath.Join(work, "base-sealer.tar")
	var bundleSum, sealerSum, baseSum string
	if err := r.phase(opts.Log, "prepare: read the image, write the offline bundle", "", func() error {
		var err error
		exp, err = readExpected(ctx, opts.Store, opts.Ref, ocispec.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			return err
		}
		r.Digest, r.Platform = exp.Digest.String(), exp.Platform
		// An app-installer goes onto its base's cluster, unless it is only
		// to be laid out (--installer cnstack).
		if exp.Extension.Type == clusterimage.AppInstaller && opts.Installer != InstallerCnstack {
			if baseExp, err = readBase(ctx, opts, exp); err != nil {
				return err
			}
			opts.Base, r.Base = baseExp.Ref, baseExp.Ref
		}
		if opts, err = withDefaults(opts, clusterOf(exp, baseExp)); err != nil {
			return err
		}
		r.Installer = opts.Installer
		if opts.Installer == InstallerCnstack {
			if _, err := bundle.Save(ctx, opts.Store, bundle.SaveOptions{Output: bundlePath, Refs: []string{opts.Ref}}); err != nil {
				return err
			}
			if bundleSum, err = fileSHA256(bundlePath); err != nil {
				return err
			}
		}
		if opts.Sealer == "" {
			return nil
		}
		if baseExp != nil {
			if _, err = bundle.Save(ctx, opts.Store, bundle.SaveOptions{Output: baseBundle, Refs: []string{opts.Base}, Format: bundle.FormatSealer}); err != nil {
				return err
			}
			if baseSum, err = fileSHA256(baseBundle); err != nil {
				return err
			}
		}
		if _, err = bundle.Save(ctx, opts.Store, bundle.SaveOptions{Output: sealerBundlePath(bundlePath), Refs: []string{opts.Ref}, Format: bundle.FormatSealer}); err != nil {
			return err
		}
		sealerSum, err = fileSHA256(sealerBundlePath(bundlePath))
		return err
	}); err != nil {
		return err
	}

	nodes, cleanup, err := startNodes(ctx, opts, r)
	defer cleanup()
	if err != nil {
		return err
	}
	r.Accel = nodes[0].vm.Accel().String()
	defer func() {
		for _, n := range nodes {
			if b, err := n.vm.Serial(); err == nil {
				r.logText["serial-"+n.name] = b
			}
			t := n.vm.Timings()
			r.Figures["boot to SSH ("+n.name+")"] = t.SSH.Round(10 * time.Millisecond).String()
			if out, err := n.vm.Run(ctx, "free -m | awk '/^Mem:/ {print $3\" MiB used of \"$2}'"); err == nil {
				r.Figures["guest memory at the end ("+n.name+")"] = strings.TrimSpace(string(out.Stdout))
			}
			if hwm := peakRSS(n.vm.PID()); hwm != "" {
				r.Figures["host memory, QEMU peak RSS ("+n.name+")"] = hwm
			}
		}
	}()

	if baseExp != nil {
		// The cluster first (the base, as an operator installs it), then
		// the app onto it; the assertions judge the cluster with the app.
		baseOpts := opts
		baseOpts.Ref = opts.Base
		if err := sealerInstall(ctx, baseOpts, nodes, baseBundle, baseSum, baseExp, r); err != nil {
			return err
		}
		if installed(r) {
			if err := sealerInstallApp(ctx, opts, nodes[0], sealerBundlePath(bundlePath), sealerSum, r); err != nil {
				return err
			}
		}
		r.phase(opts.Log, "assert: the cluster sealer installed, with the app", nodes[0].name, func() error {
			assertSealerCluster(ctx, baseOpts, nodes, baseExp, r)
			assertApp(ctx, nodes[0], exp, r)
			return nil
		})
		return nil
	}
	if opts.Installer == InstallerSealer {
		if err := sealerInstall(ctx, opts, nodes, sealerBundlePath(bundlePath), sealerSum, exp, r); err != nil {
			return err
		}
		r.phase(opts.Log, "assert: the cluster sealer installed", nodes[0].name, func() error {
			assertSealerCluster(ctx, opts, nodes, exp, r)
			return nil
		})
		return nil
	}

	// Deliver and install on every node in parallel.
	var wg sync.WaitGroup
	var mu sync.Mutex
	r.Installs = make([]*install.Result, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := deliverAndInstall(ctx, opts, n, i, nodes, bundlePath, bundleSum, exp, &mu, r)
			mu.Lock()
			r.Installs[i] = res
			mu.Unlock()
		}()
	}
	wg.Wait()

	if opts.Sealer != "" {
		r.phase(opts.Log, "sealer: load and inspect the image with the real sealer", nodes[0].name, func() error {
			r.add(assertSealer(ctx, opts, nodes[0], sealerBundlePath(bundlePath), exp))
			return nil
		})
	} else {
		r.add(Assertion{Name: "the real sealer loads and inspects the image", Status: Skipped, Evidence: "no sealer binary given (cnstack boot --sealer PATH)"})
	}
	r.phase(opts.Log, "assert", "", func() error {
		assertAll(ctx, opts, nodes, exp, r)
		return nil
	})
	return nil
}

// withDefaults fills what depends on the image: the installer (the real
// sealer for an image that brings Kubernetes), and VMs sized for it —
// kubeadm's preflight wants 2 CPUs and about 1.7 GB on a control-plane node.
func withDefaults(opts Options, exp *expected) (Options, error) {
	if opts.Base != "" && opts.Installer == InstallerCnstack {
		return opts, fmt.Errorf("%s is an app-installer: it is installed onto %s's cluster by the real sealer run, not with --installer %s", opts.Ref, opts.Base, InstallerCnstack)
	}
	switch opts.Installer {
	case "":
		opts.Installer = InstallerCnstack
		if exp.Kube {
			opts.Installer = InstallerSealer
		}
	case InstallerSealer, InstallerCnstack:
	default:
		return opts, fmt.Errorf("installer %q: want %s or %s", opts.Installer, InstallerSealer, InstallerCnstack)
	}
	if opts.Installer == InstallerSealer && opts.Sealer == "" {
		if opts.Base != "" {
			return opts, fmt.Errorf("%s is an app-installer, installed onto %s's cluster with the real sealer run: give the sealer v0.11 binary (--sealer FILE; `make tools` builds it)", opts.Ref, opts.Base)
		}
		return opts, fmt.Errorf("%s brings Kubernetes, which boot installs with the real sealer run: give the sealer v0.11 binary (--sealer FILE; `make tools` builds it), or lay the image out without Kubernetes with --installer %s", opts.Ref, InstallerCnstack)
	}
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 2048
		if exp.Kube {
			opts.MemoryMiB = 4096
		}
	}
	if opts.CPUs == 0 {
		opts.CPUs = 2
		if opts.Nodes > 1 && !exp.Kube {
			opts.CPUs = 1
		}
	}
	return opts, nil
}

func startNodes(ctx context.Context, opts Options, r *Report) ([]*node, func(), error) {
	var nodes []*node
	var nw *vm.Network
	cleanup := func() {
		for _, n := range nodes {
			if n.vm != nil {
				n.vm.Close()
			}
		}
		if nw != nil {
			nw.Close()
		}
	}
	if opts.Nodes > 1 {
		var err error
		nw, err = vm.NewNetwork("cnstack-boot", netip.MustParsePrefix("192.168.77.0/24"))
		if err != nil {
			return nil, cleanup, err
		}
	}
	for i := 0; i < opts.Nodes; i++ {
		nodes = append(nodes, &node{name: "node" + strconv.Itoa(i)})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		cfg := vm.Config{Image: opts.VMImage, Name: n.name, CPUs: opts.CPUs, MemoryMiB: opts.MemoryMiB, Forwards: []int{registryPort},
			Logger: slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		if nw != nil {
			addr, err := nw.Allocate()
			if err != nil {
				return nodes, cleanup, err
			}
			n.addr = addr
			cfg.Networks = []vm.Attachment{{Network: nw, Address: addr}}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.phase(opts.Log, "boot VM", n.name, func() error {
				v, err := vm.Start(ctx, cfg)
				n.vm = v
				return err
			})
		}()
	}
	wg.Wait()
	return nodes, cleanup, errors.Join(errs...)
}

// deliverAndInstall copies the bundle and cnstack into a node, checks the
// bundle arrived intact, and installs the image there.
func deliverAndInstall(ctx context.Context, opts Options, n *node, i int, nodes []*node, bundlePath, bundleSum string, exp *expected, mu *sync.Mutex, r *Report) *install.Result {
	add := func(a Assertion) {
		mu.Lock()
		r.add(a)
		mu.Unlock()
	}
	record := func(name string, fn func() error) error {
		p := Phase{Name: name, Node: n.name, Start: time.Now()}
		err := fn()
		p.Duration = time.Since(p.Start)
		mu.Lock()
		r.Phases = append(r.Phases, p)
		mu.Unlock()
		fmt.Fprintf(opts.Log, "%s %s: %s\n", name, n.name, orOK(err))
		return err
	}
	// Egress accounting starts before anything of the image runs.
	if err := record("guard: count packets to non-local addresses (self-tested)", func() error {
		_, err := n.vm.Run(ctx, egressSetup(nodes, exp))
		return err
	}); err != nil {
		add(Assertion{Name: "no traffic leaves the VM", Node: n.name, Status: Failed, Evidence: "could not install the egress counters: " + err.Error()})
	}
	var deliverErr error
	record("deliver: copy the offline bundle and cnstack into the VM", func() error {
		t0 := time.Now()
		if err := n.vm.UploadFile(ctx, opts.Binary, guestBin); err != nil {
			deliverErr = fmt.Errorf("upload cnstack: %w", err)
			return deliverErr
		}
		if _, err := n.vm.Run(ctx, "chmod 0755 "+guestBin); err != nil {
			deliverErr = err
			return err
		}
		tb := time.Now()
		if err := n.vm.UploadFile(ctx, bundlePath, guestBundle); err != nil {
			deliverErr = fmt.Errorf("upload bundle: %w", err)
			return deliverErr
		}
		d := time.Since(tb)
		// The figures are a report, not a check: a file gone meanwhile
		// (it was uploaded, so it existed) leaves them out rather than
		// failing the delivery.
		fi, ferr := os.Stat(bundlePath)
		bi, berr := os.Stat(opts.Binary)
		if ferr != nil || berr != nil {
			return nil
		}
		mu.Lock()
		r.Figures["bundle delivery ("+n.name+")"] = fmt.Sprintf("%.1f MB in %s (%.1f MB/s); cnstack %.1f MB in %s",
			float64(fi.Size())/1e6, d.Round(time.Millisecond), float64(fi.Size())/1e6/d.Seconds(), float64(bi.Size())/1e6, tb.Sub(t0).Round(time.Millisecond))
		mu.Unlock()
		return nil
	})
	if deliverErr != nil {
		add(Assertion{Name: "bundle delivered intact", Node: n.name, Status: Failed, Evidence: deliverErr.Error()})
		return nil
	}
	out, err := n.vm.Run(ctx, "sha256sum "+guestBundle)
	got := strings.Fields(string(out.Stdout) + " ")[0]
	if err != nil || got != bundleSum {
		add(Assertion{Name: "bundle delivered intact", Node: n.name, Status: Failed, Evidence: fmt.Sprintf("sha256 in the VM %q, on the host %s (%v)", got, bundleSum, err)})
		return nil
	}
	add(Assertion{Name: "bundle delivered intact", Node: n.name, Status: Passed, Evidence: "sha256 " + bundleSum + " in the VM and on the host"})

	var checkOut vm.Result
	record("check: verify the bundle inside the VM (no network)", func() error {
		checkOut, err = n.vm.Run(ctx, fmt.Sprintf("CNSTACK_HOME=%s %s check %s", guestHome, guestBin, guestBundle))
		return err
	})
	st := Passed
	if err != nil {
		st = Failed
	}
	add(Assertion{Name: "bundle checks inside the VM (every blob hashed)", Node: n.name, Status: st, Evidence: strings.TrimSpace(string(checkOut.Stdout) + string(checkOut.Stderr))})

	var res *install.Result
	registryIP := "127.0.0.1"
	if len(nodes) > 1 {
		registryIP = nodes[0].addr.Addr().String()
	}
	record("install: load the bundle and lay the image out as sealer run does", func() error {
		cmd := fmt.Sprintf("CNSTACK_HOME=%s %s install -i %s --report %s --registry-ip %s", guestHome, guestBin, guestBundle, guestReport, registryIP)
		if i == 0 {
			cmd += " --run-registry"
		}
		cmd += " " + shellQuote(opts.Ref)
		out, err := n.vm.Run(ctx, cmd)
		mu.Lock()
		r.logText["install-"+n.name] = append(out.Stdout, out.Stderr...)
		mu.Unlock()
		var buf bytes.Buffer
		if derr := n.vm.Download(ctx, guestReport, &buf); derr == nil {
			var ir install.Result
			if json.Unmarshal(buf.Bytes(), &ir) == nil {
				res = &ir
			}
		}
		return err
	})
	if res == nil {
		add(Assertion{Name: "install ran", Node: n.name, Status: Failed, Evidence: string(r.logText["install-"+n.name])})
		return nil
	}
	for _, s := range res.Steps {
		st := s.Status
		if st == install.Passed {
			st = Passed
		}
		add(Assertion{Name: "install: " + s.Name, Node: n.name, Status: st, Evidence: s.Detail, Duration: s.Duration})
	}
	return res
}

func sealerBundlePath(bundlePath string) string {
	return strings.TrimSuffix(bundlePath, ".tar") + "-sealer.tar"
}

// assertSealer has the real sealer load the sealer-format bundle inside
// the VM and inspect the image: the applications it reports must be the
// image's.
func assertSealer(ctx context.Context, opts Options, n *node, sealerBundle string, exp *expected) (a Assertion) {
	t0 := time.Now()
	a = Assertion{Name: "the real sealer loads and inspects the image", Node: n.name}
	defer func() { a.Duration = time.Since(t0) }()
	if err := n.vm.UploadFile(ctx, opts.Sealer, guestSealer); err != nil {
		a.Status, a.Evidence = Failed, "upload sealer: "+err.Error()
		return a
	}
	if err := n.vm.UploadFile(ctx, sealerBundle, guestSealerBundle); err != nil {
		a.Status, a.Evidence = Failed, "upload the sealer-format bundle: "+err.Error()
		return a
	}
	load, err := n.vm.Run(ctx, "chmod 0755 "+guestSealer+" && "+guestSealer+" -q --log-to-file=false load -i "+guestSealerBundle)
	if err != nil {
		a.Status, a.Evidence = Failed, "sealer load: "+err.Error()+"\n"+string(load.Stdout)+string(load.Stderr)
		return a
	}
	out, err := n.vm.Run(ctx, guestSealer+" -q --log-to-file=false inspect "+shellQuote(opts.Ref))
	if err != nil {
		a.Status, a.Evidence = Failed, "sealer inspect: "+err.Error()+"\n"+string(out.Stderr)
		return a
	}
	var spec struct {
		ImageExtension struct {
			Applications []struct{ Name string } `json:"applications"`
			Launch       struct {
				AppNames []string `json:"app_names"`
			} `json:"launch"`
		} `json:"imageExtension"`
	}
	if err := json.Unmarshal(out.Stdout, &spec); err != nil {
		a.Status, a.Evidence = Failed, "sealer inspect printed no JSON: "+err.Error()
		return a
	}
	var got []string
	for _, app := range spec.ImageExtension.Applications {
		got = append(got, app.Name)
	}
	want := exp.Extension.AppNames()
	if strings.Join(got, ",") != strings.Join(want, ",") || strings.Join(spec.ImageExtension.Launch.AppNames, ",") != strings.Join(exp.Extension.Launch.AppNames, ",") {
		a.Status = Failed
		a.Evidence = fmt.Sprintf("sealer sees apps %v launch %v; the image has %v launch %v", got, spec.ImageExtension.Launch.AppNames, want, exp.Extension.Launch.AppNames)
		return a
	}
	a.Status = Passed
	a.Evidence = fmt.Sprintf("sealer load -i and sealer inspect %s in the VM: apps %v, launch %v", opts.Ref, got, spec.ImageExtension.Launch.AppNames)
	return a
}

func orOK(err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return "done"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// peakRSS is a process's peak resident memory (VmHWM), e.g. "1523 MiB".
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return fmt.Sprintf("%d MiB", kb/1024)
				}
			}
		}
	}
	return ""
}
