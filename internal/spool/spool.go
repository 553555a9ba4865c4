// Package spool keeps a bundle on its way from standard input or to
// standard output in a private directory: bundles are written atomically
// and read by name, so a pipe goes through a file. Directories left by a
// killed run are removed by the next one, so they never pile up.
package spool

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxAge is how long a spool directory may go unmodified before the next
// New takes it for one a killed run left behind and removes it.
const MaxAge = time.Hour

// prefix names spool directories under the root.
const prefix = "spool-"

// New makes a private directory under root (created 0700 if needed),
// after removing the spools under root older than MaxAge. cleanup removes
// the new directory.
func New(root string) (dir string, cleanup func(), err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", nil, err
	}
	RemoveStale(root, MaxAge)
	dir, err = os.MkdirTemp(root, prefix)
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// RemoveStale removes the spool directories under root whose newest file
// is older than maxAge; one still written to is kept.
func RemoveStale(root string, maxAge time.Duration) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		newest := time.Time{}
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil {
				if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
					newest = fi.ModTime()
				}
			}
			return nil
		})
		if time.Since(newest) > maxAge {
			os.RemoveAll(dir)
		}
	}
}

// Copy writes r into a new file name in dir (never replacing one) and
// returns its path.
func Copy(dir, name string, r io.Reader) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return "", fmt.Errorf("spool %s: %w", name, err)
	}
	return path, f.Close()
}
