package vmimage

import (
	"os"
	"path/filepath"
)

// Environment variables that place the VM cache.
const (
	// CacheEnv names the VM cache root directly.
	CacheEnv = "CNSTACK_VM_CACHE"
	// HomeEnv is cnstack's home; the VM cache is $CNSTACK_HOME/vm.
	HomeEnv = "CNSTACK_HOME"
)

// CacheRoot is the machine's VM cache: $CNSTACK_VM_CACHE, else
// $CNSTACK_HOME/vm, else ~/.local/share/cnstack/vm. Built images live in
// CacheRoot()/images, run directories in CacheRoot()/run.
func CacheRoot() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d := os.Getenv(HomeEnv); d != "" {
		return filepath.Join(d, "vm")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".local", "share", "cnstack", "vm")
}

// DefaultImageCache is where Build keeps images by default.
func DefaultImageCache() string { return filepath.Join(CacheRoot(), "images") }
