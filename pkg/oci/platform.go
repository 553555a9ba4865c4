package oci

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archAliases maps uname-style names to OCI architecture names.
var archAliases = map[string]string{
	"x86_64":  "amd64",
	"x86-64":  "amd64",
	"aarch64": "arm64",
}

// ParsePlatform parses "os/arch[/variant]" such as "linux/arm64/v8". Names
// are lower-cased, surrounding space is ignored, and x86_64/aarch64 become
// amd64/arm64.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t$,") {
			return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a
	}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ParsePlatforms parses a list of platforms, each as ParsePlatform does.
func ParsePlatforms(list []string) ([]ocispec.Platform, error) {
	out := make([]ocispec.Platform, 0, len(list))
	for _, s := range list {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// PlatformString formats a platform as "os/arch[/variant]".
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// MatchPlatform reports whether an image for have serves want: OS and
// architecture equal, and the variant equal unless either side leaves it
// open. For arm64 the variant is ignored (v8 is the only one in use), as
// sealer and containerd do.
func MatchPlatform(have, want ocispec.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" || have.Variant == "" || want.Architecture == "arm64" {
		return true
	}
	return have.Variant == want.Variant
}

// MatchAnyPlatform reports whether have serves one of wants.
func MatchAnyPlatform(have ocispec.Platform, wants []ocispec.Platform) bool {
	for _, w := range wants {
		if MatchPlatform(have, w) {
			return true
		}
	}
	return false
}
