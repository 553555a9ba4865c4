// Package lockfile reads and writes cnstack.lock, which pins every container
// image a stack (or one build context) needs to a manifest digest, per
// platform, every Helm chart source to its archive's digest, and records
// the remote ADD/APP sources the Kubefiles pin.
//
// The file is YAML, sorted and stable: the same inputs give the same bytes,
// so it diffs well in review. `cnstack lock` writes it; builds read it (a
// pinned image is pulled by digest; with --locked an unpinned or drifted
// reference is an error). Compare and Diff say how a lock on disk stands
// against a fresh one (`cnstack lock --check`).
package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/pkg/reference"
)

// FileName is the lock file beside the Kubefiles (in the stack directory or
// the build context).
const FileName = "cnstack.lock"

// Version is the format version written.
const Version = 1

const header = "# cnstack.lock: container images, charts and remote sources pinned by digest.\n" +
	"# Written by `cnstack lock`; run it again to update. Builds pull pinned images by digest.\n"

// File is a lock file.
type File struct {
	Version int      `yaml:"lockVersion"`
	Images  []Image  `yaml:"images"`
	Sources []Source `yaml:"sources,omitempty"`
	Charts  []Chart  `yaml:"charts,omitempty"`
}

// Chart pins a Helm chart source (pkg/chartref) to its archive: where the
// version was found and the archive's digest. Builds fetch exactly this.
type Chart struct {
	// Chart is the canonical chart reference, as the Kubefile names it
	// (helm+https://charts.example.com/dapr:1.16.19, oci://…:1.0.0).
	Chart string `yaml:"chart"`
	// URL is the archive's URL (chart repositories and archive URLs).
	URL string `yaml:"url,omitempty"`
	// Manifest is the OCI manifest the version's tag named (OCI charts).
	Manifest string `yaml:"manifest,omitempty"`
	// Digest is the archive's sha256.
	Digest string   `yaml:"digest"`
	Layers []string `yaml:"layers,omitempty"`
}

// Image pins one container image reference.
type Image struct {
	// Image is the normalized reference as the stack names it
	// (docker.io/library/redis:7.2).
	Image string `yaml:"image"`
	// Digest is the manifest the reference resolved to: an index (or Docker
	// manifest list) for a multi-arch image, else an image manifest.
	Digest    string `yaml:"digest"`
	MediaType string `yaml:"mediaType"`
	// Platforms pin, for an index, the child manifest of each platform the
	// stack builds. Empty for a single image manifest, which serves every platform.
	Platforms []Platform `yaml:"platforms,omitempty"`
	// Layers are the stack layers (or ".") whose discovery found the image.
	Layers []string `yaml:"layers,omitempty"`
}

// Platform pins one platform's manifest of an index.
type Platform struct {
	Platform string `yaml:"platform"` // os/arch[/variant]
	Digest   string `yaml:"digest"`
}

// Source is a remote ADD/APP/CNI/CSI source; the Kubefile already pins its
// checksum, and the lock records it so one file lists everything fetched.
type Source struct {
	URL      string   `yaml:"url"`
	Checksum string   `yaml:"checksum"`
	Layers   []string `yaml:"layers,omitempty"`
}

// Find returns dir/cnstack.lock if it exists, else "".
func Find(dir string) string {
	p := filepath.Join(dir, FileName)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// Read reads and validates a lock file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lock file: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates lock file bytes.
func Parse(b []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Version != Version {
		return nil, fmt.Errorf("lockVersion %d is not supported (this cnstack reads %d)", f.Version, Version)
	}
	seen := map[string]bool{}
	for _, im := range f.Images {
		norm, err := reference.Normalize(im.Image)
		if err != nil {
			return nil, err
		}
		if norm != im.Image {
			return nil, fmt.Errorf("image %q is not normalized (want %q)", im.Image, norm)
		}
		if seen[im.Image] {
			return nil, fmt.Errorf("image %s is listed twice", im.Image)
		}
		seen[im.Image] = true
		if _, err := digest.Parse(im.Digest); err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Image, err)
		}
		for _, p := range im.Platforms {
			if _, err := digest.Parse(p.Digest); err != nil {
				return nil, fmt.Errorf("image %s, platform %s: %w", im.Image, p.Platform, err)
			}
		}
	}
	seenCharts := map[string]bool{}
	for _, c := range f.Charts {
		if seenCharts[c.Chart] {
			return nil, fmt.Errorf("chart %s is listed twice", c.Chart)
		}
		seenCharts[c.Chart] = true
		if d, err := digest.Parse(c.Digest); err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("chart %s: digest %q is not a sha256 digest", c.Chart, c.Digest)
		}
		if (c.URL == "") == (c.Manifest == "") {
			return nil, fmt.Errorf("chart %s: give either url (a chart repository or archive) or manifest (an OCI chart)", c.Chart)
		}
		if c.Manifest != "" {
			if _, err := digest.Parse(c.Manifest); err != nil {
				return nil, fmt.Errorf("chart %s: manifest: %w", c.Chart, err)
			}
		}
	}
	return &f, nil
}

// LookupChart finds the pin of a canonical chart reference.
func (f *File) LookupChart(ref string) (*Chart, bool) {
	if f == nil {
		return nil, false
	}
	for i := range f.Charts {
		if f.Charts[i].Chart == ref {
			return &f.Charts[i], true
		}
	}
	return nil, false
}

// Marshal renders f sorted and stable.
func (f *File) Marshal() ([]byte, error) {
	out := File{Version: Version, Images: []Image{}}
	for _, im := range f.Images {
		im.Platforms = append([]Platform(nil), im.Platforms...)
		sort.Slice(im.Platforms, func(i, j int) bool { return im.Platforms[i].Platform < im.Platforms[j].Platform })
		im.Layers = sortedUnique(im.Layers)
		out.Images = append(out.Images, im)
	}
	sort.Slice(out.Images, func(i, j int) bool { return out.Images[i].Image < out.Images[j].Image })
	for _, s := range f.Sources {
		s.Layers = sortedUnique(s.Layers)
		out.Sources = append(out.Sources, s)
	}
	sort.Slice(out.Sources, func(i, j int) bool {
		if out.Sources[i].URL != out.Sources[j].URL {
			return out.Sources[i].URL < out.Sources[j].URL
		}
		return out.Sources[i].Checksum < out.Sources[j].Checksum
	})
	for _, c := range f.Charts {
		c.Layers = sortedUnique(c.Layers)
		out.Charts = append(out.Charts, c)
	}
	sort.Slice(out.Charts, func(i, j int) bool { return out.Charts[i].Chart < out.Charts[j].Chart })
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&out); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes f to path atomically.
func Write(path string, f *File) error {
	b, err := f.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// State is how the lock file on disk stands against a fresh lock.
type State int

const (
	Missing   State = iota // there is no lock file (or it cannot be read)
	UpToDate               // it holds exactly the fresh lock's bytes
	OutOfDate              // it differs
)

// Compare reads the lock file at path and says how it stands against f.
// For an out-of-date file, changes lists what differs (Diff), or why the
// file does not parse.
func Compare(path string, f *File) (state State, changes []string, err error) {
	b, err := f.Marshal()
	if err != nil {
		return 0, nil, err
	}
	old, err := os.ReadFile(path)
	switch {
	case err != nil:
		return Missing, nil, nil
	case bytes.Equal(old, b):
		return UpToDate, nil, nil
	}
	prev, err := Parse(old)
	if err != nil {
		return OutOfDate, []string{"  " + err.Error()}, nil
	}
	return OutOfDate, Diff(prev, f), nil
}

// Diff names, one line each, the images added (+), re-pinned (~) or
// removed (-) between two lock files; when only remote sources or the
// layers an image is found in changed, it says so.
func Diff(old, cur *File) []string {
	var out []string
	for _, im := range cur.Images {
		prev, ok := old.Lookup(im.Image)
		switch {
		case !ok:
			out = append(out, "  + "+im.Image+" "+im.Digest)
		case prev.Digest != im.Digest || !samePlatforms(prev.Platforms, im.Platforms):
			out = append(out, "  ~ "+im.Image+" "+prev.Digest+" -> "+im.Digest)
		}
	}
	for _, im := range old.Images {
		if _, ok := cur.Lookup(im.Image); !ok {
			out = append(out, "  - "+im.Image)
		}
	}
	if len(out) == 0 {
		out = append(out, "  (remote sources or layers changed)")
	}
	return out
}

// samePlatforms reports whether two images pin the same platform digests,
// in whatever order (a parsed file has them sorted, a fresh lock may not).
func samePlatforms(a, b []Platform) bool {
	sorted := func(ps []Platform) []Platform {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, func(x, y Platform) int { return strings.Compare(x.Platform, y.Platform) })
		return ps
	}
	return slices.Equal(sorted(a), sorted(b))
}

// Covers reports whether f pins everything fresh pins, as fresh pins it:
// each image at the same digest with the same platform pins, each remote
// source and chart alike (which layers found them does not matter). A lock
// of a multi-platform stack covers the lock a CI job building one of its
// platforms computes (lock --check --platform), though their bytes differ:
// the job's check passes on the committed lock.
func (f *File) Covers(fresh *File) bool {
	if f.Version != fresh.Version {
		return false
	}
	for _, im := range fresh.Images {
		have, ok := f.Lookup(im.Image)
		if !ok || have.Digest != im.Digest || have.MediaType != im.MediaType {
			return false
		}
		for _, p := range im.Platforms {
			if !slices.Contains(have.Platforms, p) {
				return false
			}
		}
	}
	for _, src := range fresh.Sources {
		if !slices.ContainsFunc(f.Sources, func(s Source) bool { return s.URL == src.URL && s.Checksum == src.Checksum }) {
			return false
		}
	}
	for _, c := range fresh.Charts {
		have, ok := f.LookupChart(c.Chart)
		if !ok || have.URL != c.URL || have.Manifest != c.Manifest || have.Digest != c.Digest {
			return false
		}
	}
	return true
}

// MultiArch counts the images pinned per platform (an index).
func (f *File) MultiArch() int {
	n := 0
	for _, im := range f.Images {
		if len(im.Platforms) > 0 {
			n++
		}
	}
	return n
}

// Lookup finds the pin of a normalized reference.
func (f *File) Lookup(ref string) (*Image, bool) {
	if f == nil {
		return nil, false
	}
	for i := range f.Images {
		if f.Images[i].Image == ref {
			return &f.Images[i], true
		}
	}
	return nil, false
}

// ErrUnpinned and ErrDrifted classify Pin's refusals.
var (
	ErrUnpinned = errors.New("not pinned by the lock file")
	ErrDrifted  = errors.New("differs from the lock file")
)

// Pinned is what a lock file says to pull for one reference and platform.
type Pinned struct {
	Digest    digest.Digest // the top manifest (index or image manifest)
	MediaType string
	// Child is the platform's manifest when Digest is an index; "" otherwise.
	Child digest.Digest
}

// Pin returns the pin of ref (normalized) for platform ("linux/amd64").
// It fails with ErrUnpinned when the lock does not list ref, and with
// ErrDrifted when ref carries a digest the lock disagrees with or the
// lock pins an index but not for platform.
func (f *File) Pin(ref, platform string) (Pinned, error) {
	im, ok := f.Lookup(ref)
	if !ok {
		return Pinned{}, fmt.Errorf("%s: %w (run `cnstack lock`)", ref, ErrUnpinned)
	}
	p := Pinned{Digest: digest.Digest(im.Digest), MediaType: im.MediaType}
	if r, err := reference.Parse(ref); err == nil && r.Digest != "" && r.Digest != im.Digest {
		return Pinned{}, fmt.Errorf("%s: %w: the lock pins %s (run `cnstack lock`)", ref, ErrDrifted, im.Digest)
	}
	if len(im.Platforms) > 0 || isIndex(im.MediaType) {
		for _, pl := range im.Platforms {
			if pl.Platform == platform {
				p.Child = digest.Digest(pl.Digest)
				return p, nil
			}
		}
		var have []string
		for _, pl := range im.Platforms {
			have = append(have, pl.Platform)
		}
		if len(have) == 0 {
			have = []string{"none"}
		}
		return Pinned{}, fmt.Errorf("%s: %w: it pins platforms %s, not %s (run `cnstack lock --platform %s`)",
			ref, ErrDrifted, strings.Join(have, ", "), platform, platform)
	}
	return p, nil
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}
