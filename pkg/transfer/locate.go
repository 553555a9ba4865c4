package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// Lookup says where Locate may find an image.
type Lookup int

const (
	// InStore looks in the local store only: a name missing there is an
	// error, never silently looked up on a registry (as docker and sealer
	// do for inspect).
	InStore Lookup = iota
	// InRegistry reads the image from its registry only.
	InRegistry
	// InStoreThenRegistry looks in the local store, and in the image's
	// registry when the store does not have it.
	InStoreThenRegistry
)

// Places opens the places Locate looks in. Each is opened only when Locate
// looks there, so a command that reads the store never reads registry
// settings, and one that reads a registry never opens the store.
type Places struct {
	Store    func() (*store.Store, error)
	Registry func() (*regclient.Client, error)
}

// Located is an image found where it lives.
type Located struct {
	// Ref is the image's reference; zero for a bare digest found in the store.
	Ref        reference.Reference
	Descriptor ocispec.Descriptor // the image's root: a manifest or an index
	// Target holds the image: the store, or the registry repository.
	Target oras.Target
	// InRegistry is true when Target is a registry repository, whose cosign
	// companions are bare tags ("sha256-<hex>.sig", not "name:sha256-…").
	InRegistry bool
	// Where names the place in messages: "the local store", or the
	// registry's endpoint.
	Where string

	release func()
}

// Close ends the use of the store (see store.Use): a prune waits for it.
func (l *Located) Close() {
	if l.release != nil {
		l.release()
		l.release = nil
	}
}

// NotInStoreError is an image the local store does not have, when Locate
// was not to look anywhere else.
type NotInStoreError struct {
	Ref string // as the caller named it
}

func (e *NotInStoreError) Error() string {
	return "image " + e.Ref + " is not in the local store"
}

// Unwrap makes errors.Is(err, store.ErrNotFound) hold.
func (e *NotInStoreError) Unwrap() error { return store.ErrNotFound }

// Locate finds the image raw names (NAME:TAG, NAME@DIGEST, or in the store
// a bare digest) where lookup allows, and resolves it to its root. The
// caller closes the result.
func Locate(ctx context.Context, places Places, raw string, lookup Lookup) (*Located, error) {
	if _, err := digest.Parse(raw); err == nil {
		// A bare digest names no repository, so no registry either.
		if lookup == InRegistry {
			return nil, fmt.Errorf("%s is a bare digest: name the image (NAME@DIGEST) to read it from its registry", raw)
		}
		return locateInStore(ctx, places, raw, reference.Reference{})
	}
	ref, err := reference.Parse(raw)
	if err != nil {
		return nil, err
	}
	if lookup != InRegistry {
		loc, err := locateInStore(ctx, places, raw, ref)
		var missing *NotInStoreError
		if lookup == InStore || !errors.As(err, &missing) {
			return loc, err
		}
	}
	rc, err := places.Registry()
	if err != nil {
		return nil, err
	}
	repo, err := rc.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	desc, err := repo.Resolve(ctx, ref.Identifier())
	switch {
	case err != nil && lookup == InStoreThenRegistry && errors.Is(err, errdef.ErrNotFound):
		return nil, fmt.Errorf("%s is neither in the local store nor in its registry: %w", ref, err)
	case err != nil:
		return nil, fmt.Errorf("%s at %s: %w", ref, rc.Endpoint(ref.Registry), err)
	}
	return &Located{Ref: ref, Descriptor: desc, Target: repo, InRegistry: true, Where: rc.Endpoint(ref.Registry)}, nil
}

// locateInStore resolves raw in the store and marks the store in use.
func locateInStore(ctx context.Context, places Places, raw string, ref reference.Reference) (*Located, error) {
	s, err := places.Store()
	if err != nil {
		return nil, err
	}
	desc, err := s.Resolve(ctx, raw)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotInStoreError{Ref: raw}
	}
	if err != nil {
		return nil, err
	}
	release, err := s.Use(ctx)
	if err != nil {
		return nil, err
	}
	return &Located{Ref: ref, Descriptor: desc, Target: s, Where: "the local store", release: release}, nil
}
