// Package atomicfile replaces files atomically: content goes to a temporary
// file in the same directory, which is renamed over the target, so a reader
// (or a process killed mid-write) never sees half a file.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, creating its directory if needed.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	name := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
