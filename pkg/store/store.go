// Package store is cnstack's local image store: an OCI image layout on disk
// (oci-layout, index.json, blobs/sha256/…) whose tags are
// org.opencontainers.image.ref.name annotations holding full references.
//
// Blobs are content-addressed and written atomically (temp file, verify,
// rename), so a killed writer never leaves a corrupt blob behind; partial
// downloads stay in ingest/ and can be resumed. index.json is rewritten under
// an exclusive file lock, so several cnstack processes can share one store.
// A Store satisfies oras-go's oras.Target, so content moves in and out of it
// with one Copy.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/internal/ctxio"
	"github.com/cnstack/cnstack/internal/filelock"
)

const (
	layoutFile = "oci-layout"
	indexFile  = "index.json"
	blobsDir   = "blobs"
	ingestDir  = "ingest"
	indexLock  = ".index.lock"
	gcLock     = ".gc.lock"
)

// ErrNotFound is returned (wrapped) for a missing blob or reference.
var ErrNotFound = errdef.ErrNotFound

// ErrAlreadyExists is returned (wrapped) by Ingest for a blob already stored.
var ErrAlreadyExists = errdef.ErrAlreadyExists

// ErrDigestMismatch is returned (wrapped) for content whose digest or size
// is not what its descriptor says: a blob being written (the bytes are
// dropped, never kept for resuming) or a stored blob that rotted. It wraps
// oras-go's content.ErrMismatchedDigest, so errors.Is matches either.
var ErrDigestMismatch error = digestMismatch{}

type digestMismatch struct{}

func (digestMismatch) Error() string { return "digest mismatch" }
func (digestMismatch) Unwrap() error { return content.ErrMismatchedDigest }

// Store is an OCI image layout directory.
type Store struct {
	root string
	mu   sync.Mutex // serialises index.json updates inside this process
}

// Open opens the store at root, creating the layout if needed.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	for _, d := range []string{filepath.Join(abs, blobsDir, "sha256"), filepath.Join(abs, ingestDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	s := &Store{root: abs}
	if _, err := os.Stat(filepath.Join(abs, layoutFile)); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(filepath.Join(abs, layoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	if _, err := os.Stat(filepath.Join(abs, indexFile)); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeIndex(&ocispec.Index{Versioned: versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	// What killed writers left behind goes now, not an hour later.
	s.cleanTemps()
	s.cleanOutside()
	return s, nil
}

// Root is the directory of the layout.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.root, blobsDir, d.Algorithm().String(), d.Encoded())
}

// Exists reports whether the blob of desc is in the store with the right size.
func (s *Store) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	fi, err := os.Stat(s.BlobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return desc.Size <= 0 || fi.Size() == desc.Size, nil
}

// Fetch opens the blob of desc.
func (s *Store) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	f, err := os.Open(s.BlobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrNotFound)
	}
	return f, err
}

// ReadBlob returns a small blob (manifest, config) whole.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := s.Fetch(ctx, ocispec.Descriptor{Digest: d})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s in store %s is corrupt: %w", d, s.root, ErrDigestMismatch)
	}
	return b, nil
}

// Push stores what r holds, which must match expected (digest and size).
// A blob already present is not written again. A partial blob an earlier
// attempt left in ingest/ is resumed: a seekable r (a file, or a registry
// blob read with HTTP Range) jumps past the bytes already held; any other
// is read and those bytes dropped. If the resumed blob then fails its
// digest check, the partial bytes were the culprit: they are dropped and,
// when r can seek, the blob is written once more from the start. A source
// that breaks mid-stream resumes itself (pkg/regclient's blob reader does).
func (s *Store) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	for restarted := false; ; restarted = true {
		resumed, err := s.push(ctx, expected, r)
		if err == nil || !resumed || restarted || !errors.Is(err, ErrDigestMismatch) {
			return err
		}
		sk, ok := r.(io.Seeker)
		if !ok {
			return err
		}
		if _, serr := sk.Seek(0, io.SeekStart); serr != nil {
			return err
		}
		slog.Debug("resumed blob was wrong; writing it again from the start", "digest", expected.Digest)
	}
}

// push is one attempt of Push; resumed says a partial blob was continued.
func (s *Store) push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) (resumed bool, err error) {
	if ok, err := s.Exists(ctx, expected); err != nil || ok {
		return false, err
	}
	w, err := s.Ingest(ctx, expected)
	if errors.Is(err, ErrAlreadyExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer w.Close()
	if off := w.Offset(); off > 0 {
		resumed = true
		if sk, ok := r.(io.Seeker); ok {
			if _, err := sk.Seek(off, io.SeekStart); err != nil {
				return resumed, fmt.Errorf("push %s: resume at %d: %w", expected.Digest, off, err)
			}
		} else if _, err := io.CopyN(io.Discard, r, off); err != nil {
			return resumed, fmt.Errorf("push %s: skip %d resumed bytes: %w", expected.Digest, off, err)
		}
	}
	if _, err := ctxio.Copy(ctx, w, r, nil); err != nil {
		return resumed, fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	return resumed, w.Commit()
}

// PushBytes stores b and returns its descriptor.
func (s *Store) PushBytes(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return desc, s.Push(ctx, desc, strings.NewReader(string(b)))
}

// Delete removes a blob. Tags pointing at it are not touched: use Untag.
func (s *Store) Delete(_ context.Context, desc ocispec.Descriptor) error {
	err := os.Remove(s.BlobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", desc.Digest, ErrNotFound)
	}
	return err
}

// BlobWriter writes one blob into ingest/ and moves it into place on Commit.
type BlobWriter struct {
	s        *Store
	f        *os.File
	lock     *filelock.Lock
	h        hash.Hash
	n        int64
	expected ocispec.Descriptor // zero Digest when unknown (Create)
	done     bool
	discard  bool
}

// Ingest opens a resumable writer for a blob of known digest. If an earlier
// attempt left a partial file, its bytes are kept and Offset says how many;
// the caller continues from there. Two writers of one blob serialise.
func (s *Store) Ingest(ctx context.Context, expected ocispec.Descriptor) (*BlobWriter, error) {
	if err := expected.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", expected.Digest, err)
	}
	if expected.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("blob %s: only sha256 digests are supported", expected.Digest)
	}
	partial := filepath.Join(s.root, ingestDir, expected.Digest.Encoded()+".partial")
	lock, err := filelock.Acquire(ctx, partial+".lock", true)
	if err != nil {
		return nil, err
	}
	if ok, _ := s.Exists(ctx, expected); ok {
		// Another writer finished it while we waited for the lock.
		lock.Unlock()
		return nil, fmt.Errorf("blob %s: %w", expected.Digest, ErrAlreadyExists)
	}
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("ingest %s: %w", expected.Digest, err)
	}
	w := &BlobWriter{s: s, f: f, lock: lock, h: sha256.New(), expected: expected}
	// Re-hash what a previous attempt wrote, so the digest covers it.
	n, err := io.Copy(w.h, f)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("ingest %s: rehash partial: %w", expected.Digest, err)
	}
	if expected.Size > 0 && n > expected.Size {
		// Longer than the blob: it can only be garbage. Start over.
		if err := f.Truncate(0); err != nil {
			w.Close()
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			w.Close()
			return nil, err
		}
		w.h.Reset()
		n = 0
	}
	w.n = n
	return w, nil
}

// Create opens a writer for a blob whose digest is not known yet (a layer
// being built). Commit computes the digest.
//
// The temp file is flock'ed for the writer's life: a writer killed before
// Commit leaves a file whose lock is free, which the next Open or Prune
// removes (cleanTemps).
func (s *Store) Create() (*BlobWriter, error) {
	for attempt := 0; ; attempt++ {
		f, err := os.CreateTemp(filepath.Join(s.root, ingestDir), "new-*"+tempSuffix)
		if err != nil {
			return nil, fmt.Errorf("create blob: %w", err)
		}
		if err := filelock.LockFile(f); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("create blob: lock %s: %w", f.Name(), err)
		}
		// A cleaner may have taken the still unlocked file for a dead
		// writer's and removed it: then start over with a new one.
		if sameFile(f) {
			return &BlobWriter{s: s, f: f, h: sha256.New()}, nil
		}
		f.Close()
		if attempt > 10 {
			return nil, fmt.Errorf("create blob: temp files in %s keep vanishing", filepath.Join(s.root, ingestDir))
		}
	}
}

// tempSuffix names the temp files of blobs being built (Create).
const tempSuffix = ".tmp"

// sameFile reports whether f's path still names f.
func sameFile(f *os.File) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(f.Name())
	return err == nil && os.SameFile(a, b)
}

// cleanTemps removes the temp files of Create writers that died (their
// lock is free), and reports how many files and bytes it removed. It never
// waits: a live writer's file is skipped.
func (s *Store) cleanTemps() (n int, bytes int64) {
	dir := filepath.Join(s.root, ingestDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "new-") || !strings.HasSuffix(e.Name(), tempSuffix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if ok, _ := filelock.TryLockFile(f); ok && sameFile(f) {
			if fi, err := f.Stat(); err == nil && os.Remove(p) == nil {
				n++
				bytes += fi.Size()
			}
		}
		f.Close() // releases the lock
	}
	if n > 0 {
		slog.Debug("removed temp files of interrupted writers", "store", s.root, "files", n, "bytes", bytes)
	}
	return n, bytes
}

// Offset is the number of bytes already written (resumed plus new).
func (w *BlobWriter) Offset() int64 { return w.n }

// Digest is the digest of what has been written so far.
func (w *BlobWriter) Digest() digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(w.h.Sum(nil)))
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit verifies the content against the expected descriptor (if any) and
// moves it into blobs/. It returns the final descriptor.
func (w *BlobWriter) Commit() error {
	_, err := w.CommitDescriptor("")
	return err
}

// CommitDescriptor is Commit returning the descriptor with mediaType set.
func (w *BlobWriter) CommitDescriptor(mediaType string) (ocispec.Descriptor, error) {
	d := w.Digest()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: w.n}
	if w.expected.Digest != "" {
		if d != w.expected.Digest || (w.expected.Size > 0 && w.n != w.expected.Size) {
			w.discard = true // wrong content is never worth resuming
			w.Close()
			return desc, fmt.Errorf("blob %s: %w: got %s (%d bytes), want %d bytes", w.expected.Digest, ErrDigestMismatch, d, w.n, w.expected.Size)
		}
	}
	// Renamed while still open (and locked): a temp-file cleaner never sees
	// a committed blob's file unlocked.
	if err := os.Rename(w.f.Name(), w.s.BlobPath(d)); err != nil {
		w.Close()
		return desc, fmt.Errorf("commit blob %s: %w", d, err)
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		os.Remove(w.s.BlobPath(d))
		w.Close()
		return desc, fmt.Errorf("write blob %s: %w", d, err)
	}
	w.Close()
	return desc, nil
}

// Close releases the writer. Without Commit, a Create writer's temp file is
// removed and an Ingest writer's partial file is kept for resuming.
func (w *BlobWriter) Close() error {
	if w.f != nil {
		_ = w.f.Close()
		if !w.done && (w.discard || w.expected.Digest == "") {
			_ = os.Remove(w.f.Name())
		}
	}
	if w.lock != nil {
		// The lock file stays: removing it would let a waiter holding the old
		// inode and a newcomer creating a new one both "own" the blob.
		w.lock.Unlock()
		w.lock = nil
	}
	return nil
}
