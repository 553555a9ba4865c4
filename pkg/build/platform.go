package build

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"

	"github.com/cnstack/cnstack/internal/progress"
)

// imageState is the layers of the image being written so far.
type imageState struct {
	layers  []ocispec.Descriptor
	diffIDs []digest.Digest
	indexes []*layerIndex // aligned with layers; nil until needed
}

func (s *imageState) addLayer(desc ocispec.Descriptor, diffID digest.Digest, li *layerIndex) {
	s.layers = append(s.layers, desc)
	s.diffIDs = append(s.diffIDs, diffID)
	s.indexes = append(s.indexes, li)
}

// materialise writes the image pp plans: each COPY's layer (or the cached
// one), then, unless the image itself is cached, the registry layer of its
// container images, its config and manifest.
func (b *Builder) materialise(ctx context.Context, req *Request, pp *platformPlan) (*PlatformResult, error) {
	res := &PlatformResult{Platform: pp.platform, Key: pp.key, Cached: true}
	base := pp.base
	st := &imageState{}
	if base != nil {
		for i, l := range base.Manifest.Layers {
			st.addLayer(l, base.Config.RootFS.DiffIDs[i], b.Cache.cachedIndex(base.Config.RootFS.DiffIDs[i]))
		}
	}
	var steps []clusterimage.Step
	total, n := len(pp.contents.Copies), 0
	for _, s := range pp.steps {
		if s.copy == nil {
			steps = append(steps, clusterimage.Step{History: history(s.text)})
			continue
		}
		n++
		t0 := time.Now()
		l, li, built, err := b.layerFor(ctx, req, s.key, s.copy.Entries)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.copy.Step.Pos, s.text, err)
		}
		st.addLayer(l.Descriptor, l.DiffID, li)
		steps = append(steps, clusterimage.Step{History: history(s.text), Layer: l})
		status := "cached"
		if built {
			status = fmt.Sprintf("built %s in %s", progress.Bytes(l.Descriptor.Size), time.Since(t0).Round(time.Millisecond))
			res.BuiltLayers++
			res.Cached = false
		}
		b.logf("  [%s %d/%d] %s: %s", oci.PlatformString(pp.platform), n, total, s.text, status)
	}
	if rec, ok := b.cachedImage(ctx, req, pp.key); ok {
		res.Descriptor = rec.Descriptor
		res.Layers = len(st.layers)
		res.Images = countImages(ctx, b, rec.Descriptor)
		return res, nil
	}
	res.Cached = false

	ext := pp.contents.Extension
	var images []clusterimage.ContainerImage
	if base != nil {
		images = base.Images
	}
	if req.Mode == ModeAll && b.Collector != nil {
		cres, err := b.collect(ctx, req, st, base, ext, pp.platform, pp.kubeVersion())
		if err != nil {
			return nil, err
		}
		images = cres.Images
		if len(cres.Entries) > 0 {
			sum, err := b.entriesDigest(ctx, cres.Entries)
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			l, li, built, err := b.layerFor(ctx, req, keyOf(pp.chain, "registry", sum), cres.Entries)
			if err != nil {
				return nil, fmt.Errorf("write registry layer: %w", err)
			}
			status := "cached"
			if built {
				res.BuiltLayers++
				status = fmt.Sprintf("built %s in %s", progress.Bytes(l.Descriptor.Size), time.Since(t0).Round(time.Millisecond))
			}
			b.logf("  [%s] registry/ (%d container images): %s", oci.PlatformString(pp.platform), len(images), status)
			steps = append(steps, clusterimage.Step{History: history(cres.CreatedBy), Layer: l})
			st.addLayer(l.Descriptor, l.DiffID, li)
		}
	}

	asm := &clusterimage.Assembly{
		Platform: pp.platform, Created: pp.created,
		Steps: steps, Labels: pp.labels, Env: pp.env, Author: pp.img.Author,
		Extension: ext, ContainerImages: images, Annotations: pp.ann,
	}
	if base != nil {
		asm.BaseConfig, asm.BaseLayers = &base.Config, base.Manifest.Layers
	}
	cfg, man, err := asm.Build()
	if err != nil {
		return nil, err
	}
	if _, err := b.Store.PushBytes(ctx, ocispec.MediaTypeImageConfig, cfg); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	md, err := b.Store.PushBytes(ctx, ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	md.Platform = &pp.platform
	res.Descriptor = md
	res.Layers = len(st.layers)
	res.Images = len(images)
	if err := b.Cache.PutImage(pp.key, ImageRecord{Descriptor: md}); err != nil {
		return nil, fmt.Errorf("record image in cache: %w", err)
	}
	return res, nil
}

func history(text string) ocispec.History {
	return ocispec.History{CreatedBy: text, Comment: "cnstack"}
}

// cachedImage is the image cached under key, when every blob it needs is
// still in the store.
func (b *Builder) cachedImage(ctx context.Context, req *Request, key string) (ImageRecord, bool) {
	if req.NoCache {
		return ImageRecord{}, false
	}
	rec, ok := b.Cache.Image(key)
	return rec, ok && b.complete(ctx, rec.Descriptor)
}

// complete reports whether a manifest and every blob it needs are in the store.
func (b *Builder) complete(ctx context.Context, d ocispec.Descriptor) bool {
	return b.Store.Complete(ctx, d) == nil
}

func countImages(ctx context.Context, b *Builder, d ocispec.Descriptor) int {
	mb, err := b.Store.ReadBlob(ctx, d.Digest)
	if err != nil {
		return 0
	}
	var m ocispec.Manifest
	if err := jsonUnmarshal(mb, &m); err != nil {
		return 0
	}
	list, _ := clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages])
	return len(list)
}

func (b *Builder) cachedLayer(ctx context.Context, req *Request, key string) (LayerRecord, bool) {
	if req.NoCache {
		return LayerRecord{}, false
	}
	rec, ok := b.Cache.Layer(key)
	if !ok {
		return rec, false
	}
	ok, _ = b.Store.Exists(ctx, rec.Descriptor)
	return rec, ok
}

// testHookBeforeLayerWrite runs between hashing a step's sources and
// writing its layer: tests change the context there, as a racing attacker would.
var testHookBeforeLayerWrite func()

// layerFor returns the layer for entries, from the cache or newly written,
// with its index.
func (b *Builder) layerFor(ctx context.Context, req *Request, key string, entries []layer.Entry) (*clusterimage.Layer, *layerIndex, bool, error) {
	if rec, ok := b.cachedLayer(ctx, req, key); ok {
		l := &clusterimage.Layer{Descriptor: rec.Descriptor, DiffID: rec.DiffID}
		return l, b.Cache.cachedIndex(rec.DiffID), false, nil
	}
	w, err := b.Store.Create()
	if err != nil {
		return nil, nil, false, err
	}
	defer w.Close()
	modTime, _ := layer.SourceDateEpoch()
	if testHookBeforeLayerWrite != nil {
		testHookBeforeLayerWrite()
	}
	lr, err := layer.Write(ctx, w, entries, layer.Options{ModTime: modTime, Level: b.Level})
	if err != nil {
		if errors.Is(err, layer.ErrChanged) {
			b.forget(entries) // rehash them next time: their stat data lied
		}
		return nil, nil, false, err
	}
	desc, err := w.CommitDescriptor(ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		return nil, nil, false, err
	}
	if desc.Digest != lr.Digest {
		return nil, nil, false, fmt.Errorf("layer digest changed while writing (%s vs %s)", desc.Digest, lr.Digest)
	}
	norm, _ := layer.Normalize(entries)
	li, err := b.Cache.indexFromEntries(ctx, lr.DiffID, norm)
	if err != nil {
		return nil, nil, false, fmt.Errorf("index layer: %w", err)
	}
	if err := b.Cache.PutLayer(key, LayerRecord{Descriptor: desc, DiffID: lr.DiffID}); err != nil {
		return nil, nil, false, err
	}
	return &clusterimage.Layer{Descriptor: desc, DiffID: lr.DiffID}, li, true, nil
}

func (b *Builder) forget(entries []layer.Entry) {
	for _, e := range entries {
		if e.Verify {
			b.Cache.Forget(e.Source)
		}
	}
}

// indexLayers makes sure every layer so far has an index (scan files and
// registry paths, for collection).
func (b *Builder) indexLayers(ctx context.Context, s *imageState) error {
	for i, li := range s.indexes {
		if li != nil {
			continue
		}
		li, err := b.layerIndex(ctx, b.Store, s.layers[i], s.diffIDs[i])
		if err != nil {
			return err
		}
		s.indexes[i] = li
	}
	return nil
}
