package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// Push copies the store image src to dst in its registry. Blobs the
// registry may already hold in another repository (one a store tag names)
// are mounted instead of uploaded, unless opts.MountFrom says where to look.
func Push(ctx context.Context, s *store.Store, rc *regclient.Client, src, dst reference.Reference, opts Options) (*Report, error) {
	repo, err := rc.Repository(ctx, dst)
	if err != nil {
		return nil, err
	}
	if opts.MountFrom == nil {
		opts.MountFrom = MountCandidates(ctx, s, dst.Registry)
	}
	rep, err := Copy(ctx, Store(s, src), Remote(repo, dst), opts)
	if err != nil {
		return rep, fmt.Errorf("push %s to %s: %w", src, rc.Endpoint(dst.Registry), err)
	}
	return rep, nil
}

// Pull copies ref from its registry into the store, named PulledRef(ref),
// and returns that name. The store is in use while it runs (see store.Use).
func Pull(ctx context.Context, rc *regclient.Client, ref reference.Reference, s *store.Store, opts Options) (reference.Reference, *Report, error) {
	repo, err := rc.Repository(ctx, ref)
	if err != nil {
		return reference.Reference{}, nil, err
	}
	release, err := s.Use(ctx)
	if err != nil {
		return reference.Reference{}, nil, err
	}
	defer release()
	name := PulledRef(ref)
	rep, err := Copy(ctx, Remote(repo, ref), Store(s, name), opts)
	if err != nil {
		return name, rep, fmt.Errorf("pull %s from %s: %w", ref, rc.Endpoint(ref.Registry), err)
	}
	return name, rep, nil
}

// PulledRef is the name an image pulled by ref gets in the store, whose
// names are tags: ref's own tag, or for a pull by digest alone
// NAME:sha256-<hex> (the tag crane and cosign use for a digest).
func PulledRef(ref reference.Reference) reference.Reference {
	if ref.Tag == "" {
		ref.Tag = oci.DigestTag(digest.Digest(ref.Digest))
	}
	ref.Digest = ""
	return ref
}

// MountCandidates are the repositories of registry that store tags name:
// the registry may already hold shared blobs there, to mount instead of
// upload.
func MountCandidates(ctx context.Context, s *store.Store, registry string) []string {
	entries, err := s.List(ctx)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		r, err := reference.Parse(e.Ref)
		if err != nil || r.Registry != registry {
			continue
		}
		if repo := strings.TrimPrefix(r.Repository, "/"); !seen[repo] {
			seen[repo] = true
			out = append(out, repo)
		}
	}
	return out
}

// Retag points dst at the image src names, both in one registry, without
// rebuilding or re-sending it: in the same repository a manifest PUT under
// dst's tag; in another repository a Copy whose blobs are mounted from
// src's, with the image's cosign signatures and attestations. It returns
// the image's root and, for a copy, the Copy's report (nil for a tag).
// This is how a nightly promotes a verified digest.
func Retag(ctx context.Context, rc *regclient.Client, src, dst reference.Reference, opts Options) (ocispec.Descriptor, *Report, error) {
	if src.Registry != dst.Registry {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s and %s are in different registries; push or copy across registries", src, dst)
	}
	if dst.Tag == "" || dst.Digest != "" {
		return ocispec.Descriptor{}, nil, fmt.Errorf("target %s: name a tag (NAME:TAG), not a digest", dst)
	}
	srcRepo, err := rc.Repository(ctx, src)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := srcRepo.Resolve(ctx, src.Identifier())
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("resolve %s in %s: %w", src, rc.Endpoint(src.Registry), err)
	}
	if src.Repository == dst.Repository {
		if err := srcRepo.Tag(ctx, desc, dst.Tag); err != nil {
			return desc, nil, fmt.Errorf("tag %s as %s in %s: %w", src, dst.Tag, rc.Endpoint(src.Registry), err)
		}
		return desc, nil, nil
	}
	dstRepo, err := rc.Repository(ctx, dst)
	if err != nil {
		return desc, nil, err
	}
	opts.MountFrom = []string{src.Repository}
	rep, err := Copy(ctx, Remote(srcRepo, src), Remote(dstRepo, dst), opts)
	if err != nil {
		return desc, rep, fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return desc, rep, nil
}
