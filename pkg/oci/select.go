package oci

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/manifest"
)

// SelectPlatform returns desc itself for an image manifest, or the child of
// the index desc that serves platform (MatchPlatform decides; the first
// match wins).
func SelectPlatform(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, platform ocispec.Platform) (ocispec.Descriptor, error) {
	if !manifest.IsIndexType(desc.MediaType) {
		return desc, nil
	}
	if desc.Size > manifest.MaxSize {
		return ocispec.Descriptor{}, fmt.Errorf("index %s is %d bytes, over the %d-byte limit for an index", desc.Digest, desc.Size, manifest.MaxSize)
	}
	b, err := content.FetchAll(ctx, f, desc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("read index %s: %w", desc.Digest, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("parse index %s: %w", desc.Digest, err)
	}
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		have = append(have, PlatformString(*m.Platform))
		if MatchPlatform(*m.Platform, platform) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s (the index has %v)", PlatformString(platform), have)
}
