package kubebase

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func layerDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "Kubefiles", "kubernetes")
}

// stubs are the system commands the scripts call; each records its
// arguments. getenforce answers Enforcing on RHEL; systemctl says firewalld
// is active there.
const stubCommands = "systemctl modprobe sysctl swapoff setenforce getenforce"

type host struct {
	family, osRelease string
}

var families = []host{
	{"debian", "ID=debian\nVERSION_ID=\"12\"\n"},
	{"rhel", "ID=\"anolis\"\nID_LIKE=\"rhel fedora centos\"\nVERSION_ID=\"8.8\"\n"},
}

// TestScriptsOnHostFamilies runs containerd.sh, init-registry.sh,
// init-kube.sh and uninstall-containerd.sh as sealer v0.11 would, on a
// stand-in Debian and an OpenAnolis host, and checks what they leave.
func TestScriptsOnHostFamilies(t *testing.T) {
	for _, h := range families {
		t.Run(h.family, func(t *testing.T) {
			root, rootfs, calls, env := setup(t, h)
			run := func(dir string, args ...string) string {
				t.Helper()
				cmd := exec.Command("bash", args...)
				cmd.Dir, cmd.Env = dir, env
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("bash %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			read := func(p string) string {
				t.Helper()
				b, err := os.ReadFile(filepath.Join(root, p))
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				return string(b)
			}

			out := run(rootfs, filepath.Join(rootfs, "scripts", "containerd.sh"))
			if !strings.Contains(out, "containerd v2.4.2 is running; sandbox image sea.hub:5000/pause:3.10.1") {
				t.Errorf("containerd.sh said:\n%s", out)
			}
			cfg := read("etc/containerd/config.toml")
			for _, want := range []string{"version = 3", `sandbox = "sea.hub:5000/pause:3.10.1"`, `config_path = "/etc/containerd/certs.d"`, "SystemdCgroup = true", `bin_dirs = ["/opt/cni/bin"]`} {
				if !strings.Contains(cfg, want) {
					t.Errorf("config.toml lacks %q:\n%s", want, cfg)
				}
			}
			if hosts := read("etc/containerd/certs.d/_default/hosts.toml"); !strings.Contains(hosts, `server = "https://sea.hub:5000"`) || !strings.Contains(hosts, "/etc/containerd/certs.d/sea.hub:5000/sea.hub.crt") {
				t.Errorf("_default/hosts.toml does not send every registry to sea.hub:5000 with its CA:\n%s", hosts)
			}
			if s := read("etc/sealerio/cri/socket-path"); strings.TrimSpace(s) != "unix:///run/containerd/containerd.sock" {
				t.Errorf("socket-path = %q", s)
			}
			for _, b := range []string{"usr/local/bin/containerd", "usr/local/bin/runc", "usr/local/bin/crictl", "opt/cni/bin/bridge", "opt/cni/bin/flannel"} {
				if fi, err := os.Stat(filepath.Join(root, b)); err != nil || fi.Mode()&0o111 == 0 {
					t.Errorf("%s not installed executable: %v", b, err)
				}
			}
			if !strings.Contains(read("etc/systemd/system/containerd.service"), "ExecStart=/usr/local/bin/containerd") {
				t.Error("containerd.service does not start /usr/local/bin/containerd")
			}

			// With workers, sealer runs `seautil ipvs` for the registry's VIP
			// after containerd.sh and before init-kube.sh (a 2-node boot failed
			// with "seautil: command not found" on the worker).
			if _, err := os.Stat(filepath.Join(root, "usr/bin/seautil")); err != nil {
				t.Errorf("containerd.sh did not put seautil on PATH: %v", err)
			}

			// init-registry.sh waits for the port; a listener stands in.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
			out = run(filepath.Join(rootfs, "scripts"), "init-registry.sh", port, filepath.Join(rootfs, "registry"), "sea.hub")
			if !strings.Contains(out, "registry serving "+filepath.Join(rootfs, "registry")+" on https://sea.hub:"+port) {
				t.Errorf("init-registry.sh said:\n%s", out)
			}
			rc := read("etc/sealer-registry/config.yml")
			for _, want := range []string{"rootdirectory: " + filepath.Join(rootfs, "registry"), "addr: :" + port, "certificate: " + filepath.Join(rootfs, "certs", "sea.hub.crt")} {
				if !strings.Contains(rc, want) {
					t.Errorf("registry config lacks %q:\n%s", want, rc)
				}
			}

			// On master0 sealer has written kubeadm.yaml with the removed flag.
			if err := os.MkdirAll(filepath.Join(root, "etc", "kubernetes"), 0o755); err != nil {
				t.Fatal(err)
			}
			kubeadmYAML := "controllerManager:\n  extraArgs:\n    cluster-signing-duration: 876000h\n    experimental-cluster-signing-duration: 876000h\n"
			if err := os.WriteFile(filepath.Join(root, "etc", "kubernetes", "kubeadm.yaml"), []byte(kubeadmYAML), 0o644); err != nil {
				t.Fatal(err)
			}
			out = run(filepath.Join(rootfs, "scripts"), "init-kube.sh")
			if !strings.Contains(out, "kubeadm v1.34.4, kubelet enabled") {
				t.Errorf("init-kube.sh said:\n%s", out)
			}
			if k := read("etc/kubernetes/kubeadm.yaml"); strings.Contains(k, "experimental-cluster-signing-duration") || !strings.Contains(k, "cluster-signing-duration: 876000h") {
				t.Errorf("kubeadm.yaml after init-kube.sh:\n%s", k)
			}
			// helm too: sealer runs `helm install` on master0 for chart apps
			// (the sample stack's mesh failed with "helm: command not found").
			for _, b := range []string{"usr/bin/kubeadm", "usr/bin/kubelet", "usr/bin/kubectl", "usr/bin/seautil", "usr/bin/helm"} {
				if _, err := os.Stat(filepath.Join(root, b)); err != nil {
					t.Errorf("%s not installed: %v", b, err)
				}
			}
			dropIn := read("etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
			if !strings.Contains(dropIn, "EnvironmentFile=-/etc/sysconfig/kubelet") || !strings.Contains(dropIn, "EnvironmentFile=-/etc/default/kubelet") {
				t.Errorf("kubelet drop-in reads neither family's extra-args file:\n%s", dropIn)
			}
			if f := read("etc/fstab"); !strings.Contains(f, "#cnstack# /swapfile none swap") {
				t.Errorf("swap not commented out in fstab:\n%s", f)
			}
			if s := read("etc/sysctl.d/99-kubernetes.conf"); !strings.Contains(s, "net.bridge.bridge-nf-call-iptables = 1") || !strings.Contains(s, "net.ipv4.ip_forward = 1") {
				t.Errorf("sysctls:\n%s", s)
			}

			log := read(calls)
			for _, want := range []string{"systemctl enable containerd", "systemctl restart containerd", "systemctl enable sealer-registry", "systemctl enable kubelet", "modprobe br_netfilter", "swapoff -a"} {
				if !strings.Contains(log, want) {
					t.Errorf("no %q among the commands run:\n%s", want, log)
				}
			}
			rhel := h.family == "rhel"
			if got := strings.Contains(log, "setenforce 0"); got != rhel {
				t.Errorf("setenforce 0 run: %v, want %v (family %s)", got, rhel, h.family)
			}
			if got := strings.Contains(log, "systemctl disable --now firewalld"); got != rhel {
				t.Errorf("firewalld stopped: %v, want %v (family %s)", got, rhel, h.family)
			}
			if rhel && !strings.Contains(read("etc/selinux/config"), "SELINUX=permissive") {
				t.Error("SELinux config not set to permissive")
			}

			run(rootfs, filepath.Join(rootfs, "scripts", "uninstall-containerd.sh"))
			for _, gone := range []string{"usr/local/bin/containerd", "etc/containerd", "etc/sealerio/cri/socket-path", "etc/systemd/system/containerd.service", "etc/systemd/system/sealer-registry.service", "opt/cni"} {
				if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
					t.Errorf("%s left after uninstall-containerd.sh", gone)
				}
			}
		})
	}
}

// setup makes a stand-in host root, a copy of the layer's rootfs with stub
// payload binaries (as sealer lays it out), and stub system commands.
func setup(t *testing.T, h host) (root, rootfs, calls string, env []string) {
	t.Helper()
	dir := t.TempDir()
	root, rootfs = filepath.Join(dir, "host"), filepath.Join(dir, "rootfs")
	calls = "calls.log"
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "etc", "os-release"), h.osRelease, 0o644)
	write(filepath.Join(root, "etc", "fstab"), "/dev/vda / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n", 0o644)
	if h.family == "rhel" {
		write(filepath.Join(root, "etc", "selinux", "config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n", 0o644)
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(layerDir(t), "rootfs"), rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v\n%s", err, out)
	}
	for _, b := range []string{"kubelet", "kubectl", "seautil", "registry", "helm"} {
		write(filepath.Join(rootfs, "bin", b), "#!/bin/sh\nexit 0\n", 0o755)
	}
	write(filepath.Join(rootfs, "bin", "kubeadm"), "#!/bin/sh\necho v1.34.4\n", 0o755)
	for _, b := range []string{"containerd-shim-runc-v2", "ctr", "runc", "crictl"} {
		write(filepath.Join(rootfs, "cri", "bin", b), "#!/bin/sh\nexit 0\n", 0o755)
	}
	write(filepath.Join(rootfs, "cri", "bin", "containerd"), "#!/bin/sh\necho containerd github.com/containerd/containerd/v2 v2.4.2 abc\n", 0o755)
	for _, b := range []string{"bridge", "host-local", "loopback", "portmap", "flannel"} {
		write(filepath.Join(rootfs, "cri", "cni", b), "#!/bin/sh\nexit 0\n", 0o755)
	}
	write(filepath.Join(rootfs, "registry", "docker", "registry", "v2", ".keep"), "", 0o644)
	write(filepath.Join(rootfs, "certs", "sea.hub.crt"), "cert", 0o644)
	write(filepath.Join(rootfs, "certs", "sea.hub.key"), "key", 0o600)

	stubs := filepath.Join(dir, "stubs")
	log := filepath.Join(root, calls)
	for _, c := range strings.Fields(stubCommands) {
		body := "#!/bin/sh\necho \"" + c + " $*\" >> " + log + "\n"
		switch {
		case c == "getenforce" && h.family == "rhel":
			body += "echo Enforcing\n"
		case c == "getenforce":
			body += "echo Disabled\n"
		case c == "systemctl" && h.family == "rhel":
			body += "case \"$*\" in *is-active*firewalld*) exit 0;; esac\n"
		case c == "systemctl":
			body += "case \"$*\" in *is-active*) exit 3;; esac\n"
		}
		write(filepath.Join(stubs, c), body+"exit 0\n", 0o755)
	}
	write(log, "", 0o644)
	env = append(os.Environ(), "CNSTACK_TEST_ROOT="+root, "PATH="+stubs+":"+os.Getenv("PATH"), "RegistryURL=sea.hub:5000")
	return root, rootfs, calls, env
}
