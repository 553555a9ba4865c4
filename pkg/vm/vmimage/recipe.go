// Package vmimage builds and caches the bootable VM images that cnstack's
// verifier boots: a recipe directory (image.yaml plus a rootfs/ overlay) becomes
// a kernel, an initramfs and a compressed qcow2 root disk, stored under a cache
// key that is a digest of everything that went into it.
package vmimage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// RecipeFile is the name of the declarative file in a recipe directory.
const RecipeFile = "image.yaml"

// OverlayDir is the directory, inside a recipe directory, whose tree is copied
// over the bootstrapped root filesystem.
const OverlayDir = "rootfs"

// Seed kinds: how the VM driver hands per-run data (SSH key, hostname,
// private-network addresses) to the guest.
const (
	// SeedCmdline: key=value arguments on the kernel command line, applied by
	// cnstack-seed.service baked into the image. Needs -kernel/-initrd boot.
	SeedCmdline = "cmdline"
	// SeedNoCloud: a cloud-init NoCloud ISO labelled "cidata" (any cloud image).
	SeedNoCloud = "nocloud"
)

// Recipe is the parsed image.yaml of a debootstrap-built image.
type Recipe struct {
	Name       string   `json:"name"`
	Suite      string   `json:"suite"`
	Variant    string   `json:"variant,omitempty"`
	Arch       string   `json:"arch,omitempty"`
	Components []string `json:"components,omitempty"`
	Packages   []string `json:"packages"`
	// AptInstall are installed after debootstrap with apt-get in a chroot,
	// for packages whose maintainer scripts debootstrap's minimal first stage
	// cannot order (python3 packages under minbase, for one).
	AptInstall []string `json:"aptInstall,omitempty"`
	// DiskSize is the virtual size of the ext4 root, e.g. "8GiB" or "4096MiB".
	DiskSize string `json:"diskSize"`
	// Cmdline is the kernel command line; the driver appends the run's seed.
	Cmdline string `json:"cmdline"`
	Seed    string `json:"seed"`
	User    string `json:"user,omitempty"`
	// Enable and Mask name systemd units, applied with the guest's systemctl
	// in a chroot.
	Enable []string `json:"enable,omitempty"`
	Mask   []string `json:"mask,omitempty"`
	// Remove lists globs, relative to the root filesystem, deleted after the
	// overlay is applied (host keys, package caches).
	Remove []string `json:"remove,omitempty"`
}

var (
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	packagePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	unitPattern    = regexp.MustCompile(`^[A-Za-z0-9:_.@-]+\.(service|timer|socket|target|mount|path)$`)
)

// ParseRecipe parses and validates the bytes of an image.yaml.
func ParseRecipe(data []byte) (*Recipe, error) {
	var r Recipe
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("parse recipe: %w", err)
	}
	if r.Variant == "" {
		r.Variant = "minbase"
	}
	if r.Arch == "" {
		r.Arch = "amd64"
	}
	if len(r.Components) == 0 {
		r.Components = []string{"main"}
	}
	if r.User == "" {
		r.User = "root"
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadRecipe reads dir/image.yaml.
func LoadRecipe(dir string) (*Recipe, error) {
	data, err := os.ReadFile(filepath.Join(dir, RecipeFile))
	if err != nil {
		return nil, fmt.Errorf("load recipe: %w", err)
	}
	r, err := ParseRecipe(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecipeFile), err)
	}
	return r, nil
}

func (r *Recipe) validate() error {
	var errs []error
	if !namePattern.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits, '.', '_' or '-'", r.Name))
	}
	if !namePattern.MatchString(r.Suite) {
		errs = append(errs, fmt.Errorf("suite %q is not a Debian suite name", r.Suite))
	}
	switch r.Variant {
	case "minbase", "buildd", "fakechroot", "-":
	default:
		errs = append(errs, fmt.Errorf("variant %q: want minbase, buildd, fakechroot or -", r.Variant))
	}
	if r.Arch != "amd64" {
		errs = append(errs, fmt.Errorf("arch %q: only amd64 is supported", r.Arch))
	}
	for _, c := range r.Components {
		if !namePattern.MatchString(c) {
			errs = append(errs, fmt.Errorf("component %q is not valid", c))
		}
	}
	if len(r.Packages) == 0 {
		errs = append(errs, errors.New("packages: a bootable image needs at least a kernel"))
	}
	for _, p := range append(append([]string{}, r.Packages...), r.AptInstall...) {
		if !packagePattern.MatchString(p) {
			errs = append(errs, fmt.Errorf("package %q is not a Debian package name", p))
		}
	}
	if _, err := ParseSize(r.DiskSize); err != nil {
		errs = append(errs, fmt.Errorf("diskSize: %w", err))
	}
	if !strings.Contains(r.Cmdline, "root=") {
		errs = append(errs, errors.New("cmdline: must name the root device (root=...)"))
	}
	if r.Seed != SeedCmdline && r.Seed != SeedNoCloud {
		errs = append(errs, fmt.Errorf("seed %q: want %q or %q", r.Seed, SeedCmdline, SeedNoCloud))
	}
	for _, u := range append(append([]string{}, r.Enable...), r.Mask...) {
		if !unitPattern.MatchString(u) {
			errs = append(errs, fmt.Errorf("unit %q is not a systemd unit name", u))
		}
	}
	for _, g := range r.Remove {
		if g == "" || filepath.IsAbs(g) || strings.Contains(g, "..") {
			errs = append(errs, fmt.Errorf("remove %q: want a relative path inside the root filesystem", g))
		} else if _, err := filepath.Match(g, ""); err != nil {
			errs = append(errs, fmt.Errorf("remove %q: %w", g, err))
		}
	}
	return errors.Join(errs...)
}

var sizePattern = regexp.MustCompile(`^([0-9]+)(|B|K|KiB|M|MiB|G|GiB)$`)

// ParseSize parses a byte size with an optional binary unit (K/KiB, M/MiB,
// G/GiB). Sizes are whole MiB, at least 64 MiB, at most 1 TiB.
func ParseSize(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with K/KiB, M/MiB or G/GiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30}[m[2]]
	if n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q is larger than 1 TiB", s)
	}
	v := n * mult
	if v < 64<<20 || v%(1<<20) != 0 {
		return 0, fmt.Errorf("size %q: want a whole number of MiB, at least 64 MiB", s)
	}
	return v, nil
}
