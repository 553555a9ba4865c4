// Package manifest judges OCI manifests and indexes by their bytes: what a
// blob is (never what a descriptor pointing at it claims), what it points
// to, and whether it and its descriptors stay within sane limits.
// Untrusted content — a bundle, a registry answer, a blob in the store —
// is parsed here before anything walks it, so the store's reachability
// walk, bundle check, bundle load and tagging all see one truth.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/printable"
)

// Media types of manifests and indexes cnstack reads (sealer accepts the
// same four; Docker schema 1 is refused).
const (
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	DockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Limits. A manifest or index larger than MaxSize is refused (the default
// of distribution's registry; real ones are a few KB). MaxLayers and
// MaxManifests bound what one manifest or index may list (real cluster
// images have tens of layers and a few platforms), so no hostile manifest
// can make a walker allocate without bound.
const (
	MaxSize      = 4 << 20
	MaxLayers    = 1000
	MaxManifests = 1000
)

// ErrNotManifest marks a blob that is not a manifest or index (a config,
// a layer, a signature payload).
var ErrNotManifest = errors.New("not a manifest or index")

// ErrInvalid marks a manifest, index or descriptor refused for its content.
var ErrInvalid = errors.New("invalid manifest")

// IsManifestType reports whether mediaType names an image manifest or index.
func IsManifestType(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, DockerManifest, DockerList:
		return true
	}
	return false
}

// IsIndexType reports whether mediaType names an OCI index or Docker list.
func IsIndexType(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == DockerList
}

// Manifest is what a manifest or index blob says, judged from its bytes.
type Manifest struct {
	// MediaType is derived from the content: its mediaType field when that
	// agrees with its shape, else the OCI type of its shape.
	MediaType string
	Config    *ocispec.Descriptor
	Layers    []ocispec.Descriptor
	Manifests []ocispec.Descriptor
	Subject   *ocispec.Descriptor
}

// IsIndex reports whether the blob is an index (or Docker list).
func (m *Manifest) IsIndex() bool { return IsIndexType(m.MediaType) }

// Children lists what the manifest points at: config, layers, then child
// manifests (the subject of a referrer is not a child).
func (m *Manifest) Children() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	return append(out, m.Manifests...)
}

// Parse judges b. It returns ErrNotManifest (wrapped) when b is some other
// blob, and ErrInvalid (wrapped) for a manifest that breaks the rules: over
// the limits, a mediaType field that contradicts its shape, Docker schema 1,
// or a child descriptor that is not valid (see ValidateDescriptor).
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxSize {
		if looksLikeJSON(b) {
			return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit for a manifest", ErrInvalid, len(b), MaxSize)
		}
		return nil, ErrNotManifest
	}
	if !looksLikeJSON(b) {
		return nil, ErrNotManifest
	}
	var raw struct {
		SchemaVersion *int                 `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        *ocispec.Descriptor  `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
		Subject       *ocispec.Descriptor  `json:"subject"`
		FSLayers      json.RawMessage      `json:"fsLayers"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, ErrNotManifest // a JSON-looking config or payload that is not an object we know
	}
	isIndex, isManifest := raw.Manifests != nil, raw.Config != nil
	switch {
	case raw.FSLayers != nil || (raw.SchemaVersion != nil && *raw.SchemaVersion == 1):
		return nil, fmt.Errorf("%w: Docker schema 1 manifests are not supported (sealer refuses them too)", ErrInvalid)
	case raw.SchemaVersion == nil:
		// Manifests and indexes carry schemaVersion; an image config (which
		// has a "config" object of its own) does not.
		if IsManifestType(raw.MediaType) {
			return nil, fmt.Errorf("%w: mediaType %s without schemaVersion", ErrInvalid, printable.String(raw.MediaType))
		}
		return nil, ErrNotManifest
	case isIndex && isManifest:
		return nil, fmt.Errorf("%w: it has both a config (a manifest) and manifests (an index)", ErrInvalid)
	case !isIndex && !isManifest:
		if IsManifestType(raw.MediaType) {
			return nil, fmt.Errorf("%w: mediaType %s, but neither a config nor manifests", ErrInvalid, printable.String(raw.MediaType))
		}
		return nil, ErrNotManifest
	}
	if *raw.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion must be 2", ErrInvalid)
	}
	m := &Manifest{Config: raw.Config, Layers: raw.Layers, Manifests: raw.Manifests, Subject: raw.Subject}
	switch {
	case isIndex && (raw.MediaType == "" || raw.MediaType == ocispec.MediaTypeImageIndex):
		m.MediaType = ocispec.MediaTypeImageIndex
	case isIndex && raw.MediaType == DockerList:
		m.MediaType = DockerList
	case isManifest && (raw.MediaType == "" || raw.MediaType == ocispec.MediaTypeImageManifest):
		m.MediaType = ocispec.MediaTypeImageManifest
	case isManifest && raw.MediaType == DockerManifest:
		m.MediaType = DockerManifest
	default:
		shape := "a manifest"
		if isIndex {
			shape = "an index"
		}
		return nil, fmt.Errorf("%w: mediaType %s contradicts its content (%s)", ErrInvalid, printable.String(raw.MediaType), shape)
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, over the limit of %d", ErrInvalid, len(m.Layers), MaxLayers)
	}
	if len(m.Manifests) > MaxManifests {
		return nil, fmt.Errorf("%w: %d manifests, over the limit of %d", ErrInvalid, len(m.Manifests), MaxManifests)
	}
	if isIndex && len(m.Layers) > 0 {
		return nil, fmt.Errorf("%w: an index with layers", ErrInvalid)
	}
	for i, d := range m.Children() {
		if err := ValidateDescriptor(d); err != nil {
			return nil, fmt.Errorf("child %d: %w", i, err)
		}
	}
	return m, nil
}

// ValidateDescriptor checks what a descriptor claims before anyone trusts
// it: a sha256 digest, a size of at least one byte (no blob cnstack stores
// is empty: not a tar, a gzip stream nor a JSON document), and a printable
// media type.
func ValidateDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: digest %s: %v", ErrInvalid, printable.String(string(d.Digest)), err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w: digest %s: only sha256 is supported", ErrInvalid, d.Digest)
	}
	if d.Size <= 0 {
		return fmt.Errorf("%w: descriptor of %s has size %d; a blob has at least one byte", ErrInvalid, d.Digest, d.Size)
	}
	if len(d.MediaType) > 255 || !printable.Safe(d.MediaType) {
		return fmt.Errorf("%w: descriptor of %s has the media type %.80q", ErrInvalid, d.Digest, d.MediaType)
	}
	return nil
}

// Children lists the descriptors a JSON blob's config, layers and
// manifests fields hold, whether or not the blob is a valid manifest. Only
// a garbage collector uses it: keeping too much is safe, deleting what a
// manifest names is not.
func Children(b []byte) []ocispec.Descriptor {
	if len(b) > MaxSize || !looksLikeJSON(b) {
		return nil
	}
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []ocispec.Descriptor
	if m.Config != nil && m.Config.Digest.Validate() == nil {
		out = append(out, *m.Config)
	}
	for _, d := range append(m.Layers, m.Manifests...) {
		if d.Digest.Validate() == nil {
			out = append(out, d)
		}
	}
	return out
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
