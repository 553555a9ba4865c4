package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

var ctx = context.Background()

// sampleStore builds the sample stack (without container images) once per test.
func sampleStore(t *testing.T, platforms ...ocispec.Platform) *store.Store {
	t.Helper()
	home := t.TempDir()
	s, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	st, err := stack.Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(platforms) > 0 {
		st.Platforms = platforms
	}
	b := &build.Builder{Store: s, Cache: c}
	if _, err := b.BuildStack(ctx, st, build.StackOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	top  = "registry.cnstack.local/cnstack/cnstack:v0.1.0"
	base = "registry.cnstack.local/cnstack/base:v0.1.0"
	mid  = "registry.cnstack.local/cnstack/middleware:v0.1.0"
)

// addCompanion tags a fake cosign signature for ref's manifest, as
// `cnstack sign` does, so save must carry it.
func addCompanion(t *testing.T, s *store.Store, ref string) string {
	t.Helper()
	root, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := s.PushBytes(ctx, "application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"critical":{"image":{"docker-manifest-digest":"`+root.Digest.String()+`"}}}`))
	cfg, _ := s.PushBytes(ctx, ocispec.MediaTypeImageConfig, []byte(`{}`))
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfg.Digest.String() + `","size":2},"layers":[{"mediaType":"` + payload.MediaType + `","digest":"` + payload.Digest.String() + `","size":` + strconv.FormatInt(payload.Size, 10) + `}]}`
	md, _ := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(m))
	name := strings.SplitN(ref, ":v", 2)[0]
	tag := name + ":sha256-" + root.Digest.Encoded() + ".sig"
	if err := s.Tag(ctx, md, tag); err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := sampleStore(t)
	sig := addCompanion(t, s, top)
	out := filepath.Join(t.TempDir(), "b.tar")
	rep, err := Save(ctx, s, SaveOptions{Output: out, Refs: []string{top, base}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Meta.Images) != 2 || len(rep.Meta.Images[1].Companions) != 1 {
		t.Fatalf("meta %+v", rep.Meta)
	}
	// Same images, same bytes.
	out2 := filepath.Join(t.TempDir(), "b2.tar")
	if _, err := Save(ctx, s, SaveOptions{Output: out2, Refs: []string{base, top}}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Fatal("saving the same images twice gave different bundles")
	}
	crep, err := Check(ctx, CheckOptions{Input: out})
	if err != nil || !crep.OK() || crep.Blobs != rep.Blobs {
		t.Fatalf("check: %v %+v", err, crep)
	}

	dst, _ := store.Open(t.TempDir())
	lrep, err := Load(ctx, dst, LoadOptions{Input: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{top, base, sig} {
		want, _ := s.Resolve(ctx, ref)
		got, err := dst.Resolve(ctx, ref)
		if err != nil || got.Digest != want.Digest {
			t.Errorf("%s after load: %v %v", ref, got.Digest, err)
		}
	}
	if lrep.Blobs != rep.Blobs {
		t.Errorf("load wrote %d blobs, bundle has %d", lrep.Blobs, rep.Blobs)
	}
	// Loading again writes nothing.
	again, err := Load(ctx, dst, LoadOptions{Input: out})
	if err != nil || again.Blobs != 0 || again.Present != rep.Blobs {
		t.Fatalf("reload: %v %+v", err, again)
	}
}

func TestSplitAndZstd(t *testing.T) {
	s := sampleStore(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar.zst")
	rep, err := Save(ctx, s, SaveOptions{Output: out, Refs: []string{top}, Compress: "zstd", Split: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) < 3 || !strings.HasSuffix(rep.Files[len(rep.Files)-1], ".sha256") {
		t.Fatalf("files %v", rep.Files)
	}
	if _, err := Check(ctx, CheckOptions{Input: out}); err != nil {
		t.Fatal(err)
	}
	dst, _ := store.Open(t.TempDir())
	if _, err := Load(ctx, dst, LoadOptions{Input: out}); err != nil {
		t.Fatal(err)
	}
	// A corrupt part is named.
	p1 := out + ".001"
	b, _ := os.ReadFile(p1)
	b[10] ^= 0xff
	os.WriteFile(p1, b, 0o644)
	_, err = Check(ctx, CheckOptions{Input: out})
	if err == nil || !strings.Contains(err.Error(), "b.tar.zst.001") {
		t.Fatalf("corrupt part: %v", err)
	}
	// A missing part is named.
	os.Remove(out + ".000")
	if _, err := Check(ctx, CheckOptions{Input: out}); err == nil || !strings.Contains(err.Error(), ".000") {
		t.Fatalf("missing part: %v", err)
	}
}

// flipByte corrupts one byte inside the content of blob d in an uncompressed bundle.
func flipByte(t *testing.T, path string, d digest.Digest) {
	t.Helper()
	b, _ := os.ReadFile(path)
	tr := tar.NewReader(bytes.NewReader(b))
	var off int64
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("blob %s not found: %v", d, err)
		}
		if h.Name == blobsPrefix+d.Encoded() {
			// Position of the content: scan for it (content follows the header).
			content, _ := io.ReadAll(tr)
			off = int64(bytes.Index(b, content))
			break
		}
	}
	b[off+5] ^= 0x01
	os.WriteFile(path, b, 0o644)
}

func TestCorruptionRefused(t *testing.T) {
	s := sampleStore(t)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := Save(ctx, s, SaveOptions{Output: out, Refs: []string{base}}); err != nil {
		t.Fatal(err)
	}
	root, _ := s.Resolve(ctx, base)
	children, _ := s.Children(ctx, root)
	victim := children[len(children)-1].Digest // a layer
	flipByte(t, out, victim)
	_, err := Check(ctx, CheckOptions{Input: out})
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "blob "+victim.String()+" is corrupt") {
		t.Fatalf("check of a flipped byte: %v", err)
	}
	dst, _ := store.Open(t.TempDir())
	_, err = Load(ctx, dst, LoadOptions{Input: out})
	if err == nil || !strings.Contains(err.Error(), victim.String()) {
		t.Fatalf("load of a flipped byte: %v", err)
	}
	if entries, _ := dst.List(ctx); len(entries) != 0 {
		t.Fatal("a failed load tagged images")
	}
	if ok, _ := dst.Exists(ctx, ocispec.Descriptor{Digest: victim}); ok {
		t.Fatal("the corrupt blob was stored")
	}
}

// hostile writes a tar with the given entries.
func hostile(t *testing.T, hdrs ...*tar.Header) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evil.tar")
	f, _ := os.Create(p)
	tw := tar.NewWriter(f)
	for _, h := range hdrs {
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	f.Close()
	return p
}

func TestHostileArchivesRefused(t *testing.T) {
	zero := strings.Repeat("0", 64)
	tests := []struct {
		name string
		hdr  *tar.Header
	}{
		{"dotdot", &tar.Header{Name: "../../etc/passwd", Typeflag: tar.TypeReg, Size: 1}},
		{"absolute", &tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1}},
		{"symlink", &tar.Header{Name: "blobs/sha256/" + zero, Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}},
		{"hard link", &tar.Header{Name: "blobs/sha256/" + zero, Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}},
		{"stray file", &tar.Header{Name: "run.sh", Typeflag: tar.TypeReg, Size: 1}},
		{"absurd size", &tar.Header{Name: "index.json", Typeflag: tar.TypeReg, Size: 1 << 40}},
		{"device", &tar.Header{Name: "blobs/sha256/" + zero, Typeflag: tar.TypeChar}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := hostile(t, tt.hdr)
			dst, _ := store.Open(t.TempDir())
			if _, err := Load(ctx, dst, LoadOptions{Input: p}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("load: %v", err)
			}
			if _, err := Check(ctx, CheckOptions{Input: p}); err == nil {
				t.Fatal("check passed a hostile archive")
			}
		})
	}
}

func TestDelta(t *testing.T) {
	s := sampleStore(t)
	dir := t.TempDir()
	old := filepath.Join(dir, "old.tar")
	if _, err := Save(ctx, s, SaveOptions{Output: old, Refs: []string{mid}}); err != nil {
		t.Fatal(err)
	}
	since, err := BlobsOfBundle(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	delta := filepath.Join(dir, "delta.tar")
	rep, err := Save(ctx, s, SaveOptions{Output: delta, Refs: []string{top}, Since: since, SinceName: old})
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.tar")
	frep, _ := Save(ctx, s, SaveOptions{Output: full, Refs: []string{top}})
	if rep.Omitted == 0 || rep.Blobs >= frep.Blobs || rep.Bytes >= frep.Bytes {
		t.Fatalf("delta %d blobs / %d bytes, full %d / %d", rep.Blobs, rep.Bytes, frep.Blobs, frep.Bytes)
	}
	// Same as a delta against the store ref.
	bySince, _ := BlobsOfRefs(ctx, s, []string{mid})
	if len(bySince) != len(since) {
		t.Fatalf("delta base from ref has %d blobs, from bundle %d", len(bySince), len(since))
	}
	if c, err := Check(ctx, CheckOptions{Input: delta}); err != nil || c.Omitted != rep.Omitted {
		t.Fatalf("check delta: %v %+v", err, c)
	}
	// Alone, the delta cannot load.
	alone, _ := store.Open(t.TempDir())
	if _, err := Load(ctx, alone, LoadOptions{Input: delta}); err == nil || !strings.Contains(err.Error(), "load that first") {
		t.Fatalf("delta alone: %v", err)
	}
	// Where OLD is present, NEW arrives with the identical digest.
	dst, _ := store.Open(t.TempDir())
	if _, err := Load(ctx, dst, LoadOptions{Input: old}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, dst, LoadOptions{Input: delta}); err != nil {
		t.Fatal(err)
	}
	want, _ := s.Resolve(ctx, top)
	got, err := dst.Resolve(ctx, top)
	if err != nil || got.Digest != want.Digest {
		t.Fatalf("after delta: %v %v", got.Digest, err)
	}
}

func TestSealerFormat(t *testing.T) {
	amd, arm := ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"}
	s := sampleStore(t, amd, arm)
	dir := t.TempDir()
	out := filepath.Join(dir, "sealer.tar")
	if _, err := Save(ctx, s, SaveOptions{Output: out, Refs: []string{base}, Format: FormatSealer}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	f.Close()
	if names[0] != "Metadata" || len(names) != 3 || !strings.HasSuffix(names[1], ".tar") {
		t.Fatalf("multi-platform sealer archive: %v", names)
	}
	dst, _ := store.Open(t.TempDir())
	rep, err := Load(ctx, dst, LoadOptions{Input: out})
	if err != nil || len(rep.Images) != 1 || rep.Images[0].Ref != base {
		t.Fatalf("load sealer archive: %v %+v", err, rep)
	}
	if err := func() error {
		_, err := Save(ctx, s, SaveOptions{Output: out, Refs: []string{base, top}, Format: FormatSealer})
		return err
	}(); err == nil {
		t.Fatal("sealer format with two images accepted")
	}
}
