package clusterimage

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
)

// ImageSpec is the JSON `sealer inspect` v0.11 prints for an image.
type ImageSpec struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Digest             string           `json:"digest"`
	ManifestV1         ocispec.Manifest `json:"manifestv1"`
	OCIv1              ocispec.Image    `json:"ociv1"`
	ImageExtension     Extension        `json:"imageExtension"`
	ContainerImageList []ContainerImage `json:"containerImageList,omitempty"`
}

// Inspect builds sealer's inspect view of one platform image from its
// manifest and config bytes. name is the reference it was looked up by.
func Inspect(name string, manifest, config []byte) (*ImageSpec, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("inspect %s: manifest: %w", name, err)
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("inspect %s: manifest type %s is not an OCI image manifest, so it has no sealer annotations", name, m.MediaType)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("inspect %s: config: %w", name, err)
	}
	ext, err := ParseExtension(m.Annotations[AnnotationExtension])
	if err != nil {
		return nil, fmt.Errorf("failed to get %s in image %s: %w", AnnotationExtension, name, err)
	}
	images, err := ParseContainerImages(m.Annotations[AnnotationContainerImages])
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	ext.Labels = FoldLabels(cfg.Config.Labels)
	cfg.Config.Labels = nil
	ann := map[string]string{}
	for k, v := range m.Annotations {
		if k != AnnotationExtension && k != AnnotationContainerImages {
			ann[k] = v
		}
	}
	m.Annotations = ann
	return &ImageSpec{
		ID:                 m.Config.Digest.Encoded(),
		Name:               name,
		Digest:             digest.FromBytes(manifest).String(),
		ManifestV1:         m,
		OCIv1:              cfg,
		ImageExtension:     *ext,
		ContainerImageList: images,
	}, nil
}

// Summary is what `cnstack images` shows of an image.
type Summary struct {
	// Type is the sealer image type (kube-installer, app-installer) its
	// extension names, else its manifest's artifact type, else "".
	Type      string
	Platforms []string // os/arch[/variant] of each platform image whose config says
	Size      int64    // the layers of every platform image
}

// Summarize describes an image from its platform images (oci.FetchImages).
func Summarize(images []*oci.Image) Summary {
	var s Summary
	for _, im := range images {
		if ext, err := ParseExtension(im.Manifest.Annotations[AnnotationExtension]); err == nil {
			s.Type = ext.Type
		} else if im.Manifest.ArtifactType != "" {
			s.Type = im.Manifest.ArtifactType
		}
		s.Size += im.Size()
		if im.Config.OS != "" {
			s.Platforms = append(s.Platforms, oci.PlatformString(im.Config.Platform))
		}
	}
	return s
}
