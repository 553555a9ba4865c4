package oci

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// OCI whiteouts (image-spec layer.md): an entry ".wh.<name>" deletes <name>
// of the layers below; ".wh..wh..opq" in a directory hides everything the
// layers below put in it.
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// ErrUnsafeEntry marks a layer entry whose name (or hard link target) is
// absolute or climbs out of the root with "..".
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// WalkFunc is called by Walk for one entry of the merged filesystem. h.Name
// (and a hard link's h.Linkname) is a clean relative slash path, directories
// without a trailing slash; r reads a regular file's content and is valid
// only during the call. Returning an error stops the walk.
type WalkFunc func(h *tar.Header, r io.Reader) error

// Walk reads the layers of an image (lowest first, in manifest order) and
// calls fn once for every path of the filesystem they make together, as a
// container runtime would see it: a path an upper layer also has, one an
// upper layer whites out (.wh.<name>), one under a directory an upper layer
// makes opaque (.wh..wh..opq), and one under a path an upper layer made a
// file or symlink, are all skipped. Whiteout entries themselves are never
// passed to fn. Each layer is decoded by OpenLayer (gzip, zstd or plain tar,
// its digest checked) and streamed once.
//
// Like go-containerregistry's mutate.Extract, Walk reads the layers top
// down, so entries come in that order, except hard links: they are passed
// last, after every file they can point to, and name what the merged
// filesystem has at their target path (a target an upper layer deleted is
// simply absent). An entry an upper layer would replace is never read, so
// an overwritten file costs no write.
func Walk(ctx context.Context, f content.Fetcher, layers []ocispec.Descriptor, fn WalkFunc) error {
	w := &walker{seen: map[string]seenPath{}, whiteouts: map[string]bool{}, opaque: map[string]bool{}}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := w.layer(ctx, f, layers[i], i, fn); err != nil {
			return err
		}
	}
	for _, l := range w.links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(l.h, strings.NewReader("")); err != nil {
			return fmt.Errorf("layer %s: %s: %w", l.layer.Digest, l.h.Name, err)
		}
	}
	return nil
}

// seenPath is a path an upper layer decided.
type seenPath struct {
	layer int
	dir   bool
	// implied marks a directory only known as the parent of an entry: a
	// lower layer's directory entry for it is still passed on, a lower
	// file or symlink there is not.
	implied bool
}

type deferredLink struct {
	h     *tar.Header
	layer ocispec.Descriptor
}

type walker struct {
	seen      map[string]seenPath
	whiteouts map[string]bool // deleted in the layers below (and what is under them)
	opaque    map[string]bool // directories whose lower contents are hidden
	links     []deferredLink
}

func (w *walker) layer(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, index int, fn WalkFunc) error {
	rc, err := OpenLayer(ctx, f, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	var whiteouts, opaque []string
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: read tar: %w", desc.Digest, err)
		}
		name, err := cleanEntryName(h.Name)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if name == "" {
			continue
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == WhiteoutOpaque:
			opaque = append(opaque, dir)
			continue
		case strings.HasPrefix(base, WhiteoutPrefix):
			whiteouts = append(whiteouts, path.Join(dir, strings.TrimPrefix(base, WhiteoutPrefix)))
			continue
		}
		isDir := h.Typeflag == tar.TypeDir
		if !w.visible(name, index, isDir) {
			continue
		}
		w.claim(name, index, isDir)
		h.Name = name
		if h.Typeflag == tar.TypeLink {
			if h.Linkname, err = cleanEntryName(h.Linkname); err != nil || h.Linkname == "" {
				return fmt.Errorf("layer %s: hard link %s: %w", desc.Digest, name, ErrUnsafeEntry)
			}
			w.links = append(w.links, deferredLink{h: h, layer: desc})
			continue
		}
		if err := fn(h, tr); err != nil {
			return fmt.Errorf("layer %s: %s: %w", desc.Digest, name, err)
		}
	}
	// Read to the end of the stream: that is where OpenLayer checks the digest.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	// A layer's whiteouts act on the layers below it, never on itself.
	for _, p := range whiteouts {
		w.whiteouts[p] = true
	}
	for _, p := range opaque {
		w.opaque[p] = true
	}
	return nil
}

// visible reports whether layer index's entry name shows in the merged
// filesystem, given what the layers above it decided.
func (w *walker) visible(name string, index int, isDir bool) bool {
	if s, ok := w.seen[name]; ok && s.layer != index {
		return s.implied && isDir
	}
	if w.whiteouts[name] {
		return false
	}
	for p := name; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return true
		}
		p = p[:i]
		if w.whiteouts[p] || w.opaque[p] {
			return false
		}
		if s, ok := w.seen[p]; ok && s.layer != index && !s.dir {
			return false
		}
	}
}

// claim records name, and its parents as directories, as decided by layer index.
func (w *walker) claim(name string, index int, isDir bool) {
	w.seen[name] = seenPath{layer: index, dir: isDir}
	for p := name; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return
		}
		p = p[:i]
		if _, ok := w.seen[p]; ok {
			return // its parents were claimed with it
		}
		w.seen[p] = seenPath{layer: index, dir: true, implied: true}
	}
}

// cleanEntryName returns a tar entry name as a clean relative slash path
// ("" for the root itself), refusing absolute names and "..".
func cleanEntryName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w: absolute path %q", ErrUnsafeEntry, name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: path %q climbs out of the root with ..", ErrUnsafeEntry, name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}
