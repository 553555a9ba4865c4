package tooltest_test

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
)

// payloadBin is one binary of the cluster-image payload that tools/install.sh
// builds, and how to ask it for its version.
type payloadBin struct {
	name   string   // file name in the payload directory
	tool   string   // install.sh tool that builds it
	module string   // tools/<module> holds the go.mod that pins it
	pin    string   // module whose pinned version the binary must carry ("" = our own code)
	args   []string // prints the version
	// want is the text the version output must contain, given the pinned version.
	want func(v string) string
}

func bare(v string) string { return strings.TrimPrefix(v, "v") }

func kube(prefix string) func(string) string { return func(v string) string { return prefix + v } }

var payloadBins = []payloadBin{
	{"kubeadm", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"version", "-o", "short"}, kube("")},
	{"kubelet", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"--version"}, kube("Kubernetes ")},
	{"kubectl", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"version", "--client"}, kube("Client Version: ")},
	{"kube-apiserver", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"--version"}, kube("Kubernetes ")},
	{"kube-controller-manager", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"--version"}, kube("Kubernetes ")},
	{"kube-scheduler", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"--version"}, kube("Kubernetes ")},
	{"kube-proxy", "kubernetes", "kubernetes", "k8s.io/kubernetes", []string{"--version"}, kube("Kubernetes ")},
	{"etcd", "etcd", "etcd", "go.etcd.io/etcd/server/v3", []string{"--version"}, func(v string) string { return "etcd Version: " + bare(v) }},
	{"etcdctl", "etcd", "etcd", "go.etcd.io/etcd/etcdctl/v3", []string{"version"}, func(v string) string { return "etcdctl version: " + bare(v) }},
	{"etcdutl", "etcd", "etcd", "go.etcd.io/etcd/etcdutl/v3", []string{"version"}, func(v string) string { return "etcdutl version: " + bare(v) }},
	{"coredns", "coredns", "coredns", "github.com/coredns/coredns", []string{"-version"}, func(v string) string { return "CoreDNS-" + bare(v) }},
	{"containerd", "containerd", "containerd", "github.com/containerd/containerd/v2", []string{"--version"}, kube("containerd github.com/containerd/containerd/v2 ")},
	{"containerd-shim-runc-v2", "containerd", "containerd", "github.com/containerd/containerd/v2", []string{"-v"}, kube("Version:  ")},
	{"ctr", "containerd", "containerd", "github.com/containerd/containerd/v2", []string{"--version"}, kube("ctr github.com/containerd/containerd/v2 ")},
	{"runc", "runc", "runc", "github.com/opencontainers/runc", []string{"--version"}, func(v string) string { return "runc version " + bare(v) }},
	{"crictl", "crictl", "crictl", "sigs.k8s.io/cri-tools", []string{"--version"}, kube("crictl version ")},
	{"bridge", "cni", "cni", "github.com/containernetworking/plugins", nil, kube("CNI bridge plugin ")},
	{"host-local", "cni", "cni", "github.com/containernetworking/plugins", nil, kube("CNI host-local plugin ")},
	{"loopback", "cni", "cni", "github.com/containernetworking/plugins", nil, kube("CNI loopback plugin ")},
	{"portmap", "cni", "cni", "github.com/containernetworking/plugins", nil, kube("CNI portmap plugin ")},
	{"flannel", "flannel-cni", "flannel-cni", "github.com/containernetworking/plugins", nil, kube("CNI flannel plugin ")},
	{"flanneld", "flannel", "flannel", "github.com/flannel-io/flannel", []string{"--version"}, kube("")},
	{"seautil", "seautil", "seautil", "github.com/sealerio/sealer", []string{"version"}, kube("")},
	{"lvscare", "lvscare", "lvscare", "github.com/labring/lvscare", []string{"version"}, kube("lvscare version :    ")},
	{"registry", "registry", "registry", "github.com/distribution/distribution/v3", []string{"--version"}, kube("")},
	{"pause", "pause", "pause", "", []string{"-v"}, func(string) string { return "cnstack-pause " }},
	// The offline edition's components (Kubefiles/offline); kruise prints no version, so its
	// usage is asked for (pflag exits 2 after it) and the build info carries the pin.
	{"kruise-manager", "kruise", "kruise", "github.com/openkruise/kruise", []string{"--help"}, func(string) string { return "--enable-leader-election" }},
	{"kruise-daemon", "kruise", "kruise", "github.com/openkruise/kruise", []string{"--help"}, func(string) string { return "--socket-file" }},
	{"node_exporter", "node-exporter", "node-exporter", "github.com/prometheus/node_exporter", []string{"--version"}, func(v string) string { return "node_exporter, version " + bare(v) }},
	{"kube-state-metrics", "kube-state-metrics", "kube-state-metrics", "k8s.io/kube-state-metrics/v2", []string{"version"}, kube("kube-state-metrics, version ")},
}

// localReplaceAllowed lists the modules a payload binary may take from a
// directory in this repository instead of the module proxy.
var localReplaceAllowed = map[string]bool{
	// tools/flannel/stubvpc: the proxy refuses the Tencent Cloud SDK (403).
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc": true,
}

// TestPayload checks the binaries `tools/install.sh payload` built: each one
// is a static ELF executable for its platform, built from the pinned module
// version with no upstream source copied in (no directory replacements), and,
// for the platform this test runs on, prints the pinned version when asked.
// It skips what is not built: building the payload takes tens of minutes cold.
func TestPayload(t *testing.T) {
	built := false
	for _, platform := range tooltest.PayloadPlatforms {
		dir, err := tooltest.PayloadDir(platform)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); err == nil {
			built = true
		}
	}
	if !built {
		t.Skip("the cluster-image payload is not built; run `tools/install.sh payload` (about an hour cold on 2 cores, instant once built)")
	}
	for _, platform := range tooltest.PayloadPlatforms {
		dir, err := tooltest.PayloadDir(platform)
		if err != nil {
			t.Fatal(err)
		}
		goarch := strings.TrimPrefix(platform, "linux/")
		native := runtime.GOOS == "linux" && runtime.GOARCH == goarch
		for _, b := range payloadBins {
			t.Run(platform+"/"+b.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(dir, b.name)
				if _, err := os.Stat(path); err != nil {
					t.Skipf("%s for %s is not built; run `tools/install.sh --platform %s %s`", b.name, platform, platform, b.tool)
				}
				want := ""
				if b.pin != "" {
					v, err := tooltest.PinnedVersion(b.module, b.pin)
					if err != nil {
						t.Fatal(err)
					}
					want = v
					checkBuildInfo(t, path, goarch, b.pin, v)
				} else {
					checkBuildInfo(t, path, goarch, "", "")
				}
				checkStaticELF(t, path, goarch)
				if !native {
					return
				}
				out := versionOutput(t, path, b.args)
				if w := b.want(want); !strings.Contains(out, w) {
					t.Errorf("%s %s printed %q, want it to contain %q", b.name, strings.Join(b.args, " "), out, w)
				}
				if b.name == "runc" && !strings.Contains(out, "libseccomp: 2.") {
					t.Errorf("runc --version = %q: built without libseccomp", out)
				}
			})
		}
	}
	if dir, err := tooltest.PayloadDir(runtime.GOOS + "/" + runtime.GOARCH); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "pause")); err == nil {
			t.Run("pause-stops-on-SIGTERM", func(t *testing.T) { checkPauseStops(t, filepath.Join(dir, "pause")) })
		}
	}
}

// checkBuildInfo reads the Go build information embedded in the binary: it
// was built for goarch, module pin (if any) is there at version want, and
// every replaced dependency came from the module proxy, not a directory.
func checkBuildInfo(t *testing.T, path, goarch, pin, want string) {
	t.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: no Go build info: %v", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["GOARCH"] != goarch {
		t.Errorf("%s: built for GOARCH=%s, want %s", path, settings["GOARCH"], goarch)
	}
	// runc without libseccomp starts containers with no syscall filter at all;
	// this also covers the cross-compiled arm64 build, which cannot run here.
	if filepath.Base(path) == "runc" && (settings["CGO_ENABLED"] != "1" || !strings.Contains(" "+strings.ReplaceAll(settings["-tags"], ",", " ")+" ", " seccomp ")) {
		t.Errorf("%s: built with CGO_ENABLED=%s -tags %q, want cgo and the seccomp tag", path, settings["CGO_ENABLED"], settings["-tags"])
	}
	found := pin == ""
	// The module holding the main package is Main (a dependency of the tools/
	// wrapper module, built with the wrapper's graph); the rest are Deps.
	for _, d := range append([]*debug.Module{&info.Main}, info.Deps...) {
		version := d.Version
		if d.Replace != nil {
			if d.Replace.Version == "" && !localReplaceAllowed[d.Path] {
				t.Errorf("%s: %s is replaced by the directory %s: payload modules must come from the module proxy", path, d.Path, d.Replace.Path)
			}
			version = d.Replace.Version
		}
		if d.Path == pin {
			found = true
			if version != want {
				t.Errorf("%s: built from %s %s, want the pinned %s", path, pin, version, want)
			}
		}
	}
	if !found {
		t.Errorf("%s: %s is not among the modules it was built from", path, pin)
	}
}

// checkStaticELF checks the ELF header's machine and that there is no program
// interpreter: the cluster image's container images have no libc to load.
func checkStaticELF(t *testing.T, path, goarch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if f.Machine != wantMachine || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF %v %v %v, want an %v ELFCLASS64 executable", path, f.Class, f.Machine, f.Type, wantMachine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked (has a program interpreter); payload binaries must be static", path)
		}
	}
}

// versionOutput runs the binary with args and returns its combined output.
// A CNI plugin (nil args) prints its version when CNI_COMMAND is unset.
func versionOutput(t *testing.T, path string, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir()}
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	// CNI plugins without arguments and pflag's --help (kruise) print and exit non-zero.
	if err != nil && !((args == nil || slices.Equal(args, []string{"--help"})) && errors.As(err, &exit)) {
		t.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkPauseStops starts the pause binary and checks that it stays up until
// SIGTERM and then exits 0, as the kubelet expects of a sandbox.
func checkPauseStops(t *testing.T, path string) {
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Signal only once pause handles SIGTERM: sent earlier (a loaded machine
	// starts it slowly), the default action kills it, and the test flaked.
	deadline := time.Now().Add(10 * time.Second)
	for !catchesSIGTERM(cmd.Process.Pid) {
		select {
		case err := <-done:
			t.Fatalf("pause exited before any signal: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("pause did not install a SIGTERM handler within 10s")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pause after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("pause still running 10s after SIGTERM")
	}
}

// catchesSIGTERM reports whether process pid has a handler for SIGTERM (the
// SigCgt mask of /proc/PID/status; bit 14 is signal 15).
func catchesSIGTERM(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}

func TestPayloadDir(t *testing.T) {
	t.Setenv(tooltest.EnvToolsDir, "/x/tools")
	got, err := tooltest.PayloadDir("linux/arm64")
	if err != nil || got != "/x/tools/payload/linux-arm64" {
		t.Errorf("PayloadDir = %q, %v; want /x/tools/payload/linux-arm64", got, err)
	}
	t.Setenv(tooltest.EnvToolsDir, "")
	t.Setenv("HOME", "/home/u")
	got, err = tooltest.PayloadDir("linux/amd64")
	if err != nil || got != "/home/u/.cache/cnstack/tools/payload/linux-amd64" {
		t.Errorf("PayloadDir default = %q, %v", got, err)
	}
	for _, bad := range []string{"", "linux", "linux/", "/arm64", "linux/arm64/v8"} {
		if _, err := tooltest.PayloadDir(bad); err == nil {
			t.Errorf("PayloadDir(%q) succeeded, want an error", bad)
		}
	}
}

// TestPinnedVersion reads the real pins in tools/: a required module, a
// module replaced by a published fork, and the staging modules Kubernetes
// gets from the module proxy.
func TestPinnedVersion(t *testing.T) {
	for _, tc := range []struct{ module, path, want string }{
		{"kubernetes", "k8s.io/kubernetes", "v1.34."},
		{"kubernetes", "k8s.io/client-go", "v0.34."},
		{"etcd", "go.etcd.io/etcd/server/v3", "v3.6."},
		{"lvscare", "github.com/labring/lvscare", "v1.1.3-beta.2.0."},
		{"sealer", "github.com/sealerio/sealer", "v0.11.0"},
	} {
		got, err := tooltest.PinnedVersion(tc.module, tc.path)
		if err != nil || !strings.HasPrefix(got, tc.want) {
			t.Errorf("PinnedVersion(%s, %s) = %q, %v; want %s...", tc.module, tc.path, got, err, tc.want)
		}
	}
	if _, err := tooltest.PinnedVersion("kubernetes", "example.com/absent"); err == nil {
		t.Error("PinnedVersion of an absent module succeeded")
	}
	if _, err := tooltest.PinnedVersion("no-such-tool", "k8s.io/kubernetes"); err == nil {
		t.Error("PinnedVersion in an absent tools module succeeded")
	}
}
