package sbom_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/cnstack/cnstack/internal/testutil/zstdimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/sign/sbom"
	"github.com/cnstack/cnstack/pkg/sign/signtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestScanStandardImage(t *testing.T) {
	ctx := t.Context()
	img := signtest.Standard()
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "cluster:v1"); err != nil {
		t.Fatal(err)
	}
	c, err := sbom.Scan(ctx, mem, img.Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Platform.OS + "/" + c.Platform.Architecture; got != "linux/amd64" {
		t.Errorf("platform %s, want linux/amd64", got)
	}

	// bin/: obsolete whited out, helm replaced by the upper layer, the hard
	// link has its target's content.
	wantFiles := map[string]string{
		"bin/helm":         sha("helm v3.12 for amd64"),
		"bin/kubectl":      sha("kubectl for amd64"),
		"bin/kubectl-link": sha("kubectl for amd64"),
	}
	if len(c.Files) != len(wantFiles) {
		t.Errorf("files %+v, want %v", c.Files, wantFiles)
	}
	for i, f := range c.Files {
		if wantFiles[f.Path] != f.SHA256 {
			t.Errorf("file %s sha256 %s, want %s", f.Path, f.SHA256, wantFiles[f.Path])
		}
		if i > 0 && c.Files[i-1].Path >= f.Path {
			t.Errorf("files not sorted: %s before %s", c.Files[i-1].Path, f.Path)
		}
		if f.SHA1 == "" || f.Size == 0 {
			t.Errorf("file %s lacks sha1 or size: %+v", f.Path, f)
		}
	}

	wantCharts := []sbom.Chart{
		{Path: "application/apps/web", Name: "web", Version: "0.1.0"},
		{Path: "charts/calico", Name: "calico", Version: "v3.26.1", AppVersion: "v3.26.1"},
	}
	if len(c.Charts) != len(wantCharts) {
		t.Fatalf("charts %+v, want %+v", c.Charts, wantCharts)
	}
	for i := range wantCharts {
		if c.Charts[i] != wantCharts[i] {
			t.Errorf("chart %d = %+v, want %+v", i, c.Charts[i], wantCharts[i])
		}
	}

	tests := []struct {
		name, repo, tag string
		hasDigest       bool
		manifests       int
		app             string
	}{
		{"calico/node:v3.26.1", "calico/node", "v3.26.1", true, 1, ""},
		{"docker.io/library/nginx:1.25", "library/nginx", "1.25", true, 1, ""}, // index: only the stored child
		{"docker.io/library/redis:7", "library/redis", "7", false, 1, "cache"}, // listed, not in the tree
		{"registry.k8s.io/pause:3.9", "pause", "3.9", true, 1, ""},
	}
	if len(c.Images) != len(tests) {
		t.Fatalf("images %+v, want %d", c.Images, len(tests))
	}
	for i, tt := range tests {
		got := c.Images[i]
		t.Run(tt.name, func(t *testing.T) {
			if got.Name != tt.name || got.Repository != tt.repo || got.Tag != tt.tag || got.AppName != tt.app {
				t.Errorf("got %+v", got)
			}
			if (got.Digest != "") != tt.hasDigest {
				t.Errorf("digest %q, want present=%v", got.Digest, tt.hasDigest)
			}
			if len(got.Manifests) != tt.manifests {
				t.Fatalf("manifests %+v, want %d", got.Manifests, tt.manifests)
			}
			if a := got.Manifests[0].Platform.Architecture; a != "amd64" {
				t.Errorf("platform arch %q, want amd64", a)
			}
		})
	}
	// nginx's tag points at an index; the SBOM also names the stored child.
	nginx := c.Images[1]
	if nginx.Manifests[0].Digest == nginx.Digest || nginx.Manifests[0].Digest == "" {
		t.Errorf("nginx child manifest %q should differ from the index %s", nginx.Manifests[0].Digest, nginx.Digest)
	}
}

// forging serves other bytes for one blob, as a corrupt store or a lying
// registry would.
type forging struct {
	content.Fetcher
	target digest.Digest
	data   []byte
}

func (f forging) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if d.Digest == f.target {
		return io.NopCloser(bytes.NewReader(f.data)), nil
	}
	return f.Fetcher.Fetch(ctx, d)
}

func TestScanRejectsCorruptLayer(t *testing.T) {
	ctx := t.Context()
	img := signtest.Build([]signtest.Platform{{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Layers: [][]signtest.Entry{{{Name: "bin/x", Body: "x"}}}}})
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "x:v1"); err != nil {
		t.Fatal(err)
	}
	var layer ocispec.Descriptor
	for _, b := range img.Blobs {
		if b.Desc.MediaType == ocispec.MediaTypeImageLayerGzip {
			layer = b.Desc
		}
	}
	forged, _ := signtest.Layer([]signtest.Entry{{Name: "bin/x", Body: "y"}})
	if _, err := sbom.Scan(ctx, forging{mem, layer.Digest, forged}, img.Root); err == nil || !strings.Contains(err.Error(), layer.Digest.String()) {
		t.Fatalf("scan of a corrupt layer: err = %v, want an error naming %s", err, layer.Digest)
	}
	if _, err := sbom.Scan(ctx, mem, img.Root); err != nil {
		t.Fatalf("scan of the intact image: %v", err)
	}
}

func TestOpaqueWhiteout(t *testing.T) {
	ctx := t.Context()
	img := signtest.Build([]signtest.Platform{{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Layers: [][]signtest.Entry{
			{{Name: "bin/a", Body: "a"}, {Name: "bin/sub/b", Body: "b"}, {Name: "charts/x/Chart.yaml", Body: "name: x\nversion: 1\n"}},
			{{Name: "bin/sub/.wh..wh..opq"}, {Name: "bin/sub/c", Body: "c"}, {Name: "charts/.wh.x"}},
		}}})
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "x:v1"); err != nil {
		t.Fatal(err)
	}
	c, err := sbom.Scan(ctx, mem, img.Root)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range c.Files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, ","); got != "bin/a,bin/sub/c" {
		t.Errorf("files %s, want bin/a,bin/sub/c", got)
	}
	if len(c.Charts) != 0 {
		t.Errorf("whited-out chart still listed: %+v", c.Charts)
	}
}

// TestDocumentGolden pins the SPDX document of the standard image's index:
// the same image must always give the same bytes.
func TestDocumentGolden(t *testing.T) {
	ctx := t.Context()
	img := signtest.Standard()
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "cluster:v1"); err != nil {
		t.Fatal(err)
	}
	var parts []sbom.Part
	for _, m := range img.Manifests {
		c, err := sbom.Scan(ctx, mem, m)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, sbom.Part{Digest: m.Digest, Contents: c})
	}
	subject := sbom.Subject{Name: "registry.example/cnstack/cluster", Tag: "v1", Digest: img.Root.Digest, MediaType: img.Root.MediaType}
	build := func(ps []sbom.Part) []byte {
		doc, err := sbom.Build(subject, ps, sbom.Options{Created: time.Unix(0, 0), Tool: "cnstack-test"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := doc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got := build(parts)
	// Part order must not matter.
	if rev := build([]sbom.Part{parts[1], parts[0]}); !bytes.Equal(rev, got) {
		t.Error("document depends on the order of platform parts")
	}
	golden := filepath.Join("testdata", "golden", "index.spdx.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SPDX document differs from %s (go test -update rewrites it):\n%s", golden, got)
	}

	// Structural checks an SPDX consumer relies on.
	var doc sbom.Document
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("header %+v", doc)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate SPDXID %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	for _, f := range doc.Files {
		if ids[f.SPDXID] {
			t.Errorf("duplicate SPDXID %s", f.SPDXID)
		}
		ids[f.SPDXID] = true
	}
	for _, r := range doc.Relationships {
		if !ids[r.SPDXElementID] || !ids[r.RelatedSPDXElement] {
			t.Errorf("relationship %+v names an unknown element", r)
		}
	}
	// Two platforms × (4 images + 2 charts) + root + 2 platform packages.
	if len(doc.Packages) != 2*6+3 {
		t.Errorf("%d packages, want %d", len(doc.Packages), 2*6+3)
	}
	if len(doc.Files) != 6 {
		t.Errorf("%d files, want 6", len(doc.Files))
	}
	for _, want := range []string{`"name": "docker.io/library/nginx:1.25"`, `"name": "calico"`, `"versionInfo": "v3.26.1"`, `"fileName": "./bin/kubectl"`, sha("kubectl for arm64"), "arch=arm64"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("document lacks %s", want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		subject sbom.Subject
		parts   []sbom.Part
	}{
		{"no digest", sbom.Subject{Name: "x"}, []sbom.Part{{Digest: digest.FromString("a"), Contents: &sbom.Contents{}}}},
		{"no parts", sbom.Subject{Name: "x", Digest: digest.FromString("a")}, nil},
		{"no contents", sbom.Subject{Name: "x", Digest: digest.FromString("a")}, []sbom.Part{{Digest: digest.FromString("a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sbom.Build(tt.subject, tt.parts, sbom.Options{}); err == nil {
				t.Error("Build succeeded")
			}
		})
	}
}

// BenchmarkScan measures streaming a layer with one large bin/ file
// (gunzip, tar, sha256 and sha1).
func BenchmarkScan(b *testing.B) {
	ctx := b.Context()
	body := make([]byte, 64<<20)
	for i := range body {
		body[i] = byte(i * 7 / 13)
	}
	img := signtest.Build([]signtest.Platform{{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Layers: [][]signtest.Entry{{{Name: "bin/big", Body: string(body)}}}}})
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "x:v1"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sbom.Scan(ctx, mem, img.Root); err != nil {
			b.Fatal(err)
		}
	}
}

// Issue 9: four layer decoders disagreed on zstd. The SBOM of the standard
// image with zstd layers must list exactly what the gzip one does.
func TestScanZstdImageAsGzip(t *testing.T) {
	ctx := t.Context()
	img := signtest.Standard()
	mem := memory.New()
	if err := signtest.Push(ctx, mem, img, "cluster:v1"); err != nil {
		t.Fatal(err)
	}
	zroot, err := zstdimage.Recompress(ctx, mem, "cluster:v1", "cluster:zstd")
	if err != nil {
		t.Fatal(err)
	}
	zchildren, err := content.Successors(ctx, mem, zroot)
	if err != nil || len(zchildren) != len(img.Manifests) {
		t.Fatalf("zstd index children %v, %v; want %d", zchildren, err, len(img.Manifests))
	}
	for i, m := range img.Manifests {
		want, err := sbom.Scan(ctx, mem, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sbom.Scan(ctx, mem, zchildren[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Files) == 0 || len(want.Images) == 0 {
			t.Fatalf("the gzip image's SBOM is empty: %+v", want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: zstd SBOM contents\n%+v\nwant\n%+v", oci.PlatformString(*m.Platform), got, want)
		}
	}
}

// TestFormat pins how an attested document is printed: as Marshal prints
// a computed one when that loses nothing (so "sbom" prints the same bytes
// whether it read or computed the document), else indented as it is.
func TestFormat(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "golden", "index.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(golden, &generic); err != nil {
		t.Fatal(err)
	}
	compact, err := json.Marshal(generic) // keys sorted, no indentation: another tool's layout
	if err != nil {
		t.Fatal(err)
	}
	generic["x-unknown"] = "kept"
	extra, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want func(got []byte) bool
	}{
		{"cnstack's own bytes", golden, func(got []byte) bool { return bytes.Equal(got, golden) }},
		{"same document, other layout", compact, func(got []byte) bool { return bytes.Equal(got, golden) }},
		{"a field Document lacks is kept", extra, func(got []byte) bool {
			return bytes.Contains(got, []byte(`"x-unknown": "kept"`)) && bytes.HasSuffix(got, []byte("}\n"))
		}},
		{"not JSON is returned as is", []byte("not json"), func(got []byte) bool { return string(got) == "not json\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sbom.Format(tc.raw); !tc.want(got) {
				t.Errorf("Format gave:\n%.400s", got)
			}
		})
	}
}
