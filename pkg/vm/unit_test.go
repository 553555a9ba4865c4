package vm

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

func marshalKey(k ssh.PublicKey) []byte { return ssh.MarshalAuthorizedKey(k) }

// readNewc parses a newc archive: the reader half the kernel implements.
func readNewc(t *testing.T, data []byte) map[string]struct {
	mode uint32
	body []byte
	rdev [2]uint32
} {
	t.Helper()
	out := map[string]struct {
		mode uint32
		body []byte
		rdev [2]uint32
	}{}
	align := func(n int) int { return (n + 3) &^ 3 }
	off := 0
	for {
		if off+110 > len(data) {
			t.Fatalf("archive ends without trailer at %d", off)
		}
		h := string(data[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(data[off+110 : off+110+int(namesize)-1])
		if data[off+110+int(namesize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		bodyOff := align(off + 110 + int(namesize))
		if name == "TRAILER!!!" {
			if bodyOff%4 != 0 || len(data) != bodyOff {
				t.Fatalf("trailer misaligned or followed by %d bytes", len(data)-bodyOff)
			}
			return out
		}
		out[name] = struct {
			mode uint32
			body []byte
			rdev [2]uint32
		}{mode, data[bodyOff : bodyOff+int(size)], [2]uint32{rmaj, rmin}}
		off = align(bodyOff + int(size))
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("bin", 0o755)
	w.File("bin/hello", 0o755, []byte("odd-sized body"))
	w.Symlink("bin/sh", "hello")
	w.CharDevice("dev/console", 0o600, 5, 1)
	w.File("/empty", 0o644, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	for _, tc := range []struct {
		name string
		mode uint32
		body string
		rdev [2]uint32
	}{
		{"bin", cpioDir | 0o755, "", [2]uint32{}},
		{"bin/hello", cpioFile | 0o755, "odd-sized body", [2]uint32{}},
		{"bin/sh", cpioLink | 0o777, "hello", [2]uint32{}},
		{"dev/console", cpioChar | 0o600, "", [2]uint32{5, 1}},
		{"empty", cpioFile | 0o644, "", [2]uint32{}},
	} {
		e, ok := got[tc.name]
		if !ok {
			t.Errorf("%s missing from archive", tc.name)
			continue
		}
		if e.mode != tc.mode || string(e.body) != tc.body || e.rdev != tc.rdev {
			t.Errorf("%s = mode %o body %q rdev %v; want %o %q %v", tc.name, e.mode, e.body, e.rdev, tc.mode, tc.body, tc.rdev)
		}
	}
}

// TestCPIOAgainstCpioTool checks the archive with GNU cpio where installed.
func TestCPIOAgainstCpioTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed")
	}
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("d", 0o755)
	w.File("d/f", 0o644, []byte("abc"))
	w.Symlink("l", "d/f")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "d d/f l" {
		t.Errorf("cpio -t lists %q", got)
	}
}

func TestSerialHostKey(t *testing.T) {
	const k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPcTGBH2hTmfKFrjzmg384l6+eD6NzrmGoU1krKhONUs"
	const k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEtRjnKiwPGTi1LH5wByfjrWC04h8ePUzX//XHqd7cXB"
	for _, tc := range []struct {
		name, console, want string
	}{
		{"journal prefixes", "[   24.1] cnstack-seed[202]: -----BEGIN SSH HOST KEY KEYS-----\r\n" +
			"[   24.6] cnstack-seed[214]: " + k1 + "\r\n[   24.6] cnstack-seed[202]: -----END SSH HOST KEY KEYS-----\r\n", k1},
		{"cloud-init style with other key types", "-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 AAAAE2VjZHNh x\n" +
			k2 + " root@h\n-----END SSH HOST KEY KEYS-----\n", k2},
		{"last block wins (reboot)", "-----BEGIN SSH HOST KEY KEYS-----\n" + k1 + "\n-----END SSH HOST KEY KEYS-----\n" +
			"-----BEGIN SSH HOST KEY KEYS-----\n" + k2 + "\n-----END SSH HOST KEY KEYS-----\n", k2},
		{"key outside markers ignored", k1 + "\n", ""},
		{"unterminated block still yields key", "-----BEGIN SSH HOST KEY KEYS-----\n" + k1 + "\n", k1},
		{"garbage", "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 !!!\n-----END SSH HOST KEY KEYS-----\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := serialHostKey([]byte(tc.console))
			if tc.want == "" {
				if ok {
					t.Errorf("found a key in %q", tc.console)
				}
				return
			}
			if !ok {
				t.Fatal("no key found")
			}
			if got := strings.TrimSpace(string(marshalKey(k))); got != tc.want {
				t.Errorf("key %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/a b":    `'/a b'`,
		"it's":    `'it'\''s'`,
		"$(boom)": `'$(boom)'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("sh sees %q (%v), want %q", out, err, in)
		}
	}
}

func TestNetworkAllocate(t *testing.T) {
	n, err := NewNetwork("alloc", netip.MustParsePrefix("10.77.0.9/29"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Prefix().String() != "10.77.0.8/29" {
		t.Errorf("prefix not masked: %v", n.Prefix())
	}
	var got []string
	for {
		p, err := n.Allocate()
		if err != nil {
			break
		}
		got = append(got, p.String())
	}
	// .8 network, .9 left as a gateway-like reserve, .15 broadcast.
	want := "10.77.0.10/29 10.77.0.11/29 10.77.0.12/29 10.77.0.13/29 10.77.0.14/29"
	if strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s", got, want)
	}
	for _, bad := range []string{"fd00::/64", "10.0.0.0/30", "10.0.0.0/7"} {
		if _, err := NewNetwork("bad", netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("NewNetwork(%s) accepted", bad)
		}
	}
}

// TestNetworkSwitch plays three QEMU stream peers against the switch: frames
// to an unknown or broadcast MAC are flooded, learned unicast goes to one port.
func TestNetworkSwitch(t *testing.T) {
	n, err := NewNetwork("sw", netip.MustParsePrefix("10.78.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dial := func() net.Conn {
		c, err := net.Dial("unix", n.sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b, c := dial(), dial(), dial()
	waitPorts(t, n, 3)
	mac := func(last byte) []byte { return []byte{0x52, 0x54, 0, 0, 0, last} }
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	send := func(conn net.Conn, dst, src []byte, payload string) {
		frame := append(append(append([]byte{}, dst...), src...), append([]byte{0x08, 0x00}, payload...)...)
		hdr := make([]byte, 4)
		binary.BigEndian.PutUint32(hdr, uint32(len(frame)))
		if _, err := conn.Write(append(hdr, frame...)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(conn net.Conn) (string, bool) {
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return "", false
		}
		frame := make([]byte, binary.BigEndian.Uint32(hdr))
		if _, err := io.ReadFull(conn, frame); err != nil {
			t.Fatal(err)
		}
		return string(frame[14:]), true
	}
	send(a, bcast, mac(1), "hello-all")
	for name, conn := range map[string]net.Conn{"b": b, "c": c} {
		if got, ok := recv(conn); !ok || got != "hello-all" {
			t.Errorf("%s: broadcast not flooded: %q %v", name, got, ok)
		}
	}
	if got, ok := recv(a); ok {
		t.Errorf("sender got its own broadcast back: %q", got)
	}
	send(b, mac(1), mac(2), "to-a") // a's MAC was learned from its broadcast
	if got, ok := recv(a); !ok || got != "to-a" {
		t.Errorf("a: unicast not delivered: %q %v", got, ok)
	}
	if got, ok := recv(c); ok {
		t.Errorf("c received unicast meant for a: %q", got)
	}
}

func waitPorts(t *testing.T, n *Network, want int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		n.mu.Lock()
		got := len(n.ports)
		n.mu.Unlock()
		if got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("switch has not accepted %d ports", want)
}

func TestMACForIsUnicastAndLocal(t *testing.T) {
	m, err := net.ParseMAC(macFor(netip.MustParseAddr("10.77.0.2")))
	if err != nil {
		t.Fatal(err)
	}
	if m[0]&1 != 0 || m[0]&2 == 0 {
		t.Errorf("%v: want a locally administered unicast MAC", m)
	}
	if m.String() != "52:54:0a:4d:00:02" {
		t.Errorf("macFor = %v", m)
	}
}

// TestReapKillsOrphanAndRemovesDir fakes a run left by a dead owner whose
// "QEMU" (a sleep in its own process group) still runs.
func TestReapKillsOrphanAndRemovesDir(t *testing.T) {
	root := t.TempDir()
	// A dead owner: a process that has exited (and been reaped).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command("sleep", "300")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = orphan.Wait(); close(exited) }()
	defer orphan.Process.Kill()
	qstart, err := procStart(orphan.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "stale-1")
	liveDir := filepath.Join(root, "live-1")
	for _, d := range []string{stale, liveDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "overlay.qcow2"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := owner{OwnerPID: dead.Process.Pid, OwnerStart: 1, QEMUPID: orphan.Process.Pid, QEMUStart: qstart}
	data := []byte(`{"ownerPid":` + strconv.Itoa(o.OwnerPID) + `,"ownerStart":1,"qemuPid":` +
		strconv.Itoa(o.QEMUPID) + `,"qemuStart":` + strconv.FormatUint(qstart, 10) + `}`)
	if err := os.WriteFile(filepath.Join(stale, ownerFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeOwner(liveDir, owner{}); err != nil { // owned by this live process
		t.Fatal(err)
	}
	rep, err := Reap(root)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("orphan QEMU stand-in still runs after Reap")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale run dir not removed: %v", err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("live run dir was touched: %v", err)
	}
	if len(rep.Killed) != 1 || rep.Killed[0] != orphan.Process.Pid {
		t.Errorf("report killed %v, want [%d]", rep.Killed, orphan.Process.Pid)
	}
}

func TestProcStartIdentifiesProcess(t *testing.T) {
	s, err := procStart(os.Getpid())
	if err != nil || s == 0 {
		t.Fatalf("procStart(self) = %d, %v", s, err)
	}
	if !alive(os.Getpid(), s) {
		t.Error("self not alive")
	}
	if alive(os.Getpid(), s+1) {
		t.Error("a different start time must mean a different process")
	}
}

func TestProbeCacheRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), probeCacheFile)
	want := AccelChoice{Accel: AccelTCG, Reason: "kvm probe failed: x"}
	if err := writeProbeCache(p, "fp1", want); err != nil {
		t.Fatal(err)
	}
	if got, ok := readProbeCache(p, "fp1"); !ok || got.Accel != want.Accel || got.Reason != want.Reason {
		t.Errorf("read back %+v %v", got, ok)
	}
	if _, ok := readProbeCache(p, "fp2"); ok {
		t.Error("cache answered for a different machine fingerprint")
	}
}

func TestResolveAccelEnv(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    Accel
		wantErr bool
	}{
		{"tcg", AccelTCG, false},
		{"KVM", AccelKVM, false},
		{"fast", "", true},
	} {
		t.Setenv(AccelEnv, tc.env)
		got, err := resolveAccel(t.Context(), "", ProbeOptions{})
		if (err != nil) != tc.wantErr || got.Accel != tc.want {
			t.Errorf("%s=%s: got %+v, %v", AccelEnv, tc.env, got, err)
		}
		if err == nil && !strings.Contains(got.Reason, AccelEnv) {
			t.Errorf("reason %q does not say it was forced", got.Reason)
		}
	}
}

// TestQEMUArgs checks the command line of a VM with a forward and a private
// network, without starting it.
func TestQEMUArgs(t *testing.T) {
	n, err := NewNetwork("priv", netip.MustParsePrefix("10.77.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	img := &vmimage.Image{Name: "debian12", Kernel: "/img/vmlinuz", Initrd: "/img/initrd.img", Disk: "/img/root.qcow2",
		Cmdline: "root=/dev/vda rw console=ttyS0", Seed: vmimage.SeedCmdline, User: "root", DiskSize: 8 << 30}
	key, err := NewKeyPair("t")
	if err != nil {
		t.Fatal(err)
	}
	v := &VM{
		cfg:  Config{Image: img, CPUs: 2, MemoryMiB: 1024, Networks: []Attachment{{Network: n}}, DiskSize: 10 << 30},
		name: "node1", serial: "/run/x,y/serial.log", sshPort: 40022, fwd: map[int]int{6443: 40443, 5000: 40500},
		accel: AccelChoice{Accel: AccelTCG}, key: key,
		nics: []NIC{{Network: "priv", MAC: "52:54:0a:4d:00:02", Address: netip.MustParsePrefix("10.77.0.2/24"), net: n}},
	}
	seed, err := v.cmdlineSeed()
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(v.qemuArgs("/run/overlay.qcow2", seed), " ")
	for _, want := range []string{
		"-accel tcg -cpu max", "-smp 2 -m 1024", "-nodefaults", "-no-reboot",
		"-chardev file,id=serial0,path=/run/x,,y/serial.log -serial chardev:serial0",
		"-drive file=/run/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe",
		"-kernel /img/vmlinuz -initrd /img/initrd.img",
		"-append root=/dev/vda rw console=ttyS0 panic=-1 systemd.hostname=node1 cnstack.key=",
		"cnstack.net=52:54:0a:4d:00:02,10.77.0.2/24 cnstack.growroot=1",
		"-nic user,model=virtio-net-pci,mac=52:54:00:12:34:56,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:40022-:22," +
			"hostfwd=tcp:127.0.0.1:40500-:5000,hostfwd=tcp:127.0.0.1:40443-:6443",
		"-netdev stream,id=pnet0,server=off,addr.type=unix,addr.path=" + n.sock,
		"-device virtio-net-pci,netdev=pnet0,mac=52:54:0a:4d:00:02",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "hostfwd=tcp::") || strings.Contains(args, "0.0.0.0") {
		t.Errorf("a forward is not bound to loopback:\n%s", args)
	}

	v.cfg.KernelArgs = []string{strings.Repeat("x", 2100)}
	if _, err := v.cmdlineSeed(); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("an over-long kernel command line was accepted: %v", err)
	}
	v.cfg.KernelArgs = []string{"two words"}
	if _, err := v.cmdlineSeed(); err == nil {
		t.Error("a kernel argument with a space was accepted")
	}
}

// TestNoCloudSeedArgs prepares the seed of a cloud image (disk boot) without
// booting it: the ISO must carry the run's key and a host key that the driver
// then pins, and QEMU must boot the disk, not a kernel.
func TestNoCloudSeedArgs(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "cloud.qcow2")
	if err := os.WriteFile(disk, []byte("not really a disk"), 0o444); err != nil {
		t.Fatal(err)
	}
	img, err := vmimage.CloudImage(disk, "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewKeyPair("t")
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNetwork("p", netip.MustParsePrefix("10.77.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	v := &VM{cfg: Config{Image: img, CPUs: 1, MemoryMiB: 512}, name: "anolis1", dir: dir, serial: filepath.Join(dir, "serial.log"),
		sshPort: 40022, fwd: map[int]int{}, accel: AccelChoice{Accel: AccelTCG}, key: key,
		nics: []NIC{{Network: "p", MAC: "52:54:0a:4d:00:05", Address: netip.MustParsePrefix("10.77.0.5/24"), net: n}}}
	seed, err := v.noCloudSeed()
	if err != nil {
		t.Fatal(err)
	}
	if v.hostKey == nil {
		t.Fatal("no host key pinned before boot")
	}
	args := strings.Join(v.qemuArgs(filepath.Join(dir, "overlay.qcow2"), seed), " ")
	if strings.Contains(args, "-kernel") {
		t.Errorf("a cloud image must boot from its disk:\n%s", args)
	}
	if !strings.Contains(args, "file="+filepath.Join(dir, "seed.iso")+",if=virtio,format=raw,readonly=on") {
		t.Errorf("seed ISO not attached read-only:\n%s", args)
	}
	iso, err := os.ReadFile(filepath.Join(dir, "seed.iso"))
	if err != nil {
		t.Fatal(err)
	}
	// Key bodies (YAML may fold the line between type and body).
	for _, want := range []string{strings.Fields(key.AuthorizedKey)[1], "local-hostname: anolis1", "10.77.0.5/24", "ed25519_private",
		strings.Fields(string(marshalKey(v.hostKey)))[1]} {
		if !bytes.Contains(iso, []byte(want)) {
			t.Errorf("seed ISO lacks %q", want)
		}
	}
}
