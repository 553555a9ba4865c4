package oci

import (
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform is the platform a build, scan or lint targets when none is
// named.
var DefaultPlatform = ocispec.Platform{OS: "linux", Architecture: "amd64"}

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

// ParsePlatforms parses a list of platforms, each as ParsePlatform does; an
// element may hold several, comma-separated ("linux/amd64,linux/arm64"), as
// a repeated --platform flag may.
func ParsePlatforms(list []string) ([]ocispec.Platform, error) {
	out := make([]ocispec.Platform, 0, len(list))
	for _, elem := range list {
		for _, s := range strings.Split(elem, ",") {
			p, err := ParsePlatform(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
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

// PlatformsString formats platforms as "os/arch,os/arch/variant", the
// form --platform takes.
func PlatformsString(ps []ocispec.Platform) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = PlatformString(p)
	}
	return strings.Join(out, ",")
}

// EqualPlatform reports whether a and b are the same platform, field for
// field (as go-containerregistry's Platform.Equals). Whether an image for one
// serves the other is MatchPlatform's question.
func EqualPlatform(a, b ocispec.Platform) bool {
	return a.OS == b.OS && a.Architecture == b.Architecture && a.Variant == b.Variant &&
		a.OSVersion == b.OSVersion && slices.Equal(a.OSFeatures, b.OSFeatures)
}

// IsZeroPlatform reports whether no field of p is set.
func IsZeroPlatform(p ocispec.Platform) bool { return EqualPlatform(p, ocispec.Platform{}) }

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
