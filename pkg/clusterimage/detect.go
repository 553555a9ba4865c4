package clusterimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is what an image is, as the base of a cluster image.
type Format int

const (
	// FormatClusterImage is a sealer v0.9+ cluster image: an OCI image
	// manifest carrying the sealer.image.extension annotation. Build on it.
	FormatClusterImage Format = iota + 1
	// FormatLegacySealer is a sealer v0.8 (or earlier) image: sealer's own
	// format, whose config is a sealer.aliyun.com Image spec on a Docker
	// schema 2 manifest. Sealer v0.9+ and cnstack cannot read it.
	FormatLegacySealer
	// FormatAnnotationsLost is a sealer v0.9+ image (its config has sealer's
	// labels) that lost its manifest annotations, typically by being pushed
	// as a Docker schema 2 manifest.
	FormatAnnotationsLost
	// FormatContainerImage is a plain container image.
	FormatContainerImage
)

func (f Format) String() string {
	switch f {
	case FormatClusterImage:
		return "sealer v0.9+ cluster image"
	case FormatLegacySealer:
		return "legacy sealer image (sealer v0.8 or earlier)"
	case FormatAnnotationsLost:
		return "sealer v0.9+ image that lost its annotations"
	case FormatContainerImage:
		return "container image"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ErrNotClusterImage is returned (wrapped) by Detection.Check for a base
// that is no sealer v0.9+ cluster image.
var ErrNotClusterImage = errors.New("not a sealer v0.9+ cluster image")

// Detection is what Detect found, with the evidence for it.
type Detection struct {
	Format Format
	// ManifestType is the manifest's media type.
	ManifestType string
	// Evidence says what decided the format, for messages.
	Evidence string
}

// legacyConfig is the part of a sealer v0.8 image config that identifies it
// (sealer's types/api/v1 Image, wrapped with Docker's config fields).
type legacyConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		SealerVersion string `json:"sealer_version"`
		Layers        []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"layers"`
	} `json:"spec"`
}

// Detect classifies an image from its (platform) manifest and config
// bytes. It never fails on a well-formed manifest: what is not a cluster
// image is a container image. A manifest or config that is not JSON is an
// error.
func Detect(manifest, config []byte) (Detection, error) {
	var m struct {
		MediaType   string            `json:"mediaType"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return Detection{}, fmt.Errorf("manifest: %w", err)
	}
	d := Detection{ManifestType: m.MediaType}
	if d.ManifestType == "" {
		d.ManifestType = ocispec.MediaTypeImageManifest
	}
	var legacy legacyConfig
	if err := json.Unmarshal(config, &legacy); err != nil {
		return Detection{}, fmt.Errorf("config: %w", err)
	}
	if legacy.Kind == "Image" && strings.HasPrefix(legacy.APIVersion, "sealer.") {
		d.Format = FormatLegacySealer
		d.Evidence = fmt.Sprintf("its config is a %s Image spec", legacy.APIVersion)
		if v := legacy.Spec.SealerVersion; v != "" {
			d.Evidence += " written by sealer " + v
		}
		return d, nil
	}
	if _, ok := m.Annotations[AnnotationExtension]; ok && d.ManifestType == ocispec.MediaTypeImageManifest {
		d.Format = FormatClusterImage
		d.Evidence = "its OCI manifest carries " + AnnotationExtension
		return d, nil
	}
	var cfg ocispec.Image
	_ = json.Unmarshal(config, &cfg) // a config of another shape has no labels
	for _, l := range []string{LabelSealerVersion, LabelClusterRuntimeType} {
		if v, ok := cfg.Config.Labels[l]; ok {
			d.Format = FormatAnnotationsLost
			d.Evidence = fmt.Sprintf("its config has sealer's label %s=%s, but its %s has no %s annotation", l, v, d.ManifestType, AnnotationExtension)
			return d, nil
		}
	}
	d.Format = FormatContainerImage
	d.Evidence = fmt.Sprintf("its %s has no %s annotation and its config no sealer label", d.ManifestType, AnnotationExtension)
	return d, nil
}

// Check returns nil for a cluster image, else an error wrapping
// ErrNotClusterImage that names what ref is, why, and what to do.
func (d Detection) Check(ref string) error {
	var todo string
	switch d.Format {
	case FormatClusterImage:
		return nil
	case FormatLegacySealer:
		todo = "sealer v0.9+ and cnstack cannot build on that format; use a release of the image built with sealer v0.9 or later " +
			"(for ACK Distro: v1-22-15-ack-4 or later, built with sealer 0.9.x), or rebuild it from its Kubefile with sealer v0.9+"
	case FormatAnnotationsLost:
		todo = "it was probably pushed or copied as a Docker image, which drops OCI annotations; copy it again from its source " +
			"keeping the OCI manifest (cnstack push, sealer push, or crane copy), or rebuild it"
	default:
		todo = "a cluster image builds FROM a cluster image (a Kubernetes base, e.g. Kubefiles/kubernetes) or FROM scratch; " +
			"to ship a container image inside a cluster image, reference it from a manifest, a chart or manifests/imageList"
	}
	return fmt.Errorf("FROM %s is a %s, not a cluster image: %s; %s: %w", ref, d.Format, d.Evidence, todo, ErrNotClusterImage)
}
