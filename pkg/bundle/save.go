// Package bundle writes and reads offline bundles: an OCI image layout in a
// tar (optionally zstd-compressed and split into parts with their sha256),
// carrying images with their cosign signatures and attestations and a
// checksum list, or exactly what `sealer load -i` accepts. It also checks a
// bundle with no network, loads it into the store or relocates it into a
// registry, and makes deltas that carry only what an older bundle lacks.
package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/progress"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// File names inside a bundle.
const (
	layoutName   = "oci-layout"
	indexName    = "index.json"
	metaName     = "cnstack-bundle.json"
	sumsFileName = "SHA256SUMS"
	blobsPrefix  = "blobs/sha256/"
	// SchemaVersion names the bundle format in cnstack-bundle.json.
	SchemaVersion = "cnstack.bundle/v1"
)

// Formats of Save.
const (
	FormatOCI    = "oci"    // OCI layout tar with signatures, attestations, checksums
	FormatSealer = "sealer" // exactly what `sealer load -i` accepts
)

// Meta is cnstack-bundle.json.
type Meta struct {
	Schema string      `json:"schema"`
	Images []MetaImage `json:"images"`
	// Delta is set for a bundle that omits blobs an older bundle carried.
	Delta *Delta `json:"delta,omitempty"`
}

// MetaImage is one image of the bundle.
type MetaImage struct {
	Ref        string        `json:"ref"`
	Digest     digest.Digest `json:"digest"`
	MediaType  string        `json:"mediaType"`
	Companions []string      `json:"companions,omitempty"` // cosign tags carried along
}

// Delta describes what a delta bundle leaves out.
type Delta struct {
	Since   string          `json:"since"`   // the OLD ref or bundle it was made against
	Omitted []digest.Digest `json:"omitted"` // blobs OLD carries, expected at the destination
}

// SaveOptions configure Save.
type SaveOptions struct {
	Output   string
	Refs     []string // store references
	Format   string   // FormatOCI (default) or FormatSealer
	Compress string   // "" or "zstd" (FormatOCI only)
	Split    int64    // bytes per part; 0: one file
	// Since, for a delta, is the set of blobs the destination already has
	// (see BlobsOfRefs and BlobsOfBundle) and what it was made from.
	Since     map[digest.Digest]bool
	SinceName string
	Progress  io.Writer
}

// SaveReport says what Save wrote.
type SaveReport struct {
	Files   []string
	Bytes   int64 // archive bytes written
	Blobs   int
	Omitted int
	Meta    Meta
	Summary string
}

type entry struct {
	name string
	size int64
	open func() (io.ReadCloser, error)
}

// Save writes the images to opts.Output.
func Save(ctx context.Context, s *store.Store, opts SaveOptions) (*SaveReport, error) {
	if len(opts.Refs) == 0 {
		return nil, errors.New("save: name at least one image")
	}
	switch opts.Format {
	case "", FormatOCI:
	case FormatSealer:
		if opts.Compress != "" || opts.Since != nil {
			return nil, errors.New("save --format sealer writes a plain tar: sealer load accepts neither compression nor deltas")
		}
		return saveSealer(ctx, s, opts)
	default:
		return nil, fmt.Errorf("save: format %q is not valid: use %s or %s", opts.Format, FormatOCI, FormatSealer)
	}
	if opts.Compress != "" && opts.Compress != "zstd" {
		return nil, fmt.Errorf("save: compression %q is not supported: use zstd", opts.Compress)
	}
	release, err := s.Use(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	meta := Meta{Schema: SchemaVersion}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	blobs := map[digest.Digest]int64{}
	for _, raw := range opts.Refs {
		ref, err := reference.Parse(raw)
		if err != nil {
			return nil, err
		}
		root, err := s.Resolve(ctx, ref.String())
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", raw, err)
		}
		mi := MetaImage{Ref: ref.String(), Digest: root.Digest, MediaType: root.MediaType}
		if err := collectBlobs(ctx, s, root, blobs); err != nil {
			return nil, fmt.Errorf("save %s: %w", raw, err)
		}
		idx.Manifests = append(idx.Manifests, named(root, ref.String()))
		manifests, err := oci.ManifestDigests(ctx, s, root)
		if err != nil {
			return nil, err
		}
		for _, d := range manifests {
			for _, suffix := range oci.CompanionSuffixes {
				t := oci.CompanionTag(d, suffix)
				cref := ref.Name() + ":" + t
				cd, err := s.Resolve(ctx, cref)
				if err != nil {
					continue
				}
				if err := collectBlobs(ctx, s, cd, blobs); err != nil {
					return nil, fmt.Errorf("save %s: %w", cref, err)
				}
				idx.Manifests = append(idx.Manifests, named(cd, cref))
				mi.Companions = append(mi.Companions, t)
			}
		}
		meta.Images = append(meta.Images, mi)
	}
	var digests []digest.Digest
	omitted := 0
	for d := range blobs {
		if opts.Since[d] {
			omitted++
			if meta.Delta == nil {
				meta.Delta = &Delta{Since: opts.SinceName}
			}
			meta.Delta.Omitted = append(meta.Delta.Omitted, d)
			continue
		}
		digests = append(digests, d)
	}
	blobOrder(blobs, digests)
	if meta.Delta != nil {
		sort.Slice(meta.Delta.Omitted, func(i, j int) bool { return meta.Delta.Omitted[i] < meta.Delta.Omitted[j] })
	}
	sort.Slice(meta.Images, func(i, j int) bool { return meta.Images[i].Ref < meta.Images[j].Ref })
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[ocispec.AnnotationRefName] < idx.Manifests[j].Annotations[ocispec.AnnotationRefName]
	})

	idxB, _ := json.Marshal(idx)
	metaB, _ := json.MarshalIndent(meta, "", "  ")
	layoutB := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	var sums strings.Builder
	small := map[string][]byte{layoutName: layoutB, indexName: idxB, metaName: metaB}
	for _, n := range []string{indexName, layoutName, metaName} {
		fmt.Fprintf(&sums, "%s  %s\n", digest.FromBytes(small[n]).Encoded(), n)
	}
	for _, d := range digests {
		fmt.Fprintf(&sums, "%s  %s%s\n", d.Encoded(), blobsPrefix, d.Encoded())
	}
	entries := []entry{bytesEntry(layoutName, layoutB), bytesEntry(indexName, idxB), bytesEntry(metaName, metaB), bytesEntry(sumsFileName, []byte(sums.String()))}
	for _, d := range digests {
		d := d
		entries = append(entries, entry{name: blobsPrefix + d.Encoded(), size: blobs[d], open: func() (io.ReadCloser, error) {
			return s.Fetch(ctx, ocispec.Descriptor{Digest: d, Size: blobs[d]})
		}})
	}
	meter := progress.New(opts.Progress, "save "+opts.Output)
	files, n, err := writeArchive(ctx, s, opts, entries, meter)
	rep := &SaveReport{Files: files, Bytes: n, Blobs: len(digests), Omitted: omitted, Meta: meta, Summary: meter.Done()}
	return rep, err
}

func named(d ocispec.Descriptor, ref string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Platform: d.Platform,
		Annotations: map[string]string{ocispec.AnnotationRefName: ref}}
}

func bytesEntry(name string, b []byte) entry {
	return entry{name: name, size: int64(len(b)), open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }}
}

// collectBlobs adds every blob reachable from root (found by parsing each
// manifest, store.Walk), failing on a missing one.
func collectBlobs(ctx context.Context, s *store.Store, root ocispec.Descriptor, out map[digest.Digest]int64) error {
	return s.Walk(ctx, root, func(d ocispec.Descriptor, present, _ bool) error {
		if !present {
			return fmt.Errorf("blob %s is missing from the store (pull or build the image again)", d.Digest)
		}
		out[d.Digest] = d.Size
		return nil
	})
}

// blobOrder sorts the blobs of a bundle: those small enough to be manifests
// or configs first, then the rest, each by digest. load then knows every
// size a manifest declares before a large blob arrives, and refuses one of
// another size before writing it.
func blobOrder(blobs map[digest.Digest]int64, digests []digest.Digest) {
	sort.Slice(digests, func(i, j int) bool {
		si, sj := blobs[digests[i]] <= manifest.MaxSize, blobs[digests[j]] <= manifest.MaxSize
		if si != sj {
			return si
		}
		return digests[i] < digests[j]
	})
}

// writeArchive streams entries as a tar (zstd when asked) into the output.
func writeArchive(ctx context.Context, s *store.Store, opts SaveOptions, entries []entry, meter *progress.Meter) ([]string, int64, error) {
	rec, err := s.TrackTemps()
	if err != nil {
		return nil, 0, err
	}
	defer rec.Done()
	out, err := newOutput(opts.Output, opts.Split, rec)
	if err != nil {
		return nil, 0, err
	}
	var w io.Writer = out
	var zw *zstd.Encoder
	if opts.Compress == "zstd" {
		// One encoder goroutine keeps the output a function of the input only.
		zw, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			out.Abort()
			return nil, 0, err
		}
		w = zw
	}
	if err := writeTar(ctx, w, entries, meter); err != nil {
		out.Abort()
		return nil, 0, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			out.Abort()
			return nil, 0, err
		}
	}
	files, err := out.Commit()
	if err != nil {
		out.Abort()
		return nil, 0, err
	}
	return files, out.total, nil
}

func mtime() time.Time {
	t, err := layer.SourceDateEpoch()
	if err != nil {
		return layer.Epoch
	}
	return t
}

// writeTar writes entries in order with directories for blobs/, fixed
// mtimes and root ownership, so the same images give the same bytes.
func writeTar(ctx context.Context, w io.Writer, entries []entry, meter *progress.Meter) error {
	tw := tar.NewWriter(w)
	mt := mtime()
	dirs := map[string]bool{}
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, d := range parentDirs(e.name) {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mt, Format: tar.FormatUSTAR}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: e.size, Mode: 0o644, ModTime: mt, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		rc, err := e.open()
		if err != nil {
			return fmt.Errorf("read %s: %w", e.name, err)
		}
		n, err := io.CopyBuffer(tw, io.LimitReader(rc, e.size), buf)
		rc.Close()
		if err != nil {
			return fmt.Errorf("write %s: %w", e.name, err)
		}
		if n != e.size {
			return fmt.Errorf("write %s: %d bytes, expected %d", e.name, n, e.size)
		}
		if meter != nil {
			meter.Add(n)
			meter.Object()
		}
	}
	return tw.Close()
}

func parentDirs(name string) []string {
	var out []string
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// BlobsOfRefs is every blob the store images refs reach (with companions):
// the OLD side of a delta made against a ref.
func BlobsOfRefs(ctx context.Context, s *store.Store, refs []string) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]int64{}
	for _, raw := range refs {
		ref, err := reference.Parse(raw)
		if err != nil {
			return nil, err
		}
		root, err := s.Resolve(ctx, ref.String())
		if err != nil {
			return nil, fmt.Errorf("--since %s: %w", raw, err)
		}
		if err := collectBlobs(ctx, s, root, out); err != nil {
			return nil, err
		}
		manifests, _ := oci.ManifestDigests(ctx, s, root)
		for _, d := range manifests {
			for _, suffix := range oci.CompanionSuffixes {
				if cd, err := s.Resolve(ctx, ref.Name()+":"+oci.CompanionTag(d, suffix)); err == nil {
					_ = collectBlobs(ctx, s, cd, out)
				}
			}
		}
	}
	set := map[digest.Digest]bool{}
	for d := range out {
		set[d] = true
	}
	return set, nil
}

func sortedDigests(m map[digest.Digest]int64) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// BlobsOfBundle lists the blobs an earlier bundle carried (and those it
// expected from its own base, for a chain of deltas): the OLD side of a
// delta made against a bundle file. Only the archive's headers and
// metadata are read.
func BlobsOfBundle(ctx context.Context, path string) (map[digest.Digest]bool, error) {
	in, err := openInput(path)
	if err != nil {
		return nil, err
	}
	rc, err := in.reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr, done, err := decompress(rc, Limits{})
	if err != nil {
		return nil, err
	}
	defer done()
	lv := &listVisitor{set: map[digest.Digest]bool{}}
	if err := walk(ctx, tr, lv, Limits{}); err != nil {
		return nil, fmt.Errorf("--since %s: %w", path, err)
	}
	return lv.set, nil
}

type listVisitor struct{ set map[digest.Digest]bool }

func (l *listVisitor) blob(_ context.Context, d digest.Digest, _ int64, _ io.Reader) error {
	l.set[d] = true
	return nil
}

func (l *listVisitor) metadata(name string, b []byte) error {
	if name != metaName {
		return nil
	}
	var m Meta
	if json.Unmarshal(b, &m) == nil && m.Delta != nil {
		for _, d := range m.Delta.Omitted {
			l.set[d] = true
		}
	}
	return nil
}

func (l *listVisitor) nested(string) (visitor, error) { return l, nil }
