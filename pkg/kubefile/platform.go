package kubefile

import (
	"fmt"
	"strings"
)

// Platform is a target platform (OCI image-spec terms).
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// DefaultPlatform is used when EvalOptions.Platform is zero.
var DefaultPlatform = Platform{OS: "linux", Architecture: "amd64"}

// archAliases maps uname-style names to OCI architecture names.
var archAliases = map[string]string{
	"x86_64":  "amd64",
	"x86-64":  "amd64",
	"aarch64": "arm64",
}

// ParsePlatform parses "os/arch[/variant]" such as "linux/arm64/v8". Names
// are lower-cased and x86_64/aarch64 become amd64/arm64.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t$,") {
			return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a
	}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// String formats the platform as "os/arch[/variant]".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// IsZero reports whether no field is set.
func (p Platform) IsZero() bool { return p == Platform{} }
