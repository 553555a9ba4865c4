package oci

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

func pushJSON(t *testing.T, s *memory.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return push(t, s, mediaType, b)
}

// image pushes a one-platform image with two history steps, one of them
// metadata only.
func image(t *testing.T, s *memory.Store, arch string) ocispec.Descriptor {
	t.Helper()
	layer := push(t, s, ocispec.MediaTypeImageLayerGzip, []byte("layer for "+arch))
	cfg := pushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		History: []ocispec.History{
			{CreatedBy: "COPY . ."},
			{CreatedBy: "LABEL a=b", EmptyLayer: true},
		},
	})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	d := pushJSON(t, s, ocispec.MediaTypeImageManifest, m)
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return d
}

func TestFetchImages(t *testing.T) {
	s := memory.New()
	amd, arm := image(t, s, "amd64"), image(t, s, "arm64")
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("0", 64)), Size: 10, Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{amd, arm, missing}}
	idx.SchemaVersion = 2
	root := pushJSON(t, s, ocispec.MediaTypeImageIndex, idx)

	images, err := FetchImages(t.Context(), s, root)
	if err == nil || !strings.Contains(err.Error(), missing.Digest.String()) {
		t.Errorf("a child the target lacks: err = %v, want one naming it", err)
	}
	if len(images) != 2 || images[0].Config.Architecture != "amd64" || images[1].Config.Architecture != "arm64" {
		t.Fatalf("got %d images, want amd64 and arm64", len(images))
	}
	if images[0].Size() != int64(len("layer for amd64")) {
		t.Errorf("Size = %d", images[0].Size())
	}

	im, err := FetchImage(t.Context(), s, root, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if im.Descriptor.Digest != arm.Digest {
		t.Errorf("FetchImage(arm64) read %s, want %s", im.Descriptor.Digest, arm.Digest)
	}
	steps := im.History()
	if len(steps) != 2 || steps[0].Layer == nil || steps[0].Layer.Digest != im.Manifest.Layers[0].Digest || steps[1].Layer != nil {
		t.Errorf("History pairs layers wrongly: %+v", steps)
	}

	one, err := FetchImages(t.Context(), s, amd)
	if err != nil || len(one) != 1 {
		t.Errorf("a manifest: %d images, err %v; want itself", len(one), err)
	}
	if _, err := FetchImage(t.Context(), s, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: amd.Digest, Size: 5 << 20}, ocispec.Platform{}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a manifest over the size limit: err = %v", err)
	}
}
