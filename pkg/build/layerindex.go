package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
)

// scanPrefixes are the parts of an image root where container images are
// referenced (sealer-format.md §3.1); only these are materialised for scanning.
var scanPrefixes = []string{"manifests/", "charts/", "application/"}

func scanRelevant(name string) bool {
	for _, p := range scanPrefixes {
		if strings.HasPrefix(name+"/", p) || strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// registryPrefix is where a cluster image keeps its registry tree.
const registryPrefix = "registry/"

// layerIndex is what the builder needs to know of a layer without reading it
// again: its directories, its scan-relevant files, and the paths of its
// registry tree, kept per diff ID in the cache as
// <cache>/layerindex/<diffid>/{dirs.json,registry.txt,files/…}.
type layerIndex struct {
	dir  string
	Dirs []string
}

// RegistryPaths lists the layer's files under registry/.
func (li *layerIndex) RegistryPaths() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(li.dir, "registry.txt"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func (c *Cache) layerIndexDir(diffID digest.Digest) string {
	return filepath.Join(c.dir, "layerindex", diffID.Encoded())
}

// indexFromEntries records the index of a layer built from entries.
func (c *Cache) indexFromEntries(ctx context.Context, diffID digest.Digest, entries []layer.Entry) (*layerIndex, error) {
	final := c.layerIndexDir(diffID)
	if li, err := c.readIndex(final); err == nil {
		return li, nil
	}
	return c.writeIndex(final, func(tmp string) ([]string, error) {
		var dirs, reg []string
		defer func() { writeRegistryPaths(tmp, reg) }()
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if e.Mode.IsDir() {
				dirs = append(dirs, e.Name)
				continue
			}
			if strings.HasPrefix(e.Name, registryPrefix) {
				reg = append(reg, e.Name)
				continue
			}
			if !scanRelevant(e.Name) || !e.Mode.IsRegular() {
				continue
			}
			if err := copyEntryTo(ctx, filepath.Join(tmp, "files", filepath.FromSlash(e.Name)), e); err != nil {
				return nil, err
			}
		}
		return dirs, nil
	})
}

// indexFromBlob reads a layer blob (a base image's layer) once.
func (c *Cache) indexFromBlob(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, diffID digest.Digest) (*layerIndex, error) {
	final := c.layerIndexDir(diffID)
	if li, err := c.readIndex(final); err == nil {
		return li, nil
	}
	return c.writeIndex(final, func(tmp string) ([]string, error) {
		r, err := oci.OpenLayer(ctx, f, desc)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		tr := tar.NewReader(r)
		var dirs, reg []string
		defer func() { writeRegistryPaths(tmp, reg) }()
		for {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			h, err := tr.Next()
			if err == io.EOF {
				// Read on to the end of the blob, where OpenLayer checks its digest.
				if _, err := io.Copy(io.Discard, r); err != nil {
					return nil, fmt.Errorf("read layer %s: %w", desc.Digest, err)
				}
				return dirs, nil
			}
			if err != nil {
				return nil, fmt.Errorf("read layer %s: %w", desc.Digest, err)
			}
			name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
			if name == "" {
				continue
			}
			switch h.Typeflag {
			case tar.TypeDir:
				dirs = append(dirs, name)
			case tar.TypeReg:
				if strings.HasPrefix(name, registryPrefix) {
					reg = append(reg, name)
					continue
				}
				if !scanRelevant(name) {
					continue
				}
				if err := writeLimited(filepath.Join(tmp, "files", filepath.FromSlash(name)), tr, h.Size); err != nil {
					return nil, err
				}
			}
			// Whiteouts (.wh.*) are not applied: the index is per layer
			// (cached by diff ID), and cnstack and sealer never write them.
		}
	})
}

// cachedIndex returns the index of a layer if an earlier build made it.
func (c *Cache) cachedIndex(diffID digest.Digest) *layerIndex {
	li, err := c.readIndex(c.layerIndexDir(diffID))
	if err != nil {
		return nil
	}
	return li
}

func writeRegistryPaths(dir string, paths []string) {
	if len(paths) == 0 {
		return
	}
	sort.Strings(paths)
	os.WriteFile(filepath.Join(dir, "registry.txt"), []byte(strings.Join(paths, "\n")+"\n"), 0o644)
}

func (c *Cache) readIndex(dir string) (*layerIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, "dirs.json"))
	if err != nil {
		return nil, err
	}
	li := &layerIndex{dir: dir}
	return li, json.Unmarshal(b, &li.Dirs)
}

func (c *Cache) writeIndex(final string, fill func(tmp string) ([]string, error)) (*layerIndex, error) {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-")
	if err != nil {
		return nil, err
	}
	dirs, err := fill(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	sort.Strings(dirs)
	b, _ := json.Marshal(dirs)
	if err := os.WriteFile(filepath.Join(tmp, "dirs.json"), b, 0o644); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if li, rerr := c.readIndex(final); rerr == nil { // another build won the race
			return li, nil
		}
		return nil, err
	}
	return &layerIndex{dir: final, Dirs: dirs}, nil
}

func copyEntryTo(ctx context.Context, dst string, e layer.Entry) error {
	rc, err := layer.OpenEntry(ctx, e)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := writeLimited(dst, rc, e.Size); err != nil {
		return err
	}
	if e.Verify {
		// Read on to EOF: the reader checks the digest the key was made of.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return fmt.Errorf("%s: %w", e.Source, err)
		}
	}
	return nil
}

func writeLimited(dst string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(r, size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mergeRoots overlays the scan files of several layers (in order) into dir.
func mergeRoots(dir string, indexes []*layerIndex) error {
	for _, li := range indexes {
		src := filepath.Join(li.dir, "files")
		if _, err := os.Stat(src); err != nil {
			continue
		}
		err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			dst := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			os.Remove(dst)
			if err := os.Link(p, dst); err == nil {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return writeLimited(dst, f, fi.Size())
		})
		if err != nil {
			return fmt.Errorf("assemble scan root: %w", err)
		}
	}
	return nil
}
