package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/progress"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// saveSealer writes what `sealer load -i` accepts (sealer-format.md §5):
// one platform: an uncompressed OCI-layout tar whose index.json holds one
// descriptor named by org.opencontainers.image.ref.name; an index: a tar
// holding Metadata (the manifest list name) and one such archive per
// platform, named <config-digest-hex>.tar, the image ID sealer expects.
// Signatures cannot travel in this format (sealer would not load them).
func saveSealer(ctx context.Context, s *store.Store, opts SaveOptions) (*SaveReport, error) {
	if len(opts.Refs) != 1 {
		return nil, fmt.Errorf("save --format sealer takes exactly one image, got %d", len(opts.Refs))
	}
	release, err := s.Use(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ref, err := reference.Parse(opts.Refs[0])
	if err != nil {
		return nil, err
	}
	root, err := s.Resolve(ctx, ref.String())
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", ref, err)
	}
	meter := progress.New(opts.Progress, "save "+opts.Output)
	var entries []entry
	blobs := 0
	if !store.IsIndex(root.MediaType) {
		entries, blobs, err = singleImageEntries(ctx, s, root, ref.String())
		if err != nil {
			return nil, err
		}
	} else {
		children, err := s.Children(ctx, root)
		if err != nil {
			return nil, err
		}
		entries = append(entries, bytesEntry("Metadata", []byte(ref.String())))
		for _, c := range children {
			mb, err := s.ReadBlob(ctx, c.Digest)
			if err != nil {
				return nil, err
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(mb, &m); err != nil {
				return nil, fmt.Errorf("manifest %s: %w", c.Digest, err)
			}
			// Instances of a sealer-built list are unnamed in sealer's own saves.
			inner, n, err := singleImageEntries(ctx, s, c, "")
			if err != nil {
				return nil, err
			}
			blobs += n
			inner2 := inner
			entries = append(entries, entry{
				name: m.Config.Digest.Encoded() + ".tar",
				size: tarSize(inner2),
				open: func() (io.ReadCloser, error) {
					pr, pw := io.Pipe()
					go func() { pw.CloseWithError(writeTar(ctx, pw, inner2, nil)) }()
					return pr, nil
				},
			})
		}
	}
	files, n, err := writeArchive(ctx, s, SaveOptions{Output: opts.Output, Split: opts.Split}, entries, meter)
	return &SaveReport{Files: files, Bytes: n, Blobs: blobs, Summary: meter.Done()}, err
}

// singleImageEntries is one image as an OCI layout with a single index entry.
func singleImageEntries(ctx context.Context, s *store.Store, root ocispec.Descriptor, refName string) ([]entry, int, error) {
	blobs := map[digest.Digest]int64{}
	if err := collectBlobs(ctx, s, root, blobs); err != nil {
		return nil, 0, err
	}
	d := ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size}
	if refName != "" {
		d.Annotations = map[string]string{ocispec.AnnotationRefName: refName}
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}}
	idxB, _ := json.Marshal(idx)
	entries := []entry{bytesEntry(layoutName, []byte(`{"imageLayoutVersion":"1.0.0"}`)), bytesEntry(indexName, idxB)}
	for _, dg := range sortedDigests(blobs) {
		dg := dg
		entries = append(entries, entry{name: blobsPrefix + dg.Encoded(), size: blobs[dg], open: func() (io.ReadCloser, error) {
			return s.Fetch(ctx, ocispec.Descriptor{Digest: dg, Size: blobs[dg]})
		}})
	}
	return entries, len(blobs), nil
}

// tarSize is the exact size writeTar produces for entries (USTAR headers,
// 512-byte blocks, directory entries, two zero blocks at the end).
func tarSize(entries []entry) int64 {
	var n int64
	dirs := map[string]bool{}
	for _, e := range entries {
		for _, d := range parentDirs(e.name) {
			if !dirs[d] {
				dirs[d] = true
				n += 512
			}
		}
		n += 512 + (e.size+511)/512*512
	}
	return n + 1024
}
