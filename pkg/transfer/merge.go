package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/reference"
)

// MergePlatforms tags dst with the multi-platform index over the platform
// images srcs name (clusterimage.MergePlatforms, in their order), where
// lookup finds them: in the local store, or in a registry, where they must
// be in dst's repository. What per-platform CI jobs pushed becomes the one
// image a build of every platform on one machine gives, digest for digest.
// Only the index is written; the platform images are not copied.
func MergePlatforms(ctx context.Context, places Places, lookup Lookup, dst reference.Reference, srcs []string) (ocispec.Descriptor, error) {
	if dst.Tag == "" || dst.Digest != "" {
		return ocispec.Descriptor{}, fmt.Errorf("target %s: name a tag (NAME:TAG), not a digest", dst)
	}
	if len(srcs) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no platform images to merge into %s", dst)
	}
	if lookup == InRegistry { // checked before any request: a wrong name costs no round trip
		for _, src := range srcs {
			if r, err := reference.Parse(src); err == nil && (r.Registry != dst.Registry || r.Repository != dst.Repository) {
				return ocispec.Descriptor{}, fmt.Errorf("%s is not in the repository of %s: merge platform images where they are (tag --remote them there first)", src, dst)
			}
		}
	}
	var target oras.Target
	var where string
	var inRegistry bool
	var roots []ocispec.Descriptor
	for _, src := range srcs {
		loc, err := Locate(ctx, places, src, lookup)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		defer loc.Close()
		if target == nil {
			target, where, inRegistry = loc.Target, loc.Where, loc.InRegistry
		}
		roots = append(roots, loc.Descriptor)
	}
	idx, err := clusterimage.MergePlatforms(ctx, target, roots)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("merge into %s: %w", dst, err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(idx), Size: int64(len(idx))}
	if err := target.Push(ctx, desc, bytes.NewReader(idx)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return desc, fmt.Errorf("write the index of %s to %s: %w", dst, where, err)
	}
	tag := dst.String() // the store names images in full; a repository by tag
	if inRegistry {
		tag = dst.Tag
	}
	if err := target.Tag(ctx, desc, tag); err != nil {
		return desc, fmt.Errorf("tag %s in %s: %w", dst, where, err)
	}
	return desc, nil
}
