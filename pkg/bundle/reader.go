package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/safearchive"
)

// ErrInvalid marks a bundle refused for its content or shape.
var ErrInvalid = errors.New("invalid bundle")

// Limits bound what a bundle may contain, so a hostile one cannot exhaust
// memory or disk. check and load apply the same limits (and the same
// validation: validate.go).
type Limits struct {
	// MaxBlob is the largest blob (default 32 GiB: the registry layer of a
	// large cluster image is a few GiB). A blob whose size some manifest of
	// the bundle declares must also have exactly that size, and load never
	// starts a blob larger than the free space of the store's filesystem.
	MaxBlob int64
	// MaxMetadata is the largest index.json, checksum list or metadata
	// file (default 16 MiB).
	MaxMetadata int64
	// MaxEntries is the number of archive entries (default 1 million).
	MaxEntries int
	// MaxImages is the number of images (index.json entries, with their
	// signatures and attestations; default 10000).
	MaxImages int
	// MaxRatio bounds how much a compressed bundle may expand: past the
	// first 64 MiB, the decompressed stream may be at most MaxRatio times
	// the compressed bytes read (default 100). Bundles carry gzip layers
	// that do not compress further, so real ones stay near 1:1; a
	// decompression bomb stops within 64 MiB of output.
	MaxRatio int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxBlob == 0 {
		l.MaxBlob = 32 << 30
	}
	if l.MaxMetadata == 0 {
		l.MaxMetadata = 16 << 20
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = 1_000_000
	}
	if l.MaxImages == 0 {
		l.MaxImages = 10_000
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = 100
	}
	return l
}

// ratioFloor is how much a compressed bundle may expand before MaxRatio applies.
const ratioFloor = 64 << 20

var (
	blobName   = regexp.MustCompile(`^blobs/sha256/[a-f0-9]{64}$`)
	nestedName = regexp.MustCompile(`^[a-f0-9]{64}\.tar$`)
)

// kind of an entry of a bundle.
type kind int

const (
	kindBlob     kind = iota
	kindMetadata      // oci-layout, index.json, cnstack-bundle.json, SHA256SUMS, sealer's Metadata
	kindNested        // sealer's <config-hex>.tar instance archive
)

// visitor receives the entries of a bundle, in archive order. For blobs, r
// must be read (or not) before returning; for metadata, b holds the content.
type visitor interface {
	blob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error
	metadata(name string, b []byte) error
	// nested is called for sealer instance archives; it returns a visitor
	// for the inner archive.
	nested(name string) (visitor, error)
}

// decompress detects zstd or gzip by magic and returns the tar stream,
// bounded by lim.MaxRatio.
func decompress(r io.Reader, lim Limits) (io.Reader, func(), error) {
	lim = lim.withDefaults()
	in := &countingReader{r: r}
	br := bufio.NewReaderSize(in, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, nil, err
		}
		return &ratioReader{r: zr, in: in, max: lim.MaxRatio}, zr.Close, nil
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return &ratioReader{r: zr, in: in, max: lim.MaxRatio}, func() { zr.Close() }, nil
	}
	return br, func() {}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader fails a decompressed stream that grows past max times the
// compressed bytes read (after ratioFloor bytes of output).
type ratioReader struct {
	r   io.Reader
	in  *countingReader
	out int64
	max int64
}

func (r *ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.out += int64(n)
	if r.out > ratioFloor && r.out > r.max*r.in.n {
		return n, fmt.Errorf("%w: the archive expands to more than %d times its compressed size (%d bytes from %d): a decompression bomb", ErrInvalid, r.max, r.out, r.in.n)
	}
	return n, err
}

// walk reads a bundle archive, validating every entry before it is used:
// only the files of an OCI layout (and sealer's wrapper) are accepted, as
// regular files, within size limits. Nothing is written by path, so names
// cannot escape anything; odd names are refused all the same.
func walk(ctx context.Context, r io.Reader, v visitor, lim Limits) error {
	lim = lim.withDefaults()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the archive is truncated (it ends in the middle of an entry; was it cut while copied?)", ErrInvalid)
		}
		if err != nil {
			return fmt.Errorf("%w: read archive: %v", ErrInvalid, err)
		}
		if n >= lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrInvalid, lim.MaxEntries)
		}
		name, err := safearchive.CleanName(h.Name)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if name == "" || name == "blobs" || name == "blobs/sha256" {
				continue
			}
			return fmt.Errorf("%w: unexpected directory %q", ErrInvalid, h.Name)
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers use TypeRegA
		case tar.TypeXGlobalHeader:
			continue
		default:
			return fmt.Errorf("%w: entry %q is a %s; a bundle holds only regular files", ErrInvalid, h.Name, typeName(h.Typeflag))
		}
		if h.Size < 0 {
			return fmt.Errorf("%w: entry %q has a negative size", ErrInvalid, h.Name)
		}
		switch {
		case blobName.MatchString(name):
			if h.Size > lim.MaxBlob {
				return fmt.Errorf("%w: blob %s is %d bytes, over the %d-byte limit", ErrInvalid, name, h.Size, lim.MaxBlob)
			}
			d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(name, blobsPrefix))
			if err := v.blob(ctx, d, h.Size, tr); err != nil {
				return err
			}
		case name == layoutName || name == indexName || name == metaName || name == sumsFileName || name == "Metadata":
			if h.Size > lim.MaxMetadata {
				return fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit", ErrInvalid, name, h.Size, lim.MaxMetadata)
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return fmt.Errorf("%w: read %s: %v", ErrInvalid, name, err)
			}
			if err := v.metadata(name, b); err != nil {
				return err
			}
		case nestedName.MatchString(name):
			inner, err := v.nested(name)
			if err != nil {
				return err
			}
			if err := walk(ctx, io.LimitReader(tr, h.Size), inner, lim); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		default:
			return fmt.Errorf("%w: unexpected entry %q (a bundle holds oci-layout, index.json, %s, %s and blobs/sha256/<digest>)", ErrInvalid, h.Name, metaName, sumsFileName)
		}
	}
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q entry", string(t))
}
