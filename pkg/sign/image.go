// Package sign signs and verifies cluster images with cosign's key-based,
// offline scheme, on any oras-go target: the local store, a registry
// repository or an OCI layout (a bundle).
//
// Signatures and attestations live where cosign puts them, in the image's
// repository under the tags sha256-<hex>.sig and sha256-<hex>.att, so that
// copying those tags along (push, save, load) carries them, and the real
// `cosign verify` / `cosign verify-attestation` accept them after a push.
// The index of a multi-platform image and each platform manifest are signed;
// attestations (an SPDX 2.3 SBOM and a SLSA v1 provenance, as DSSE
// envelopes) are attached to each as well. SBOM is the policy of `cnstack
// sbom`: the attested document (verified with a key), else one computed
// from the layers.
package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/pkg/oci"
)

// Image is a signed (or to-be-signed) image in a target.
type Image struct {
	// Name is the repository, "127.0.0.1:5000/team/app" or
	// "docker.io/library/app": the identity written into signatures.
	Name string
	// Tag is the tag the user named, if any (shown in the SBOM).
	Tag string
	// Descriptor is the image's index or manifest.
	Descriptor ocispec.Descriptor
	// BareTags says the target resolves bare tags ("v1"), as a registry
	// repository does; otherwise tags are "name:tag", as in the store and
	// in cnstack bundles.
	BareTags bool
}

// Ref is the reference of tag in the image's target.
func (i Image) Ref(tag string) string {
	if i.BareTags {
		return tag
	}
	return i.Name + ":" + tag
}

// identity is the repository as cosign names it in payloads and subjects
// (go-containerregistry's form, e.g. index.docker.io/library/app).
func (i Image) identity(d digest.Digest) (name.Digest, error) {
	ref, err := name.NewDigest(i.Name + "@" + d.String())
	if err != nil {
		return name.Digest{}, fmt.Errorf("image name %s: %w", i.Name, err)
	}
	return ref, nil
}

// Subject is one manifest that gets signatures: the index or a platform manifest.
type Subject struct {
	Descriptor ocispec.Descriptor
	// Platform is "os/arch[/variant]" for a platform manifest, "index" for an index.
	Platform string
	// Missing marks an index child the target does not hold (an image
	// pulled for some platforms only). Its signatures can still be made and
	// checked, since they cover the digest the signed index names; its
	// contents cannot be described.
	Missing bool
}

func (s Subject) String() string {
	return s.Platform + " " + s.Descriptor.Digest.String()
}

func (s Subject) isIndex() bool { return isIndex(s.Descriptor.MediaType) }

// Subjects lists what Sign covers: the image's root (index or manifest),
// then each platform manifest of an index in index order. Every manifest is
// read and its digest checked, so an altered one is an error naming it; an
// index child the target lacks is listed with Missing set.
func Subjects(ctx context.Context, src content.Fetcher, img Image) ([]Subject, error) {
	raw, err := fetchManifest(ctx, src, img.Descriptor)
	if err != nil {
		return nil, err
	}
	if !isIndex(img.Descriptor.MediaType) {
		return []Subject{{Descriptor: img.Descriptor, Platform: manifestPlatform(ctx, src, img.Descriptor, raw)}}, nil
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("index %s: %w", img.Descriptor.Digest, err)
	}
	out := []Subject{{Descriptor: img.Descriptor, Platform: "index"}}
	for _, c := range idx.Manifests {
		if isIndex(c.MediaType) {
			return nil, fmt.Errorf("index %s nests index %s: cluster images have one level", img.Descriptor.Digest, c.Digest)
		}
		craw, err := fetchManifest(ctx, src, c)
		missing := errors.Is(err, errdef.ErrNotFound)
		if err != nil && !missing {
			return nil, err
		}
		p := "unknown"
		switch {
		case c.Platform != nil:
			p = oci.PlatformString(*c.Platform)
		case !missing:
			p = manifestPlatform(ctx, src, c, craw)
		}
		out = append(out, Subject{Descriptor: c, Platform: p, Missing: missing})
	}
	return out, nil
}

// maxManifestSize bounds manifests read whole (the registry limit is 4 MiB).
const maxManifestSize = 4 << 20

func fetchManifest(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxManifestSize {
		return nil, fmt.Errorf("manifest %s is %d bytes, more than a manifest may have", desc.Digest, desc.Size)
	}
	b, err := content.FetchAll(ctx, src, desc)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	return b, nil
}

// manifestPlatform reads a manifest's platform from its config.
func manifestPlatform(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, raw []byte) string {
	if desc.Platform != nil {
		return oci.PlatformString(*desc.Platform)
	}
	var m ocispec.Manifest
	if json.Unmarshal(raw, &m) != nil || m.Config.Size > maxManifestSize {
		return "unknown"
	}
	cfg, err := content.FetchAll(ctx, src, m.Config)
	if err != nil {
		return "unknown"
	}
	var p ocispec.Platform
	if json.Unmarshal(cfg, &p) != nil || p.Architecture == "" {
		return "unknown"
	}
	return oci.PlatformString(p)
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}
