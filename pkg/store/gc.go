package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Use marks the caller as a user of the store until release is called: Prune
// waits for every user to finish, so it never deletes a blob that a running
// build or pull has written but not yet tagged.
func (s *Store) Use(ctx context.Context) (release func(), err error) {
	l, err := lockFile(ctx, filepath.Join(s.root, gcLock), false)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Blobs   int
	Bytes   int64
	Partial int // abandoned partial downloads
}

// Prune deletes every blob no manifest in index.json reaches, and partial
// downloads nobody is writing. It holds the store exclusively meanwhile.
func (s *Store) Prune(ctx context.Context) (PruneResult, error) {
	var res PruneResult
	l, err := lockFile(ctx, filepath.Join(s.root, gcLock), true)
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
	// Partial files whose writer is gone (their lock is free) and that are
	// older than an hour are abandoned downloads.
	ing, _ := os.ReadDir(filepath.Join(s.root, ingestDir))
	for _, e := range ing {
		p := filepath.Join(s.root, ingestDir, e.Name())
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if strings.HasSuffix(e.Name(), ".lock") {
			// Nobody uses the store while Prune holds it: stale locks can go.
			if _, err := os.Stat(strings.TrimSuffix(p, ".lock")); err != nil {
				os.Remove(p)
			}
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		pl, err := lockFile(lctx, p+".lock", true)
		cancel()
		if err != nil {
			continue
		}
		os.Remove(p)
		os.Remove(p + ".lock")
		pl.Unlock()
		res.Partial++
	}
	return res, nil
}

// Reachable returns every blob digest reachable from index.json.
func (s *Store) Reachable(ctx context.Context) (map[digest.Digest]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	live := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if live[d.Digest] {
			return nil
		}
		live[d.Digest] = true
		if !isManifest(d.MediaType) {
			return nil
		}
		children, err := s.Children(ctx, d)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := walk(m); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// Children returns what a manifest or index points at (config, layers,
// child manifests). A missing child blob is not an error here.
func (s *Store) Children(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	b, err := s.ReadBlob(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d.Digest, err)
	}
	return ManifestChildren(b)
}

// ManifestChildren parses a manifest or index and lists its children.
func ManifestChildren(b []byte) ([]ocispec.Descriptor, error) {
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	var out []ocispec.Descriptor
	if m.Config != nil && m.Config.Digest != "" {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Manifests...)
	return out, nil
}

func isManifest(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// IsManifest reports whether mediaType is an image manifest or index type.
func IsManifest(mediaType string) bool { return isManifest(mediaType) }

// IsIndex reports whether mediaType is an OCI index or Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}
