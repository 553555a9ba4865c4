package vmimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// MaterializeRecipe writes the recipe directory dir of fsys (an embedded
// copy, which has no file modes) to a directory of its own under
// cacheRoot/recipes and returns its path. Files that start with "#!" are
// made executable (0755), others 0644, as a checkout has them, so the
// recipe's CacheKey equals that of the checked-out directory. The directory
// is named by a digest of the content: it is written once, atomically.
func MaterializeRecipe(fsys fs.FS, dir, cacheRoot string) (string, error) {
	type file struct {
		rel  string
		data []byte
	}
	var files []file
	var dirs []string
	h := sha256.New()
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := p[len(dir):]
		if d.IsDir() {
			dirs = append(dirs, rel)
			fmt.Fprintf(h, "D %d:%s\n", len(rel), rel)
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, file{rel, b})
		fmt.Fprintf(h, "F %d:%s %d\n", len(rel), rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("recipe %s: %w", dir, err)
	}
	name := path.Base(dir)
	parent := filepath.Join(cacheRoot, "recipes", hex.EncodeToString(h.Sum(nil))[:16])
	out := filepath.Join(parent, name)
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return out, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, "."+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, filepath.FromSlash(d)), 0o755); err != nil {
			return "", err
		}
	}
	for _, f := range files {
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(f.data, []byte("#!")) {
			mode = 0o755
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.rel))
		if err := os.WriteFile(p, f.data, mode); err != nil {
			return "", err
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			return "", err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if fi, serr := os.Stat(out); serr == nil && fi.IsDir() {
			return out, nil // another process won the race
		}
		return "", err
	}
	return out, nil
}
