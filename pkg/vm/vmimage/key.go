package vmimage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// BuilderVersion names the build procedure. Bump it whenever Build would make a
// different image from the same inputs, so stale cache entries are not reused.
const BuilderVersion = "cnstack-vmimage/1"

// CacheKey is the content address of an image: a SHA-256 over the builder
// version, the mirror URL, the normalized package list and every file of the
// recipe directory (path, mode and bytes). It is pure: no clocks, no host facts
// beyond what is passed in.
func CacheKey(recipeDir string, r *Recipe, mirror string) (string, error) {
	h := sha256.New()
	pkgs := append([]string(nil), r.Packages...)
	sort.Strings(pkgs)
	apt := append([]string(nil), r.AptInstall...)
	sort.Strings(apt)
	head, err := json.Marshal(struct {
		Builder    string   `json:"builder"`
		Mirror     string   `json:"mirror"`
		Packages   []string `json:"packages"`
		AptInstall []string `json:"aptInstall,omitempty"`
	}{BuilderVersion, strings.TrimRight(mirror, "/"), pkgs, apt})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%d:%s\n", len(head), head)
	if err := hashTree(h, recipeDir); err != nil {
		return "", fmt.Errorf("cache key of %s: %w", recipeDir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree writes a canonical, length-prefixed record of every regular file,
// directory and symlink below root, in lexical order, so that no two different
// trees can produce the same stream.
func hashTree(w io.Writer, root string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") && d.Name() != ".keep" {
			// Editor swap files and the like are not part of a recipe.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "L %d:%s %d:%s\n", len(rel), rel, len(target), target)
		case fi.IsDir():
			// Directory permissions are not copied (the overlay makes
			// directories 0755), so the checkout's umask must not matter.
			fmt.Fprintf(w, "D %d:%s\n", len(rel), rel)
		case fi.Mode().IsRegular():
			fmt.Fprintf(w, "F %d:%s %o %d\n", len(rel), rel, fi.Mode().Perm(), fi.Size())
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(w, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != fi.Size() {
				return fmt.Errorf("%s changed while hashing", p)
			}
		default:
			return fmt.Errorf("%s: unsupported file type %v", rel, fi.Mode().Type())
		}
	}
	return nil
}
