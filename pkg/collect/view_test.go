package collect_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/store"
)

// viewRelevant is what a view holds of an image root.
func viewRelevant(name string) bool {
	for _, p := range []string{"manifests", "charts", "application"} {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

// viewFiles lists "name=content" for every file of a view.
func viewFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel)+"="+string(b))
		return nil
	})
	sort.Strings(out)
	return out
}

// builtFiles lists "name=content" for the scan-relevant files of a built image.
func builtFiles(t *testing.T, s *store.Store, d ocispec.Descriptor) []string {
	t.Helper()
	mb, err := s.ReadBlob(context.Background(), d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(mb, &m)
	var out []string
	for _, l := range m.Layers {
		rc, _ := s.Fetch(context.Background(), l)
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag != tar.TypeDir && viewRelevant(h.Name) {
				b, _ := io.ReadAll(tr)
				out = append(out, h.Name+"="+string(b)+h.Linkname)
			}
		}
		rc.Close()
	}
	sort.Strings(out)
	return out
}

// The lock/images-why view resolves COPY sources exactly as a build does:
// in-context links followed (a linked directory is not empty, defect 4),
// links out of the context refused by both (defect 1/3).
func TestViewAgreesWithBuild(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "evil.yaml"), []byte("image: evil/x:1"), 0o644)
	good := t.TempDir()
	files := map[string]string{
		"Kubefile":             "FROM scratch\nCOPY charts charts\nCOPY mf manifests\nCOPY app application/apps/x\n",
		"src/web/Chart.yaml":   "name: web",
		"src/web/values.yaml":  "image: nginx:1",
		"m/a.yaml":             "image: busybox:1",
		"apps/x/deploy.yaml":   "image: redis:7",
		"apps/x/sub/more.yaml": "image: redis:8",
		"apps/shared/lib.yaml": "image: envoy:1",
	}
	for name, content := range files {
		p := filepath.Join(good, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	os.Symlink("src", filepath.Join(good, "charts"))
	os.Symlink("m", filepath.Join(good, "mf"))
	os.Symlink("apps/x", filepath.Join(good, "app"))
	os.Symlink("../shared", filepath.Join(good, "apps", "x", "shared"))

	v, err := collect.ContextView(context.Background(), ".", filepath.Join(good, "Kubefile"), good, nil, filepath.Join(t.TempDir(), "view"), collect.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	res, err := (&build.Builder{Store: s, Cache: c}).Build(context.Background(), build.Request{Context: good, Mode: build.ModeLite})
	if err != nil {
		t.Fatal(err)
	}
	gotView, gotBuild := viewFiles(t, v.Dir), builtFiles(t, s, res.Descriptor)
	if strings.Join(gotView, "\n") != strings.Join(gotBuild, "\n") {
		t.Fatalf("view and build differ:\nview:\n%s\nbuild:\n%s", strings.Join(gotView, "\n"), strings.Join(gotBuild, "\n"))
	}
	for _, want := range []string{"charts/web/values.yaml=image: nginx:1", "application/apps/x/shared/lib.yaml=image: envoy:1"} {
		if !strings.Contains(strings.Join(gotView, "\n"), want) {
			t.Errorf("view lacks %s:\n%s", want, strings.Join(gotView, "\n"))
		}
	}

	// A link out of the context: both refuse, naming the link.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "Kubefile"), []byte("FROM scratch\nCOPY m manifests\n"), 0o644)
	os.MkdirAll(filepath.Join(bad, "m"), 0o755)
	os.Symlink(filepath.Join(outside, "evil.yaml"), filepath.Join(bad, "m", "evil.yaml"))
	_, verr := collect.ContextView(context.Background(), ".", filepath.Join(bad, "Kubefile"), bad, nil, filepath.Join(t.TempDir(), "view"), collect.ViewOptions{})
	_, berr := (&build.Builder{Store: s, Cache: c}).Build(context.Background(), build.Request{Context: bad, Mode: build.ModeLite})
	for what, err := range map[string]error{"view": verr, "build": berr} {
		if err == nil || !strings.Contains(err.Error(), "m/evil.yaml is a symlink to") || !strings.Contains(err.Error(), "outside the build context") {
			t.Errorf("%s: err = %v", what, err)
		}
	}
}
