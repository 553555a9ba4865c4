package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/filelock"
	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/pkg/manifest"
)

// Visit is called by Walk for every descriptor reached, once per digest,
// parents before children. present says the blob is in the store with the
// descriptor's size; inIndex says an index (not a manifest) named it.
type Visit func(d ocispec.Descriptor, present, inIndex bool) error

// Walk visits root and everything it reaches. What a blob points at is
// found by parsing it (package manifest), never by the media type a
// descriptor claims; a descriptor whose claim contradicts the content it
// names is an error (manifest.ErrInvalid), as is an invalid manifest.
func (s *Store) Walk(ctx context.Context, root ocispec.Descriptor, visit Visit) error {
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, inIndex bool) error
	walk = func(d ocispec.Descriptor, inIndex bool) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: digest %s: %v", manifest.ErrInvalid, printable.String(string(d.Digest)), err)
		}
		size, ok := s.BlobSize(d.Digest)
		present := ok && (d.Size <= 0 || size == d.Size)
		if err := visit(d, present, inIndex); err != nil {
			return err
		}
		if !present {
			return nil
		}
		m, err := s.parse(ctx, d.Digest, size)
		if errors.Is(err, manifest.ErrNotManifest) {
			if manifest.IsManifestType(d.MediaType) {
				return fmt.Errorf("%w: %s is named as %s, but the blob is not a manifest", manifest.ErrInvalid, d.Digest, d.MediaType)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		if d.MediaType != "" && d.MediaType != m.MediaType {
			return fmt.Errorf("%w: %s is named as %s, but the blob is a %s", manifest.ErrInvalid, d.Digest, printable.String(d.MediaType), m.MediaType)
		}
		for _, c := range m.Children() {
			if err := walk(c, m.IsIndex()); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, false)
}

// Complete checks that root and everything it reaches are in the store with
// the sizes their descriptors give. A platform manifest an index names may
// be absent (a pull of some platforms only); whatever is present must be
// whole.
func (s *Store) Complete(ctx context.Context, root ocispec.Descriptor) error {
	return s.Walk(ctx, root, func(d ocispec.Descriptor, present, inIndex bool) error {
		if present || (inIndex && manifest.IsManifestType(d.MediaType)) {
			return nil
		}
		if size, ok := s.BlobSize(d.Digest); ok {
			return fmt.Errorf("blob %s is %d bytes in the store, its descriptor says %d: %w", d.Digest, size, d.Size, ErrNotFound)
		}
		return fmt.Errorf("blob %s is missing: %w", d.Digest, ErrNotFound)
	})
}

// Describe returns the descriptor of the manifest or index d, with the
// media type and size of its content.
func (s *Store) Describe(ctx context.Context, d digest.Digest) (ocispec.Descriptor, error) {
	size, ok := s.BlobSize(d)
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, ErrNotFound)
	}
	m, err := s.parse(ctx, d, size)
	if errors.Is(err, manifest.ErrNotManifest) {
		return ocispec.Descriptor{}, fmt.Errorf("blob %s is not a manifest or index", d)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: size}, nil
}

// parse reads a blob that may be a manifest (small enough) and judges it.
func (s *Store) parse(ctx context.Context, d digest.Digest, size int64) (*manifest.Manifest, error) {
	if size > manifest.MaxSize {
		return nil, manifest.ErrNotManifest
	}
	b, err := s.ReadBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	return manifest.Parse(b)
}

// BlobSize is the size of blob d, if the store holds it.
func (s *Store) BlobSize(d digest.Digest) (int64, bool) {
	if d.Validate() != nil {
		return 0, false
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// FreeSpace is the space left for blobs on the store's filesystem (for an
// unprivileged writer), when the system says.
func (s *Store) FreeSpace() (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true //nolint:unconvert // Bsize is int64 on linux/amd64
}

// DiscardPartial removes what an interrupted Ingest of d kept for resuming,
// unless a writer holds it: content that failed validation is never worth
// resuming, and must not hold disk space.
func (s *Store) DiscardPartial(d digest.Digest) {
	if d.Validate() != nil {
		return
	}
	partial := filepath.Join(s.root, ingestDir, d.Encoded()+".partial")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	l, err := filelock.Acquire(ctx, partial+".lock", true)
	if err != nil {
		return
	}
	defer l.Unlock()
	os.Remove(partial)
}
