package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/internal/testutil/vmtest"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/vm/vmimage"
)

// The Kubernetes base booted with the real sealer run (make e2e): the base
// is built from the pinned payload exactly as `make kube-base` does, then
// installed in air-gapped VMs and asserted.

const kubeBaseRef = "registry.cnstack.local/cnstack/kubernetes:v1.34.4"

// kubeBase builds the base (amd64) into a fresh home with ci/kube-base.sh and
// returns the store, a static cnstack and the VM image. ignored lists images
// to leave out of the base's registry.
func kubeBase(t *testing.T, ctx context.Context, ref string, ignored ...string) (*store.Store, string, *vmimage.Image) {
	t.Helper()
	if os.Getenv("CNSTACK_E2E") == "" {
		t.Skip("set CNSTACK_E2E=1 (make e2e) to build the Kubernetes base and boot it with sealer run")
	}
	if why := vmtest.Missing(); why != "" {
		t.Skip(why)
	}
	repo, err := tooltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	bin := filepath.Join(home, "cnstack")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/cnstack")
	cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t0 := time.Now()
	cmd = exec.CommandContext(ctx, "bash", filepath.Join(repo, "ci", "kube-base.sh"))
	cmd.Env = append(os.Environ(), "CNSTACK="+bin, "CNSTACK_HOME="+home, "PLATFORMS=linux/amd64", "KUBE_BASE_REF="+ref, "IGNORED_IMAGES="+strings.Join(ignored, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ci/kube-base.sh: %v\n%s", err, out)
	}
	t.Logf("base %s built in %s", ref, time.Since(t0).Round(time.Second))
	s, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmimage.Build(ctx, filepath.Join(repo, "images", "debian12"), vmimage.DefaultImageCache(), vmimage.Options{Output: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	return s, bin, img
}

func bootKube(t *testing.T, ctx context.Context, s *store.Store, bin string, img *vmimage.Image, ref string, nodes int) *Report {
	t.Helper()
	rep, err := Boot(ctx, Options{Store: s, Ref: ref, Nodes: nodes, VMImage: img, Binary: bin,
		Sealer: tooltest.Path(t, "sealer"), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "report")
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Assertions {
		t.Logf("%-8s %-6s %s", a.Status, a.Node, a.Name)
	}
	for _, p := range rep.Phases {
		t.Logf("phase %-70s %-6s %s", p.Name, p.Node, p.Duration.Round(100*time.Millisecond))
	}
	for k, v := range rep.Figures {
		t.Logf("figure %s: %s", k, v)
	}
	t.Logf("artifact to verdict: %s (report %s)", rep.Duration.Round(time.Second), dir)
	return rep
}

func requirePassed(t *testing.T, rep *Report, names ...string) {
	t.Helper()
	status := map[string]string{}
	for _, a := range rep.Assertions {
		if a.Status != Passed {
			t.Errorf("%s %s: %s\n%s", a.Status, a.Node, a.Name, a.Evidence)
		}
		status[a.Name] = a.Status
	}
	for _, n := range names {
		if status[n] != Passed {
			t.Errorf("assertion %q: %q, want passed", n, status[n])
		}
	}
	if !rep.Passed {
		t.Errorf("report not passed: %s", rep.Error)
	}
}

// TestE2EKubeOneNode installs the base on one VM with the real sealer run.
func TestE2EKubeOneNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Minute)
	defer cancel()
	s, bin, img := kubeBase(t, ctx, kubeBaseRef)
	rep := bootKube(t, ctx, s, bin, img, kubeBaseRef, 1)
	requirePassed(t, rep, "sealer run installs the image", "kubernetes: every node Ready", "kubernetes: every pod Running or Completed",
		"kubernetes: no ImagePullBackOff or ErrImagePull, ever", "kubernetes: every pod image was served by the in-VM registry",
		"kubernetes: kubernetes.default resolves from a pod", "kubernetes: a Service routes to its pod")
}

// TestE2EKubeTwoNodes installs a master and a worker: sealer reaches the
// worker over SSH on the private network, and a pod on the worker reaches a
// pod on the master through flannel.
func TestE2EKubeTwoNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Minute)
	defer cancel()
	s, bin, img := kubeBase(t, ctx, kubeBaseRef)
	rep := bootKube(t, ctx, s, bin, img, kubeBaseRef, 2)
	requirePassed(t, rep, "kubernetes: every node Ready", "kubernetes: a pod on a worker reaches a pod on the master")
}

// TestE2EKubeMissingImage boots a base whose registry lacks the image the CNI's
// pods need: the boot fails, the report names the image and which assertions
// failed, and nothing was fetched from outside instead.
func TestE2EKubeMissingImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Minute)
	defer cancel()
	const missing = "registry.cnstack.local/cnstack/flannel:v0.28.10"
	ref := "registry.cnstack.local/cnstack/kubernetes:v1.34.4-no-flannel"
	s, bin, img := kubeBase(t, ctx, ref, missing)
	rep := bootKube(t, ctx, s, bin, img, ref, 1)
	if rep.Passed {
		t.Fatal("a base without its CNI's image passed")
	}
	byName := map[string]Assertion{}
	for _, a := range rep.Assertions {
		byName[a.Name] = a
	}
	for _, name := range []string{"kubernetes: every pod Running or Completed", "kubernetes: no ImagePullBackOff or ErrImagePull, ever"} {
		a := byName[name]
		if a.Status != Failed || !strings.Contains(a.Evidence, missing) {
			t.Errorf("%q: %s, evidence does not name %s:\n%s", name, a.Status, missing, a.Evidence)
		}
	}
	if a := byName["no attempt to reach outside the VM (packets to non-local addresses)"]; a.Status != Passed {
		t.Errorf("the missing image was looked for outside the VM: %s", a.Evidence)
	}
}

// TestE2EKubeApp installs an app-installer onto the base's cluster as an
// operator does: sealer run installs the base, then `sealer run APP` the app
// (built FROM scratch, so its base is given as Options.Base); its pod must run
// and its files land in the cluster rootfs.
func TestE2EKubeApp(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Minute)
	defer cancel()
	s, bin, img := kubeBase(t, ctx, kubeBaseRef)
	dir := t.TempDir()
	kubefile := "FROM scratch\nAPP hello local://hello.yaml\nLAUNCH [\"hello\"]\n"
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello-app\nspec:\n  containers:\n  - name: hello\n    image: " + DefaultProbeImage + "\n    command: [\"sleep\", \"3600\"]\n"
	for name, body := range map[string]string{"Kubefile": kubefile, "hello.yaml": pod} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const app = "registry.cnstack.local/cnstack/hello-app:v1"
	// The app's pod runs the toolbox the base already carries: lite mode
	// collects no images (there is no registry to collect from here).
	cmd := exec.CommandContext(ctx, bin, "build", "--offline", "--type", "app-installer", "--build-mode", "lite", "-t", app, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CNSTACK_HOME="+filepath.Dir(s.Root()))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cnstack build: %v\n%s", err, out)
	}
	rep, err := Boot(ctx, Options{Store: s, Ref: app, Base: kubeBaseRef, VMImage: img, Binary: bin,
		Sealer: tooltest.Path(t, "sealer"), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Assertions {
		t.Logf("%-8s %-6s %s", a.Status, a.Node, a.Name)
	}
	requirePassed(t, rep, "sealer run installs the image", "sealer run installs the app onto the cluster",
		"kubernetes: every pod Running or Completed", "app: rootfs laid out as sealer does ("+rootfsDir+")")
	if rep.Base != kubeBaseRef {
		t.Errorf("report base %q, want %q", rep.Base, kubeBaseRef)
	}
}
