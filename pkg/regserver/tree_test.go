package regserver_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeSealerStyleTree writes a registry tree the way sealer does (sealer
// format §3.2): straight through distribution's storage API, with no HTTP
// server, repository names without their registry domain, and a multi-arch
// index whose other platforms' manifests are absent. It returns the image
// (linux/amd64) and the index.
func writeSealerStyleTree(t *testing.T, root string) (img v1.Image, index digest.Digest) {
	t.Helper()
	ctx := t.Context()
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := storage.NewRegistry(ctx, driver)
	if err != nil {
		t.Fatal(err)
	}
	named, err := reference.WithName("coredns/coredns")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := ns.Repository(ctx, named)
	if err != nil {
		t.Fatal(err)
	}
	img, err = random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	blobs := repo.Blobs(ctx)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := blobs.Put(ctx, "application/octet-stream", b); err != nil {
			t.Fatalf("put layer: %v", err)
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(ctx, "application/octet-stream", cfg); err != nil {
		t.Fatalf("put config: %v", err)
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	putManifest := func(mediaType string, raw []byte) ocispec.Descriptor {
		m, desc, err := distribution.UnmarshalManifest(mediaType, raw)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", mediaType, err)
		}
		if _, err := ms.Put(ctx, m); err != nil {
			t.Fatalf("put %s: %v", mediaType, err)
		}
		return desc
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	imgDesc := putManifest(string(mt), rawManifest)

	idx := ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: imgDesc.MediaType, Digest: imgDesc.Digest, Size: imgDesc.Size, Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
			// Not stored, as in a sealer image built for amd64 only.
			{MediaType: imgDesc.MediaType, Digest: digest.FromString("arm64 manifest"), Size: 100, Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
		},
	}
	idx.SchemaVersion = 2
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	idxDesc := putManifest(ocispec.MediaTypeImageIndex, rawIndex)
	if err := repo.Tags(ctx).Tag(ctx, "v1.8.4", idxDesc); err != nil {
		t.Fatalf("tag: %v", err)
	}
	return img, idxDesc.Digest
}

func TestServesTreeWrittenThroughStorageAPI(t *testing.T) {
	imageRoot := t.TempDir()
	img, index := writeSealerStyleTree(t, filepath.Join(imageRoot, "registry"))
	before := treeState(t, imageRoot)

	s := start(t, imageRoot, true)
	ctx := t.Context()
	gotIdx, err := remote.Index(ref(t, s.Addr(), "coredns/coredns:v1.8.4"), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull index by tag: %v", err)
	}
	if d := digestOf(t, gotIdx); d.String() != index.String() {
		t.Fatalf("index digest = %s, want %s", d, index)
	}
	im, err := gotIdx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index lists %d manifests, want 2", len(im.Manifests))
	}
	amd64, err := remote.Image(ref(t, s.Addr(), "coredns/coredns@"+im.Manifests[0].Digest.String()), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull amd64 image: %v", err)
	}
	if got, want := digestOf(t, amd64), digestOf(t, img); got != want {
		t.Fatalf("amd64 image digest = %s, want %s", got, want)
	}
	if err := validate.Image(amd64); err != nil {
		t.Fatalf("amd64 image is not intact: %v", err)
	}
	// The absent platform is a clean 404, not a server error.
	_, err = remote.Image(ref(t, s.Addr(), "coredns/coredns@"+im.Manifests[1].Digest.String()), remote.WithContext(ctx))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("pull of the absent platform: %v, want 404", err)
	}
	// Referrers work on a tree nobody indexed.
	if a := getReferrers(t, s, "coredns/coredns", index, ""); a.status != http.StatusOK || len(a.index.Manifests) != 0 {
		t.Fatalf("referrers on a foreign tree: %d %v", a.status, a.index.Manifests)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := treeState(t, imageRoot)
	if len(after) != len(before) {
		t.Fatalf("serving changed the tree: %d entries before, %d after", len(before), len(after))
	}
	for p, st := range before {
		if after[p] != st {
			t.Errorf("serving changed %s", p)
		}
	}
}
