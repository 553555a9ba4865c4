package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/clusterimage"
)

// run executes the CLI in-process with a private CNSTACK_HOME.
func runApp(t *testing.T, home string, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(context.Background(), append([]string{"cnstack", "--home", home}, args...))
	return out.String(), errOut.String(), err
}

const sample = "../../testdata/stack"

// sampleMirrors serves the sample stack's container images on 127.0.0.1 and
// returns the flags that make builds fetch docker.io and registry.k8s.io
// from there: the tests never reach the internet.
func sampleMirrors(t *testing.T) []string {
	t.Helper()
	addr := serveSampleRegistry(t)
	return []string{"--registry-mirror", "docker.io=" + addr, "--registry-mirror", "registry.k8s.io=" + addr}
}

// TestSampleStack builds the sample stack through the CLI, then exercises
// the store commands on it.
func TestSampleStack(t *testing.T) {
	home := t.TempDir()
	mirrors := sampleMirrors(t)
	out, errOut, err := runApp(t, home, append([]string{"stack", "build"}, append(mirrors, sample)...)...)
	if err != nil {
		t.Fatalf("stack build: %v\n%s", err, errOut)
	}
	for _, layer := range []string{"kubernetes", "base", "mesh", "observability", "ha", "middleware", "cnstack", "addon-demo"} {
		if !strings.Contains(out, layer) {
			t.Errorf("stack build output lacks layer %s:\n%s", layer, out)
		}
	}
	if strings.Contains(out, "cached") {
		t.Errorf("first build reported cached layers:\n%s", out)
	}
	// A second build: every layer cached.
	out, _, err = runApp(t, home, append([]string{"stack", "build"}, append(mirrors, sample)...)...)
	if err != nil || strings.Count(out, " cached ") != 8 {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	plan, _, err := runApp(t, home, append([]string{"stack", "plan", "-o", "json"}, append(mirrors, sample)...)...)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Layers []struct {
			Name    string
			Rebuild bool
			Parent  string
		}
	}
	if err := json.Unmarshal([]byte(plan), &p); err != nil || len(p.Layers) != 8 {
		t.Fatalf("plan json: %v\n%s", err, plan)
	}
	for _, l := range p.Layers {
		if l.Rebuild {
			t.Errorf("plan says %s would rebuild after a build", l.Name)
		}
	}

	out, _, _ = runApp(t, home, "images")
	if !strings.Contains(out, "registry.cnstack.local/cnstack/cnstack") || !strings.Contains(out, "app-installer") {
		t.Fatalf("images:\n%s", out)
	}
	js, _, err := runApp(t, home, "inspect", "registry.cnstack.local/cnstack/cnstack:v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	var spec clusterimage.ImageSpec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		t.Fatal(err)
	}
	apps := strings.Join(spec.ImageExtension.AppNames(), ",")
	if len(spec.ContainerImageList) < 10 {
		t.Errorf("the top image carries %d container images: %+v", len(spec.ContainerImageList), spec.ContainerImageList)
	}
	if apps != "flannel,mesh,monitoring,chaos,redis" || spec.ImageExtension.Env["ClusterName"] != "cnstack" ||
		spec.ImageExtension.Labels[clusterimage.LabelKubeCNI] != `["flannel"]` {
		t.Fatalf("inspect: apps %s ext %+v", apps, spec.ImageExtension)
	}
	if _, ok := spec.ImageExtension.Env["KubeVersion"]; ok {
		t.Error("global env must not be inherited from the base (sealer semantics)")
	}

	// Changing one file in the mesh layer rebuilds mesh and the layers above it only.
	work := filepath.Join(t.TempDir(), "stack")
	if err := os.CopyFS(work, os.DirFS(sample)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runApp(t, home, append([]string{"stack", "build"}, append(mirrors, work)...)...); err != nil {
		t.Fatal(err)
	}
	vals := filepath.Join(work, "mesh", "charts", "mesh", "values.yaml")
	b, _ := os.ReadFile(vals)
	os.WriteFile(vals, append(b, []byte("replicas: 2\n")...), 0o644)
	out, _, err = runApp(t, home, append([]string{"stack", "build"}, append(mirrors, work)...)...)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 {
			status[f[0]] = f[1]
		}
	}
	want := map[string]string{"base": "cached", "addon-demo": "cached", "mesh": "built", "observability": "built", "ha": "built", "middleware": "built", "cnstack": "built"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("after editing mesh: %s %s, want %s\n%s", k, status[k], v, out)
		}
	}

	if _, _, err := runApp(t, home, "rmi", "registry.cnstack.local/cnstack/addon-demo:v0.1.0"); err != nil {
		t.Fatal(err)
	}
	out, _, err = runApp(t, home, "prune")
	if err != nil || !strings.Contains(out, "pruned") || strings.HasPrefix(out, "pruned 0 blobs") {
		t.Fatalf("prune: %v %s", err, out)
	}
	if _, _, err := runApp(t, home, "rmi", "registry.cnstack.local/cnstack/addon-demo:v0.1.0"); err == nil {
		t.Fatal("rmi of a missing image succeeded")
	}
}

func TestLintExitCode(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Kubefile"), []byte("FROM scratch\nLAUNCH [\"x\"]\nRUN make\n"), 0o644)
	out, _, err := runApp(t, t.TempDir(), "lint", dir)
	if err == nil {
		t.Fatal("lint of a bad Kubefile exited 0")
	}
	if !strings.Contains(out, "Kubefile:3:1") || !strings.Contains(out, "error") {
		t.Fatalf("lint output:\n%s", out)
	}
	if _, _, err := runApp(t, t.TempDir(), "lint", sample); err != nil {
		t.Fatalf("lint of the sample stack: %v", err)
	}
	if out, _, err := runApp(t, t.TempDir(), "lint", "../../Kubefiles"); err != nil {
		t.Fatalf("lint of the production stack (Kubefiles/): %v\n%s", err, out)
	}
}

func TestBuildFlagErrors(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{
		{"build", "-t", "x:1", "--platform", "linux", "."},
		{"build", "-t", "x:1", "--build-mode", "fast", sample + "/base"},
		{"build", "-t", "x:1", "--type", "app", sample + "/base"},
		{"build", "-t", "x:1", "a", "b"},
	} {
		if _, _, err := runApp(t, home, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}
