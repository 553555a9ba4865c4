package collect

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"
)

// WriteTree writes collected entries (named "registry/…") under root, so
// that root/registry is a registry tree a registry process can serve. Blob
// data is hard-linked from the store when it is on the same filesystem.
func WriteTree(ctx context.Context, root string, entries []layer.Entry, s *store.Store) error {
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(root, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if s != nil && e.Digest != "" && strings.HasPrefix(e.Name, registrytree.ImageDir+"/"+registrytree.V2+"/blobs/") {
			if fi, err := os.Stat(s.BlobPath(e.Digest)); err == nil && fi.Size() == e.Size {
				os.Remove(dst)
				if err := os.Link(s.BlobPath(e.Digest), dst); err == nil {
					continue
				}
			}
		}
		if err := copyEntry(ctx, dst, e, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", e.Name, err)
		}
	}
	return nil
}

// copyEntry writes e's content to dst (atomically) with mode.
func copyEntry(ctx context.Context, dst string, e layer.Entry, mode os.FileMode) error {
	rc, err := layer.OpenEntry(ctx, e)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	n, err := io.Copy(tmp, rc)
	if err == nil && n != e.Size {
		err = fmt.Errorf("%d bytes, want %d", n, e.Size)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
