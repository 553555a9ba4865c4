package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/vmtest"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// The VM tests share one development image, built (or found in the
// content-addressed cache) once by TestMain: only the first run on a machine
// pays for debootstrap. They need root, qemu-system-x86, qemu-utils,
// debootstrap, e2fsprogs and busybox-static; -short skips them.
var (
	testImage    *vmimage.Image
	testImageErr error
)

const helperEnv = "CNSTACK_VM_TEST_HELPER"

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run()) // a helper subprocess: the parent built the image
	}
	vmtest.UseTestCache()
	if !testing.Short() && vmtest.Missing() == "" {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		testImage, testImageErr = vmimage.Build(ctx, repoPath("images", "debian12"), vmimage.DefaultImageCache(), vmimage.Options{})
		cancel()
		fmt.Fprintf(os.Stderr, "vm tests: image ready in %v (err %v)\n", time.Since(start).Round(time.Millisecond), testImageErr)
	}
	code := m.Run()
	if err := CloseAll(); err != nil {
		fmt.Fprintln(os.Stderr, "vm tests: CloseAll:", err)
	}
	os.Exit(code)
}

func repoPath(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", ".."}, elem...)...)
}

// needImage skips in -short mode and fails when the image could not be built.
func needImage(t *testing.T) *vmimage.Image {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs; skipped in -short mode")
	}
	if why := vmtest.Missing(); why != "" {
		t.Skip(why)
	}
	if testImageErr != nil {
		t.Fatalf("development image: %v", testImageErr)
	}
	if testImage == nil {
		img, err := openCachedImage()
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	return testImage
}

func openCachedImage() (*vmimage.Image, error) {
	return vmimage.Lookup(repoPath("images", "debian12"), vmimage.DefaultImageCache(), vmimage.Options{})
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hasHardwareVirt reports whether the CPU advertises VMX or SVM.
func hasHardwareVirt() bool {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	return regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`).Match(data)
}

// TestProbeKVMFallsBackToTCG runs the functional probe with an empty cache.
// Under TCG the probe's initramfs must boot (so a failure under KVM is KVM's
// fault, not the probe's); the choice must agree with a direct KVM boot; and on
// a CPU without VMX/SVM (this project's machines) it must be TCG, with the
// reason recorded. A second probe must come from the cache.
func TestProbeKVMFallsBackToTCG(t *testing.T) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	opts := ProbeOptions{Kernel: img.Kernel, CacheDir: t.TempDir(), Timeout: 20 * time.Second}

	control, err := probeBoot(ctx, ProbeOptions{Kernel: img.Kernel, Timeout: 90 * time.Second}, AccelTCG)
	if err != nil {
		t.Fatal(err)
	}
	if !control.OK {
		t.Fatalf("the probe initramfs does not boot under TCG: %s\n%s", control.Failure, control.Output)
	}
	t.Logf("TCG control boot: %v", control.Elapsed.Round(time.Millisecond))

	choice, err := ProbeKVM(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe chose %s in %v: %s", choice.Accel, choice.ProbeTime.Round(time.Millisecond), choice.Reason)
	if choice.Reason == "" {
		t.Error("no reason recorded")
	}
	if choice.Cached {
		t.Error("first probe with an empty cache claims to be cached")
	}
	if !hasHardwareVirt() && choice.Accel != AccelTCG {
		t.Errorf("CPU has no VMX/SVM yet the probe chose %s", choice.Accel)
	}
	if choice.Accel == AccelTCG && !strings.Contains(choice.Reason, "kvm") {
		t.Errorf("TCG reason does not say what was wrong with KVM: %q", choice.Reason)
	}
	again, err := ProbeKVM(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Accel != choice.Accel || again.Reason != choice.Reason {
		t.Errorf("second probe = %+v, want the cached %+v", again, choice)
	}
}

// TestVMs boots two VMs on one private network (the suite's only full boots)
// and checks, on them: the base image is untouched, the serial console is
// captured, commands report output and exit status, timeouts work, uploads
// arrive intact (and how fast), the VMs reach each other privately and nothing
// outside, and teardown leaves nothing behind.
func TestVMs(t *testing.T) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()

	baseSums := map[string]string{}
	for _, f := range []string{img.Disk, img.Kernel, img.Initrd} {
		baseSums[f] = sha256File(t, f)
	}

	pnet, err := NewNetwork("testnet", netip.MustParsePrefix("10.77.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer pnet.Close()
	runRoot := t.TempDir()
	keptSerial := filepath.Join(t.TempDir(), "a-serial.log")

	names := []string{"a", "b"}
	vms := make([]*VM, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	bootStart := time.Now()
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{Image: img, Name: name, CPUs: 1, MemoryMiB: 1024, RunRoot: runRoot,
				Networks: []Attachment{{Network: pnet}}}
			if name == "a" {
				cfg.SerialLog = keptSerial
			}
			vms[i], errs[i] = Start(ctx, cfg)
		}()
	}
	wg.Wait()
	for i := range vms {
		if vms[i] != nil {
			defer vms[i].Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	a, b := vms[0], vms[1]
	t.Logf("two VMs booted to SSH in %v (a: %v, b: %v; accel %s)", time.Since(bootStart).Round(time.Millisecond),
		a.Timings().SSH.Round(time.Millisecond), b.Timings().SSH.Round(time.Millisecond), a.Accel())

	t.Run("accel reported", func(t *testing.T) {
		if acc := a.Accel(); acc.Accel == "" || acc.Reason == "" {
			t.Errorf("accelerator not reported: %+v", acc)
		}
	})

	t.Run("serial console captured", func(t *testing.T) {
		out, err := a.Serial()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"-----BEGIN SSH HOST KEY KEYS-----", "Debian GNU/Linux 12 a ttyS0"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("serial log lacks %q:\n%s", want, tail(string(out), 1500))
			}
		}
	})

	t.Run("run captures output and exit status", func(t *testing.T) {
		res, err := a.Run(ctx, "echo to-stdout; echo to-stderr >&2; hostname; exit 3")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != 3 || res.ExitStatus != 3 {
			t.Fatalf("want exit status 3, got %v (result %+v)", err, res)
		}
		if string(res.Stdout) != "to-stdout\na\n" || string(res.Stderr) != "to-stderr\n" {
			t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
		}
		if !strings.Contains(ee.Error(), "to-stderr") {
			t.Errorf("error does not carry stderr: %v", ee)
		}
		if _, err := a.Run(ctx, "true"); err != nil {
			t.Errorf("true: %v", err)
		}
	})

	t.Run("run honours context", func(t *testing.T) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		start := time.Now()
		_, err := a.Run(cctx, "sleep 60")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("want a deadline error, got %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("cancelled command returned after %v", d)
		}
	})

	t.Run("upload round trip", func(t *testing.T) {
		// Through the VM (TransferAuto: the raw data port, socat is in the
		// image) and through the SSH session; then back out with Download.
		for _, tc := range []struct {
			name   string
			size   int64
			upload func(context.Context, io.Reader, string, os.FileMode) error
		}{
			{"data port", 100 << 20, a.Upload},
			{"ssh", 32 << 20, a.SSH().Upload},
		} {
			h := sha256.New()
			src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{42}), tc.size), h)
			dst := "/root/in/" + strings.ReplaceAll(tc.name, " ", "-") + ".bin"
			start := time.Now()
			if err := tc.upload(ctx, src, dst, 0o640); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			up := time.Since(start)
			want := hex.EncodeToString(h.Sum(nil))
			res, err := a.Run(ctx, "sha256sum "+dst+"; stat -c %a:%s "+dst)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(string(res.Stdout))
			if len(got) < 3 || got[0] != want || got[2] != "640:"+strconv.FormatInt(tc.size, 10) {
				t.Errorf("%s: guest sees %q, want sha256 %s, mode 640, size %d", tc.name, res.Stdout, want, tc.size)
			}
			t.Logf("upload %d MiB via %s: %v = %.1f MB/s", tc.size>>20, tc.name, up.Round(time.Millisecond), float64(tc.size)/1e6/up.Seconds())
		}
		// A reader that fails half-way must leave nothing behind, by either path.
		for name, upload := range map[string]func(context.Context, io.Reader, string, os.FileMode) error{
			"data port": a.Upload, "ssh": a.SSH().Upload,
		} {
			broken := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("disk on fire")))
			if err := upload(ctx, broken, "/root/in/failed.bin", 0o644); err == nil || !strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("%s: upload from a failing reader: %v", name, err)
			}
		}
		if a.Transfer() != TransferTCP {
			t.Errorf("TransferAuto resolved to %q; the image has socat, want tcp", a.Transfer())
		}
		res, err := a.Run(ctx, "ls -A /root/in")
		if err != nil || strings.Join(strings.Fields(string(res.Stdout)), " ") != "data-port.bin ssh.bin" {
			t.Errorf("leftover temp files or missing uploads in /root/in: %q %v", res.Stdout, err)
		}
		dh := sha256.New()
		start := time.Now()
		if err := a.Download(ctx, "/root/in/ssh.bin", dh); err != nil {
			t.Fatal(err)
		}
		down := time.Since(start)
		wh := sha256.New()
		_, _ = io.Copy(wh, io.LimitReader(rand.NewChaCha8([32]byte{42}), 32<<20))
		if !bytes.Equal(dh.Sum(nil), wh.Sum(nil)) {
			t.Error("downloaded bytes differ from uploaded bytes")
		}
		t.Logf("download 32 MiB via ssh: %v = %.1f MB/s", down.Round(time.Millisecond), float64(32<<20)/1e6/down.Seconds())
		if err := a.Upload(ctx, strings.NewReader("x"), "relative/path", 0o644); err == nil {
			t.Error("a relative remote path was accepted")
		}
		// A path socat cannot take falls back to SSH and still arrives.
		if err := a.Upload(ctx, strings.NewReader("odd"), "/root/in/odd, name:1", 0o600); err != nil {
			t.Fatal(err)
		}
		if res, err := a.Run(ctx, "cat '/root/in/odd, name:1'"); err != nil || string(res.Stdout) != "odd" {
			t.Errorf("odd path: %q %v", res.Stdout, err)
		}
	})

	t.Run("private network reachability", func(t *testing.T) {
		aIP, bIP := a.NICs()[0].Address, b.NICs()[0].Address
		for _, tc := range []struct {
			vm   *VM
			addr netip.Prefix
		}{{a, aIP}, {b, bIP}} {
			res, err := tc.vm.Run(ctx, "ip -br -4 addr")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(res.Stdout), tc.addr.String()) {
				t.Errorf("%s lacks %v:\n%s", tc.vm.Name(), tc.addr, res.Stdout)
			}
		}
		// Each VM serves its hostname on TCP 7777; each asks the other.
		for _, v := range []*VM{a, b} {
			if _, err := v.Run(ctx, "nohup socat TCP-LISTEN:7777,fork,reuseaddr SYSTEM:hostname >/dev/null 2>&1 &"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			from *VM
			to   netip.Addr
			want string
		}{{a, bIP.Addr(), "b"}, {b, aIP.Addr(), "a"}} {
			var out string
			for try := 0; try < 20; try++ { // the listener may not be up yet
				res, err := tc.from.Run(ctx, "socat -T5 - TCP:"+tc.to.String()+":7777,connect-timeout=5 </dev/null")
				out = strings.TrimSpace(string(res.Stdout))
				if err == nil && out == tc.want {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if out != tc.want {
				t.Errorf("%s -> %v: got %q, want %q", tc.from.Name(), tc.to, out, tc.want)
			}
		}
	})

	t.Run("no route out", func(t *testing.T) {
		// A listener on the host's loopback: with restrict=on the guest must
		// not reach it through slirp's host alias 10.0.2.2.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				accepted <- struct{}{}
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		// 192.0.2.1 is TEST-NET-1 (RFC 5737): never a real host, so the probe
		// targets nothing even if isolation were broken.
		script := fmt.Sprintf(`set +e
ip -4 route get 192.0.2.1
timeout 5 bash -c 'exec 3<>/dev/tcp/192.0.2.1/80' && echo OUT-TCP-OPEN
timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/%d' && echo HOST-TCP-OPEN
getent hosts deb.debian.org && echo DNS-RESOLVED
ip -6 route show default | grep -q . && echo IPV6-DEFAULT
exit 0`, port)
		res, err := a.Run(ctx, script)
		if err != nil {
			t.Fatal(err)
		}
		out := string(res.Stdout)
		if !strings.Contains(out, "dev dummy0") {
			t.Errorf("outside traffic is not routed into dummy0:\n%s", out)
		}
		for _, bad := range []string{"OUT-TCP-OPEN", "HOST-TCP-OPEN", "DNS-RESOLVED", "IPV6-DEFAULT"} {
			if strings.Contains(out, bad) {
				t.Errorf("guest escaped its isolation: %s\n%s", bad, out)
			}
		}
		select {
		case <-accepted:
			t.Error("the host listener accepted a connection from the guest")
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("teardown leaves nothing", func(t *testing.T) {
		for _, v := range []*VM{a, b} {
			pid, dir := v.PID(), v.Dir()
			start := time.Now()
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: Close took %v", v.Name(), time.Since(start).Round(time.Millisecond))
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%s: QEMU pid %d still exists after Close (%v)", v.Name(), pid, err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s: run dir %s still exists", v.Name(), dir)
			}
			if err := v.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}
		if entries, _ := os.ReadDir(runRoot); len(entries) != 0 {
			t.Errorf("run root not empty: %v", entries)
		}
		if _, err := os.Stat(keptSerial); err != nil {
			t.Errorf("caller-owned serial log was removed: %v", err)
		}
	})

	for f, sum := range baseSums {
		if got := sha256File(t, f); got != sum {
			t.Errorf("base file %s changed: %s -> %s", f, sum, got)
		}
	}
}

// TestHelperLaunch is not a test: a subprocess of TestTeardownAfterDeath runs
// it to launch a VM and a network, report them, then wait to be killed.
func TestHelperLaunch(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for TestTeardownAfterDeath")
	}
	img, err := openCachedImage()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(helperEnv) == "signals" {
		defer HandleSignals()()
	}
	n, err := NewNetwork("helper", netip.MustParsePrefix("10.79.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Launch(t.Context(), Config{Image: img, Name: "orphan", CPUs: 1, MemoryMiB: 512,
		RunRoot: os.Getenv("CNSTACK_VM_TEST_RUNROOT"), Networks: []Attachment{{Network: n}}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LAUNCHED %d %s %s\n", v.PID(), v.Dir(), n.dir)
	time.Sleep(5 * time.Minute)
}

// TestTeardownAfterDeath starts a VM from a subprocess and ends that process:
// with SIGKILL (nothing can run in it) QEMU must die by the parent-death signal
// and Reap must then remove the leftovers; with SIGINT (HandleSignals) the
// process must remove everything itself before dying of the signal.
func TestTeardownAfterDeath(t *testing.T) {
	needImage(t)
	for _, tc := range []struct {
		name      string
		mode      string
		sig       syscall.Signal
		selfClean bool
	}{
		{"SIGKILL", "plain", syscall.SIGKILL, false},
		{"SIGINT with HandleSignals", "signals", syscall.SIGINT, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runRoot := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLaunch$", "-test.v", "-test.timeout=10m")
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode, "CNSTACK_VM_TEST_RUNROOT="+runRoot)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var qpid int
			var runDir, netDir string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "LAUNCHED" {
					qpid, _ = strconv.Atoi(f[1])
					runDir, netDir = f[2], f[3]
					break
				}
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			if qpid == 0 {
				t.Fatal("helper did not launch a VM")
			}
			if err := syscall.Kill(qpid, 0); err != nil {
				t.Fatalf("QEMU %d not running before the kill: %v", qpid, err)
			}
			qstart, _ := procStart(qpid)
			start := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			werr := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != tc.sig {
				t.Errorf("helper did not die of %v: %v", tc.sig, werr)
			}
			for alive(qpid, qstart) {
				if time.Since(start) > 15*time.Second {
					t.Fatalf("QEMU %d still runs %v after its owner died", qpid, time.Since(start))
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("QEMU gone %v after the owner's %v", time.Since(start).Round(time.Millisecond), tc.sig)
			_, runErr := os.Stat(runDir)
			_, netErr := os.Stat(netDir)
			if tc.selfClean {
				if !os.IsNotExist(runErr) || !os.IsNotExist(netErr) {
					t.Errorf("after %v the process left %s (%v) / %s (%v)", tc.sig, runDir, runErr, netDir, netErr)
				}
				return
			}
			if runErr != nil {
				t.Fatalf("run dir should still exist before reaping: %v", runErr)
			}
			rep, err := Reap(runRoot)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{runDir, netDir} {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Errorf("Reap left %s (report %+v)", d, rep)
				}
			}
		})
	}
}

// TestNoCloudSeedBoots boots the cloud-init flavoured test image with the Go
// NoCloud seed, the path a user's OpenAnolis (or other cloud) qcow2 takes, and
// checks that a real cloud-init applied it: hostname, root's key (SSH works),
// the pinned host key (SSH works only if it matches), the private address
// matched by MAC, the dummy default route and no IPv6 default route. It builds
// a second image (about a minute) and boots it (cloud-init is slow under TCG),
// so it runs only with CNSTACK_VM_NOCLOUD_TEST=1 (make e2e).
func TestNoCloudSeedBoots(t *testing.T) {
	if os.Getenv("CNSTACK_VM_NOCLOUD_TEST") != "1" {
		t.Skip("set CNSTACK_VM_NOCLOUD_TEST=1 to build and boot the cloud-init test image")
	}
	needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	img, err := vmimage.Build(ctx, repoPath("images", "debian12-cloudinit"), vmimage.DefaultImageCache(), vmimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Seed != vmimage.SeedNoCloud {
		t.Fatalf("test image seed is %q, want nocloud", img.Seed)
	}
	pnet, err := NewNetwork("cloudnet", netip.MustParsePrefix("10.80.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer pnet.Close()
	start := time.Now()
	v, err := Start(ctx, Config{Image: img, Name: "cloudy", RunRoot: t.TempDir(), Networks: []Attachment{{Network: pnet}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	t.Logf("cloud-init VM reached SSH in %v", time.Since(start).Round(time.Millisecond))
	for _, tc := range []struct {
		cmd, want string
	}{
		{"hostname", "cloudy"},
		{"ip -br -4 addr show dev eth1 | awk '{print $3}'", v.NICs()[0].Address.String()},
		{"ip -4 route show default", "default dev dummy0 scope link metric 4000"},
		{"ip -6 route show default | wc -l", "0"},
	} {
		res, err := v.Run(ctx, tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(res.Stdout)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
}
