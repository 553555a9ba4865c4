package ci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

func load(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	s, err := stack.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMatrixOrder(t *testing.T) {
	m, err := Matrix(load(t, "../../testdata/stack"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, e := range m {
		if e.Parent != "" {
			pi, ok := seen[e.Parent]
			if !ok {
				t.Errorf("%s comes before its parent %s", e.Layer, e.Parent)
			} else if m[pi].Wave+1 != e.Wave {
				t.Errorf("%s: wave %d, its parent's %d", e.Layer, e.Wave, m[pi].Wave)
			}
		}
		seen[e.Layer] = i
		wantBoot := e.Type == "kube-installer"
		if e.Boot != wantBoot || e.Slug != "linux-amd64" || e.Runner == "" {
			t.Errorf("%+v", e)
		}
	}
	if len(m) != 8 {
		t.Errorf("%d entries, want 8 (8 layers × 1 platform)", len(m))
	}
	if _, err := Matrix(load(t, "../../testdata/stack"), map[string]string{}); err == nil || !strings.Contains(err.Error(), "no runner for platform linux/amd64") {
		t.Errorf("a platform without a runner: %v", err)
	}
}

// TestWorkflowInStep: the committed workflow is what the production stack
// gives (regenerate: cnstack ci workflow Kubefiles > .github/workflows/nightly.yml),
// and actionlint accepts it; actionlint refuses a broken one (the lint can fail).
func TestWorkflowInStep(t *testing.T) {
	s := load(t, "../../Kubefiles")
	got, err := Workflow(s, WorkflowOptions{StackDir: "Kubefiles", Command: "cnstack ci workflow Kubefiles"})
	if err != nil {
		t.Fatal(err)
	}
	path := "../../.github/workflows/nightly.yml"
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != string(got) {
		t.Fatalf("%s is out of step with Kubefiles/stack.yaml: run cnstack ci workflow Kubefiles > .github/workflows/nightly.yml", path)
	}
	for _, l := range s.Layers {
		if !strings.Contains(string(got), "  layer-"+l.Name+":\n") {
			t.Errorf("no job for layer %s", l.Name)
		}
		if l.Parent != "" && !strings.Contains(string(got), "needs: layer-"+l.Parent+"\n") {
			t.Errorf("layer %s's job does not need its parent's", l.Name)
		}
	}
	// The registry is the cache: a job pulls its parent by the digest the parent's job
	// passed along (NIGHTLY_DIGESTS, a digests-* artifact), never a whole store.
	want := []string{"schedule:", "tags:", "workflow_dispatch:", "ci/nightly.sh --layer", "report merge", "deploy-pages",
		"NIGHTLY_DIGESTS: ${{ github.workspace }}/out/digests", "name: digests-layer-base-${{ matrix.slug }}", "name: digests-layer-mesh-${{ matrix.slug }}"}
	if strings.Contains(string(got), "path: out/home") {
		t.Error("the workflow passes the store between jobs: the registry is the cache")
	}
	for _, p := range s.Spec.Platforms { // one matrix entry per platform the stack builds
		want = append(want, "platform: "+p)
	}
	for _, w := range want {
		if !strings.Contains(string(got), w) {
			t.Errorf("workflow lacks %q", w)
		}
	}

	tooltest.Path(t, tooltest.Actionlint)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	abs, _ := filepath.Abs(path)
	if out, err := tooltest.Run(t, ctx, tooltest.Actionlint, abs); err != nil {
		t.Errorf("actionlint refuses the workflow: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte(strings.Replace(string(got), "needs: layer-base", "needs: layer-nope", 1)), 0o644)
	if _, err := tooltest.Run(t, ctx, tooltest.Actionlint, bad); err == nil {
		t.Error("actionlint accepted a job needing a job that does not exist")
	}
}

// A stack of two platforms: each layer's job has both in its matrix, each
// promotes with its platform appended, and a merge-platforms job after all
// of them tags the index (ci/nightly.sh --merge); actionlint accepts it.
// A single-platform stack has no such job (TestWorkflowInStep's is one).
func TestWorkflowMultiPlatform(t *testing.T) {
	s := load(t, "../../testdata/stack")
	single, err := Workflow(s, WorkflowOptions{StackDir: "testdata/stack"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(single), "merge-platforms:") || strings.Contains(string(single), "--promote-suffix") {
		t.Error("a single-platform stack's workflow merges platforms")
	}
	p, err := oci.ParsePlatforms([]string{"linux/amd64,linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	s.Platforms = p
	got, err := Workflow(s, WorkflowOptions{StackDir: "testdata/stack"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"platform: linux/arm64", "runner: ubuntu-24.04-arm", `--promote-suffix "-${{ matrix.slug }}"`,
		"  merge-platforms:\n    name: one multi-platform image per layer\n    needs: [layer-", "ci/nightly.sh --merge --key",
		"COSIGN_PASSWORD: ${{ secrets.COSIGN_PASSWORD }}",
	} {
		if !strings.Contains(string(got), w) {
			t.Errorf("workflow lacks %q", w)
		}
	}
	if n := strings.Count(string(got), "name: the signing key and registry credentials"); n != len(s.Layers)+1 {
		t.Errorf("%d steps write the key, want one per layer job and the merge job (%d)", n, len(s.Layers)+1)
	}
	tooltest.Path(t, tooltest.Actionlint)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "nightly.yml")
	os.WriteFile(path, got, 0o644)
	if out, err := tooltest.Run(t, ctx, tooltest.Actionlint, path); err != nil {
		t.Errorf("actionlint refuses the two-platform workflow: %v\n%s", err, out)
	}
}
