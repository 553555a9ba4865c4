package clusterimage

import (
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/oci"
)

// PlatformIndex is the index of a multi-platform cluster image: its platform
// manifests in build order, created at the build's time (SOURCE_DATE_EPOCH,
// as each platform's config says). A multi-platform build writes it, and
// MergePlatforms writes the same bytes from images built apart.
func PlatformIndex(manifests []ocispec.Descriptor, created time.Time) ([]byte, error) {
	seen := map[string]bool{}
	for _, m := range manifests {
		if m.Platform == nil {
			return nil, fmt.Errorf("index entry %s has no platform", m.Digest)
		}
		p := oci.PlatformString(*m.Platform)
		if seen[p] {
			return nil, fmt.Errorf("two images for platform %s", p)
		}
		seen[p] = true
	}
	return Index(manifests, map[string]string{ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339)})
}

// MergePlatforms returns the index over the platform images roots name in f
// (each a single-platform manifest, as a CI job building one platform
// pushes, or an index whose images are all taken), in that order: the
// index a build of every platform on one machine writes, byte for byte,
// when the platform images are its own. What the roots claim is not
// trusted: each image's platform and creation time come from its config,
// and the images must agree on when they were built.
func MergePlatforms(ctx context.Context, f content.Fetcher, roots []ocispec.Descriptor) ([]byte, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("no platform images to merge")
	}
	var manifests []ocispec.Descriptor
	var created *time.Time
	for _, root := range roots {
		images, err := oci.FetchImages(ctx, f, root)
		if err != nil {
			return nil, fmt.Errorf("read the platform images of %s: %w", root.Digest, err)
		}
		for _, im := range images {
			p := im.Config.Platform
			if p.OS == "" || p.Architecture == "" {
				return nil, fmt.Errorf("image %s names no platform in its config", im.Descriptor.Digest)
			}
			if claimed := im.Descriptor.Platform; claimed != nil && !oci.EqualPlatform(*claimed, p) {
				return nil, fmt.Errorf("image %s is listed as %s but its config says %s", im.Descriptor.Digest, oci.PlatformString(*claimed), oci.PlatformString(p))
			}
			if im.Config.Created == nil {
				return nil, fmt.Errorf("image %s (%s) has no creation time in its config", im.Descriptor.Digest, oci.PlatformString(p))
			}
			if created == nil {
				created = im.Config.Created
			} else if !created.Equal(*im.Config.Created) {
				return nil, fmt.Errorf("image %s (%s) was created at %s, the others at %s: not one build (SOURCE_DATE_EPOCH differs)",
					im.Descriptor.Digest, oci.PlatformString(p), im.Config.Created.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339))
			}
			manifests = append(manifests, ocispec.Descriptor{MediaType: im.Descriptor.MediaType, Digest: im.Descriptor.Digest, Size: im.Descriptor.Size, Platform: &p})
		}
	}
	return PlatformIndex(manifests, *created)
}
