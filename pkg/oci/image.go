package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/manifest"
)

// Image is one platform image read from a target: its manifest and config,
// parsed and as the bytes their digests cover.
type Image struct {
	Descriptor    ocispec.Descriptor // the manifest
	Manifest      ocispec.Manifest
	ManifestBytes []byte
	Config        ocispec.Image
	ConfigBytes   []byte
}

// FetchImage reads the image desc names: desc itself when it is a
// manifest, or the child of an index that serves platform (SelectPlatform).
// Each blob is checked against its descriptor's digest and size, and a
// manifest or config over manifest.MaxSize is refused before it is read.
func FetchImage(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, platform ocispec.Platform) (*Image, error) {
	desc, err := SelectPlatform(ctx, f, desc, platform)
	if err != nil {
		return nil, err
	}
	return fetchImage(ctx, f, desc)
}

// FetchImages reads every platform image desc names: desc itself when it is
// a manifest, else each image manifest of the index. A child the target
// cannot give (an image pulled for some platforms only) is left out; the
// error joins why each was.
func FetchImages(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) ([]*Image, error) {
	if !manifest.IsIndexType(desc.MediaType) {
		im, err := fetchImage(ctx, f, desc)
		if err != nil {
			return nil, err
		}
		return []*Image{im}, nil
	}
	b, err := fetchLimited(ctx, f, desc, "index")
	if err != nil {
		return nil, err
	}
	idx, err := manifest.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	var out []*Image
	var errs []error
	for _, child := range idx.Manifests {
		if manifest.IsIndexType(child.MediaType) {
			errs = append(errs, fmt.Errorf("index %s nests index %s", desc.Digest, child.Digest))
			continue
		}
		im, err := fetchImage(ctx, f, child)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, im)
	}
	return out, errors.Join(errs...)
}

// fetchImage reads the manifest desc and its config.
func fetchImage(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) (*Image, error) {
	im := &Image{Descriptor: desc}
	var err error
	if im.ManifestBytes, err = fetchLimited(ctx, f, desc, "manifest"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(im.ManifestBytes, &im.Manifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if manifest.IsIndexType(im.Manifest.MediaType) || im.Manifest.Config.Digest == "" {
		return nil, fmt.Errorf("manifest %s is not an image manifest", desc.Digest)
	}
	if im.ConfigBytes, err = fetchLimited(ctx, f, im.Manifest.Config, "config"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(im.ConfigBytes, &im.Config); err != nil {
		return nil, fmt.Errorf("config %s: %w", im.Manifest.Config.Digest, err)
	}
	return im, nil
}

// fetchLimited reads a manifest, index or config blob, refusing one whose
// descriptor claims more than manifest.MaxSize.
func fetchLimited(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, what string) ([]byte, error) {
	if desc.Size > manifest.MaxSize {
		return nil, fmt.Errorf("%s %s is %d bytes, over the %d-byte limit", what, desc.Digest, desc.Size, manifest.MaxSize)
	}
	b, err := content.FetchAll(ctx, f, desc)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, desc.Digest, err)
	}
	return b, nil
}

// Size is the sum of the image's layer sizes, as its manifest states them.
func (im *Image) Size() int64 {
	var n int64
	for _, l := range im.Manifest.Layers {
		n += l.Size
	}
	return n
}

// HistoryStep is one entry of an image's config history with the layer it
// added; Layer is nil for a step that changed only metadata (empty_layer).
type HistoryStep struct {
	ocispec.History
	Layer *ocispec.Descriptor
}

// History pairs each history entry of the config, oldest first, with the
// layer it added: entries not marked empty_layer take the manifest's layers
// in order, as the image spec defines. Entries past the last layer get none.
func (im *Image) History() []HistoryStep {
	steps := make([]HistoryStep, 0, len(im.Config.History))
	layer := 0
	for _, h := range im.Config.History {
		st := HistoryStep{History: h}
		if !h.EmptyLayer && layer < len(im.Manifest.Layers) {
			st.Layer = &im.Manifest.Layers[layer]
			layer++
		}
		steps = append(steps, st)
	}
	return steps
}
