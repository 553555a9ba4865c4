package vmimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cnstack/cnstack/images"
)

// Resolve returns the VM image path names: a recipe directory, built once and
// cached by content in DefaultImageCache; a disk image file (qcow2, raw),
// used as it is; or, for "", the debian12 recipe built into cnstack
// (images.Debian12), whatever the working directory.
func Resolve(ctx context.Context, path string, opts Options) (*Image, error) {
	if path == "" {
		dir, err := MaterializeRecipe(images.Debian12, "debian12", CacheRoot())
		if err != nil {
			return nil, fmt.Errorf("built-in VM recipe: %w", err)
		}
		return Build(ctx, dir, DefaultImageCache(), opts)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return CloudImage(path, strings.TrimPrefix(filepath.Ext(path), "."))
	}
	return Build(ctx, path, DefaultImageCache(), opts)
}
