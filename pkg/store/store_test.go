package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

func desc(mt, content string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(content), Size: int64(len(content))}
}

func TestPushFetchVerify(t *testing.T) {
	ctx := t.Context()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := desc("application/octet-stream", "hello")
	if err := s.Push(ctx, d, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, d); !ok {
		t.Fatal("blob not found after push")
	}
	rc, err := s.Fetch(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Fatalf("fetched %q", b)
	}
	// Wrong content for a digest is refused and leaves nothing behind.
	bad := desc("application/octet-stream", "expected")
	err = s.Push(ctx, bad, strings.NewReader("tampered"))
	if !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, content.ErrMismatchedDigest) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("push of wrong content: err = %v, want ErrDigestMismatch (content.ErrMismatchedDigest)", err)
	}
	if ok, _ := s.Exists(ctx, bad); ok {
		t.Fatal("corrupt blob committed")
	}
	if _, err := os.Stat(filepath.Join(s.Root(), ingestDir, bad.Digest.Encoded()+".partial")); err == nil {
		t.Fatal("mismatched partial kept for resuming")
	}
	if _, err := s.Fetch(ctx, desc("", "missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fetch missing: %v", err)
	}
}

func TestIngestResumes(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	content := strings.Repeat("0123456789", 1000)
	d := desc("application/octet-stream", content)
	w, err := s.Ingest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content[:4000]))
	w.Close() // interrupted
	if ok, _ := s.Exists(ctx, d); ok {
		t.Fatal("partial blob visible")
	}
	w, err = s.Ingest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 4000 {
		t.Fatalf("resume offset = %d, want 4000", w.Offset())
	}
	w.Write([]byte(content[4000:]))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadBlob(ctx, d.Digest)
	if err != nil || string(b) != content {
		t.Fatalf("resumed blob wrong: %v", err)
	}
}

// A partial blob an earlier attempt left wrong (a registry that sent bad
// bytes, a disk that lied) fails the resumed blob's digest check: Push drops
// it and, the source being seekable, writes the blob again from the start.
func TestPushRestartsAWrongPartial(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	good := strings.Repeat("0123456789", 1000)
	d := desc("application/octet-stream", good)
	w, err := s.Ingest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(strings.Repeat("x", 4000))) // wrong bytes, interrupted
	w.Close()
	if err := s.Push(ctx, d, strings.NewReader(good)); err != nil {
		t.Fatalf("push over a wrong partial: %v", err)
	}
	if b, err := s.ReadBlob(ctx, d.Digest); err != nil || string(b) != good {
		t.Fatalf("blob after restart: %v", err)
	}
	// A source that cannot seek cannot start over: the mismatch is reported.
	d2 := desc("application/octet-stream", good+"!")
	w, _ = s.Ingest(ctx, d2)
	w.Write([]byte(strings.Repeat("x", 4000)))
	w.Close()
	err = s.Push(ctx, d2, io.MultiReader(strings.NewReader(good+"!")))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("push over a wrong partial from a stream: %v", err)
	}
	if err := s.Push(ctx, d2, io.MultiReader(strings.NewReader(good+"!"))); err != nil {
		t.Fatalf("the wrong partial was not dropped: %v", err)
	}
}

func TestCreateComputesDigest(t *testing.T) {
	s, _ := Open(t.TempDir())
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "layer")
	got, err := w.CommitDescriptor("x")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest.FromString("layer") || got.Size != 5 || got.MediaType != "x" {
		t.Fatalf("descriptor %+v", got)
	}
}

func TestTagResolveUntag(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	// A manifest whose config is not in the store is not tagged.
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		digest.FromString("{}").String() + `","size":2},"layers":[]}`
	incomplete, err := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, incomplete, "cnstack/base:v0"); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("tagging an incomplete image: %v", err)
	}
	md := image(t, s, "base")
	if err := s.Tag(ctx, md, "cnstack/base:v1"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"cnstack/base:v1", "docker.io/cnstack/base:v1", "cnstack/base@" + md.Digest.String(), md.Digest.String()} {
		got, err := s.Resolve(ctx, ref)
		if err != nil || got.Digest != md.Digest || got.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("Resolve(%q) = %+v, %v", ref, got, err)
		}
	}
	if _, err := s.Resolve(ctx, "cnstack/base:v2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve missing tag: %v", err)
	}
	if err := s.Tag(ctx, desc(ocispec.MediaTypeImageManifest, "nope"), "a:b"); err == nil {
		t.Error("tagging a missing manifest succeeded")
	}
	if err := s.Untag(ctx, "cnstack/base:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, "cnstack/base:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second untag: %v", err)
	}
}

func TestPruneKeepsReachable(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	cfg, _ := s.PushBytes(ctx, ocispec.MediaTypeImageConfig, []byte("{}"))
	layer, _ := s.PushBytes(ctx, ocispec.MediaTypeImageLayerGzip, []byte("layer"))
	orphan, _ := s.PushBytes(ctx, ocispec.MediaTypeImageLayerGzip, []byte("orphan"))
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":5}]}`,
		ocispec.MediaTypeImageManifest, cfg.MediaType, cfg.Digest, layer.MediaType, layer.Digest)
	md, _ := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(m))
	if err := s.Tag(ctx, md, "x:1"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 1 || res.Bytes != 6 {
		t.Fatalf("prune result %+v, want 1 blob of 6 bytes", res)
	}
	for _, d := range []ocispec.Descriptor{cfg, layer, md} {
		if ok, _ := s.Exists(ctx, d); !ok {
			t.Errorf("prune removed reachable %s", d.Digest)
		}
	}
	if ok, _ := s.Exists(ctx, orphan); ok {
		t.Error("prune kept orphan")
	}
}

// Several store handles (as several processes would have) tag concurrently;
// no update may be lost and index.json must stay valid.
func TestConcurrentTagging(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s0, _ := Open(root)
	md := image(t, s0, "concurrent")
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		s, _ := Open(root)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := s.Tag(ctx, md, fmt.Sprintf("repo/w%d:%d", w, i)); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	entries, err := s0.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 100 {
		t.Fatalf("%d tags after concurrent tagging, want 100", len(entries))
	}
}

// image stores a small, whole image (config and one layer) and returns its
// manifest's descriptor.
func image(t *testing.T, s *Store, content string) ocispec.Descriptor {
	t.Helper()
	ctx := t.Context()
	cfg, err := s.PushBytes(ctx, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["`+content+`"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := s.PushBytes(ctx, ocispec.MediaTypeImageLayerGzip, []byte("layer of "+content))
	if err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, cfg.Digest, cfg.Size, ocispec.MediaTypeImageLayerGzip, layer.Digest, layer.Size)
	md, err := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	return md
}
