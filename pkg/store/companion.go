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

// Remove untags ref (`cnstack rmi`). With companions, the image's cosign
// signatures, attestations and SBOMs go too once no image tag names it
// (UntagCompanions). It returns every tag removed, ref first; a ref the
// store does not have is ErrNotFound, with nothing removed.
func (s *Store) Remove(ctx context.Context, ref string, companions bool) ([]string, error) {
	root, resolveErr := s.Resolve(ctx, ref)
	if err := s.Untag(ctx, ref); err != nil {
		return nil, err
	}
	removed := []string{ref}
	if !companions || resolveErr != nil {
		return removed, nil
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return removed, nil // a bare digest names no repository, so no companions
	}
	more, err := s.UntagCompanions(ctx, r.Name(), root)
	return append(removed, more...), err
}
