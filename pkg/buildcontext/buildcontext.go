// Package buildcontext reads a build context: the directory whose files a
// Kubefile's COPY, ADD and APP instructions put into an image. It owns what
// a local source means, for the builder and for the views `cnstack lock`
// and `cnstack images why` scan alike.
//
// Every read goes through an os.Root opened on the context directory, so no
// source path, and no symlink (not even one swapped in while a build runs),
// reaches a file outside the context. Files are opened without blocking and
// must be regular files: a FIFO, socket or device is refused with an error
// rather than hanging the build.
//
// Symlinks inside the context are followed, at the top of a source and
// inside copied directories alike, as long as they stay inside the context:
// the image holds the files a link names, never the link. `sealer run`
// copies an image's rootfs to the hosts following symlinks and fails on a
// directory symlink, so real files are what installs. A link that leads
// out of the context (absolute, or climbing out with ".."), a dangling link
// and a cycle of links are errors that name the link; nothing is ever left
// out silently.
package buildcontext

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/safearchive"
)

// MaxEntries bounds the entries one source may expand to: links followed
// inside a hostile context could otherwise multiply a small tree.
const MaxEntries = 1 << 20

// Context is an open build context.
type Context struct {
	dir  string // absolute, as given (a symlinked directory stays as named)
	root *os.Root
}

// Open opens the build context dir (relative to the working directory or
// absolute). Close releases it.
func Open(dir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %q is not a directory", dir)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	return &Context{dir: abs, root: root}, nil
}

// Close releases the context.
func (c *Context) Close() error { return c.root.Close() }

// Dir is the absolute path of the context directory.
func (c *Context) Dir() string { return c.dir }

// FS is the context as a file system confined to it (for kubefile.Evaluate),
// whose errors say which link leads out or dangles. Opening never blocks
// on a FIFO.
func (c *Context) FS() fs.FS { return contextFS{c} }

type contextFS struct{ c *Context }

func (f contextFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	file, err := f.c.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, f.c.pathError(name, err)
	}
	fi, err := file.Stat()
	if err == nil && !fi.IsDir() && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is a %s: %w", name, typeName(fi.Mode()), ErrNotRegular)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

func (f contextFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return f.c.Stat(name)
}

func (f contextFS) ReadDir(name string) ([]fs.DirEntry, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	d, ok := file.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	ents, err := d.ReadDir(-1)
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, err
}

// HostPath is where rel lives on the host, for messages and cache keys
// only: reading through it could follow a symlink out of the context.
func (c *Context) HostPath(rel string) string {
	return filepath.Join(c.dir, filepath.FromSlash(rel))
}

// Glob lists the context paths matching pattern, sorted.
func (c *Context) Glob(pattern string) ([]string, error) {
	matches, err := fs.Glob(c.root.FS(), strings.TrimPrefix(path.Clean(pattern), "/"))
	if err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	sort.Strings(matches)
	return matches, nil
}

// ErrNotRegular marks a source that is neither a regular file nor a
// directory (a FIFO, socket or device).
var ErrNotRegular = errors.New("not a regular file or directory")

// OpenFile opens the regular file rel for reading, through the root. It
// never blocks on a FIFO and refuses anything but a regular file.
func (c *Context) OpenFile(rel string) (*os.File, error) {
	rel = cleanRel(rel)
	f, err := c.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, c.pathError(rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is a %s: %w", rel, typeName(fi.Mode()), ErrNotRegular)
	}
	return f, nil
}

// Stat describes rel, following symlinks inside the context.
func (c *Context) Stat(rel string) (fs.FileInfo, error) {
	rel = cleanRel(rel)
	fi, err := c.root.Stat(rel)
	if err != nil {
		return nil, c.pathError(rel, err)
	}
	return fi, nil
}

// Entries lists what "COPY rel dest" adds, with Docker's rules for where
// things go: a directory's contents (not the directory itself) go under
// dest; a file goes to dest, or into it when destIsDir (dest ends in "/",
// is the root, or is a directory in the image already).
func (c *Context) Entries(rel, dest string, destIsDir bool) ([]layer.Entry, error) {
	rel = cleanRel(rel)
	dest = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(dest)), "/")
	fi, err := c.Stat(rel)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		w := &walker{c: c, active: map[fileID]bool{}}
		if dest != "" {
			w.out = append(w.out, layer.Entry{Name: dest, Mode: fs.ModeDir | 0o755})
		}
		if err := w.dir(rel, dest, fi); err != nil {
			return nil, err
		}
		return w.out, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a %s: %w", rel, typeName(fi.Mode()), ErrNotRegular)
	}
	name := dest
	if destIsDir || dest == "" {
		name = path.Join(dest, path.Base(rel))
	}
	return []layer.Entry{c.fileEntry(rel, name, fi)}, nil
}

// Source resolves one local source of a COPY, ADD or APP step into
// entries: a path or a glob pattern (several matches make dest a
// directory); with unpack (ADD), a tar archive (plain, gzip or bzip2) is
// unpacked into dest instead of copied. cleanup removes unpacked files; call
// it once the entries' content has been read.
func (c *Context) Source(ctx context.Context, src kubefile.Source, dest string, destIsDir, unpack bool) (entries []layer.Entry, cleanup func(), err error) {
	var cleanups []func()
	cleanup = func() {
		for _, f := range cleanups {
			f()
		}
	}
	paths := []string{src.Path}
	if src.Glob {
		if paths, err = c.Glob(src.Path); err != nil {
			return nil, cleanup, err
		}
		if len(paths) == 0 {
			return nil, cleanup, fmt.Errorf("no file in the build context matches %q", src.Path)
		}
		if len(paths) > 1 {
			destIsDir = true
		}
	}
	for _, rel := range paths {
		var es []layer.Entry
		if unpack {
			sub, done, ok, uerr := c.unpack(ctx, rel)
			if uerr != nil {
				cleanup()
				return nil, func() {}, fmt.Errorf("ADD %s: %w", rel, uerr)
			}
			if ok {
				cleanups = append(cleanups, done)
				es, err = sub.Entries(".", dest, destIsDir)
				if err != nil {
					cleanup()
					return nil, func() {}, fmt.Errorf("ADD %s: %w", rel, err)
				}
				entries = append(entries, es...)
				continue
			}
		}
		if es, err = c.Entries(rel, dest, destIsDir); err != nil {
			cleanup()
			return nil, func() {}, err
		}
		entries = append(entries, es...)
	}
	return entries, cleanup, nil
}

// unpack unpacks the archive rel into a temporary directory, opened as a
// context of its own (so its links follow the same rules). ok is false when
// rel is not an archive.
func (c *Context) unpack(ctx context.Context, rel string) (*Context, func(), bool, error) {
	fi, err := c.Stat(rel)
	if err != nil {
		return nil, nil, false, err
	}
	if fi.IsDir() {
		return nil, nil, false, nil
	}
	f, err := c.OpenFile(rel)
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	dir, ok, err := safearchive.UnpackTempReader(ctx, f, safearchive.Limits{})
	if err != nil || !ok {
		return nil, nil, false, err
	}
	sub, err := Open(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, false, err
	}
	return sub, func() { sub.Close(); os.RemoveAll(dir) }, true, nil
}

func (c *Context) fileEntry(rel, name string, fi fs.FileInfo) layer.Entry {
	return layer.Entry{
		Name: name, Mode: fi.Mode().Perm(), Size: fi.Size(), Source: c.HostPath(rel),
		Open: func(context.Context) (io.ReadCloser, error) { return c.OpenFile(rel) },
	}
}

type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true //nolint:unconvert // Dev is int32 on some platforms
}

// walker lists a directory tree, following links inside the context.
type walker struct {
	c      *Context
	out    []layer.Entry
	active map[fileID]bool // directories on the current path, to find link cycles
}

func (w *walker) dir(rel, name string, fi fs.FileInfo) error {
	if id, ok := idOf(fi); ok {
		if w.active[id] {
			return fmt.Errorf("%s: a cycle of symlinks (the directory contains itself)", rel)
		}
		w.active[id] = true
		defer delete(w.active, id)
	}
	f, err := w.c.root.Open(rel)
	if err != nil {
		return w.c.pathError(rel, err)
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		crel, cname := path.Join(rel, e.Name()), path.Join(name, e.Name())
		var cfi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			cfi, err = w.c.Stat(crel)
		} else {
			cfi, err = e.Info()
		}
		if err != nil {
			return err
		}
		if len(w.out) >= MaxEntries {
			return fmt.Errorf("%s: more than %d files and directories", rel, MaxEntries)
		}
		switch {
		case cfi.IsDir():
			w.out = append(w.out, layer.Entry{Name: cname, Mode: fs.ModeDir | 0o755})
			if err := w.dir(crel, cname, cfi); err != nil {
				return err
			}
		case cfi.Mode().IsRegular():
			w.out = append(w.out, w.c.fileEntry(crel, cname, cfi))
		default:
			return fmt.Errorf("%s is a %s: %w; only files, directories and links to them can be copied into an image", crel, typeName(cfi.Mode()), ErrNotRegular)
		}
	}
	return nil
}

// pathError explains why rel could not be reached: it does not exist, a
// link on the way dangles, or a link leads out of the context.
func (c *Context) pathError(rel string, err error) error {
	// Find the first symlink on the way that is dangling or leads out.
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		lfi, lerr := c.root.Lstat(prefix)
		if lerr != nil {
			break
		}
		if lfi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, rerr := c.root.Readlink(prefix)
		if rerr != nil {
			break
		}
		if path.IsAbs(target) {
			if inside(c.dir, target) {
				return fmt.Errorf("%s is an absolute symlink (to %s); make it relative: only relative links that stay inside the build context are followed", prefix, target)
			}
			return fmt.Errorf("%s is a symlink to %s, outside the build context %s", prefix, target, c.dir)
		}
		if resolved := path.Join(path.Dir(prefix), target); resolved == ".." || strings.HasPrefix(resolved, "../") {
			return fmt.Errorf("%s is a symlink to %s, outside the build context %s", prefix, target, c.dir)
		}
		if _, serr := c.root.Stat(prefix); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("%s is a symlink to %s, which does not exist", prefix, target)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notExistError(fmt.Sprintf("%s does not exist in the build context %s", rel, c.dir))
	case strings.Contains(err.Error(), "escapes"):
		return fmt.Errorf("%s leads outside the build context %s (through a symlink)", rel, c.dir)
	}
	return fmt.Errorf("%s: %w", rel, err)
}

// notExistError is a missing path, said plainly; errors.Is(err,
// fs.ErrNotExist) holds for it.
type notExistError string

func (e notExistError) Error() string        { return string(e) }
func (e notExistError) Is(target error) bool { return target == fs.ErrNotExist }

func inside(dir, p string) bool {
	dirs := []string{dir}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dirs = append(dirs, real)
	}
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func cleanRel(rel string) string {
	rel = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(rel)), "/")
	if rel == "" {
		return "."
	}
	return rel
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return m.Type().String()
}
