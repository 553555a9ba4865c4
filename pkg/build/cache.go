package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/layer"
)

// Cache remembers what earlier builds produced, keyed by digests of their
// inputs: a layer per instruction chain key, an image per image key, and the
// content digest of every context file by its stat data (so an unchanged
// tree is not read again). Entries are small JSON files written atomically;
// a record whose blob was pruned from the store is simply a miss.
type Cache struct {
	dir string

	mu    sync.Mutex
	files map[string]fileRecord
	dirty bool
}

// LayerRecord is a cached layer.
type LayerRecord struct {
	Descriptor ocispec.Descriptor `json:"descriptor"`
	DiffID     digest.Digest      `json:"diffID"`
}

// ImageRecord is a cached platform image.
type ImageRecord struct {
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

type fileRecord struct {
	Size   int64         `json:"s"`
	MTime  int64         `json:"m"`
	CTime  int64         `json:"c"`
	Inode  uint64        `json:"i"`
	Digest digest.Digest `json:"d"`
}

// OpenCache opens (creating) the cache directory.
func OpenCache(dir string) (*Cache, error) {
	for _, d := range []string{"layers", "images", "downloads"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("open build cache: %w", err)
		}
	}
	c := &Cache{dir: dir, files: map[string]fileRecord{}}
	if b, err := os.ReadFile(filepath.Join(dir, "files.json")); err == nil {
		_ = json.Unmarshal(b, &c.files) // a damaged stat cache only costs re-hashing
	}
	return c, nil
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) get(kind, key string, v any) bool {
	b, err := os.ReadFile(filepath.Join(c.dir, kind, key+".json"))
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func (c *Cache) put(kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.dir, kind, key+".json"), b, 0o644)
}

// Layer looks up a cached layer.
func (c *Cache) Layer(key string) (LayerRecord, bool) {
	var r LayerRecord
	return r, c.get("layers", key, &r)
}

// PutLayer records a layer.
func (c *Cache) PutLayer(key string, r LayerRecord) error { return c.put("layers", key, r) }

// Image looks up a cached platform image.
func (c *Cache) Image(key string) (ImageRecord, bool) {
	var r ImageRecord
	return r, c.get("images", key, &r)
}

// PutImage records a platform image.
func (c *Cache) PutImage(key string, r ImageRecord) error { return c.put("images", key, r) }

// FileDigest returns the sha256 and size of a regular entry's content.
// The file is opened the way the layer writer opens it (through the build
// context: no link out of it is followed) and described by fstat of that
// very descriptor; the stat cache answers when size, mtime, ctime and inode
// are unchanged, else the content is hashed from the same descriptor.
func (c *Cache) FileDigest(ctx context.Context, e layer.Entry) (digest.Digest, int64, error) {
	e.Verify = false
	rc, err := layer.OpenEntry(ctx, e)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	statter, ok := rc.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return hashAll(e.Source, rc)
	}
	fi, err := statter.Stat()
	if err != nil {
		return "", 0, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	rec := fileRecord{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st != nil {
		rec.CTime = st.Ctim.Nano()
		rec.Inode = st.Ino
	}
	abs, _ := filepath.Abs(e.Source)
	c.mu.Lock()
	old, ok := c.files[abs]
	c.mu.Unlock()
	if ok && st != nil && old.Size == rec.Size && old.MTime == rec.MTime && old.CTime == rec.CTime && old.Inode == rec.Inode {
		return old.Digest, rec.Size, nil
	}
	d, n, err := hashAll(e.Source, rc)
	if err != nil {
		return "", 0, err
	}
	if n != rec.Size {
		return "", 0, fmt.Errorf("%s: %w (%d bytes read, %d stated)", e.Source, layer.ErrChanged, n, rec.Size)
	}
	rec.Digest = d
	c.mu.Lock()
	c.files[abs] = rec
	c.dirty = true
	c.mu.Unlock()
	return d, n, nil
}

// Forget drops a file from the stat cache (its content changed under the
// builder, so its stat data cannot be trusted to name its digest).
func (c *Cache) Forget(path string) {
	abs, _ := filepath.Abs(path)
	c.mu.Lock()
	if _, ok := c.files[abs]; ok {
		delete(c.files, abs)
		c.dirty = true
	}
	c.mu.Unlock()
}

func hashAll(name string, r io.Reader) (digest.Digest, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", name, err)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), n, nil
}

// Flush writes the stat cache if it changed.
func (c *Cache) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(c.files)
	if err != nil {
		return err
	}
	c.dirty = false
	return atomicfile.WriteFile(filepath.Join(c.dir, "files.json"), b, 0o644)
}

// DownloadPath is where a verified download with digest d is kept.
func (c *Cache) DownloadPath(d digest.Digest) string {
	return download.Path(c.DownloadDir(), d)
}

// DownloadDir holds verified remote sources, named by their sha256.
func (c *Cache) DownloadDir() string { return filepath.Join(c.dir, "downloads") }
