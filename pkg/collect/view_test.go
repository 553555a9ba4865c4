package collect_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/stack"
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

// What `cnstack lock` and `cnstack images why` scan is what `cnstack
// build` writes (pkg/contents is the one owner): the same files with the
// same modes, downloads included (an APP and an ADD from a URL), and the
// same extension: the apps with their commands, env and version, LAUNCH,
// the image env. A parent/child pair checks inherited apps, APPCMDS on
// them, and a COPY into a directory only the parent has.
func TestViewAgreesWithBuildOnAppsAndDownloads(t *testing.T) {
	payload := map[string]string{
		"/dl/extra.yaml": "image: docker.io/library/redis:7\n",
		"/dl/tool.sh":    "#!/bin/sh\necho tool\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := payload[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, p)
	}))
	defer srv.Close()
	pin := func(p string) string { return digest.FromString(payload[p]).String() }

	dir := t.TempDir()
	files := map[string]string{
		"stack.yaml": "name: s\nversion: v1\nrepository: reg.local/s\n",
		"base/Kubefile": "FROM scratch\n" +
			"ENV REGION=eu\n" +
			"APP web local://web.yaml\n" +
			"APP tool " + srv.URL + "/dl/tool.sh#sha256=" + strings.TrimPrefix(pin("/dl/tool.sh"), "sha256:") + "\n" +
			"APPCMDS tool [\"bash tool.sh --install\"]\n" +
			"APPENV web TIER=front\n" +
			"ADD --checksum=" + pin("/dl/extra.yaml") + " " + srv.URL + "/dl/extra.yaml manifests/\n" +
			"COPY charts charts\n" +
			"COPY run.sh application/apps/web/\n" +
			"LAUNCH [\"web\", \"tool\"]\n",
		"base/web.yaml":            "image: docker.io/library/nginx:1.25\n",
		"base/charts/c/Chart.yaml": "name: c\nversion: 0.1.0\n",
		"base/run.sh":              "#!/bin/sh\nkubectl apply -f web.yaml\n",
		"kid/Kubefile": "FROM base\n" +
			"APPCMDS web [\"kubectl apply -f web.yaml --prune\"]\n" +
			"APPENV tool MODE=fast\n" +
			"COPY more.yaml manifests\n" +
			"LAUNCH [\"web\"]\n",
		"kid/more.yaml": "image: docker.io/library/busybox:1.36\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	st, err := stack.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	b := &build.Builder{Store: s, Cache: c, HTTP: srv.Client()}
	results, err := b.BuildStack(t.Context(), st, build.StackOptions{Mode: build.ModeLite})
	if err != nil {
		t.Fatal(err)
	}
	views, err := collect.StackViews(t.Context(), st, t.TempDir(), ocispec.Platform{OS: "linux", Architecture: "amd64"},
		collect.Downloader(filepath.Join(t.TempDir(), "downloads"), srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range views {
		r := results[i]
		if r.Layer.Name != v.Name {
			t.Fatalf("layer order: build %s, view %s", r.Layer.Name, v.Name)
		}
		gotView, gotBuild := viewFilesWithModes(t, v.Dir), builtFilesWithModes(t, s, r.Result.Descriptor)
		if strings.Join(gotView, "\n") != strings.Join(gotBuild, "\n") {
			t.Errorf("%s: view and build differ:\nview:\n%s\nbuild:\n%s", v.Name, strings.Join(gotView, "\n"), strings.Join(gotBuild, "\n"))
		}
		want := builtExtension(t, s, r.Result.Descriptor)
		got, _ := v.Extension.Marshal()
		if string(got) != string(want) {
			t.Errorf("%s: extensions differ:\nview:  %s\nbuild: %s", v.Name, got, want)
		}
	}
	// The pins of this test hold what it claims: commands, launch, the
	// downloaded app and its mode.
	all := strings.Join(viewFilesWithModes(t, views[1].Dir), "\n")
	for _, want := range []string{
		"application/apps/tool/tool.sh 644 #!/bin/sh", "application/apps/web/run.sh 755 ",
		"manifests/extra.yaml 644 image: docker.io/library/redis:7", "manifests/more.yaml 644 ",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("kid view lacks %q:\n%s", want, all)
		}
	}
	ext := views[1].Extension
	if web := ext.App("web"); web == nil || strings.Join(web.Cmds, ",") != "kubectl apply -f web.yaml --prune" || web.Version != "v1" || web.Env["TIER"] != "front" {
		t.Errorf("kid's web app: %+v", web)
	}
	if tool := ext.App("tool"); tool == nil || strings.Join(tool.Cmds, ",") != "bash tool.sh --install" || tool.Env["MODE"] != "fast" {
		t.Errorf("kid's tool app: %+v", tool)
	}
	if strings.Join(ext.Launch.AppNames, ",") != "web" {
		t.Errorf("kid's launch: %+v", ext.Launch)
	}
}

// viewFilesWithModes lists "name mode content" for every file of a view.
func viewFilesWithModes(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %o %s", filepath.ToSlash(rel), fi.Mode().Perm(), b))
		return nil
	})
	sort.Strings(out)
	return out
}

// builtFilesWithModes lists "name mode content" for the scan-relevant files
// of a built image, every layer, later layers replacing earlier files.
func builtFilesWithModes(t *testing.T, s *store.Store, d ocispec.Descriptor) []string {
	t.Helper()
	var m ocispec.Manifest
	mb, err := s.ReadBlob(t.Context(), d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(mb, &m)
	files := map[string]string{}
	for _, l := range m.Layers {
		rc, _ := s.Fetch(t.Context(), l)
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
			if h.Typeflag == tar.TypeReg && viewRelevant(h.Name) {
				b, _ := io.ReadAll(tr)
				files[h.Name] = fmt.Sprintf("%s %o %s", h.Name, h.Mode&0o777, b)
			}
		}
		rc.Close()
	}
	var out []string
	for _, f := range files {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// builtExtension is the extension annotation of a built image.
func builtExtension(t *testing.T, s *store.Store, d ocispec.Descriptor) []byte {
	t.Helper()
	var m ocispec.Manifest
	mb, err := s.ReadBlob(t.Context(), d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(mb, &m)
	ext, err := clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ext.Marshal()
	return b
}
