package transfer

import "strings"

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
	for _, s := range CompanionSuffixes {
		if suffix == s {
			return true
		}
	}
	return false
}
