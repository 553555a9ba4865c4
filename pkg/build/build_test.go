package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func newBuilder(t *testing.T) *Builder {
	t.Helper()
	home := t.TempDir()
	s, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(filepath.Join(home, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return &Builder{Store: s, Cache: c}
}

// copyTree copies a directory (files and modes) to a new place.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, s *store.Store, d digest.Digest) []byte {
	t.Helper()
	b, err := s.ReadBlob(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	return append(out.Bytes(), '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./pkg/build -run Golden -update to accept):\n%s", name, got)
	}
}

// TestGolden pins the exact manifest and config a fixed Kubefile produces:
// any change to the bytes cnstack writes shows up here.
func TestGolden(t *testing.T) {
	b := newBuilder(t)
	res, err := b.Build(context.Background(), Request{Context: "testdata/golden/context", Tags: []string{"golden:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	man := readJSON(t, b.Store, res.Descriptor.Digest)
	golden(t, "manifest.json", man)
	var m ocispec.Manifest
	json.Unmarshal(man, &m)
	golden(t, "config.json", readJSON(t, b.Store, m.Config.Digest))
	ext, err := clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension])
	if err != nil {
		t.Fatal(err)
	}
	web := ext.App("web")
	if web == nil || web.Type != "kube" || strings.Join(web.Cmds, ";") != "kubectl apply -f web.yaml -n web" || web.Env["replicas"] != "2" {
		t.Errorf("web app = %+v", web)
	}
	if c := ext.App("calico"); c == nil || c.Type != "shell" {
		t.Errorf("calico app = %+v", c)
	}
	if strings.Join(ext.Launch.AppNames, ",") != "calico,web" || ext.Env["globalKey"] != "globalValue" {
		t.Errorf("extension = %+v", ext)
	}
}

// The same Kubefile and context give the same digest from another directory
// and another store (as on another machine).
func TestReproducible(t *testing.T) {
	ctx := context.Background()
	var digests []digest.Digest
	for i := 0; i < 2; i++ {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("copy-%d", i), "ctx")
		copyTree(t, "testdata/golden/context", dir)
		b := newBuilder(t)
		res, err := b.Build(ctx, Request{Context: dir, Tags: []string{"r:1"}})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Descriptor.Digest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds of one context differ: %s vs %s", digests[0], digests[1])
	}
	// SOURCE_DATE_EPOCH changes the bytes (created time, mtimes).
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	b := newBuilder(t)
	res, err := b.Build(ctx, Request{Context: "testdata/golden/context", Tags: []string{"r:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Descriptor.Digest == digests[0] {
		t.Fatal("SOURCE_DATE_EPOCH did not change the image")
	}
}

func blobNames(t *testing.T, s *store.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256"))
	for _, e := range ents {
		fi, _ := e.Info()
		out[e.Name()] = fi.ModTime().UnixNano()
	}
	return out
}

// An unchanged rebuild writes no blob; a changed file rebuilds only the
// layers from it on.
func TestCache(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ctx")
	copyTree(t, "testdata/golden/context", dir)
	b := newBuilder(t)
	first, err := b.Build(ctx, Request{Context: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || first.Platforms[0].BuiltLayers != 3 {
		t.Fatalf("first build: %+v", first.Platforms[0])
	}
	before := blobNames(t, b.Store)
	again, err := b.Build(ctx, Request{Context: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Descriptor.Digest != first.Descriptor.Digest || again.Platforms[0].BuiltLayers != 0 {
		t.Fatalf("no-op rebuild: %+v", again.Platforms[0])
	}
	if after := blobNames(t, b.Store); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("no-op rebuild wrote blobs")
	}
	// Change the second COPY source (app/web.yaml, used by APP web): the
	// first two layers stay cached, the third is rebuilt.
	os.WriteFile(filepath.Join(dir, "app", "web.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web2}\n"), 0o644)
	changed, err := b.Build(ctx, Request{Context: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if changed.Cached || changed.Platforms[0].BuiltLayers != 1 || changed.Descriptor.Digest == first.Descriptor.Digest {
		t.Fatalf("after changing one file: %+v", changed.Platforms[0])
	}
	// A mode change is a change too.
	os.Chmod(filepath.Join(dir, "rootfs", "etc", "kubeadm.yml"), 0o755)
	modeChanged, err := b.Build(ctx, Request{Context: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if modeChanged.Platforms[0].BuiltLayers != 3 {
		t.Fatalf("after chmod: built %d layers, want 3", modeChanged.Platforms[0].BuiltLayers)
	}
	// --no-cache rebuilds everything but gives the same bytes.
	nc, err := b.Build(ctx, Request{Context: dir, Tags: []string{"c:1"}, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if nc.Platforms[0].BuiltLayers != 3 || nc.Descriptor.Digest != modeChanged.Descriptor.Digest {
		t.Fatalf("no-cache: %+v", nc.Platforms[0])
	}
}

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMultiPlatformIndex(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Kubefile":       "FROM scratch\nCOPY ${ARCH}/bin bin\n",
		"amd64/bin/tool": "amd64",
		"arm64/bin/tool": "arm64",
	})
	b := newBuilder(t)
	res, err := b.Build(context.Background(), Request{Context: dir, Tags: []string{"multi:1"},
		Platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Descriptor.MediaType != ocispec.MediaTypeImageIndex || len(res.Platforms) != 2 {
		t.Fatalf("result %+v", res.Descriptor)
	}
	var idx ocispec.Index
	json.Unmarshal(readJSON(t, b.Store, res.Descriptor.Digest), &idx)
	if len(idx.Manifests) != 2 || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index %+v", idx)
	}
	if idx.Manifests[0].Digest == idx.Manifests[1].Digest {
		t.Fatal("both platforms got the same image although ${ARCH} differs")
	}
	// FROM a multi-platform image picks the matching child.
	child := writeContext(t, map[string]string{"Kubefile": "FROM multi:1\nCOPY x .\n", "x": "x"})
	r2, err := b.Build(context.Background(), Request{Context: child, Tags: []string{"child:1"}, Platforms: []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}})
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(readJSON(t, b.Store, r2.Descriptor.Digest), &m)
	if m.Annotations[ocispec.AnnotationBaseImageDigest] != idx.Manifests[1].Digest.String() {
		t.Fatalf("child of arm64 built on %s", m.Annotations[ocispec.AnnotationBaseImageDigest])
	}
	_, err = b.Build(context.Background(), Request{Context: child, Tags: []string{"child:2"}, Platforms: []ocispec.Platform{{OS: "linux", Architecture: "s390x"}}})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x") {
		t.Fatalf("missing platform: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	escape := writeContext(t, map[string]string{"Kubefile": "FROM scratch\nCOPY link/secret .\n"})
	os.Symlink(outside, filepath.Join(escape, "link"))

	sum := digest.FromString("payload")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tampered") }))
	defer srv.Close()

	tests := []struct {
		name  string
		files map[string]string
		ctx   string
		want  string
	}{
		{name: "RUN", files: map[string]string{"Kubefile": "FROM scratch\nRUN echo hi\n"}, want: "Kubefile:2:1"},
		{name: "missing source", files: map[string]string{"Kubefile": "FROM scratch\nCOPY nope .\n"}, want: "nope"},
		{name: "symlink escape", ctx: escape, want: "outside the build context"},
		{name: "missing base", files: map[string]string{"Kubefile": "FROM not/there:v1\n"}, want: "FROM not/there:v1"},
		{name: "checksum mismatch", files: map[string]string{"Kubefile": "FROM scratch\nADD --checksum=" + sum.String() + " " + srv.URL + "/p.bin /p.bin\n"}, want: "checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.ctx
			if dir == "" {
				dir = writeContext(t, tt.files)
			}
			b := newBuilder(t)
			b.HTTP = srv.Client()
			before := blobNames(t, b.Store)
			_, err := b.Build(context.Background(), Request{Context: dir, Tags: []string{"e:1"}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if entries, _ := b.Store.List(context.Background()); len(entries) != 0 {
				t.Fatalf("failed build tagged %v", entries)
			}
			if len(blobNames(t, b.Store)) != len(before) {
				t.Fatal("failed build left blobs behind")
			}
		})
	}
}

func TestADDRemotePinned(t *testing.T) {
	payload := "payload"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, payload) }))
	defer srv.Close()
	dir := writeContext(t, map[string]string{"Kubefile": "FROM scratch\nADD --checksum=" + digest.FromString(payload).String() + " " + srv.URL + "/p.bin /opt/\n"})
	b := newBuilder(t)
	b.HTTP = srv.Client()
	if _, err := b.Build(context.Background(), Request{Context: dir, Tags: []string{"add:1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Cache.DownloadPath(digest.FromString(payload))); err != nil {
		t.Fatalf("download not cached: %v", err)
	}
}

// FROM an image in a registry: its platform is pulled into the store and
// built on; FROM an image without the sealer extension is refused, naming it.
func TestFromRegistry(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	// Build a base locally and push it with go-containerregistry.
	b := newBuilder(t)
	res, err := b.Build(ctx, Request{Context: "testdata/golden/context", Tags: []string{"base:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(b.Store.Root())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(res.Descriptor.Digest.String())
	img, err := lp.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := addr + "/cnstack/base:v1"
	if err := ggcrremote.Write(mustRef(t, baseRef), img); err != nil {
		t.Fatal(err)
	}
	// And a plain container image, which is no cluster image.
	plain, _ := random.Image(64, 1)
	plainRef := addr + "/library/plain:1"
	if err := ggcrremote.Write(mustRef(t, plainRef), plain); err != nil {
		t.Fatal(err)
	}

	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newBuilder(t)
	fresh.Remote = rc
	child := writeContext(t, map[string]string{"Kubefile": "FROM " + baseRef + "\nCOPY x .\nAPPCMDS web [\"kubectl apply -f web.yaml\"]\n", "x": "x"})
	r2, err := fresh.Build(ctx, Request{Context: child, Tags: []string{"child:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(readJSON(t, fresh.Store, r2.Descriptor.Digest), &m)
	if len(m.Layers) != 4 || m.Annotations[ocispec.AnnotationBaseImageDigest] != res.Descriptor.Digest.String() {
		t.Fatalf("child of a registry base: %d layers, base %s", len(m.Layers), m.Annotations[ocispec.AnnotationBaseImageDigest])
	}
	ext, _ := clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension])
	if ext.App("calico") == nil || ext.App("web") == nil || len(ext.Launch.AppNames) != 0 {
		t.Errorf("inherited extension %+v", ext)
	}

	ociPlain := mutate.MediaType(mutate.ConfigMediaType(plain, types.OCIConfigJSON), types.OCIManifestSchema1)
	ociRef := addr + "/library/plain-oci:1"
	if err := ggcrremote.Write(mustRef(t, ociRef), ociPlain); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{plainRef, ociRef} {
		bad := writeContext(t, map[string]string{"Kubefile": "FROM " + ref + "\nCOPY x .\n", "x": "x"})
		_, err = fresh.Build(ctx, Request{Context: bad, Tags: []string{"bad:v1"}})
		if err == nil || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "not a cluster image") {
			t.Fatalf("FROM a plain image: %v", err)
		}
	}
}

func mustRef(t *testing.T, s string) ggcrname.Reference {
	t.Helper()
	r, err := ggcrname.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Planning a stack before anything is built works even when a child refers
// to its parent's apps; after a build, the plan says nothing rebuilds.
func TestPlanStackBeforeAndAfterBuild(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"stack.yaml":    "name: s\nversion: v1\nrepository: reg.local/s\n",
		"base/Kubefile": "FROM scratch\nAPP a local://a.sh\nLAUNCH [\"a\"]\n",
		"base/a.sh":     "echo a",
		"kid/Kubefile":  "FROM base\nAPPCMDS a [\"bash a.sh --fast\"]\nLAUNCH [\"a\"]\n",
	})
	st, err := stack.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t)
	ctx := context.Background()
	plan, err := b.PlanStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !plan[0].Rebuild || !plan[1].Rebuild || plan[1].Reason != "base layer base rebuilds" {
		t.Fatalf("plan before build: %+v", plan)
	}
	if _, err := b.BuildStack(ctx, st, StackOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := b.PlanStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range after {
		if e.Rebuild || e.Keys["linux/amd64"] != plan[i].Keys["linux/amd64"] {
			t.Errorf("layer %s after build: rebuild=%v key %s (planned %s)", e.Layer.Name, e.Rebuild, e.Keys["linux/amd64"], plan[i].Keys["linux/amd64"])
		}
	}
}

// threeGenerations is a stack of base, kid and grandkid, each copying into a
// directory its parent made (etc/app) and the kid naming its parent's app.
func threeGenerations(t *testing.T) *stack.Stack {
	t.Helper()
	dir := writeContext(t, map[string]string{
		"stack.yaml":        "name: s\nversion: v1\nrepository: reg.local/s\n",
		"base/Kubefile":     "FROM scratch\nCOPY conf etc/app\nAPP a local://a.sh\nLAUNCH [\"a\"]\n",
		"base/conf/x.yaml":  "x: 1",
		"base/a.sh":         "echo a",
		"kid/Kubefile":      "FROM base\nCOPY more.yaml etc/app\nAPPCMDS a [\"bash a.sh --fast\"]\nLABEL tier=kid\n",
		"kid/more.yaml":     "more: 1",
		"grandkid/Kubefile": "FROM kid\nCOPY g.yaml etc/app\n",
		"grandkid/g.yaml":   "g: 1",
	})
	st, err := stack.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The stack plan's keys are the build's (issue 9: the pure key computation
// and the materialising step are separate functions; this pins that they
// agree), before anything is built and after, for a child copying into a
// directory only its parent has and naming its parent's apps.
func TestPlanKeysEqualBuildKeys(t *testing.T) {
	st := threeGenerations(t)
	b := newBuilder(t)
	ctx := t.Context()
	before, err := b.PlanStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	results, err := b.BuildStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := b.PlanStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		built := r.Result.Platforms[0].Key
		if before[i].Keys["linux/amd64"] != built || after[i].Keys["linux/amd64"] != built {
			t.Errorf("layer %s: planned %s before the build, %s after, built %s", r.Layer.Name, before[i].Keys["linux/amd64"], after[i].Keys["linux/amd64"], built)
		}
		if !before[i].Rebuild || after[i].Rebuild {
			t.Errorf("layer %s: rebuild %v before, %v after", r.Layer.Name, before[i].Rebuild, after[i].Rebuild)
		}
	}
	// The kid's file went into the parent's directory, as planned.
	var m ocispec.Manifest
	json.Unmarshal(readJSON(t, b.Store, results[1].Result.Descriptor.Digest), &m)
	if got := layerNames(t, b.Store, m.Layers[len(m.Layers)-1]); !strings.Contains(got, "etc/app/more.yaml") {
		t.Errorf("kid's layer holds %s, want etc/app/more.yaml", got)
	}
}

// A plan reads a FROM image in a registry where it is (nothing is pulled)
// and indexes its layers from there, so a COPY into one of its directories
// has the key the build (which pulls it) computes.
func TestPlanKeysOfARegistryBase(t *testing.T) {
	ctx := t.Context()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	b := newBuilder(t)
	res, err := b.Build(ctx, Request{Context: "testdata/golden/context", Tags: []string{"base:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	lp, _ := layout.FromPath(b.Store.Root())
	h, _ := v1.NewHash(res.Descriptor.Digest.String())
	img, err := lp.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := addr + "/cnstack/base:v1"
	if err := ggcrremote.Write(mustRef(t, baseRef), img); err != nil {
		t.Fatal(err)
	}
	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newBuilder(t)
	fresh.Remote = rc
	child := writeContext(t, map[string]string{"Kubefile": "FROM " + baseRef + "\nCOPY x etc\n", "x": "x"})
	plan, err := fresh.Plan(ctx, Request{Context: child})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Store.Resolve(ctx, baseRef); err == nil {
		t.Fatal("planning pulled the base into the store")
	}
	built, err := fresh.Build(ctx, Request{Context: child, Tags: []string{"child:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Platforms[0].Key != built.Platforms[0].Key {
		t.Errorf("planned key %s, built %s", plan.Platforms[0].Key, built.Platforms[0].Key)
	}
	var m ocispec.Manifest
	json.Unmarshal(readJSON(t, fresh.Store, built.Descriptor.Digest), &m)
	if got := layerNames(t, fresh.Store, m.Layers[len(m.Layers)-1]); got != "etc/x" && !strings.Contains(got, "etc/x") {
		t.Errorf("child layer holds %s, want etc/x (etc is a directory of the base)", got)
	}
}

// layerNames lists the names in a gzip layer of the store.
func layerNames(t *testing.T, s *store.Store, d ocispec.Descriptor) string {
	t.Helper()
	rc, err := s.Fetch(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return strings.Join(names, " ")
}

// A CI job builds its own layer on a parent another job pushed (ParentsFromStore):
// nothing else is built, a missing parent is an error naming it, and the layer's
// digest is the one a whole-stack build gives, its COPY into a directory only the
// stored parent has included.
func TestBuildStackParentsFromStore(t *testing.T) {
	st := threeGenerations(t)
	ctx := t.Context()
	whole, err := newBuilder(t).BuildStack(ctx, st, StackOptions{})
	if err != nil {
		t.Fatal(err)
	}

	job := newBuilder(t) // another runner: an empty store
	only := StackOptions{Layers: []string{"kid"}, ParentsFromStore: true}
	if _, err := job.BuildStack(ctx, st, only); err == nil || !strings.Contains(err.Error(), "layer kid builds on layer base, which is not in the local store as reg.local/s/base:v1") {
		t.Fatalf("kid without its parent: %v", err)
	}
	// The parent arrives (here built alone: FROM scratch needs nothing stored).
	if _, err := job.BuildStack(ctx, st, StackOptions{Layers: []string{"base"}, ParentsFromStore: true}); err != nil {
		t.Fatal(err)
	}
	results, err := job.BuildStack(ctx, st, only)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Layer.Name != "kid" {
		t.Fatalf("built %d layers, want kid alone: %+v", len(results), results)
	}
	if got, want := results[0].Result.Descriptor.Digest, whole[1].Result.Descriptor.Digest; got != want {
		t.Errorf("kid on a stored parent is %s, in a whole-stack build %s", got, want)
	}
	// And the grandkid on that stored kid.
	results, err = job.BuildStack(ctx, st, StackOptions{Layers: []string{"grandkid"}, ParentsFromStore: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := results[0].Result.Descriptor.Digest, whole[2].Result.Descriptor.Digest; got != want {
		t.Errorf("grandkid on a stored parent is %s, in a whole-stack build %s", got, want)
	}
	if _, err := job.BuildStack(ctx, st, StackOptions{ParentsFromStore: true}); err == nil {
		t.Error("ParentsFromStore without a layer name built something")
	}
}
