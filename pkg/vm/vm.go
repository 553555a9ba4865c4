// Package vm boots throw-away QEMU virtual machines for cnstack's verifier:
// one QEMU process per VM, a read-only base image with a per-run qcow2 overlay,
// no network route out (QEMU user networking with restrict=on, SSH forwarded
// on 127.0.0.1), optional private L2 networks between the VMs of one test, a
// per-run SSH key, the serial console captured to a file, and teardown that
// leaves no QEMU and no overlay behind, whether the caller succeeds, fails,
// times out, is interrupted or is killed.
//
// KVM is used only where a functional probe shows it works; otherwise TCG.
package vm

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cnstack/cnstack/internal/tailbuf"
	"github.com/cnstack/cnstack/pkg/vm/cloudinit"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// Config describes one VM.
type Config struct {
	// Image is the base image (vmimage.Build or vmimage.CloudImage). Required.
	Image *vmimage.Image
	// Name is the guest's hostname and prefixes its run directory; default "vm".
	Name string
	// CPUs and MemoryMiB size the guest; defaults 2 and 2048.
	CPUs      int
	MemoryMiB int
	// DiskSize, when larger than the image's, grows the per-run overlay; the
	// debian12 guest grows its root filesystem to match at boot.
	DiskSize int64
	// Networks attach the VM to private L2 networks, one NIC each.
	Networks []Attachment
	// Forwards are guest TCP ports to forward to 127.0.0.1 besides SSH; see
	// VM.HostPort.
	Forwards []int
	// Transfer picks how Upload moves bytes: TransferAuto (default: a raw
	// TCP data port when the guest has socat, else SSH), TransferSSH or
	// TransferTCP. Anything but TransferSSH forwards DataPort too.
	Transfer Transfer
	// Accel forces an accelerator; empty means $CNSTACK_VM_ACCEL, else the
	// functional KVM probe (cached per machine), else TCG.
	Accel Accel
	// ProbeKernel is the kernel the KVM probe boots; default the image's
	// kernel, else the host's /boot/vmlinuz-$(uname -r).
	ProbeKernel string
	// RunRoot is the directory that holds run directories; default
	// vmimage.CacheRoot()/run. Stale runs found there are reaped at Start.
	RunRoot string
	// SerialLog is where the serial console is written; default serial.log in
	// the run directory, which Close deletes: set it to keep the log.
	SerialLog string
	// QEMU is the emulator binary; default qemu-system-x86_64.
	QEMU string
	// BootTimeout bounds Start's wait for SSH (ctx may end it sooner);
	// default 10 minutes, because TCG on a loaded host is slow.
	BootTimeout time.Duration
	// KernelArgs are appended to the kernel command line (-kernel boot only).
	KernelArgs []string
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// Attachment connects a VM to a Network.
type Attachment struct {
	Network *Network
	// Address is the VM's address on the network; the zero value takes the
	// network's next free address.
	Address netip.Prefix
}

// NIC is a VM's interface on a private network.
type NIC struct {
	Network string
	MAC     string
	Address netip.Prefix
	net     *Network
}

// Timings records how long each phase of a VM's life took.
type Timings struct {
	Accel    time.Duration // choosing the accelerator (probe or cache)
	Prepare  time.Duration // overlay, seed, key
	HostKey  time.Duration // QEMU start until the guest printed its host key
	SSH      time.Duration // QEMU start until SSH answered
	Teardown time.Duration // Close
}

// VM is a running QEMU guest. Close it.
type VM struct {
	cfg     Config
	log     *slog.Logger
	name    string
	dir     string
	serial  string
	accel   AccelChoice
	sshPort int
	fwd     map[int]int
	nics    []NIC
	key     *KeyPair

	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when QEMU has exited
	waitErr error         // QEMU's exit, valid after done
	stderr  *tailbuf.Buffer

	mu       sync.Mutex
	hostKey  ssh.PublicKey
	client   *Client
	timings  Timings
	closing  sync.Once
	closeErr error

	transferOnce sync.Once
	transfer     Transfer
}

// Start launches a VM and waits until SSH answers (see Launch and WaitSSH).
// ctx bounds the start only; the VM lives until Close.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	for attempt := 1; ; attempt++ {
		v, err := Launch(ctx, cfg)
		if err != nil {
			return nil, err
		}
		err = v.WaitSSH(ctx)
		if err == nil {
			return v, nil
		}
		cerr := v.Close()
		if errors.Is(err, errHostFwd) && attempt < 3 {
			// Another process took the port between our check and QEMU's
			// bind: pick new ports.
			continue
		}
		return nil, errors.Join(err, cerr)
	}
}

var errHostFwd = errors.New("host port for forwarding already in use")

// Launch prepares the run directory (overlay, seed, key) and starts QEMU,
// without waiting for the guest. On error nothing is left behind.
func Launch(ctx context.Context, cfg Config) (v *VM, err error) {
	if cfg.Image == nil || cfg.Image.Disk == "" {
		return nil, errors.New("vm: Config.Image is required")
	}
	if cfg.Name == "" {
		cfg.Name = "vm"
	}
	if !hostnamePattern.MatchString(cfg.Name) {
		return nil, fmt.Errorf("vm: name %q: want a lower-case host name", cfg.Name)
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 2048
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.RunRoot == "" {
		cfg.RunRoot = filepath.Join(vmimage.CacheRoot(), "run")
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 10 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("vm", cfg.Name)
	for _, tool := range []string{cfg.QEMU, "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("vm: %w (apt-get install qemu-system-x86 qemu-utils)", err)
		}
	}

	if err := os.MkdirAll(cfg.RunRoot, 0o755); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if rep, err := Reap(cfg.RunRoot); err != nil {
		log.Warn("could not reap stale runs", "err", err)
	} else if len(rep.Removed) > 0 {
		log.Info("reaped stale runs", "removed", rep.Removed, "killed", rep.Killed)
	}
	dir, err := os.MkdirTemp(cfg.RunRoot, cfg.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	v = &VM{cfg: cfg, log: log, name: cfg.Name, dir: dir, fwd: map[int]int{}, stderr: tailbuf.New(8192)}
	register(v)
	defer func() {
		if err != nil {
			err = errors.Join(err, v.Close())
			v = nil
		}
	}()
	if err := writeOwner(dir, owner{}); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	v.serial = cfg.SerialLog
	if v.serial == "" {
		v.serial = filepath.Join(dir, "serial.log")
	}

	t0 := time.Now()
	probeKernel := cfg.ProbeKernel
	if probeKernel == "" {
		probeKernel = cfg.Image.Kernel
	}
	if probeKernel == "" {
		probeKernel = hostKernel()
	}
	v.accel, err = resolveAccel(ctx, cfg.Accel, ProbeOptions{Kernel: probeKernel, QEMU: cfg.QEMU, CacheDir: vmimage.CacheRoot()})
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	v.timings.Accel = time.Since(t0)
	log.Info("accelerator", "accel", v.accel.Accel, "reason", v.accel.Reason, "cached", v.accel.Cached)

	t0 = time.Now()
	if v.key, err = NewKeyPair("cnstack-" + cfg.Name); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "id_ed25519"), v.key.PrivatePEM, 0o600); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if err := createOverlay(ctx, cfg.Image, overlay, cfg.DiskSize); err != nil {
		return nil, err
	}
	for i, a := range cfg.Networks {
		if a.Network == nil {
			return nil, fmt.Errorf("vm: network attachment %d has no Network", i)
		}
		addr := a.Address
		if !addr.IsValid() {
			if addr, err = a.Network.Allocate(); err != nil {
				return nil, err
			}
		}
		if !a.Network.Prefix().Contains(addr.Addr()) {
			return nil, fmt.Errorf("vm: address %v is outside network %s (%v)", addr, a.Network.Name(), a.Network.Prefix())
		}
		v.nics = append(v.nics, NIC{Network: a.Network.Name(), MAC: macFor(addr.Addr()), Address: addr, net: a.Network})
	}
	var seedArgs []string
	switch cfg.Image.Seed {
	case vmimage.SeedCmdline:
		if cfg.Image.Kernel == "" {
			return nil, errors.New("vm: a cmdline-seeded image needs a kernel")
		}
		seedArgs, err = v.cmdlineSeed()
	case vmimage.SeedNoCloud:
		seedArgs, err = v.noCloudSeed()
	default:
		err = fmt.Errorf("vm: image %s: unknown seed kind %q", cfg.Image.Name, cfg.Image.Seed)
	}
	if err != nil {
		return nil, err
	}
	v.timings.Prepare = time.Since(t0)

	if v.sshPort, err = freePort(); err != nil {
		return nil, err
	}
	switch cfg.Transfer {
	case TransferAuto, TransferTCP:
		if v.fwd[DataPort], err = freePort(); err != nil {
			return nil, err
		}
	case TransferSSH:
	default:
		return nil, fmt.Errorf("vm: transfer %q: want ssh or tcp", cfg.Transfer)
	}
	for _, p := range cfg.Forwards {
		if p <= 0 || p > 65535 || p == 22 || p == DataPort {
			return nil, fmt.Errorf("vm: forward of guest port %d: want 1-65535, not 22 or %d (reserved)", p, DataPort)
		}
		if v.fwd[p], err = freePort(); err != nil {
			return nil, err
		}
	}
	args := v.qemuArgs(overlay, seedArgs)
	if err := os.WriteFile(filepath.Join(dir, "qemu.args"), []byte(strings.Join(args, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := v.startQEMU(args); err != nil {
		return nil, err
	}
	log.Info("qemu started", "pid", v.cmd.Process.Pid, "ssh", v.SSHAddr(), "dir", dir)
	return v, nil
}

var hostnamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func createOverlay(ctx context.Context, img *vmimage.Image, overlay string, size int64) error {
	format := img.DiskFormat
	if format == "" {
		format = "qcow2"
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", format, "-b", img.Disk, overlay}
	if size > img.DiskSize {
		args = append(args, strconv.FormatInt(size, 10))
	}
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vm: create overlay: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// managementMAC is the MAC of every VM's user-network NIC; each VM has its own
// user network, so they never meet.
const managementMAC = "52:54:00:12:34:56"

// cmdlineSeed is the kernel-command-line seed read by the image's
// cnstack-seed.service (see images/debian12/rootfs/usr/local/sbin/cnstack-seed).
func (v *VM) cmdlineSeed() ([]string, error) {
	args := []string{
		"panic=-1", // a panic reboots, -no-reboot turns that into QEMU exiting: fail fast
		"systemd.hostname=" + v.name,
		"cnstack.key=" + base64.StdEncoding.EncodeToString([]byte(v.key.AuthorizedKey+"\n")),
	}
	for _, n := range v.nics {
		args = append(args, "cnstack.net="+n.MAC+","+n.Address.String())
	}
	if v.cfg.DiskSize > v.cfg.Image.DiskSize {
		args = append(args, "cnstack.growroot=1")
	}
	for _, a := range v.cfg.KernelArgs {
		if a == "" || strings.ContainsAny(a, " \t\n") {
			return nil, fmt.Errorf("vm: kernel argument %q must be one word", a)
		}
	}
	args = append(args, v.cfg.KernelArgs...)
	// The x86 kernel keeps 2048 bytes of command line; longer is cut silently.
	if n := len(v.cfg.Image.Cmdline) + 1 + len(strings.Join(args, " ")); n >= 2048 {
		return nil, fmt.Errorf("vm: kernel command line is %d bytes; the limit is 2047", n)
	}
	return []string{"-kernel", v.cfg.Image.Kernel, "-initrd", v.cfg.Image.Initrd,
		"-append", v.cfg.Image.Cmdline + " " + strings.Join(args, " ")}, nil
}

// noCloudSeed writes a cloud-init NoCloud ISO with the run's key and a host
// key made here, so the host key is known before the guest boots.
func (v *VM) noCloudSeed() ([]string, error) {
	host, err := NewKeyPair("")
	if err != nil {
		return nil, err
	}
	c := cloudinit.Config{
		InstanceID:     filepath.Base(v.dir),
		Hostname:       v.name,
		User:           v.cfg.Image.User,
		AuthorizedKeys: []string{v.key.AuthorizedKey},
		HostKeyPrivate: string(host.PrivatePEM),
		HostKeyPublic:  host.AuthorizedKey,
		ManagementMAC:  managementMAC,
	}
	for _, n := range v.nics {
		c.Interfaces = append(c.Interfaces, cloudinit.Interface{MAC: n.MAC, Address: n.Address})
	}
	iso := filepath.Join(v.dir, "seed.iso")
	f, err := os.Create(iso)
	if err != nil {
		return nil, err
	}
	if err := cloudinit.WriteISO(f, c); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	v.hostKey = host.Signer.PublicKey()
	args := []string{"-drive", "file=" + qemuEscape(iso) + ",if=virtio,format=raw,readonly=on"}
	if k := v.cfg.Image.Kernel; k != "" {
		args = append(args, "-kernel", k, "-initrd", v.cfg.Image.Initrd, "-append", v.cfg.Image.Cmdline)
	}
	return args, nil
}

// qemuArgs is the full QEMU command line (after the binary).
func (v *VM) qemuArgs(overlay string, seed []string) []string {
	args := []string{"-name", "cnstack-" + v.name}
	args = append(args, v.accel.Accel.qemuArgs()...)
	args = append(args,
		"-smp", strconv.Itoa(v.cfg.CPUs), "-m", strconv.Itoa(v.cfg.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-rtc", "base=utc", "-no-reboot",
		"-chardev", "file,id=serial0,path="+qemuEscape(v.serial),
		"-serial", "chardev:serial0",
		// Ephemeral: cache=unsafe, nothing in the overlay needs to survive.
		"-drive", "file="+qemuEscape(overlay)+",if=virtio,format=qcow2,cache=unsafe,discard=unmap",
	)
	args = append(args, seed...)
	// restrict=on: the guest reaches nothing but what hostfwd brings in, and
	// no IPv6 at all (slirp's router advertisements confuse kubeadm).
	nic := "user,model=virtio-net-pci,mac=" + managementMAC + ",restrict=on,ipv6=off" +
		",hostfwd=tcp:127.0.0.1:" + strconv.Itoa(v.sshPort) + "-:22"
	for _, guest := range sortedKeys(v.fwd) {
		nic += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", v.fwd[guest], guest)
	}
	args = append(args, "-nic", nic)
	for i, n := range v.nics {
		args = append(args, n.net.qemuArgs(fmt.Sprintf("pnet%d", i), n.MAC)...)
	}
	return args
}

// startQEMU starts QEMU in its own process group, with SIGKILL as its
// parent-death signal. The parent-death signal fires when the *thread* that
// started the child exits, so QEMU is started from a goroutine locked to its
// thread that lives exactly as long as QEMU does.
func (v *VM) startQEMU(args []string) error {
	cmd := exec.Command(v.cfg.QEMU, args...)
	qlog, err := os.Create(filepath.Join(v.dir, "qemu.log"))
	if err != nil {
		return err
	}
	cmd.Stdout = qlog
	cmd.Stderr = io.MultiWriter(qlog, v.stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	v.cmd = cmd
	v.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after QEMU.
		if err := cmd.Start(); err != nil {
			started <- err
			close(v.done)
			qlog.Close()
			return
		}
		started <- nil
		v.waitErr = cmd.Wait()
		qlog.Close()
		close(v.done)
	}()
	if err := <-started; err != nil {
		v.cmd = nil
		return fmt.Errorf("vm: start qemu: %w", err)
	}
	v.started = time.Now()
	qstart, err := procStart(cmd.Process.Pid)
	if err != nil {
		// QEMU already died; WaitSSH will report why.
		return nil
	}
	return writeOwner(v.dir, owner{QEMUPID: cmd.Process.Pid, QEMUStart: qstart})
}

// WaitSSH waits until the guest's SSH server answers with the expected host
// key and accepts the run's key, or until ctx or Config.BootTimeout ends, or
// QEMU exits. Errors carry the tail of the serial console.
func (v *VM) WaitSSH(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.BootTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-v.done:
			stderr := v.stderr.String()
			if strings.Contains(stderr, "host forwarding rule") {
				return fmt.Errorf("vm %s: %w: %s", v.name, errHostFwd, oneLine(stderr, 300))
			}
			return fmt.Errorf("vm %s: qemu exited (%v) before SSH was ready: %s\nserial console tail:\n%s",
				v.name, v.waitErr, oneLine(stderr, 600), v.serialTail(30))
		case <-ctx.Done():
			return fmt.Errorf("vm %s: waiting for SSH: %w (last error: %v)\nserial console tail:\n%s",
				v.name, ctx.Err(), lastErr, v.serialTail(30))
		default:
		}
		v.mu.Lock()
		hk := v.hostKey
		v.mu.Unlock()
		if hk == nil {
			if out, err := os.ReadFile(v.serial); err == nil {
				if k, ok := serialHostKey(out); ok {
					hk = k
					v.mu.Lock()
					v.hostKey = k
					v.timings.HostKey = time.Since(v.started)
					v.mu.Unlock()
				}
			}
		}
		if hk != nil {
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			c, err := Dial(dctx, v.SSHAddr(), v.cfg.Image.User, v.key.Signer, hk)
			dcancel()
			if err == nil {
				v.mu.Lock()
				v.client = c
				v.timings.SSH = time.Since(v.started)
				v.mu.Unlock()
				v.log.Info("ssh ready", "after", v.timings.SSH.Round(100*time.Millisecond), "accel", v.accel.Accel)
				return nil
			}
			lastErr = err
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		case <-v.done:
		}
	}
}

// Name is the VM's name (its hostname).
func (v *VM) Name() string { return v.name }

// Dir is the run directory (overlay, serial log, key, QEMU log); Close deletes it.
func (v *VM) Dir() string { return v.dir }

// Accel is the accelerator in use and why it was chosen.
func (v *VM) Accel() AccelChoice { return v.accel }

// PID is QEMU's process ID.
func (v *VM) PID() int {
	if v.cmd == nil || v.cmd.Process == nil {
		return 0
	}
	return v.cmd.Process.Pid
}

// Done is closed when QEMU has exited.
func (v *VM) Done() <-chan struct{} { return v.done }

// SSHAddr is the 127.0.0.1 address forwarded to the guest's port 22.
func (v *VM) SSHAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.sshPort)) }

// HostPort is the 127.0.0.1 port forwarded to a guest port named in
// Config.Forwards.
func (v *VM) HostPort(guestPort int) (int, bool) {
	p, ok := v.fwd[guestPort]
	return p, ok
}

// NICs are the VM's private-network interfaces.
func (v *VM) NICs() []NIC { return append([]NIC(nil), v.nics...) }

// SerialLog is the path of the serial console log.
func (v *VM) SerialLog() string { return v.serial }

// Serial returns the serial console output so far.
func (v *VM) Serial() ([]byte, error) { return os.ReadFile(v.serial) }

func (v *VM) serialTail(lines int) string {
	out, err := os.ReadFile(v.serial)
	if err != nil {
		return "(no serial output: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(strings.ReplaceAll(string(out), "\r", ""), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Timings reports how long each phase took so far.
func (v *VM) Timings() Timings {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.timings
}

// SSHCommand is an ssh(1) command line that reaches the guest while it runs,
// for people debugging a run (it skips host key checks: the key is per boot).
func (v *VM) SSHCommand() string {
	return fmt.Sprintf("ssh -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null %s@127.0.0.1",
		filepath.Join(v.dir, "id_ed25519"), v.sshPort, v.cfg.Image.User)
}

// SSH is the guest's SSH client; nil before WaitSSH succeeded.
func (v *VM) SSH() *Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.client
}

func (v *VM) ssh() (*Client, error) {
	if c := v.SSH(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("vm %s: SSH is not ready (call Start or WaitSSH)", v.name)
}

// Run runs a shell command in the guest and captures its output; see Client.Run.
func (v *VM) Run(ctx context.Context, command string) (Result, error) {
	c, err := v.ssh()
	if err != nil {
		return Result{}, err
	}
	return c.Run(ctx, command)
}

// Exec runs a command with the given streams; see Client.Exec.
func (v *VM) Exec(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := v.ssh()
	if err != nil {
		return err
	}
	return c.Exec(ctx, command, stdin, stdout, stderr)
}

// Upload streams r into the guest as remotePath (absolute) with mode,
// atomically (a temporary file renamed into place), creating parent
// directories, without buffering r. It goes over the raw data port when the
// VM's Transfer resolves to TransferTCP and the path is plain, else over SSH.
func (v *VM) Upload(ctx context.Context, r io.Reader, remotePath string, mode fs.FileMode) error {
	c, err := v.ssh()
	if err != nil {
		return err
	}
	if !path.IsAbs(remotePath) {
		return fmt.Errorf("upload: remote path %q is not absolute", remotePath)
	}
	if v.transferMethod(ctx) == TransferTCP && tcpSafePath.MatchString(remotePath) {
		if err := v.uploadTCP(ctx, c, r, remotePath, mode); err != nil {
			return fmt.Errorf("upload %s over the data port: %w", remotePath, err)
		}
		return nil
	}
	return c.Upload(ctx, r, remotePath, mode)
}

// UploadFile copies a local file to remotePath in the guest, keeping its
// permission bits.
func (v *VM) UploadFile(ctx context.Context, localPath, remotePath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return v.Upload(ctx, f, remotePath, fi.Mode())
}

// Transfer is how Upload moves bytes (resolved on first use; TransferAuto
// until then).
func (v *VM) Transfer() Transfer {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.transfer
}

// Download streams remotePath from the guest into w.
func (v *VM) Download(ctx context.Context, remotePath string, w io.Writer) error {
	c, err := v.ssh()
	if err != nil {
		return err
	}
	return c.Download(ctx, remotePath, w)
}

// Close kills QEMU (its whole process group) and deletes the run directory
// with the overlay. It is idempotent and safe to call concurrently.
func (v *VM) Close() error { return v.close() }

func (v *VM) close() error {
	v.closing.Do(func() {
		start := time.Now()
		var errs []error
		if c := v.SSH(); c != nil {
			_ = c.Close()
		}
		if v.cmd != nil && v.cmd.Process != nil {
			pid := v.cmd.Process.Pid
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-v.done:
			case <-time.After(30 * time.Second):
				errs = append(errs, fmt.Errorf("vm %s: qemu (pid %d) did not exit after SIGKILL", v.name, pid))
			}
		}
		if err := os.RemoveAll(v.dir); err != nil {
			errs = append(errs, fmt.Errorf("vm %s: remove run directory: %w", v.name, err))
		}
		unregister(v)
		v.mu.Lock()
		v.timings.Teardown = time.Since(start)
		v.mu.Unlock()
		v.closeErr = errors.Join(errs...)
		v.log.Debug("vm closed", "took", time.Since(start))
	})
	return v.closeErr
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. QEMU binds it
// a moment later; Start retries with new ports if another process won the race.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("vm: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// qemuEscape doubles commas, QEMU's escape inside option values.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func sortedKeys(m map[int]int) []int { return slices.Sorted(maps.Keys(m)) }
