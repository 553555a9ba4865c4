package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/filelock"
	"github.com/cnstack/cnstack/pkg/manifest"
)

// Use marks the caller as a user of the store until release is called: Prune
// waits for every user to finish, so it never deletes a blob that a running
// build or pull has written but not yet tagged.
func (s *Store) Use(ctx context.Context) (release func(), err error) {
	l, err := filelock.Acquire(ctx, filepath.Join(s.root, gcLock), false)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Blobs        int
	Bytes        int64 // of the blobs
	Partial      int   // abandoned partial downloads and temp files of killed writers
	PartialBytes int64
}

// Prune deletes every blob no manifest in index.json reaches, the temp
// files of writers that died (builds, saves), and partial downloads nobody
// is writing. It holds the store exclusively meanwhile.
func (s *Store) Prune(ctx context.Context) (PruneResult, error) {
	var res PruneResult
	l, err := filelock.Acquire(ctx, filepath.Join(s.root, gcLock), true)
	if err != nil {
		return res, err
	}
	defer l.Unlock()
	live, err := s.Reachable(ctx)
	if err != nil {
		return res, err
	}
	dir := filepath.Join(s.root, blobsDir, "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if live[d] {
			continue
		}
		fi, err := e.Info()
		if err == nil {
			res.Bytes += fi.Size()
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return res, fmt.Errorf("prune %s: %w", d, err)
		}
		res.Blobs++
	}
	for _, clean := range []func() (int, int64){s.cleanTemps, s.cleanOutside} {
		n, b := clean()
		res.Partial += n
		res.PartialBytes += b
	}
	// Partial downloads whose writer is gone (their lock is free). Prune is
	// asked to free space, so they go at once; a later pull starts over.
	ing, _ := os.ReadDir(filepath.Join(s.root, ingestDir))
	for _, e := range ing {
		p := filepath.Join(s.root, ingestDir, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if strings.HasSuffix(e.Name(), ".lock") {
			// A lock file is empty; removing one a waiter still holds open
			// would let two writers own a blob, so only old ones go.
			if time.Since(fi.ModTime()) > time.Hour {
				if _, err := os.Stat(strings.TrimSuffix(p, ".lock")); err != nil {
					os.Remove(p)
				}
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".partial") {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		pl, err := filelock.Acquire(lctx, p+".lock", true)
		cancel()
		if err != nil {
			continue
		}
		if os.Remove(p) == nil {
			res.Partial++
			res.PartialBytes += fi.Size()
		}
		pl.Unlock()
	}
	return res, nil
}

// Reachable returns every blob digest reachable from index.json. What a
// blob points at is read from the blob itself (every blob small enough to
// be a manifest is parsed), never taken from the media type a descriptor
// claims: a hostile descriptor naming a manifest as a plain blob cannot
// hide that manifest's config and layers from the walk. Parsing is lenient
// (manifest.Children): keeping too much is safe, deleting what some
// manifest names is not. A corrupt blob stops the walk with an error, so
// nothing is pruned on a guess.
func (s *Store) Reachable(ctx context.Context) (map[digest.Digest]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	live := map[digest.Digest]bool{}
	var walk func(d digest.Digest) error
	walk = func(d digest.Digest) error {
		if live[d] || d.Validate() != nil {
			return nil
		}
		live[d] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		size, ok := s.BlobSize(d)
		if !ok || size > manifest.MaxSize {
			return nil
		}
		b, err := s.ReadBlob(ctx, d)
		if err != nil {
			return fmt.Errorf("read %s: %w", d, err)
		}
		for _, c := range manifest.Children(b) {
			if err := walk(c.Digest); err != nil {
				return err
			}
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := walk(m.Digest); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// Children returns what a manifest or index points at (config, layers,
// child manifests), judged from its content. A missing child blob is not
// an error here.
func (s *Store) Children(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	b, err := s.ReadBlob(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d.Digest, err)
	}
	return ManifestChildren(b)
}

// ManifestChildren parses a manifest or index (package manifest) and lists
// its children.
func ManifestChildren(b []byte) ([]ocispec.Descriptor, error) {
	m, err := manifest.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return m.Children(), nil
}

// IsManifest reports whether mediaType is an image manifest or index type
// (manifest.IsManifestType).
func IsManifest(mediaType string) bool { return manifest.IsManifestType(mediaType) }

// IsIndex reports whether mediaType is an OCI index or Docker manifest list.
func IsIndex(mediaType string) bool { return manifest.IsIndexType(mediaType) }
