package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/reference"
)

// This file is the one validation of a bundle's content that check and load
// share: what index.json may name, what SHA256SUMS must list, and what
// every image graph must hold. Nothing a bundle claims (media types, sizes,
// names) is trusted without being checked against the content.

// root is an image index.json names.
type root struct {
	Ref        string // "" for an untagged root
	Descriptor ocispec.Descriptor
}

// parseIndex parses and validates index.json: at most lim.MaxImages
// entries, each a valid descriptor of a manifest or index, named (if at
// all) by a valid tagged reference, no name twice.
func parseIndex(b []byte, lim Limits) ([]root, error) {
	lim = lim.withDefaults()
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: index.json is not valid JSON: %v", ErrInvalid, err)
	}
	if len(idx.Manifests) > lim.MaxImages {
		return nil, fmt.Errorf("%w: index.json names %d images, over the limit of %d", ErrInvalid, len(idx.Manifests), lim.MaxImages)
	}
	seen := map[string]int{}
	var out []root
	for i, m := range idx.Manifests {
		if err := manifest.ValidateDescriptor(m); err != nil {
			return nil, fmt.Errorf("%w: index.json entry %d: %v", ErrInvalid, i+1, err)
		}
		if m.Size > manifest.MaxSize {
			return nil, fmt.Errorf("%w: index.json entry %d (%s) is a manifest of %d bytes, over the %d-byte limit", ErrInvalid, i+1, m.Digest, m.Size, manifest.MaxSize)
		}
		if m.MediaType != "" && !manifest.IsManifestType(m.MediaType) {
			return nil, fmt.Errorf("%w: index.json entry %d (%s) has the media type %s; the images of a bundle are manifests or indexes", ErrInvalid, i+1, m.Digest, printable.String(m.MediaType))
		}
		ref := m.Annotations[ocispec.AnnotationRefName]
		if ref == "" {
			ref = m.Annotations["io.containerd.image.name"]
		}
		if ref != "" {
			r, err := reference.Parse(ref)
			if err != nil {
				return nil, fmt.Errorf("%w: index.json entry %d: %v", ErrInvalid, i+1, err)
			}
			if r.Tag == "" {
				return nil, fmt.Errorf("%w: index.json entry %d names %s, which has no tag", ErrInvalid, i+1, printable.String(ref))
			}
			ref = r.Name() + ":" + r.Tag
			if j, dup := seen[ref]; dup {
				return nil, fmt.Errorf("%w: index.json names %s twice (entries %d and %d)", ErrInvalid, ref, j, i+1)
			}
			seen[ref] = i + 1
		}
		out = append(out, root{Ref: ref, Descriptor: ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Platform: m.Platform}})
	}
	return out, nil
}

// sumList is SHA256SUMS: hex sha256 by file name.
type sumList map[string]string

func parseSums(b []byte) (sumList, error) {
	out := sumList{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[0]) != 64 || strings.Trim(f[0], "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%w: %s line %d is not \"<sha256>  <file>\": %.80q", ErrInvalid, sumsFileName, i+1, line)
		}
		if _, dup := out[f[1]]; dup {
			return nil, fmt.Errorf("%w: %s lists %s twice", ErrInvalid, sumsFileName, printable.String(f[1]))
		}
		out[f[1]] = f[0]
	}
	return out, nil
}

// listsBlob reports whether the list names blob d with its own digest.
func (l sumList) listsBlob(d digest.Digest) bool {
	return l[blobsPrefix+d.Encoded()] == d.Encoded()
}

// sumProblems compares the list with what the bundle holds: blobSums is
// the sha256 of each blob's content, fileSums of each metadata file.
func sumProblems(list sumList, blobSums map[digest.Digest]string, fileSums map[string]string) []string {
	var problems []string
	for name, want := range list {
		var got string
		var ok bool
		if strings.HasPrefix(name, blobsPrefix) {
			got, ok = blobSums[digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(name, blobsPrefix))]
		} else {
			got, ok = fileSums[name]
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is listed in %s but missing from the bundle", printable.String(name), sumsFileName))
		case got != want:
			problems = append(problems, fmt.Sprintf("%s does not match %s (sha256 %s, listed %s)", printable.String(name), sumsFileName, got, want))
		}
	}
	for d := range blobSums {
		if _, ok := list[blobsPrefix+d.Encoded()]; !ok {
			problems = append(problems, fmt.Sprintf("blob %s is not listed in %s", d, sumsFileName))
		}
	}
	for _, n := range []string{indexName, metaName, layoutName} {
		if _, ok := fileSums[n]; ok {
			if _, listed := list[n]; !listed {
				problems = append(problems, fmt.Sprintf("%s is not listed in %s", n, sumsFileName))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// blobSource is where a graph check finds blobs: the archive being
// checked, or the store a bundle is being loaded into.
type blobSource interface {
	// size is the size of blob d, if the bundle holds it.
	size(d digest.Digest) (int64, bool)
	// read returns blob d whole if it may be a manifest (at most
	// manifest.MaxSize bytes, JSON); ok is false otherwise.
	read(d digest.Digest) ([]byte, bool)
}

// graphProblems walks an image from root and lists what is wrong: a blob
// missing (unless a delta omits it), a size other than the descriptor's, a
// descriptor that is not valid (size 0 or negative, a bad digest), a media
// type that contradicts the content it names, an invalid manifest. What a
// blob points at is read from the blob, never taken from a descriptor's
// claim.
//
// missing says what a missing blob means: "" accepts it (a delta's omitted
// blob, when checking the delta alone), anything else is the problem.
func graphProblems(r root, src blobSource, missing func(digest.Digest) string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	seen := map[digest.Digest]bool{}
	var walkFn func(d ocispec.Descriptor)
	walkFn = func(d ocispec.Descriptor) {
		if seen[d.Digest] {
			return
		}
		seen[d.Digest] = true
		if err := manifest.ValidateDescriptor(d); err != nil {
			add("%v", err)
			return
		}
		size, ok := src.size(d.Digest)
		switch {
		case !ok:
			if p := missing(d.Digest); p != "" {
				add("%s", p)
			}
			return
		case size != d.Size:
			add("blob %s is %d bytes, its descriptor says %d", d.Digest, size, d.Size)
			return
		}
		b, ok := src.read(d.Digest)
		if !ok {
			if manifest.IsManifestType(d.MediaType) {
				add("%s is named as %s, but the blob is not a manifest (or is over %d bytes)", d.Digest, d.MediaType, manifest.MaxSize)
			}
			return
		}
		m, err := manifest.Parse(b)
		switch {
		case errors.Is(err, manifest.ErrNotManifest):
			if manifest.IsManifestType(d.MediaType) {
				add("%s is named as %s, but the blob is not a manifest", d.Digest, d.MediaType)
			}
			return
		case err != nil:
			add("manifest %s: %v", d.Digest, err)
			return
		case d.MediaType != "" && d.MediaType != m.MediaType:
			add("%s is named as %s, but the blob is a %s", d.Digest, printable.String(d.MediaType), m.MediaType)
			return
		}
		for _, c := range m.Children() {
			walkFn(c)
		}
	}
	walkFn(r.Descriptor)
	sort.Strings(problems)
	return problems
}

// missingUnlessOmitted is check's view of a missing blob: a delta's
// omitted blobs are expected at the destination.
func missingUnlessOmitted(omitted map[digest.Digest]bool) func(digest.Digest) string {
	return func(d digest.Digest) string {
		if omitted[d] {
			return ""
		}
		return fmt.Sprintf("blob %s is missing", d)
	}
}

// describeRoot returns r's descriptor with the media type of its content.
func describeRoot(r root, src blobSource) ocispec.Descriptor {
	d := r.Descriptor
	if b, ok := src.read(d.Digest); ok {
		if m, err := manifest.Parse(b); err == nil {
			d.MediaType = m.MediaType
		}
	}
	return d
}
