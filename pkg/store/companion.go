package store

import (
	"context"
	"errors"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
)

// IsImage reports whether the entry names an image: it is tagged, and its
// tag is not a cosign signature, attestation or SBOM (oci.IsCompanionTag).
func (e Entry) IsImage() bool {
	if e.Ref == "" {
		return false
	}
	r, err := reference.Parse(e.Ref)
	return err != nil || !oci.IsCompanionTag(r.Tag)
}

// UntagCompanions removes the cosign signatures, attestations and SBOMs of
// root (and of each platform manifest of an index) from the repository
// name, once no image tag names root any more: they belong to the image,
// not to one of its tags. It returns the tags it removed.
func (s *Store) UntagCompanions(ctx context.Context, name string, root ocispec.Descriptor) ([]string, error) {
	entries, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Descriptor.Digest == root.Digest && e.IsImage() {
			return nil, nil // still tagged: its companions stay
		}
	}
	manifests, err := oci.ManifestDigests(ctx, s, root)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, d := range manifests {
		for _, suffix := range oci.CompanionSuffixes {
			ref := name + ":" + oci.CompanionTag(d, suffix)
			err := s.Untag(ctx, ref)
			switch {
			case err == nil:
				removed = append(removed, ref)
			case !errors.Is(err, ErrNotFound):
				return removed, err
			}
		}
	}
	return removed, nil
}
