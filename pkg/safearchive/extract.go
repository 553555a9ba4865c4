// Package safearchive extracts untrusted tar streams: nothing is written
// outside the target directory (no absolute paths, no "..", no writing
// through symlinks, no symlink or hard link that points out), no device
// files, and sizes are capped so a hostile archive cannot fill the disk.
package safearchive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Limits cap what an archive may contain. Zero fields take the defaults.
type Limits struct {
	MaxFileSize  int64 // largest single file (default 64 GiB)
	MaxTotalSize int64 // sum of file sizes (default 1 TiB)
	MaxEntries   int   // number of entries (default 10 million)
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize == 0 {
		l.MaxFileSize = 64 << 30
	}
	if l.MaxTotalSize == 0 {
		l.MaxTotalSize = 1 << 40
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = 10_000_000
	}
	return l
}

// ErrUnsafe marks an archive refused for safety.
var ErrUnsafe = errors.New("unsafe archive")

// Extract writes the archive into dir (which must exist).
func Extract(ctx context.Context, tr *tar.Reader, dir string, limits Limits) error {
	x, err := NewExtractor(dir, limits)
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.Entry(h, tr); err != nil {
			return err
		}
	}
}

// Extractor writes archive entries one at a time into a directory, with
// Extract's checks and limits across all of them. It is what an image's
// layers, merged by oci.Walk, are laid out with.
type Extractor struct {
	root    string
	limits  Limits
	total   int64
	entries int
}

// NewExtractor returns an Extractor writing into dir (which must exist).
func NewExtractor(dir string, limits Limits) (*Extractor, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Extractor{root: root, limits: limits.withDefaults()}, nil
}

// Entry writes one entry; r holds a regular file's h.Size bytes.
func (x *Extractor) Entry(h *tar.Header, r io.Reader) error {
	if x.entries >= x.limits.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrUnsafe, x.limits.MaxEntries)
	}
	x.entries++
	name, err := CleanName(h.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil
	}
	root := x.root
	target := filepath.Join(root, filepath.FromSlash(name))
	if err := noSymlinkParents(root, name); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
		if h.Size < 0 || h.Size > x.limits.MaxFileSize {
			return fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit", ErrUnsafe, name, h.Size, x.limits.MaxFileSize)
		}
		x.total += h.Size
		if x.total > x.limits.MaxTotalSize {
			return fmt.Errorf("%w: archive content exceeds %d bytes", ErrUnsafe, x.limits.MaxTotalSize)
		}
		if err := writeFile(target, r, h.Size, h.FileInfo().Mode().Perm()); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	case tar.TypeSymlink:
		if err := checkLinkTarget(name, h.Linkname); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		os.Remove(target)
		if err := os.Symlink(h.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		src, err := CleanName(h.Linkname)
		if err != nil || src == "" {
			return fmt.Errorf("%w: hard link %s points to %q", ErrUnsafe, name, h.Linkname)
		}
		if err := noSymlinkParents(root, src); err != nil {
			return err
		}
		srcPath := filepath.Join(root, filepath.FromSlash(src))
		fi, err := os.Lstat(srcPath)
		if err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: hard link %s points to %s, which is not a file extracted before it", ErrUnsafe, name, src)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		os.Remove(target)
		if err := os.Link(srcPath, target); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
	default:
		return fmt.Errorf("%w: %s has type %q (devices, fifos and the like are not allowed)", ErrUnsafe, name, string(h.Typeflag))
	}
	return nil
}

// CleanName returns the archive path as a clean relative slash path, or an
// error if it is absolute or climbs out with "..". "" means the root itself.
func CleanName(name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(n, "/") || filepath.IsAbs(name) {
		return "", fmt.Errorf("%w: absolute path %q", ErrUnsafe, name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: path %q climbs out of the target with ..", ErrUnsafe, name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// checkLinkTarget refuses a symlink whose target leaves the tree.
func checkLinkTarget(name, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("%w: symlink %s points to %q, outside the target", ErrUnsafe, name, target)
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: symlink %s points to %q, outside the target", ErrUnsafe, name, target)
	}
	return nil
}

// noSymlinkParents refuses to write through a symlink placed by an earlier entry.
func noSymlinkParents(root, name string) error {
	p := root
	parts := strings.Split(name, "/")
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s would be written through the symlink %s", ErrUnsafe, name, strings.TrimPrefix(p, root+"/"))
		}
	}
	return nil
}

func writeFile(target string, r io.Reader, size int64, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
		if err := os.Remove(target); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, perm|0o200)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("archive truncated: %d of %d bytes", n, size)
	}
	return err
}

// UnpackTemp unpacks a local tar (plain, gzip or bzip2) into a new temporary
// directory the caller removes, as Dockerfile ADD does with local archives.
// ok is false, with no directory, when the file is not such an archive.
func UnpackTemp(ctx context.Context, path string, limits Limits) (dir string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return "", false, err
	}
	return UnpackTempReader(ctx, f, limits)
}

// UnpackTempReader is UnpackTemp for an archive already open (a build
// context file opened without following links out of the context).
func UnpackTempReader(ctx context.Context, f io.Reader, limits Limits) (dir string, ok bool, err error) {
	br := bufio.NewReader(f)
	head, _ := br.Peek(512)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", false, err
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(head, []byte("BZh")):
		r = bzip2.NewReader(br)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
	default:
		if bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
			return "", false, fmt.Errorf("xz archives are not supported; unpack it into the build context and COPY the directory")
		}
		return "", false, nil
	}
	dir, err = os.MkdirTemp("", "cnstack-unpack-")
	if err != nil {
		return "", false, err
	}
	if err := Extract(ctx, tar.NewReader(r), dir, limits); err != nil {
		os.RemoveAll(dir)
		return "", false, err
	}
	return dir, true, nil
}
