package vmimage

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"

	"github.com/cnstack/cnstack/internal/filelock"
)

var keyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Prune deletes the cache entries under cacheDir whose keys are not in keep
// (typically the keys of the images the current recipes produce), skipping
// any entry whose lock another process holds. It returns the removed keys.
func Prune(cacheDir string, keep ...string) ([]string, error) {
	entries, err := os.ReadDir(cacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keepSet := map[string]bool{}
	for _, k := range keep {
		keepSet[k] = true
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		key := e.Name()
		if !e.IsDir() || !keyPattern.MatchString(key) || keepSet[key] {
			continue
		}
		lockPath := filepath.Join(cacheDir, key+".lock")
		lock, ok, err := filelock.TryAcquire(lockPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // in use (being built): leave it
		}
		if err := removeAllSafe(filepath.Join(cacheDir, key)); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, key)
			_ = os.Remove(lockPath)
		}
		lock.Unlock()
	}
	return removed, errors.Join(errs...)
}
