package tooltest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
)

// TestFlannelVXLANAcrossNodes proves the payload's pod network works across
// nodes before any VM boots: two "nodes" (network namespaces joined by a veth
// pair) each run the payload's flanneld with the vxlan backend against the
// payload's etcd; the payload's flannel CNI plugin, delegating to the bridge
// and host-local plugins, attaches a "pod" namespace on each node; a TCP
// connection from the pod on node A to the pod on node B must go through.
// Everything lives in namespaces the test creates and removes; nothing leaves
// the machine. Needs root, iproute2 and the amd64 payload.
func TestFlannelVXLANAcrossNodes(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux: it creates network namespaces")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs iproute2 (`ip`)")
	}
	platform := "linux/" + runtime.GOARCH
	dir, err := tooltest.PayloadDir(platform)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"etcd", "etcdctl", "flanneld", "flannel", "bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("payload binary %s for %s is not built; run `tools/install.sh --platform %s etcd flannel flannel-cni cni`", b, platform, platform)
		}
	}

	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	id := "cnx" + hex.EncodeToString(suffix)
	nodeA, nodeB, podA, podB := id+"-na", id+"-nb", id+"-pa", id+"-pb"
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, ns := range []string{nodeA, nodeB, podA, podB} {
		run(ipCmd, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(ipCmd, "netns", "del", ns).Run() })
	}
	// The "wire" between the nodes: a veth pair created inside the node
	// namespaces, so nothing is left in the host's namespace on failure.
	run(ipCmd, "-n", nodeA, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", nodeB)
	for i, ns := range []string{nodeA, nodeB} {
		run(ipCmd, "-n", ns, "addr", "add", fmt.Sprintf("10.199.0.%d/24", i+1), "dev", "eth1")
		run(ipCmd, "-n", ns, "link", "set", "eth1", "up")
		run(ipCmd, "-n", ns, "link", "set", "lo", "up")
		// What kubeadm's preflight demands of a node: the node routes pod traffic.
		run(ipCmd, "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	}

	// daemon starts a long-running payload binary inside a namespace.
	daemon := func(ns, name string, args ...string) {
		t.Helper()
		logPath := filepath.Join(tmp, ns+"-"+name+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ipCmd, append([]string{"netns", "exec", ns, filepath.Join(dir, name)}, args...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logFile.Close()
			if t.Failed() {
				log, _ := os.ReadFile(logPath)
				t.Logf("--- %s in %s:\n%s", name, ns, tail(log, 40))
			}
		})
	}

	etcdURL := "http://10.199.0.1:2379"
	daemon(nodeA, "etcd", "--name", "n", "--data-dir", filepath.Join(tmp, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "n=http://127.0.0.1:2380")
	const netConfig = `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`
	waitFor(t, ctx, "etcd to take flannel's network config", func() error {
		return exec.CommandContext(ctx, ipCmd, "netns", "exec", nodeA, filepath.Join(dir, "etcdctl"),
			"--endpoints", etcdURL, "--dial-timeout", "2s", "put", "/coreos.com/network/config", netConfig).Run()
	})

	subnetFile := map[string]string{}
	for _, ns := range []string{nodeA, nodeB} {
		subnetFile[ns] = filepath.Join(tmp, ns, "subnet.env")
		daemon(ns, "flanneld", "--etcd-endpoints", etcdURL, "--iface", "eth1",
			"--subnet-file", subnetFile[ns], "--iptables-forward-rules=false")
	}
	for _, ns := range []string{nodeA, nodeB} {
		waitFor(t, ctx, "flanneld in "+ns+" to write "+subnetFile[ns], func() error {
			_, err := os.Stat(subnetFile[ns])
			return err
		})
		if out := run(ipCmd, "-n", ns, "-d", "link", "show", "flannel.1"); !strings.Contains(out, "vxlan id 1") {
			t.Fatalf("flannel.1 in %s is not a VXLAN device:\n%s", ns, out)
		}
	}

	// cni runs the flannel plugin as the kubelet's container runtime would.
	cni := func(ctx context.Context, command, node, pod string) (string, error) {
		conf := map[string]any{
			"cniVersion": "0.3.1",
			"name":       id,
			"type":       "flannel",
			"subnetFile": subnetFile[node],
			"dataDir":    filepath.Join(tmp, node, "flannel"),
			"ipam":       map[string]any{"type": "host-local", "dataDir": filepath.Join(tmp, node, "ipam")},
			// No masquerading: pod-to-pod traffic needs none, and it would need the
			// iptables binary (on a real node the host has it; this test does not).
			"delegate": map[string]any{"isDefaultGateway": true, "hairpinMode": true, "ipMasq": false},
		}
		stdin, _ := json.Marshal(conf)
		cmd := exec.CommandContext(ctx, ipCmd, "netns", "exec", node, filepath.Join(dir, "flannel"))
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + pod,
			"CNI_NETNS=/run/netns/" + pod, "CNI_IFNAME=eth0", "CNI_PATH=" + dir}
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("CNI %s for %s on %s: %v\n%s", command, pod, node, err, out)
		}
		return string(out), nil
	}
	podIP := map[string]string{}
	for node, pod := range map[string]string{nodeA: podA, nodeB: podB} {
		var result struct {
			IPs []struct{ Address string } `json:"ips"`
		}
		out, err := cni(ctx, "ADD", node, pod)
		if err != nil {
			t.Fatal(err)
		}
		// DEL runs before the daemons and namespaces go (cleanups run last first).
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cni(ctx, "DEL", node, pod); err != nil {
				t.Error(err)
			}
		})
		if err := json.Unmarshal([]byte(out), &result); err != nil || len(result.IPs) == 0 {
			t.Fatalf("CNI ADD for %s: result %q: %v", pod, out, err)
		}
		ip, _, err := net.ParseCIDR(result.IPs[0].Address)
		if err != nil {
			t.Fatal(err)
		}
		podIP[pod] = ip.String()
	}
	t.Logf("pod A %s on node A, pod B %s on node B", podIP[podA], podIP[podB])
	if a, b := net.ParseIP(podIP[podA]).To4(), net.ParseIP(podIP[podB]).To4(); a[2] == b[2] {
		t.Fatalf("both pods got addresses in one /24 (%s, %s): the nodes did not get their own flannel subnets", podIP[podA], podIP[podB])
	}

	// Node A reaches pod B's subnet only through the VXLAN device flanneld set up.
	if out := run(ipCmd, "-n", nodeA, "route", "get", podIP[podB]); !strings.Contains(out, "dev flannel.1") {
		t.Fatalf("node A routes pod B's address %s not through flannel.1:\n%s", podIP[podB], out)
	}

	// Pod B listens; pod A connects over node A -> VXLAN -> node B.
	var ln net.Listener
	inNetns(t, podB, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(podIP[podB], "0"))
		return err
	})
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "pong "+line)
	}()
	var reply string
	inNetns(t, podA, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping from "+podIP[podA]+"\n"); err != nil {
			return err
		}
		reply, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if want := "pong ping from " + podIP[podA] + "\n"; reply != want {
		t.Fatalf("pod B answered %q, want %q", reply, want)
	}
}

// inNetns runs fn on an OS thread that has entered the named network
// namespace; sockets fn creates belong to that namespace. The thread is never
// returned to the Go scheduler.
func inNetns(t *testing.T, name string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		nr, ok := sysSetns[runtime.GOARCH]
		if !ok {
			errc <- fmt.Errorf("setns: syscall number for %s unknown", runtime.GOARCH)
			return
		}
		if _, _, errno := syscall.RawSyscall(nr, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
			errc <- fmt.Errorf("setns %s: %w", name, errno)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in network namespace %s: %v", name, err)
	}
}

// sysSetns is setns(2)'s number; package syscall does not name it.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268}

func waitFor(t *testing.T, ctx context.Context, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}
