package verify

import (
	"context"
	"encoding/xml"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cnstack/cnstack/internal/sampleimages"
	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/internal/testutil/vmtest"
	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// TestBootSampleStack is the VM smoke test of `make test`: it boots the
// development VM under whatever accelerator works (TCG here), delivers the
// sample stack's top image as a bundle, installs it and runs the delivery,
// rootfs, registry and egress assertions. A second boot of an image that
// breaks sealer's run contract (no scripts/init-registry.sh) must fail.
func TestBootSampleStack(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	if why := vmtest.Missing(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	repo, err := tooltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := sampleStack(t, ctx, repo)

	t0 := time.Now()
	img, err := vmimage.Build(ctx, filepath.Join(repo, "images", "debian12"), vmimage.DefaultImageCache(), vmimage.Options{Output: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM image %s ready in %s", img.Key, time.Since(t0).Round(time.Millisecond))
	bin := filepath.Join(t.TempDir(), "cnstack")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/cnstack")
	cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cnstack for the guest: %v\n%s", err, out)
	}

	rep, err := Boot(ctx, Options{Store: s, Ref: "registry.cnstack.local/cnstack/cnstack:v0.1.0", VMImage: img, Binary: bin,
		Sealer: tooltest.Path(t, tooltest.Sealer), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, a := range rep.Assertions {
		status[a.Name] = a.Status
		t.Logf("%-8s %s: %s", a.Status, a.Name, firstLine(a.Evidence))
	}
	if !rep.Passed {
		t.Fatalf("boot of the sample stack failed: %s", rep.Error)
	}
	for _, name := range []string{
		"bundle delivered intact", "rootfs laid out as sealer does (" + rootfsDir + ")",
		"embedded registry serves every container image with the recorded digest",
		"no attempt to reach outside the VM (packets to non-local addresses)",
		"image check checks/registry.sh",
		"the real sealer loads and inspects the image",
	} {
		if status[name] != Passed {
			t.Errorf("%q: %s, want passed", name, status[name])
		}
	}
	if status["kubernetes: every node Ready"] != Skipped {
		t.Errorf("Kubernetes assertions must say they did not run for an image without Kubernetes")
	}
	var junit junitSuites
	b, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err := xml.Unmarshal(b, &junit); err != nil || junit.Suites[0].Tests != len(rep.Assertions) || junit.Suites[0].Failures != 0 {
		t.Errorf("junit.xml: %v %+v", err, junit)
	}
	for _, f := range []string{"report.json", "report.html", "serial-node0.log", "install-node0.log"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("report file %s: %v", f, err)
		}
	}
	for k, v := range rep.Figures {
		t.Logf("figure: %s = %s", k, v)
	}
	t.Logf("artifact-to-verdict: %s (accelerator %s)", rep.Duration.Round(time.Millisecond), rep.Accel)

	// An image without scripts/init-registry.sh breaks sealer's run contract
	// (the app-installer laid out on its own, as --installer cnstack does).
	bad, err := Boot(ctx, Options{Store: s, Ref: "registry.cnstack.local/cnstack/addon-demo:v0.1.0", Installer: InstallerCnstack, VMImage: img, Binary: bin, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Passed {
		t.Fatal("an image without init-registry.sh passed the boot")
	}
	found := false
	for _, a := range bad.Assertions {
		if a.Name == "install: embedded registry (scripts/init-registry.sh)" && a.Status == Failed && strings.Contains(a.Evidence, "init-registry.sh") {
			found = true
		}
	}
	if !found {
		t.Errorf("the failing boot does not name the missing init-registry.sh: %+v", bad.Assertions)
	}
}

// sampleStack builds the sample stack, its container images served from an
// in-process registry standing in for docker.io and registry.k8s.io.
func sampleStack(t *testing.T, ctx context.Context, repo string) *store.Store {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := sampleimages.Push(ctx, addr); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(home, "config.json"), Mirrors: map[string]string{"docker.io": addr, "registry.k8s.io": addr}})
	if err != nil {
		t.Fatal(err)
	}
	b := &build.Builder{Store: s, Cache: c, Remote: rc}
	b.Collector = &collect.Collector{Store: s, Remote: rc}
	st, err := stack.Load(filepath.Join(repo, "testdata", "stack"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.BuildStack(ctx, st, build.StackOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestE2EBootTwoNodes boots two VMs joined on a private network: the
// registry runs on node0 and node1 reaches it as sea.hub (make e2e).
func TestE2EBootTwoNodes(t *testing.T) {
	if os.Getenv("CNSTACK_E2E") == "" {
		t.Skip("set CNSTACK_E2E=1 (make e2e) to boot two VMs")
	}
	if why := vmtest.Missing(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	repo, err := tooltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := sampleStack(t, ctx, repo)
	img, err := vmimage.Build(ctx, filepath.Join(repo, "images", "debian12"), vmimage.DefaultImageCache(), vmimage.Options{Output: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cnstack")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/cnstack")
	cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cnstack: %v\n%s", err, out)
	}
	rep, err := Boot(ctx, Options{Store: s, Ref: "registry.cnstack.local/cnstack/cnstack:v0.1.0", Nodes: 2, VMImage: img, Binary: bin, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	for _, a := range rep.Assertions {
		t.Logf("%-8s %-6s %s", a.Status, a.Node, a.Name)
		if a.Node == "node1" && a.Name == "the embedded registry answers at sea.hub:5000" && a.Status == Passed {
			reached = true
		}
	}
	if !rep.Passed || !reached {
		t.Fatalf("two-node boot: passed=%v, node1 reached the registry=%v (%s)", rep.Passed, reached, rep.Error)
	}
	t.Logf("artifact-to-verdict with two nodes: %s", rep.Duration.Round(time.Millisecond))
}
