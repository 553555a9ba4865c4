package vmimage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Output file names inside a cache entry.
const (
	KernelFile   = "vmlinuz"
	InitrdFile   = "initrd.img"
	DiskFile     = "root.qcow2"
	ManifestFile = "image.json"
)

// Image is a bootable VM image: a read-only base disk and, for images booted
// with -kernel/-initrd, the kernel and initramfs. The VM driver never writes to
// any of these files; each run gets its own qcow2 overlay.
type Image struct {
	// Name is the recipe name (debian12) or the cloud image's file name.
	Name string `json:"name"`
	// Key is the cache key (see CacheKey); empty for images not built here.
	Key string `json:"key,omitempty"`
	// Dir is the cache entry holding the files; empty for a user's cloud image.
	Dir string `json:"-"`

	// Kernel and Initrd are absolute paths; empty means boot from the disk
	// (firmware and the disk's own boot loader).
	Kernel string `json:"-"`
	Initrd string `json:"-"`
	// Disk is the absolute path of the base disk; DiskFormat is qemu's name.
	Disk       string `json:"-"`
	DiskFormat string `json:"diskFormat"`
	// DiskSize is the virtual size of the base disk in bytes.
	DiskSize int64 `json:"diskSize"`
	// Cmdline is the kernel command line before the run's seed is appended.
	Cmdline string `json:"cmdline,omitempty"`
	// Seed says how per-run data reaches the guest: SeedCmdline or SeedNoCloud.
	Seed string `json:"seed"`
	// User is the account the driver logs in as over SSH.
	User string `json:"user"`

	// Provenance, for reports.
	Suite          string   `json:"suite,omitempty"`
	Mirror         string   `json:"mirror,omitempty"`
	Packages       []string `json:"packages,omitempty"`
	KernelVersion  string   `json:"kernelVersion,omitempty"`
	BuilderVersion string   `json:"builderVersion,omitempty"`
}

// Open loads a built image from its cache entry directory.
func Open(dir string) (*Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	var img Image
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("open image %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	img.Dir = abs
	img.Disk = filepath.Join(abs, DiskFile)
	// Images built here boot with -kernel/-initrd, whatever their seed.
	img.Kernel = filepath.Join(abs, KernelFile)
	img.Initrd = filepath.Join(abs, InitrdFile)
	for _, f := range []string{img.Disk, img.Kernel, img.Initrd} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("open image %s: %w", dir, err)
		}
	}
	return &img, nil
}

// CloudImage describes a user-supplied cloud qcow2 (OpenAnolis, Rocky, Ubuntu
// cloud images...) that boots from its own disk and takes a cloud-init NoCloud
// seed. Nothing is downloaded or modified; the driver overlays it per run.
func CloudImage(path, format string) (*Image, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cloud image: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("cloud image: %w", err)
	}
	if format == "" {
		format = "qcow2"
	}
	return &Image{
		Name:       filepath.Base(abs),
		Disk:       abs,
		DiskFormat: format,
		Seed:       SeedNoCloud,
		User:       "root",
	}, nil
}
