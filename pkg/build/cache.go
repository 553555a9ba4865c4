package build

import (
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

// FileDigest returns the sha256 of a regular file, from the stat cache when
// size, mtime, ctime and inode are unchanged.
func (c *Cache) FileDigest(path string, fi fs.FileInfo) (digest.Digest, error) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	rec := fileRecord{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st != nil {
		rec.CTime = st.Ctim.Nano()
		rec.Inode = st.Ino
	}
	abs, _ := filepath.Abs(path)
	c.mu.Lock()
	old, ok := c.files[abs]
	c.mu.Unlock()
	if ok && st != nil && old.Size == rec.Size && old.MTime == rec.MTime && old.CTime == rec.CTime && old.Inode == rec.Inode {
		return old.Digest, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	rec.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	c.mu.Lock()
	c.files[abs] = rec
	c.dirty = true
	c.mu.Unlock()
	return rec.Digest, nil
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
	return filepath.Join(c.DownloadDir(), d.Encoded())
}

// DownloadDir holds verified remote sources, named by their sha256.
func (c *Cache) DownloadDir() string { return filepath.Join(c.dir, "downloads") }
