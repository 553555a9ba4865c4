package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

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
