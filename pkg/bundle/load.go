package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/printable"
	"github.com/cnstack/cnstack/internal/progress"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// LoadOptions configure Load.
type LoadOptions struct {
	Input    string
	Limits   Limits
	Progress io.Writer
	// NoTag loads the content without tagging it (for relocation, which
	// tags at the destination instead).
	NoTag bool
}

// LoadReport says what Load did.
type LoadReport struct {
	Images  []LoadedImage
	Blobs   int // blobs written
	Present int // blobs the store already had
	Summary string
	Meta    *Meta
}

// LoadedImage is an image of the bundle, now in the store.
type LoadedImage struct {
	Ref        string
	Descriptor ocispec.Descriptor
	Companion  bool // a cosign signature/attestation tag
}

// Load reads a bundle into the store: every blob verified against its
// digest while it streams, nothing tagged until every image is complete.
// The bundle is validated as check validates it (validate.go): index.json's
// names and descriptors, SHA256SUMS, and every image graph judged by its
// content, never by the media types and sizes it claims. A blob is refused
// before it is written when it is not listed in SHA256SUMS, when its size
// differs from what a manifest already read declares, or when it would not
// fit on the store's filesystem; a blob whose content fails is not kept.
// An interrupted load resumes: blobs already stored are skipped and a
// partial blob continues where it stopped.
func Load(ctx context.Context, s *store.Store, opts LoadOptions) (*LoadReport, error) {
	in, err := openInput(opts.Input)
	if err != nil {
		return nil, err
	}
	rc, err := in.reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	release, err := s.Use(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	meter := progress.New(opts.Progress, "load "+opts.Input)
	tr, done, err := decompress(meter.Reader(rc), opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	defer done()
	lv := newLoadVisitor(ctx, s, opts.Limits)
	if err := walk(ctx, tr, lv, opts.Limits); err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	rep := &LoadReport{Blobs: lv.written, Present: lv.present, Summary: meter.Done()}
	if lv.meta != nil {
		rep.Meta = lv.meta
	}
	if err := lv.checkSums(); err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	roots, err := lv.roots(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	// Every image must be whole and valid before anything is tagged.
	src := storeSource{ctx: ctx, s: s}
	for i, r := range roots {
		if err := complete(r, src, rep.Meta); err != nil {
			return nil, fmt.Errorf("load %s: image %s: %w", opts.Input, displayRef(r), err)
		}
		roots[i].Descriptor = describeRoot(r, src)
	}
	for _, r := range roots {
		if r.Ref != "" && !opts.NoTag {
			if err := s.Tag(ctx, r.Descriptor, r.Ref); err != nil {
				return nil, err
			}
		} else if err := s.Keep(ctx, r.Descriptor); err != nil {
			return nil, err
		}
		rep.Images = append(rep.Images, LoadedImage{Ref: r.Ref, Descriptor: r.Descriptor, Companion: isCompanionRef(r.Ref)})
	}
	return rep, nil
}

func displayRef(r root) string {
	if r.Ref != "" {
		return r.Ref
	}
	return r.Descriptor.Digest.String()
}

// storeSource reads the blobs of a bundle being loaded from the store.
type storeSource struct {
	ctx context.Context
	s   *store.Store
}

func (ss storeSource) size(d digest.Digest) (int64, bool) { return ss.s.BlobSize(d) }

func (ss storeSource) read(d digest.Digest) ([]byte, bool) {
	if n, ok := ss.s.BlobSize(d); !ok || n > manifest.MaxSize {
		return nil, false
	}
	b, err := ss.s.ReadBlob(ss.ctx, d)
	return b, err == nil
}

type loadVisitor struct {
	ctx     context.Context
	s       *store.Store
	lim     Limits
	written int
	present int
	index   []root
	meta    *Meta
	sums    sumList
	// what the bundle holds, for SHA256SUMS (blobs by their verified digest)
	blobSums map[digest.Digest]string
	fileSums map[string]string
	// declared sizes, from index.json and the manifests read so far: a blob
	// of another size is refused before a byte of it is written
	declared map[digest.Digest]int64
	// sealer's multi-platform wrapper
	sealerName string
	instances  []*loadVisitor
}

func newLoadVisitor(ctx context.Context, s *store.Store, lim Limits) *loadVisitor {
	return &loadVisitor{ctx: ctx, s: s, lim: lim.withDefaults(), blobSums: map[digest.Digest]string{},
		fileSums: map[string]string{}, declared: map[digest.Digest]int64{}}
}

func (v *loadVisitor) blob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if v.sums != nil && !v.sums.listsBlob(d) {
		return fmt.Errorf("%w: blob %s is not listed in %s", ErrInvalid, d, sumsFileName)
	}
	if want, ok := v.declared[d]; ok && want != size {
		return fmt.Errorf("%w: blob %s is %d bytes in the archive, its descriptor says %d", ErrInvalid, d, size, want)
	}
	desc := ocispec.Descriptor{Digest: d, Size: size}
	if ok, _ := v.s.Exists(ctx, desc); ok {
		v.present++
	} else {
		if free, ok := v.s.FreeSpace(); ok && uint64(size) > free {
			return fmt.Errorf("blob %s is %d bytes; the store's filesystem has %d bytes free", d, size, free)
		}
		if err := v.s.Push(ctx, desc, r); err != nil {
			if ctx.Err() == nil {
				// Bad content is never worth resuming: a truncated or
				// hostile stream leaves nothing behind.
				v.s.DiscardPartial(d)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: blob %s: the archive is truncated (it ends in the middle of the blob; was it cut while copied?)", ErrInvalid, d)
			}
			return fmt.Errorf("%w: blob %s: %v", ErrInvalid, d, err)
		}
		v.written++
	}
	v.blobSums[d] = d.Encoded()
	return v.learn(d, size)
}

// learn reads the sizes a manifest declares for its children.
func (v *loadVisitor) learn(d digest.Digest, size int64) error {
	if size > manifest.MaxSize {
		return nil
	}
	b, err := v.s.ReadBlob(v.ctx, d)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return nil // not a manifest, or an invalid one: the graph check names it
	}
	for _, c := range m.Children() {
		if old, ok := v.declared[c.Digest]; ok && old != c.Size {
			return fmt.Errorf("%w: blob %s is declared both %d and %d bytes", ErrInvalid, c.Digest, old, c.Size)
		}
		v.declared[c.Digest] = c.Size
	}
	return nil
}

func (v *loadVisitor) metadata(name string, b []byte) error {
	sum := sha256.Sum256(b)
	v.fileSums[name] = hex.EncodeToString(sum[:])
	switch name {
	case indexName:
		roots, err := parseIndex(b, v.lim)
		if err != nil {
			return err
		}
		v.index = roots
		for _, r := range roots {
			v.declared[r.Descriptor.Digest] = r.Descriptor.Size
		}
	case metaName:
		var m Meta
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, metaName, err)
		}
		v.meta = &m
	case sumsFileName:
		list, err := parseSums(b)
		if err != nil {
			return err
		}
		v.sums = list
	case "Metadata":
		v.sealerName = strings.TrimSpace(string(b))
	}
	return nil
}

// checkSums applies check's rules for SHA256SUMS: a cnstack bundle
// (cnstack-bundle.json) must carry it, and it must match what was read.
func (v *loadVisitor) checkSums() error {
	if v.sums == nil {
		if v.meta != nil {
			return fmt.Errorf("%w: %s is missing", ErrInvalid, sumsFileName)
		}
		return nil
	}
	if problems := sumProblems(v.sums, v.blobSums, v.fileSums); len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

func (v *loadVisitor) nested(string) (visitor, error) {
	inner := newLoadVisitor(v.ctx, v.s, v.lim)
	v.instances = append(v.instances, inner)
	return &countInto{loadVisitor: inner, parent: v}, nil
}

// countInto forwards blob counts of a nested archive to its parent.
type countInto struct {
	*loadVisitor
	parent *loadVisitor
}

func (c *countInto) blob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	w, p := c.loadVisitor.written, c.loadVisitor.present
	err := c.loadVisitor.blob(ctx, d, size, r)
	c.parent.written += c.loadVisitor.written - w
	c.parent.present += c.loadVisitor.present - p
	return err
}

// roots lists the images the bundle names.
func (v *loadVisitor) roots(ctx context.Context) ([]root, error) {
	if v.sealerName != "" || len(v.instances) > 0 {
		return v.sealerRoots(ctx)
	}
	if v.index == nil {
		return nil, fmt.Errorf("%w: no index.json", ErrInvalid)
	}
	return v.index, nil
}

// sealerRoots rebuilds the index of a sealer multi-platform archive from
// its instances and names it after Metadata.
func (v *loadVisitor) sealerRoots(ctx context.Context) ([]root, error) {
	if v.sealerName == "" {
		return nil, fmt.Errorf("%w: instance archives without a Metadata file", ErrInvalid)
	}
	ref, err := reference.Parse(v.sealerName)
	if err != nil || ref.Tag == "" {
		return nil, fmt.Errorf("%w: Metadata names %s, not a tagged image reference", ErrInvalid, printable.String(v.sealerName))
	}
	var manifests []ocispec.Descriptor
	for _, in := range v.instances {
		if len(in.index) != 1 {
			return nil, fmt.Errorf("%w: an instance archive must hold exactly one image", ErrInvalid)
		}
		d := in.index[0].Descriptor
		if err := complete(in.index[0], storeSource{ctx: ctx, s: v.s}, nil); err != nil {
			return nil, fmt.Errorf("instance %s: %w", d.Digest, err)
		}
		mb, err := v.s.ReadBlob(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil || m.Config.Digest == "" {
			return nil, fmt.Errorf("%w: instance %s is not an image manifest", ErrInvalid, d.Digest)
		}
		cb, err := v.s.ReadBlob(ctx, m.Config.Digest)
		if err != nil {
			return nil, err
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return nil, fmt.Errorf("%w: config %s: %v", ErrInvalid, m.Config.Digest, err)
		}
		p := cfg.Platform
		manifests = append(manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d.Digest, Size: d.Size, Platform: &p})
	}
	sort.Slice(manifests, func(i, j int) bool {
		return oci.PlatformString(*manifests[i].Platform) < oci.PlatformString(*manifests[j].Platform)
	})
	idx, err := clusterimage.Index(manifests, nil)
	if err != nil {
		return nil, err
	}
	d, err := v.s.PushBytes(ctx, ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return nil, err
	}
	return []root{{Ref: ref.Name() + ":" + ref.Tag, Descriptor: d}}, nil
}

// isCompanionRef reports whether ref names a cosign companion
// (oci.IsCompanionTag), not an image of its own.
func isCompanionRef(ref string) bool {
	r, err := reference.Parse(ref)
	return err == nil && oci.IsCompanionTag(r.Tag)
}

// complete checks an image as check does (graphProblems) against what is
// now in the store; for a delta, a missing blob that the older bundle
// carried gets a message saying which bundle to load first.
func complete(r root, src blobSource, meta *Meta) error {
	omitted := map[digest.Digest]bool{}
	if meta != nil && meta.Delta != nil {
		for _, d := range meta.Delta.Omitted {
			omitted[d] = true
		}
	}
	problems := graphProblems(r, src, func(d digest.Digest) string {
		if omitted[d] {
			return fmt.Sprintf("blob %s is not in this delta bundle; it comes from %s: load that first", d, printable.String(meta.Delta.Since))
		}
		return fmt.Sprintf("blob %s is missing from the bundle", d)
	})
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		if strings.Contains(p, "load that first") {
			return errors.New(strings.Join(problems, "; "))
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
}
