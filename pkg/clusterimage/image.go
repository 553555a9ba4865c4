package clusterimage

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Step is one instruction's trace in the image: a history entry and, for a
// filesystem-changing instruction, the layer it made.
type Step struct {
	History ocispec.History
	Layer   *Layer // nil for metadata-only instructions (empty_layer history)
}

// Layer is a compressed layer blob and its uncompressed digest.
type Layer struct {
	Descriptor ocispec.Descriptor
	DiffID     digest.Digest
}

// Assembly is everything that makes one platform's image. Build turns it into
// config and manifest bytes; it is a pure function of these fields.
type Assembly struct {
	Platform ocispec.Platform
	Created  time.Time

	// The base image (nil config for FROM scratch).
	BaseConfig *ocispec.Image
	BaseLayers []ocispec.Descriptor

	Steps  []Step
	Labels map[string]string // applied over the base labels
	Env    []string          // KEY=VALUE in instruction order, replacing base keys
	Author string            // MAINTAINER

	Extension       *Extension
	ContainerImages []ContainerImage
	Annotations     map[string]string // other manifest annotations (org.opencontainers.image.*)
}

// Build returns the image config and manifest.
func (a *Assembly) Build() (config, manifest []byte, err error) {
	cfg := ocispec.Image{}
	if a.BaseConfig != nil {
		b, err := json.Marshal(a.BaseConfig) // deep copy
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, nil, err
		}
	}
	if len(cfg.RootFS.DiffIDs) != len(a.BaseLayers) {
		return nil, nil, fmt.Errorf("base image has %d layers but %d diff IDs", len(a.BaseLayers), len(cfg.RootFS.DiffIDs))
	}
	created := a.Created.UTC()
	cfg.Created = &created
	cfg.Platform = a.Platform
	if a.Author != "" {
		cfg.Author = a.Author
	}
	cfg.RootFS.Type = "layers"
	if len(a.Labels) > 0 && cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for k, v := range a.Labels {
		cfg.Config.Labels[k] = v
	}
	cfg.Config.Env = mergeEnv(cfg.Config.Env, a.Env)

	layers := append([]ocispec.Descriptor(nil), a.BaseLayers...)
	for _, s := range a.Steps {
		h := s.History
		h.Created = &created
		h.EmptyLayer = s.Layer == nil
		cfg.History = append(cfg.History, h)
		if s.Layer != nil {
			layers = append(layers, s.Layer.Descriptor)
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, s.Layer.DiffID)
		}
	}
	if err := checkHistory(cfg.History, len(layers)); err != nil {
		return nil, nil, err
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	config, err = json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}

	ann := map[string]string{}
	for k, v := range a.Annotations {
		ann[k] = v
	}
	if a.Extension == nil {
		return nil, nil, fmt.Errorf("a cluster image needs a %s", AnnotationExtension)
	}
	ext, err := a.Extension.Marshal()
	if err != nil {
		return nil, nil, err
	}
	ann[AnnotationExtension] = string(ext)
	if len(a.ContainerImages) > 0 {
		ci, err := MarshalContainerImages(a.ContainerImages)
		if err != nil {
			return nil, nil, err
		}
		ann[AnnotationContainerImages] = string(ci)
	}
	ann[ocispec.AnnotationCreated] = created.Format(time.RFC3339)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    digest.FromBytes(config),
			Size:      int64(len(config)),
		},
		Layers:      layers,
		Annotations: ann,
	}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	manifest, err = json.Marshal(m)
	return config, manifest, err
}

// checkHistory enforces what buildah checks when our image is a FROM base:
// non-empty history entries must match the layer count (or no history at all).
func checkHistory(h []ocispec.History, layers int) error {
	if len(h) == 0 {
		return nil
	}
	n := 0
	for _, e := range h {
		if !e.EmptyLayer {
			n++
		}
	}
	if n != layers {
		return fmt.Errorf("history lists %d non-empty layers, but the image has %d layers", n, layers)
	}
	return nil
}

func mergeEnv(base, add []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range add {
		key := kv
		if i := strings.Index(kv, "="); i >= 0 {
			key = kv[:i]
		}
		replaced := false
		for i, old := range out {
			if strings.HasPrefix(old, key+"=") || old == key {
				out[i] = kv
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// Index returns an OCI image index over per-platform manifests.
func Index(manifests []ocispec.Descriptor, annotations map[string]string) ([]byte, error) {
	for _, m := range manifests {
		if m.Platform == nil {
			return nil, fmt.Errorf("index entry %s has no platform", m.Digest)
		}
	}
	idx := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   manifests,
		Annotations: annotations,
	}
	return json.Marshal(idx)
}
