package registrytree

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// BlobSource opens a blob's content, and may name a file that holds it.
type BlobSource interface {
	Fetch(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
}

// BlobFile is implemented by sources whose blobs are plain files (the local
// store), so WriteDir can hard-link them instead of copying.
type BlobFile interface {
	BlobPath(d digest.Digest) string
}

// WriteDir writes entries under root (the storage root directory). Blob data
// comes from src, hard-linked when src keeps blobs as files on the same
// filesystem, else copied. Each file is written to a temp name and renamed,
// so an interrupted write leaves no truncated file under its final name.
func WriteDir(ctx context.Context, root string, entries []Entry, src BlobSource) error {
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(root, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if !e.Blob {
			if err := writeAtomic(dst, func(w io.Writer) error { _, err := io.WriteString(w, e.Link); return err }); err != nil {
				return fmt.Errorf("write %s: %w", e.Path, err)
			}
			continue
		}
		if fi, err := os.Stat(dst); err == nil && fi.Size() == e.Size {
			continue // blobs are content-addressed: same path, same bytes
		}
		if bf, ok := src.(BlobFile); ok {
			tmp := dst + ".tmp-link"
			os.Remove(tmp)
			if err := os.Link(bf.BlobPath(e.Digest), tmp); err == nil {
				if err := os.Rename(tmp, dst); err != nil {
					os.Remove(tmp)
					return err
				}
				continue
			}
		}
		err := writeAtomic(dst, func(w io.Writer) error {
			rc, err := src.Fetch(ctx, e.Digest)
			if err != nil {
				return err
			}
			defer rc.Close()
			n, err := io.CopyBuffer(w, rc, buf)
			if err != nil {
				return err
			}
			if n != e.Size {
				return fmt.Errorf("blob %s has %d bytes, want %d", e.Digest, n, e.Size)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", e.Path, err)
		}
	}
	return nil
}

func writeAtomic(dst string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
