// Package registrytree lays out container images as the filesystem tree of
// a Docker Distribution (v2) registry, the way sealer writes a cluster image's
// registry/ directory (sealer-format.md §3.2), and reads such trees back.
//
// Entries is pure: it turns image descriptions into a sorted list of files
// (blob data and link files) without touching the disk, so the builder can
// stream them into a layer. Read lists a tree on disk.
package registrytree

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/reference"
)

// ImageDir is where a cluster image keeps the tree, relative to its root:
// the registry's storage root directory (rootdirectory in its config).
const ImageDir = "registry"

// V2 is the distribution storage prefix under the storage root.
const V2 = "docker/registry/v2"

// Locate returns where sealer stores an image reference: the registry
// domain is dropped and the path kept, so docker.io/library/nginx:1.25 is
// repository library/nginx, tag 1.25, and registry.k8s.io/coredns/coredns
// is coredns/coredns, tag latest. A digest-only reference has no tag
// (sealer itself cannot store one; cnstack links only its revision).
func Locate(ref string) (repo, tag string, err error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return "", "", err
	}
	if err := validRepository(r.Repository); err != nil {
		return "", "", fmt.Errorf("image %s: %w", ref, err)
	}
	return r.Repository, r.Tag, nil
}

// Image is one container image to place in the tree.
type Image struct {
	// Ref is the source reference, for error messages.
	Ref string
	// Repository is the stripped repository name (see Locate).
	Repository string
	// Tag is the tag to link; "" for a digest-only reference.
	Tag string
	// Top is the manifest the tag points at: an index (or Docker manifest
	// list) or an image manifest.
	Top ocispec.Descriptor
	// Manifests are every manifest stored (Top and, for an index, the
	// child for the platform); each gets a revision link and blob data.
	Manifests []ocispec.Descriptor
	// Blobs are the config and layers of the stored image manifests; each
	// gets a _layers link and blob data.
	Blobs []ocispec.Descriptor
}

// Entry is one file of the tree.
type Entry struct {
	// Path is slash-separated, relative to the storage root:
	// "docker/registry/v2/blobs/sha256/ab/ab…/data".
	Path string
	// Size and Digest describe the file's content.
	Size   int64
	Digest digest.Digest
	// Blob is set for blob data files: the content is the blob Digest.
	Blob bool
	// Link is the content of a link file ("sha256:<hex>", no newline).
	Link string
}

// IsTagLink reports whether the entry is a tag's current link, the one file
// whose content depends on more than its path: a later layer of a cluster
// image may point the tag elsewhere.
func (e Entry) IsTagLink() bool {
	return strings.Contains(e.Path, "/_manifests/tags/") && strings.HasSuffix(e.Path, "/current/link")
}

// BlobPath is the data file of a blob.
func BlobPath(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(V2, "blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

func repoDir(repo string) string { return path.Join(V2, "repositories", repo) }

// TagLinkPath is the current link of repo:tag.
func TagLinkPath(repo, tag string) string {
	return path.Join(repoDir(repo), "_manifests", "tags", tag, "current", "link")
}

// TagIndexPath records that repo:tag has pointed at d.
func TagIndexPath(repo, tag string, d digest.Digest) string {
	return path.Join(repoDir(repo), "_manifests", "tags", tag, "index", d.Algorithm().String(), d.Encoded(), "link")
}

// RevisionPath links manifest d into repo.
func RevisionPath(repo string, d digest.Digest) string {
	return path.Join(repoDir(repo), "_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
}

// LayerLinkPath links blob d (config or layer) into repo.
func LayerLinkPath(repo string, d digest.Digest) string {
	return path.Join(repoDir(repo), "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

func link(p string, d digest.Digest) Entry {
	s := d.String()
	return Entry{Path: p, Size: int64(len(s)), Digest: digest.FromString(s), Link: s}
}

func blob(d ocispec.Descriptor) Entry {
	return Entry{Path: BlobPath(d.Digest), Size: d.Size, Digest: d.Digest, Blob: true}
}

// Entries lays out images as tree files, sorted by path, each once. Two
// images that need one tag to point at different manifests are an error
// naming both references (sealer's domain stripping makes
// docker.io/x/y:1 and quay.io/x/y:1 the same tag).
func Entries(images []Image) ([]Entry, error) {
	byPath := map[string]Entry{}
	tagOwner := map[string]string{} // tag link path -> ref that set it
	add := func(e Entry) {
		byPath[e.Path] = e
	}
	for _, im := range images {
		if err := validRepository(im.Repository); err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref, err)
		}
		if err := im.Top.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref, err)
		}
		if im.Tag != "" {
			p := TagLinkPath(im.Repository, im.Tag)
			if prev, ok := byPath[p]; ok && prev.Link != im.Top.Digest.String() {
				return nil, fmt.Errorf("images %s and %s are both stored as %s:%s but are different images (%s, %s); sealer's registry keeps one",
					tagOwner[p], im.Ref, im.Repository, im.Tag, prev.Link, im.Top.Digest)
			}
			tagOwner[p] = im.Ref
			add(link(p, im.Top.Digest))
			add(link(TagIndexPath(im.Repository, im.Tag, im.Top.Digest), im.Top.Digest))
		}
		manifests := im.Manifests
		if len(manifests) == 0 {
			manifests = []ocispec.Descriptor{im.Top}
		}
		for _, m := range manifests {
			add(link(RevisionPath(im.Repository, m.Digest), m.Digest))
			add(blob(m))
		}
		for _, b := range im.Blobs {
			if err := b.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("image %s: %w", im.Ref, err)
			}
			add(link(LayerLinkPath(im.Repository, b.Digest), b.Digest))
			add(blob(b))
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// validRepository refuses names that would escape the repositories
// directory or that distribution would not serve.
func validRepository(repo string) error {
	if repo == "" {
		return fmt.Errorf("empty repository name")
	}
	for _, c := range strings.Split(repo, "/") {
		if c == "" || c == "." || c == ".." || strings.HasPrefix(c, "_") {
			return fmt.Errorf("repository name %q is not valid in a registry tree", repo)
		}
	}
	if strings.ToLower(repo) != repo {
		return fmt.Errorf("repository name %q has upper-case letters", repo)
	}
	return nil
}
