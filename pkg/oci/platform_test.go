package oci

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"linux/amd64", "linux/amd64", false},
		{" Linux/X86_64 ", "linux/amd64", false},
		{"linux/aarch64/v8", "linux/arm64/v8", false},
		{"linux/arm/v7", "linux/arm/v7", false},
		{"linux", "", true},
		{"linux//v7", "", true},
		{"linux/amd64/v1/x", "", true},
		{"linux/${ARCH}", "", true},
		{"linux/amd64,linux/arm64", "", true},
	} {
		p, err := ParsePlatform(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParsePlatform(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && PlatformString(p) != tc.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", tc.in, PlatformString(p), tc.want)
		}
	}
}

func TestMatchPlatform(t *testing.T) {
	p := func(s string) ocispec.Platform {
		v, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		have, want string
		match      bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/arm64", false},
		{"windows/amd64", "linux/amd64", false},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v9", "linux/arm64/v8", true}, // arm64 ignores the variant
		{"linux/arm/v7", "linux/arm/v6", false},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm", "linux/arm/v7", true},
	} {
		if got := MatchPlatform(p(tc.have), p(tc.want)); got != tc.match {
			t.Errorf("MatchPlatform(%s, %s) = %v, want %v", tc.have, tc.want, got, tc.match)
		}
	}
	if !MatchAnyPlatform(p("linux/arm64"), []ocispec.Platform{p("linux/amd64"), p("linux/arm64/v8")}) {
		t.Error("MatchAnyPlatform missed linux/arm64/v8")
	}
}
