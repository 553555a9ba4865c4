package registrytree

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
)

var update = flag.Bool("update", false, "rewrite golden files")

// blobs is an in-memory BlobSource for the tests' fixed content.
type blobs map[digest.Digest][]byte

func (b blobs) Fetch(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	c, ok := b[d]
	if !ok {
		return nil, fmt.Errorf("blob %s: not found", d)
	}
	return io.NopCloser(bytes.NewReader(c)), nil
}

func (b blobs) put(mediaType string, content []byte) ocispec.Descriptor {
	d := digest.FromBytes(content)
	b[d] = content
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

func (b blobs) putJSON(t *testing.T, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	c, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b.put(mediaType, c)
}

// fixture builds, from fixed bytes: a multi-arch index (amd64 + arm64) of
// which only amd64 is stored, a plain image sharing a layer with it, and a
// digest-only reference to the plain image under another repository.
func fixture(t *testing.T) ([]Image, blobs) {
	b := blobs{}
	shared := b.put(ocispec.MediaTypeImageLayerGzip, []byte("shared layer"))
	manifest := func(cfg string, layers ...ocispec.Descriptor) ocispec.Descriptor {
		c := b.put(ocispec.MediaTypeImageConfig, []byte(cfg))
		return b.putJSON(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: c, Layers: layers,
		})
	}
	amdLayer := b.put(ocispec.MediaTypeImageLayerGzip, []byte("amd64 layer"))
	amd := manifest(`{"architecture":"amd64","os":"linux"}`, shared, amdLayer)
	arm := manifest(`{"architecture":"arm64","os":"linux"}`, b.put(ocispec.MediaTypeImageLayerGzip, []byte("arm64 layer")))
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := b.putJSON(t, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{amd, arm},
	})
	delete(b, arm.Digest) // only the build platform's child is stored
	plainLayer := b.put(ocispec.MediaTypeImageLayerGzip, []byte("plain layer"))
	plainCfg := b.put(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","config":{}}`))
	plain := b.putJSON(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: plainCfg,
		Layers: []ocispec.Descriptor{shared, plainLayer},
	})
	amdCfg := descOf(t, b, amd).Config
	images := []Image{
		{Ref: "registry.k8s.io/coredns/coredns:v1.12.1", Repository: "coredns/coredns", Tag: "v1.12.1", Top: idx,
			Manifests: []ocispec.Descriptor{idx, amd}, Blobs: []ocispec.Descriptor{amdCfg, shared, amdLayer}},
		{Ref: "docker.io/library/redis:7.2", Repository: "library/redis", Tag: "7.2", Top: plain,
			Manifests: []ocispec.Descriptor{plain}, Blobs: []ocispec.Descriptor{plainCfg, shared, plainLayer}},
		{Ref: "docker.io/cnstack/pinned@" + plain.Digest.String(), Repository: "cnstack/pinned", Top: plain,
			Blobs: []ocispec.Descriptor{plainCfg, shared, plainLayer}},
		// The same image again (found in two places) changes nothing.
		{Ref: "docker.io/library/redis:7.2", Repository: "library/redis", Tag: "7.2", Top: plain,
			Manifests: []ocispec.Descriptor{plain}, Blobs: []ocispec.Descriptor{plainCfg, shared, plainLayer}},
	}
	return images, b
}

func descOf(t *testing.T, b blobs, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(b[d.Digest], &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestEntriesGolden(t *testing.T) {
	images, _ := fixture(t)
	entries, err := Entries(images)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range entries {
		if e.Blob {
			fmt.Fprintf(&sb, "%s (blob, %d bytes)\n", e.Path, e.Size)
		} else {
			fmt.Fprintf(&sb, "%s = %s\n", e.Path, e.Link)
			if e.Digest != digest.FromString(e.Link) || e.Size != int64(len(e.Link)) {
				t.Errorf("%s: size/digest do not describe the link text", e.Path)
			}
		}
	}
	golden(t, "entries.golden", sb.String())

	// Input order must not matter.
	rev := append([]Image(nil), images...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	again, err := Entries(rev)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(entries) {
		t.Errorf("Entries depends on the order of its input")
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	images, src := fixture(t)
	entries, err := Entries(images)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := WriteDir(context.Background(), root, entries, src); err != nil {
		t.Fatal(err)
	}
	// Link files carry no newline, as distribution writes them.
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(TagLinkPath("library/redis", "7.2"))))
	if err != nil || !strings.HasPrefix(string(b), "sha256:") || strings.HasSuffix(string(b), "\n") {
		t.Fatalf("tag link = %q, %v", b, err)
	}
	tree, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "tree.golden", tree.Listing())
	if p := tree.Problems(); len(p) > 0 {
		t.Errorf("problems in a complete tree: %v", p)
	}
	if r := tree.Repository("cnstack/pinned"); r == nil || len(r.Tags) != 0 || len(r.Revisions) != 1 {
		t.Errorf("digest-only reference: %+v, want one revision and no tag", r)
	}
	// Every blob written is the content it claims.
	for _, d := range tree.Blobs {
		c, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(BlobPath(d))))
		if err != nil || digest.FromBytes(c) != d {
			t.Errorf("blob %s: content digest %s, %v", d, digest.FromBytes(c), err)
		}
	}
	// A missing blob is reported against the link that needs it.
	amdLayer := digest.FromString("amd64 layer")
	os.Remove(filepath.Join(root, filepath.FromSlash(BlobPath(amdLayer))))
	tree, err = Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if p := tree.Problems(); len(p) != 1 || !strings.Contains(p[0], "coredns/coredns: layer link "+amdLayer.String()) {
		t.Errorf("Problems = %q", p)
	}
}

func TestEntriesTagConflict(t *testing.T) {
	images, _ := fixture(t)
	other := images[0]
	other.Ref = "quay.io/library/redis:7.2"
	other.Repository, other.Tag = "library/redis", "7.2"
	_, err := Entries([]Image{images[1], other})
	if err == nil || !strings.Contains(err.Error(), "docker.io/library/redis:7.2") || !strings.Contains(err.Error(), "quay.io/library/redis:7.2") {
		t.Fatalf("conflicting tag: err = %v, want both references named", err)
	}
}

func TestEntriesRefusesBadRepository(t *testing.T) {
	images, _ := fixture(t)
	for _, repo := range []string{"", "../etc", "a//b", "a/_uploads", "Upper/case"} {
		im := images[1]
		im.Repository = repo
		if _, err := Entries([]Image{im}); err == nil {
			t.Errorf("repository %q accepted", repo)
		}
	}
}

func TestLocate(t *testing.T) {
	tests := []struct{ ref, repo, tag string }{
		{"nginx", "library/nginx", "latest"},
		{"docker.io/library/nginx:1.25", "library/nginx", "1.25"},
		{"registry.k8s.io/kube-apiserver:v1.22.15", "kube-apiserver", "v1.22.15"},
		{"registry.k8s.io/coredns/coredns:v1.8.4", "coredns/coredns", "v1.8.4"},
		{"docker.io/sealerio/lvscare:v1.1.3-beta.8", "sealerio/lvscare", "v1.1.3-beta.8"},
		{"ack-agility-registry.cn-shanghai.cr.aliyuncs.com/ecp_builder/pause:3.5", "ecp_builder/pause", "3.5"},
		{"127.0.0.1:5000/team/app:v1", "team/app", "v1"},
		{"quay.io/x/y@sha256:" + strings.Repeat("a", 64), "x/y", ""},
		{"quay.io/x/y:2@sha256:" + strings.Repeat("a", 64), "x/y", "2"},
	}
	for _, tt := range tests {
		repo, tag, err := Locate(tt.ref)
		if err != nil || repo != tt.repo || tag != tt.tag {
			t.Errorf("Locate(%q) = %q, %q, %v; want %q, %q", tt.ref, repo, tag, err, tt.repo, tt.tag)
		}
	}
	if _, _, err := Locate("Docker.io/UPPER/x"); err == nil {
		t.Errorf("upper-case repository accepted")
	}
}

// TestServedByDistribution serves a written tree with the real registry
// (distribution v3, read-only) and fetches every manifest and blob through
// its API by tag and by digest.
func TestServedByDistribution(t *testing.T) {
	images, src := fixture(t)
	entries, err := Entries(images)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := WriteDir(context.Background(), root, entries, src); err != nil {
		t.Fatal(err)
	}
	reg := regproc.Start(t, regproc.Options{Root: root})
	get := func(path, accept string) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, reg.URL()+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	accept := strings.Join([]string{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest}, ",")
	for _, im := range images {
		refs := []string{im.Top.Digest.String()}
		if im.Tag != "" {
			refs = append(refs, im.Tag)
		}
		for _, r := range refs {
			code, body, h := get("/v2/"+im.Repository+"/manifests/"+r, accept)
			if code != http.StatusOK || digest.FromBytes(body) != im.Top.Digest || h.Get("Docker-Content-Digest") != im.Top.Digest.String() {
				t.Errorf("%s:%s: HTTP %d, digest %s, want %s: %s", im.Repository, r, code, digest.FromBytes(body), im.Top.Digest, body)
			}
		}
		for _, m := range im.Manifests {
			if code, body, _ := get("/v2/"+im.Repository+"/manifests/"+m.Digest.String(), accept); code != http.StatusOK || digest.FromBytes(body) != m.Digest {
				t.Errorf("%s@%s: HTTP %d", im.Repository, m.Digest, code)
			}
		}
		for _, b := range im.Blobs {
			if code, body, _ := get("/v2/"+im.Repository+"/blobs/"+b.Digest.String(), ""); code != http.StatusOK || digest.FromBytes(body) != b.Digest {
				t.Errorf("%s blob %s: HTTP %d", im.Repository, b.Digest, code)
			}
		}
	}
	// A blob is served only from the repositories that link it.
	redisOnly := digest.FromString("plain layer")
	if code, _, _ := get("/v2/coredns/coredns/blobs/"+redisOnly.String(), ""); code != http.StatusNotFound {
		t.Errorf("blob of library/redis served from coredns/coredns: HTTP %d", code)
	}
}
