// Package zstdimage rewrites a stored image with zstd-compressed layers, so
// tests can check that every reader of layers gets the same answers from a
// zstd image as from the gzip one it was made of.
package zstdimage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/oci"
)

// Recompress reads the image ref in t (a manifest, or an index of them) and
// stores a copy whose layers are tar+zstd under newRef. Configs, diff IDs
// and annotations are kept; only the layer blobs and the manifests that
// name them change.
func Recompress(ctx context.Context, t oras.Target, ref, newRef string) (ocispec.Descriptor, error) {
	desc, err := t.Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	out, err := recompress(ctx, t, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return out, t.Tag(ctx, out, newRef)
}

func recompress(ctx context.Context, t oras.Target, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	b, err := content.FetchAll(ctx, t, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if manifest.IsIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return ocispec.Descriptor{}, err
		}
		for i, m := range idx.Manifests {
			nd, err := recompress(ctx, t, m)
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			nd.Platform, nd.Annotations = m.Platform, m.Annotations
			idx.Manifests[i] = nd
		}
		return push(ctx, t, desc.MediaType, idx)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return ocispec.Descriptor{}, err
	}
	for i, l := range m.Layers {
		if m.Layers[i], err = zstdLayer(ctx, t, l); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return push(ctx, t, desc.MediaType, m)
}

func zstdLayer(ctx context.Context, t oras.Target, l ocispec.Descriptor) (ocispec.Descriptor, error) {
	rc, err := oci.OpenLayer(ctx, t, l)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := io.Copy(zw, rc); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("recompress %s: %w", l.Digest, err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	nd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromBytes(buf.Bytes()), Size: int64(buf.Len()), Annotations: l.Annotations}
	return nd, pushBlob(ctx, t, nd, buf.Bytes())
}

func push(ctx context.Context, t oras.Target, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return d, pushBlob(ctx, t, d, b)
}

func pushBlob(ctx context.Context, t oras.Target, d ocispec.Descriptor, b []byte) error {
	if ok, err := t.Exists(ctx, d); err == nil && ok {
		return nil
	}
	return t.Push(ctx, d, bytes.NewReader(b))
}
