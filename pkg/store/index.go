package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/internal/filelock"
	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/pkg/reference"
)

var versioned = specs.Versioned{SchemaVersion: 2}

// Entry is one manifest in index.json: a tagged image (Ref set) or an
// untagged root kept alive by the store (Ref empty).
type Entry struct {
	Ref        string
	Descriptor ocispec.Descriptor
}

func (s *Store) readIndex() (*ocispec.Index, error) {
	b, err := os.ReadFile(filepath.Join(s.root, indexFile))
	if err != nil {
		return nil, fmt.Errorf("read store index: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("store index %s is not valid JSON: %w", filepath.Join(s.root, indexFile), err)
	}
	return &idx, nil
}

func (s *Store) writeIndex(idx *ocispec.Index) error {
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		a, b := idx.Manifests[i].Annotations[ocispec.AnnotationRefName], idx.Manifests[j].Annotations[ocispec.AnnotationRefName]
		if a != b {
			return a < b
		}
		return idx.Manifests[i].Digest < idx.Manifests[j].Digest
	})
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.root, indexFile), append(b, '\n'), 0o644)
}

// updateIndex runs fn on index.json under the process mutex and the
// cross-process lock, then writes the result atomically.
func (s *Store) updateIndex(ctx context.Context, fn func(*ocispec.Index) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := filelock.Acquire(ctx, filepath.Join(s.root, indexLock), true)
	if err != nil {
		return err
	}
	defer l.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	return s.writeIndex(idx)
}

// Tag points ref at desc, replacing what ref pointed at before. The blob must
// already be in the store.
func (s *Store) Tag(ctx context.Context, desc ocispec.Descriptor, ref string) error {
	r, err := reference.Parse(ref)
	if err != nil {
		return err
	}
	if r.Tag == "" {
		return fmt.Errorf("tag %s: a tag is needed, not only a digest", ref)
	}
	desc, err = s.checkRoot(ctx, desc)
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	name := r.Name() + ":" + r.Tag
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		out := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Annotations[ocispec.AnnotationRefName] != name {
				out = append(out, m)
			}
		}
		d := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform,
			Annotations: map[string]string{ocispec.AnnotationRefName: name}}
		idx.Manifests = append(out, d)
		return nil
	})
}

// checkRoot makes sure desc names a manifest or index that is whole in the
// store (Complete) and returns its descriptor with the media type and size
// of its content: index.json never records what a caller merely claimed.
func (s *Store) checkRoot(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	if ok, err := s.Exists(ctx, desc); err != nil || !ok {
		return desc, fmt.Errorf("manifest %s is not in the store: %w", desc.Digest, ErrNotFound)
	}
	d, err := s.Describe(ctx, desc.Digest)
	if err != nil {
		return desc, err
	}
	if desc.MediaType != "" && desc.MediaType != d.MediaType {
		return desc, fmt.Errorf("%s is named as %s, but the blob is a %s", desc.Digest, printable.String(desc.MediaType), d.MediaType)
	}
	d.Platform, d.Annotations = desc.Platform, nil
	if err := s.Complete(ctx, d); err != nil {
		return desc, fmt.Errorf("image %s is incomplete: %w", desc.Digest, err)
	}
	return d, nil
}

// Keep records desc as an untagged root so Prune keeps it (signatures and
// attestations of store images live this way until they get tags).
func (s *Store) Keep(ctx context.Context, desc ocispec.Descriptor) error {
	desc, err := s.checkRoot(ctx, desc)
	if err != nil {
		return fmt.Errorf("keep %s: %w", desc.Digest, err)
	}
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		for _, m := range idx.Manifests {
			if m.Digest == desc.Digest && m.Annotations[ocispec.AnnotationRefName] == "" {
				return nil
			}
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size})
		return nil
	})
}

// Untag removes ref. It reports ErrNotFound if ref is not a tag in the store.
func (s *Store) Untag(ctx context.Context, ref string) error {
	name, err := normalizeTag(ref)
	if err != nil {
		return err
	}
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		out := idx.Manifests[:0]
		found := false
		for _, m := range idx.Manifests {
			if m.Annotations[ocispec.AnnotationRefName] == name {
				found = true
				continue
			}
			out = append(out, m)
		}
		if !found {
			return fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
		idx.Manifests = out
		return nil
	})
}

// Resolve finds the descriptor of ref: a tag ("name:tag"), "name@sha256:…"
// or a bare digest of a manifest in the store.
func (s *Store) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	if d, err := digest.Parse(ref); err == nil {
		return s.Describe(ctx, d)
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if r.Digest != "" {
		return s.Describe(ctx, digest.Digest(r.Digest))
	}
	idx, err := s.readIndex()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	name := r.Name() + ":" + r.Tag
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == name {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("image %s is not in the store %s: %w", name, s.root, ErrNotFound)
}

// List returns every entry of index.json, tagged ones sorted by reference.
func (s *Store) List(_ context.Context) ([]Entry, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		out = append(out, Entry{Ref: m.Annotations[ocispec.AnnotationRefName], Descriptor: m})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// Tags lists tags in lexical order (oras registry.TagLister style).
func (s *Store) Tags(ctx context.Context, last string, fn func([]string) error) error {
	entries, err := s.List(ctx)
	if err != nil {
		return err
	}
	var tags []string
	for _, e := range entries {
		if e.Ref != "" && e.Ref > last {
			tags = append(tags, e.Ref)
		}
	}
	return fn(tags)
}

func normalizeTag(ref string) (string, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return "", err
	}
	if r.Tag == "" {
		return "", fmt.Errorf("%s: a tag is needed", ref)
	}
	return r.Name() + ":" + r.Tag, nil
}

// ShortRef shortens docker.io/library/x to x for display.
func ShortRef(ref string) string {
	return strings.TrimPrefix(strings.TrimPrefix(ref, "docker.io/"), "library/")
}
