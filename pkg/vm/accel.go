package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/internal/tailbuf"
)

// Accel is a QEMU accelerator.
type Accel string

const (
	// AccelKVM is hardware virtualization (-accel kvm -cpu host).
	AccelKVM Accel = "kvm"
	// AccelTCG is QEMU's software emulator (-accel tcg -cpu max): slow, but it
	// works everywhere.
	AccelTCG Accel = "tcg"
)

// AccelEnv forces the accelerator: "kvm", "tcg" or "auto" (probe).
const AccelEnv = "CNSTACK_VM_ACCEL"

// AccelChoice is the accelerator a VM uses and why.
type AccelChoice struct {
	Accel Accel `json:"accel"`
	// Reason says why, e.g. "kvm probe: qemu exited with status 134 after
	// 0.03s: ...failed to set MSR..." or "forced by CNSTACK_VM_ACCEL".
	Reason string `json:"reason"`
	// Cached is true when the answer came from the per-machine probe cache.
	Cached bool `json:"cached,omitempty"`
	// ProbeTime is how long the functional probe took (zero when cached).
	ProbeTime time.Duration `json:"probeTime,omitempty"`
}

func (a AccelChoice) String() string { return fmt.Sprintf("%s (%s)", a.Accel, a.Reason) }

// qemuArgs are the accelerator's command-line arguments.
func (a Accel) qemuArgs() []string {
	if a == AccelKVM {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg", "-cpu", "max"}
}

// ProbeOptions tune ProbeKVM.
type ProbeOptions struct {
	// Kernel is a bzImage to boot; the probe runs it with a tiny busybox
	// initramfs. Required: without a kernel the probe answers TCG.
	Kernel string
	// QEMU is the emulator binary; default qemu-system-x86_64.
	QEMU string
	// Busybox is a statically linked busybox; default: the one on PATH
	// (Debian's busybox-static installs /bin/busybox).
	Busybox string
	// CacheDir holds the per-machine answer; empty disables caching.
	CacheDir string
	// Timeout bounds the KVM boot; default 20s. A KVM that works boots the
	// probe in well under a second; a broken one aborts or crawls.
	Timeout time.Duration
}

const probeCacheFile = "accel.json"

// ProbeKVM decides between KVM and TCG by booting a tiny initramfs under KVM
// and waiting for a marker on the serial console: /dev/kvm existing is not
// enough (on some hosts it exists but cannot run a stock kernel). The answer is
// cached per machine in opts.CacheDir, keyed by the QEMU version, the host
// kernel, the CPU flags and the probe kernel. An error means the probe could not
// be run at all (no QEMU); a failed probe is not an error but a TCG answer with
// its reason.
func ProbeKVM(ctx context.Context, opts ProbeOptions) (AccelChoice, error) {
	if opts.QEMU == "" {
		opts.QEMU = "qemu-system-x86_64"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	if _, err := exec.LookPath(opts.QEMU); err != nil {
		return AccelChoice{}, fmt.Errorf("probe accelerator: %w (apt-get install qemu-system-x86)", err)
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return AccelChoice{Accel: AccelTCG, Reason: "no usable /dev/kvm: " + err.Error()}, nil
	} else {
		f.Close()
	}
	if opts.Kernel == "" {
		return AccelChoice{Accel: AccelTCG, Reason: "no kernel to run the KVM probe with"}, nil
	}
	fp, err := probeFingerprint(ctx, opts)
	if err != nil {
		return AccelChoice{}, err
	}
	cachePath := ""
	if opts.CacheDir != "" {
		cachePath = filepath.Join(opts.CacheDir, probeCacheFile)
		if c, ok := readProbeCache(cachePath, fp); ok {
			c.Cached = true
			return c, nil
		}
	}
	start := time.Now()
	res, err := probeBoot(ctx, opts, AccelKVM)
	if err != nil {
		return AccelChoice{}, err
	}
	choice := AccelChoice{Accel: AccelKVM, Reason: fmt.Sprintf("kvm probe booted in %.2fs", res.Elapsed.Seconds())}
	if !res.OK {
		choice = AccelChoice{Accel: AccelTCG, Reason: "kvm probe failed: " + res.Failure}
	}
	choice.ProbeTime = time.Since(start)
	if cachePath != "" && ctx.Err() == nil {
		if err := writeProbeCache(cachePath, fp, choice); err != nil {
			return AccelChoice{}, err
		}
	}
	return choice, nil
}

// resolveAccel applies an explicit choice, then $CNSTACK_VM_ACCEL, then the
// (cached) probe.
func resolveAccel(ctx context.Context, want Accel, opts ProbeOptions) (AccelChoice, error) {
	if want == "" {
		switch v := strings.ToLower(os.Getenv(AccelEnv)); v {
		case "", "auto":
		case string(AccelKVM), string(AccelTCG):
			return AccelChoice{Accel: Accel(v), Reason: "forced by " + AccelEnv}, nil
		default:
			return AccelChoice{}, fmt.Errorf("%s=%q: want kvm, tcg or auto", AccelEnv, v)
		}
	}
	switch want {
	case AccelKVM, AccelTCG:
		return AccelChoice{Accel: want, Reason: "requested by the caller"}, nil
	case "":
		return ProbeKVM(ctx, opts)
	default:
		return AccelChoice{}, fmt.Errorf("accelerator %q: want kvm or tcg", want)
	}
}

type probeResult struct {
	OK      bool
	Elapsed time.Duration
	Failure string // why not OK
	Output  string // console output, for tests and errors
}

// probeBoot boots opts.Kernel with a generated busybox initramfs under accel and
// reports whether the marker line appeared before the timeout.
func probeBoot(ctx context.Context, opts ProbeOptions, accel Accel) (probeResult, error) {
	if opts.QEMU == "" {
		opts.QEMU = "qemu-system-x86_64"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	dir, err := os.MkdirTemp("", "cnstack-probe-")
	if err != nil {
		return probeResult{}, err
	}
	defer os.RemoveAll(dir)
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	marker := "CNSTACK-PROBE-" + hex.EncodeToString(nonce[:])
	initrd := filepath.Join(dir, "probe.cpio")
	if err := writeProbeInitramfs(initrd, opts.Busybox, marker); err != nil {
		return probeResult{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	args := append(accel.qemuArgs(),
		"-m", "256", "-smp", "1", "-nodefaults", "-no-user-config",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", opts.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1")
	cmd := exec.Command(opts.QEMU, args...)
	stderr := tailbuf.New(2048)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return probeResult{}, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return probeResult{}, fmt.Errorf("probe: start %s: %w", opts.QEMU, err)
	}
	found := make(chan bool, 1)
	var out bytes.Buffer
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, &out))
		for sc.Scan() {
			if strings.Contains(sc.Text(), marker+" OK") {
				found <- true
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		found <- false
	}()
	res := probeResult{}
	select {
	case ok := <-found:
		res.Elapsed = time.Since(start)
		res.OK = ok
		if !ok {
			werr := cmd.Wait()
			res.Failure = fmt.Sprintf("qemu exited (%v) after %.2fs without the marker: %s",
				werr, res.Elapsed.Seconds(), oneLine(stderr.String(), 400))
		}
	case <-ctx.Done():
		res.Elapsed = time.Since(start)
		res.Failure = fmt.Sprintf("no marker within %s (the guest hangs or crawls under %s)", opts.Timeout, accel)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	res.Output = out.String()
	return res, nil
}

// writeProbeInitramfs writes an uncompressed initramfs holding a static busybox
// and an /init that prints "<marker> OK" and powers off.
func writeProbeInitramfs(path, busybox, marker string) error {
	if busybox == "" {
		var err error
		if busybox, err = exec.LookPath("busybox"); err != nil {
			return fmt.Errorf("probe: busybox not found (apt-get install busybox-static): %w", err)
		}
	}
	if err := requireStatic(busybox); err != nil {
		return err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := newCPIOWriter(f)
	for _, d := range []string{"bin", "dev", "proc", "sys"} {
		w.Dir(d, 0o755)
	}
	w.CharDevice("dev/console", 0o600, 5, 1)
	w.File("bin/busybox", 0o755, bb)
	w.Symlink("bin/sh", "busybox")
	w.File("init", 0o755, []byte("#!/bin/busybox sh\n"+
		"/bin/busybox mount -t proc proc /proc\n"+
		"echo \""+marker+" OK uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime)\"\n"+
		"/bin/busybox poweroff -f\n"))
	if err := w.Close(); err != nil {
		f.Close()
		return fmt.Errorf("probe: write initramfs: %w", err)
	}
	return f.Close()
}

// requireStatic rejects a dynamically linked busybox: it would not run in an
// initramfs without a C library, and the probe would wrongly blame KVM.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("probe: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("probe: %s is dynamically linked; install busybox-static", path)
		}
	}
	return nil
}

// hostKernel is the running kernel's image under /boot, or "".
func hostKernel() string {
	var uts syscall.Utsname
	if syscall.Uname(&uts) != nil {
		return ""
	}
	p := "/boot/vmlinuz-" + utsString(uts.Release[:])
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

type probeCache struct {
	Fingerprint string      `json:"fingerprint"`
	Choice      AccelChoice `json:"choice"`
	ProbedAt    time.Time   `json:"probedAt"`
}

// probeFingerprint captures what the KVM answer depends on.
func probeFingerprint(ctx context.Context, opts ProbeOptions) (string, error) {
	h := sha256.New()
	ver, err := exec.CommandContext(ctx, opts.QEMU, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("probe: %s --version: %w", opts.QEMU, err)
	}
	fmt.Fprintf(h, "qemu=%s\n", bytes.SplitN(ver, []byte("\n"), 2)[0])
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err == nil {
		fmt.Fprintf(h, "host=%s %s\n", utsString(uts.Release[:]), utsString(uts.Version[:]))
	}
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(cpu), "\n") {
			if strings.HasPrefix(line, "flags") || strings.HasPrefix(line, "model name") {
				fmt.Fprintf(h, "%s\n", line)
			}
			if line == "" {
				break // first CPU only
			}
		}
	}
	if fi, err := os.Stat(opts.Kernel); err == nil {
		fmt.Fprintf(h, "kernel=%s %d\n", filepath.Base(opts.Kernel), fi.Size())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func readProbeCache(path, fp string) (AccelChoice, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return AccelChoice{}, false
	}
	var c probeCache
	if json.Unmarshal(data, &c) != nil || c.Fingerprint != fp || c.Choice.Accel == "" {
		return AccelChoice{}, false
	}
	return c.Choice, true
}

func writeProbeCache(path, fp string, choice AccelChoice) error {
	data, err := json.MarshalIndent(probeCache{Fingerprint: fp, Choice: choice, ProbedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// oneLine joins the non-empty lines of s with " | " and keeps the last max bytes.
func oneLine(s string, max int) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s = strings.Join(parts, " | ")
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return s
}
