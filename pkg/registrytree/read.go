package registrytree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Tree is what a registry tree on disk holds.
type Tree struct {
	Repositories []Repository
	// Blobs are the digests of every blob data file, sorted.
	Blobs []digest.Digest
}

// Repository is one repository of a tree.
type Repository struct {
	Name string
	// Tags map tag names to the manifest their current link names.
	Tags map[string]digest.Digest
	// Revisions are the manifests linked into the repository, sorted.
	Revisions []digest.Digest
	// Layers are the configs and layers linked into the repository, sorted.
	Layers []digest.Digest
}

// Repository returns the named repository, or nil.
func (t *Tree) Repository(name string) *Repository {
	for i := range t.Repositories {
		if t.Repositories[i].Name == name {
			return &t.Repositories[i]
		}
	}
	return nil
}

// HasBlob reports whether the tree holds blob d.
func (t *Tree) HasBlob(d digest.Digest) bool {
	i := sort.Search(len(t.Blobs), func(i int) bool { return t.Blobs[i] >= d })
	return i < len(t.Blobs) && t.Blobs[i] == d
}

// Problems lists links whose blob is missing from the tree: a tag or
// revision without its manifest data, or a _layers link without its blob.
// (Manifests of other platforms that an index names are absent by design
// and not reported: only links are checked.)
func (t *Tree) Problems() []string {
	var out []string
	for _, r := range t.Repositories {
		for _, tag := range sortedKeys(r.Tags) {
			if !t.HasBlob(r.Tags[tag]) {
				out = append(out, fmt.Sprintf("%s:%s points at %s, whose data is missing", r.Name, tag, r.Tags[tag]))
			}
		}
		for _, d := range r.Revisions {
			if !t.HasBlob(d) {
				out = append(out, fmt.Sprintf("%s: manifest revision %s has no data", r.Name, d))
			}
		}
		for _, d := range r.Layers {
			if !t.HasBlob(d) {
				out = append(out, fmt.Sprintf("%s: layer link %s has no data", r.Name, d))
			}
		}
	}
	return out
}

// Read lists the tree under root, the storage root directory (the one
// holding docker/registry/v2; for an extracted cluster image, its
// registry/ directory). A missing tree is an empty Tree.
func Read(root string) (*Tree, error) {
	v2 := filepath.Join(root, filepath.FromSlash(V2))
	t := &Tree{}
	if _, err := os.Stat(v2); errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	blobs := filepath.Join(v2, "blobs")
	err := filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == blobs {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "data" {
			return nil
		}
		rel, _ := filepath.Rel(blobs, p)
		parts := strings.Split(filepath.ToSlash(rel), "/") // sha256/ab/<hex>/data
		if len(parts) != 4 {
			return fmt.Errorf("unexpected blob path %s", p)
		}
		dg := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		if err := dg.Validate(); err != nil {
			return fmt.Errorf("blob path %s: %w", p, err)
		}
		t.Blobs = append(t.Blobs, dg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read registry tree %s: %w", root, err)
	}
	sort.Slice(t.Blobs, func(i, j int) bool { return t.Blobs[i] < t.Blobs[j] })

	repos := filepath.Join(v2, "repositories")
	err = filepath.WalkDir(repos, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == repos {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() != "_manifests" {
			return nil
		}
		name, _ := filepath.Rel(repos, filepath.Dir(p))
		r, err := readRepository(filepath.Dir(p), filepath.ToSlash(name))
		if err != nil {
			return err
		}
		t.Repositories = append(t.Repositories, *r)
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("read registry tree %s: %w", root, err)
	}
	sort.Slice(t.Repositories, func(i, j int) bool { return t.Repositories[i].Name < t.Repositories[j].Name })
	return t, nil
}

func readRepository(dir, name string) (*Repository, error) {
	r := &Repository{Name: name, Tags: map[string]digest.Digest{}}
	tags, err := os.ReadDir(filepath.Join(dir, "_manifests", "tags"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, tg := range tags {
		d, err := readLink(filepath.Join(dir, "_manifests", "tags", tg.Name(), "current", "link"))
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", name, tg.Name(), err)
		}
		r.Tags[tg.Name()] = d
	}
	if r.Revisions, err = readLinks(filepath.Join(dir, "_manifests", "revisions")); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if r.Layers, err = readLinks(filepath.Join(dir, "_layers")); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// readLinks reads <dir>/<alg>/<hex>/link files and checks each names its own path.
func readLinks(dir string) ([]digest.Digest, error) {
	var out []digest.Digest
	algs, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, a := range algs {
		hexes, err := os.ReadDir(filepath.Join(dir, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, h := range hexes {
			p := filepath.Join(dir, a.Name(), h.Name(), "link")
			d, err := readLink(p)
			if err != nil {
				return nil, err
			}
			if d.String() != a.Name()+":"+h.Name() {
				return nil, fmt.Errorf("link %s names %s", p, d)
			}
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func readLink(p string) (digest.Digest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(string(b))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", p, err)
	}
	return d, nil
}

func sortedKeys(m map[string]digest.Digest) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Listing renders a tree as sorted text lines, one per tag, revision and
// layer link, for golden files and diffs.
func (t *Tree) Listing() string {
	var b strings.Builder
	for _, r := range t.Repositories {
		for _, tag := range sortedKeys(r.Tags) {
			fmt.Fprintf(&b, "%s tag %s -> %s\n", r.Name, tag, r.Tags[tag])
		}
		for _, d := range r.Revisions {
			fmt.Fprintf(&b, "%s revision %s\n", r.Name, d)
		}
		for _, d := range r.Layers {
			fmt.Fprintf(&b, "%s layer %s\n", r.Name, d)
		}
	}
	for _, d := range t.Blobs {
		fmt.Fprintf(&b, "blob %s\n", d)
	}
	return b.String()
}
