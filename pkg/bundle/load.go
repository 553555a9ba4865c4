package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/progress"
	"github.com/cnstack/cnstack/pkg/clusterimage"
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
	tr, done, err := decompress(meter.Reader(rc))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	defer done()
	lv := &loadVisitor{s: s}
	if err := walk(ctx, tr, lv, opts.Limits); err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	rep := &LoadReport{Blobs: lv.written, Present: lv.present, Summary: meter.Done()}
	if lv.meta != nil {
		rep.Meta = lv.meta
	}
	roots, err := lv.roots(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.Input, err)
	}
	// Every image must be whole before anything is tagged.
	for _, r := range roots {
		if err := complete(ctx, s, r.Descriptor, rep.Meta); err != nil {
			return nil, fmt.Errorf("load %s: image %s: %w", opts.Input, r.Ref, err)
		}
	}
	for _, r := range roots {
		if r.Ref != "" && !opts.NoTag {
			if err := s.Tag(ctx, r.Descriptor, r.Ref); err != nil {
				return nil, err
			}
		} else if err := s.Keep(ctx, r.Descriptor); err != nil {
			return nil, err
		}
		rep.Images = append(rep.Images, r)
	}
	return rep, nil
}

type loadVisitor struct {
	s       *store.Store
	written int
	present int
	index   *ocispec.Index
	meta    *Meta
	// sealer's multi-platform wrapper
	sealerName string
	instances  []*loadVisitor
}

func (v *loadVisitor) blob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	desc := ocispec.Descriptor{Digest: d, Size: size}
	if ok, _ := v.s.Exists(ctx, desc); ok {
		v.present++
		return nil
	}
	if err := v.s.Push(ctx, desc, r); err != nil {
		return fmt.Errorf("%w: blob %s: %v", ErrInvalid, d, err)
	}
	v.written++
	return nil
}

func (v *loadVisitor) metadata(name string, b []byte) error {
	switch name {
	case indexName:
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("%w: index.json: %v", ErrInvalid, err)
		}
		v.index = &idx
	case metaName:
		var m Meta
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, metaName, err)
		}
		v.meta = &m
	case "Metadata":
		v.sealerName = strings.TrimSpace(string(b))
	}
	return nil
}

func (v *loadVisitor) nested(string) (visitor, error) {
	inner := &loadVisitor{s: v.s}
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
func (v *loadVisitor) roots(ctx context.Context) ([]LoadedImage, error) {
	if v.sealerName != "" || len(v.instances) > 0 {
		return v.sealerRoots(ctx)
	}
	if v.index == nil {
		return nil, fmt.Errorf("%w: no index.json", ErrInvalid)
	}
	var out []LoadedImage
	for _, m := range v.index.Manifests {
		ref := m.Annotations[ocispec.AnnotationRefName]
		if ref == "" {
			ref = m.Annotations["io.containerd.image.name"]
		}
		out = append(out, LoadedImage{Ref: ref, Descriptor: ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Platform: m.Platform},
			Companion: isCompanionRef(ref)})
	}
	return out, nil
}

// sealerRoots rebuilds the index of a sealer multi-platform archive from
// its instances and names it after Metadata.
func (v *loadVisitor) sealerRoots(ctx context.Context) ([]LoadedImage, error) {
	if v.sealerName == "" {
		return nil, fmt.Errorf("%w: instance archives without a Metadata file", ErrInvalid)
	}
	var manifests []ocispec.Descriptor
	for _, in := range v.instances {
		if in.index == nil || len(in.index.Manifests) != 1 {
			return nil, fmt.Errorf("%w: an instance archive must hold exactly one image", ErrInvalid)
		}
		d := in.index.Manifests[0]
		mb, err := v.s.ReadBlob(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			return nil, err
		}
		cb, err := v.s.ReadBlob(ctx, m.Config.Digest)
		if err != nil {
			return nil, err
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return nil, err
		}
		p := cfg.Platform
		manifests = append(manifests, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Platform: &p})
	}
	sort.Slice(manifests, func(i, j int) bool {
		return clusterimage.PlatformString(*manifests[i].Platform) < clusterimage.PlatformString(*manifests[j].Platform)
	})
	idx, err := clusterimage.Index(manifests, nil)
	if err != nil {
		return nil, err
	}
	d, err := v.s.PushBytes(ctx, ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return nil, err
	}
	return []LoadedImage{{Ref: v.sealerName, Descriptor: d}}, nil
}

func isCompanionRef(ref string) bool {
	for _, s := range []string{".sig", ".att", ".sbom"} {
		if strings.HasSuffix(ref, s) && strings.Contains(ref, ":sha256-") {
			return true
		}
	}
	return false
}

// complete checks that every blob of root is in the store; for a delta,
// a missing blob that the older bundle carried gets a message saying so.
func complete(ctx context.Context, s *store.Store, root ocispec.Descriptor, meta *Meta) error {
	omitted := map[digest.Digest]bool{}
	if meta != nil && meta.Delta != nil {
		for _, d := range meta.Delta.Omitted {
			omitted[d] = true
		}
	}
	seen := map[digest.Digest]bool{}
	var walkFn func(d ocispec.Descriptor) error
	walkFn = func(d ocispec.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		ok, err := s.Exists(ctx, d)
		if err != nil {
			return err
		}
		if !ok {
			if omitted[d.Digest] {
				return fmt.Errorf("blob %s is not in this delta bundle; it comes from %s: load that first", d.Digest, meta.Delta.Since)
			}
			return fmt.Errorf("%w: blob %s is missing from the bundle", ErrInvalid, d.Digest)
		}
		if !store.IsManifest(d.MediaType) {
			return nil
		}
		children, err := s.Children(ctx, d)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := walkFn(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walkFn(root)
}
