// Package layer writes filesystem layers deterministically: the same files
// give the same tar bytes and the same gzip bytes on any machine, in any
// directory, under any umask. Entries are sorted, owned by 0:0, stamped with
// one fixed mtime, and their modes normalised (0755 if any execute bit, else
// 0644; directories 0755). The tar is hashed (diff ID) and compressed in one
// streaming pass with parallel gzip; nothing is buffered whole.
package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
)

// Entry is one file, directory or symlink of a layer.
type Entry struct {
	Name     string      // slash path relative to the image root, e.g. "bin/kubectl"
	Mode     fs.FileMode // type bits and permissions (permissions are normalised)
	Size     int64       // regular files
	Linkname string      // symlinks
	Source   string      // host path of a regular file's content
	// Open, if set, supplies a regular file's content instead of Source.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Digest, if set, is the sha256 of the content (known without reading
	// it, e.g. a registry blob); cache keys use it instead of hashing.
	Digest digest.Digest
	// Verify makes readers check the content against Digest (see
	// OpenEntry): for files that may change under the builder, not for
	// content-addressed blobs already verified.
	Verify bool
}

// Options control the bytes of a layer.
type Options struct {
	ModTime time.Time // every entry's mtime; see Epoch
	// Level is the gzip level (1 fastest … 9 smallest); 0 means DefaultLevel.
	Level int
}

// DefaultLevel balances speed and size; it keeps the parallel compressor at or
// above single-threaded `gzip -1` throughput on two cores.
const DefaultLevel = 5

// blockSize is fixed: pgzip's output depends on it, so it is part of the format.
const blockSize = 1 << 20

// Epoch is the default mtime of every entry and the image creation time when
// SOURCE_DATE_EPOCH is unset: reproducible builds need a fixed value.
var Epoch = time.Unix(0, 0).UTC()

// SourceDateEpoch returns the time SOURCE_DATE_EPOCH names, or Epoch.
func SourceDateEpoch() (time.Time, error) {
	v := strings.TrimSpace(os.Getenv("SOURCE_DATE_EPOCH"))
	if v == "" {
		return Epoch, nil
	}
	var sec int64
	if _, err := fmt.Sscanf(v, "%d", &sec); err != nil || fmt.Sprint(sec) != v {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Result describes a written layer.
type Result struct {
	Digest           digest.Digest // of the compressed bytes
	Size             int64         // compressed size
	DiffID           digest.Digest // of the uncompressed tar
	UncompressedSize int64
	Files            int
}

// Normalize sorts entries, adds missing parent directories, removes
// duplicates (the last entry for a name wins, as a later COPY would) and
// normalises modes. It is pure; WriteTar calls it.
func Normalize(entries []Entry) ([]Entry, error) {
	byName := make(map[string]Entry, len(entries))
	for _, e := range entries {
		name, err := cleanName(e.Name)
		if err != nil {
			return nil, err
		}
		e.Name = name
		e.Mode = normalMode(e.Mode)
		if e.Mode.IsDir() {
			if prev, ok := byName[name]; ok && prev.Mode.IsDir() {
				continue
			}
		}
		byName[name] = e
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if prev, ok := byName[dir]; ok {
				if !prev.Mode.IsDir() {
					return nil, fmt.Errorf("%s is a file, but %s needs it to be a directory", dir, name)
				}
				continue
			}
			byName[dir] = Entry{Name: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	out := make([]Entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func cleanName(name string) (string, error) {
	n := path.Clean("/" + strings.ReplaceAll(name, "\\", "/"))
	n = strings.TrimPrefix(n, "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("layer entry %q names the image root", name)
	}
	return n, nil
}

func normalMode(m fs.FileMode) fs.FileMode {
	switch {
	case m.IsDir():
		return fs.ModeDir | 0o755
	case m&fs.ModeSymlink != 0:
		return fs.ModeSymlink | 0o777
	case m&0o111 != 0:
		return 0o755
	default:
		return 0o644
	}
}

// WriteTar writes the entries as a tar stream.
func WriteTar(ctx context.Context, w io.Writer, entries []Entry, modTime time.Time) (files int, err error) {
	entries, err = Normalize(entries)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(w)
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return files, err
		}
		hdr := &tar.Header{
			Name:    e.Name,
			Mode:    int64(e.Mode.Perm()),
			ModTime: modTime,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.Mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.Linkname
		case e.Mode.IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.Size
		default:
			return files, fmt.Errorf("%s: unsupported file type %s", e.Name, e.Mode.Type())
		}
		// PAX only when a name or link is too long for USTAR; no atime/ctime.
		if len(hdr.Name) <= 100 && len(hdr.Linkname) <= 100 {
			hdr.Format = tar.FormatUSTAR
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return files, fmt.Errorf("tar %s: %w", e.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyContent(ctx, tw, e, buf); err != nil {
				return files, err
			}
		}
		files++
	}
	return files, tw.Close()
}

func copyContent(ctx context.Context, w io.Writer, e Entry, buf []byte) error {
	rc, err := OpenEntry(ctx, e)
	if err != nil {
		return fmt.Errorf("read %s for %s: %w", e.Source, e.Name, err)
	}
	defer rc.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(rc, e.Size), buf)
	if err != nil {
		return fmt.Errorf("read %s for %s: %w", e.Source, e.Name, err)
	}
	if n != e.Size {
		return fmt.Errorf("%s: %w (%d bytes, expected %d)", e.Source, ErrChanged, n, e.Size)
	}
	if e.Verify {
		// Reading on to EOF lets the verifier compare the digest.
		if m, err := io.ReadFull(rc, buf[:1]); err != io.EOF {
			if m > 0 {
				err = fmt.Errorf("%w (it grew past %d bytes)", ErrChanged, e.Size)
			}
			return fmt.Errorf("%s: %w", e.Source, err)
		}
	}
	return nil
}

// ErrChanged marks a source file whose content changed between the moment
// its digest was taken (for a cache key) and the moment it was read into a
// layer. Such a layer is never written, so never cached.
var ErrChanged = errors.New("changed while the layer was being written")

// OpenEntry opens a regular entry's content (Open, else Source). When the
// entry has Verify and a Digest, the reader checks them: reading to EOF content of
// another size or digest fails with ErrChanged, so what was hashed for the
// cache key is exactly what goes into the layer.
func OpenEntry(ctx context.Context, e Entry) (io.ReadCloser, error) {
	open := e.Open
	if open == nil {
		open = func(context.Context) (io.ReadCloser, error) { return os.Open(e.Source) }
	}
	rc, err := open(ctx)
	if err != nil || !e.Verify || e.Digest == "" {
		return rc, err
	}
	return &verifyingReader{rc: rc, e: e, h: sha256.New()}, nil
}

type verifyingReader struct {
	rc io.ReadCloser
	e  Entry
	h  hash.Hash
	n  int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(v.h.Sum(nil)))
		if v.n != v.e.Size || got != v.e.Digest {
			return n, fmt.Errorf("%w: read %d bytes with digest %s, expected %d bytes with digest %s", ErrChanged, v.n, got, v.e.Size, v.e.Digest)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// Write streams the entries as a gzip-compressed tar into w and returns the
// digests of both forms, computed on the way.
func Write(ctx context.Context, w io.Writer, entries []Entry, opts Options) (Result, error) {
	level := opts.Level
	if level == 0 {
		level = DefaultLevel
	}
	compressed := &countingHash{h: sha256.New(), w: w}
	gz, err := pgzip.NewWriterLevel(compressed, level)
	if err != nil {
		return Result{}, err
	}
	// pgzip would write the zero time.Time as a wrapped 2042 date; 0 means
	// "no timestamp" in gzip.
	gz.ModTime = time.Unix(0, 0)
	if err := gz.SetConcurrency(blockSize, 4); err != nil {
		return Result{}, err
	}
	uncompressed := &countingHash{h: sha256.New(), w: gz}
	files, err := WriteTar(ctx, uncompressed, entries, opts.ModTime)
	if err != nil {
		gz.Close()
		return Result{}, err
	}
	if err := gz.Close(); err != nil {
		return Result{}, fmt.Errorf("compress layer: %w", err)
	}
	return Result{
		Digest: compressed.digest(), Size: compressed.n,
		DiffID: uncompressed.digest(), UncompressedSize: uncompressed.n,
		Files: files,
	}, nil
}

type countingHash struct {
	h hash.Hash
	w io.Writer
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *countingHash) digest() digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(c.h.Sum(nil)))
}
