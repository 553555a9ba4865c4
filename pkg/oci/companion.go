package oci

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/manifest"
)

// Cosign keeps what belongs to a manifest beside it in the same repository,
// under tags named for the manifest's digest: "sha256-<hex>.sig" for
// signatures, ".att" for attestations, ".sbom" for an attached SBOM.
const (
	SignatureSuffix   = "sig"
	AttestationSuffix = "att"
	SBOMSuffix        = "sbom"
)

// CompanionSuffixes are the suffixes of cosign's companion tags.
var CompanionSuffixes = []string{SignatureSuffix, AttestationSuffix, SBOMSuffix}

// DigestTag is the tag form of a digest, "sha256-<hex>": what a manifest
// known only by digest is tagged with, and the stem of its companion tags.
func DigestTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// CompanionTag is cosign's tag for the suffix artifact of manifest d,
// "sha256-<hex>.<suffix>".
func CompanionTag(d digest.Digest, suffix string) string {
	return DigestTag(d) + "." + suffix
}

// SignatureTag is cosign's tag for the signatures of manifest d.
func SignatureTag(d digest.Digest) string { return CompanionTag(d, SignatureSuffix) }

// AttestationTag is cosign's tag for the attestations of manifest d.
func AttestationTag(d digest.Digest) string { return CompanionTag(d, AttestationSuffix) }

// IsCompanionTag reports whether tag is a cosign companion tag,
// "sha256-<64 hex>.sig", ".att" or ".sbom": a signature, attestation or SBOM
// stored beside an image rather than an image of its own.
func IsCompanionTag(tag string) bool {
	rest, ok := strings.CutPrefix(tag, "sha256-")
	if !ok {
		return false
	}
	hex, suffix, ok := strings.Cut(rest, ".")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return false
	}
	return slices.Contains(CompanionSuffixes, suffix)
}

// ManifestDigests lists root and, for an index, its child manifests: the
// digests an image's cosign companions are tagged for.
func ManifestDigests(ctx context.Context, f content.Fetcher, root ocispec.Descriptor) ([]digest.Digest, error) {
	out := []digest.Digest{root.Digest}
	if !manifest.IsIndexType(root.MediaType) {
		return out, nil
	}
	succ, err := content.Successors(ctx, f, root)
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", root.Digest, err)
	}
	for _, s := range succ {
		if manifest.IsManifestType(s.MediaType) {
			out = append(out, s.Digest)
		}
	}
	return out, nil
}
