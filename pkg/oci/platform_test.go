package oci

import (
	"strings"
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
		{"linux/arm64", "linux/arm64/v8", true},    // transfer once said no: --platform linux/arm64/v8 dropped plain arm64 images
		{"linux/arm64/v9", "linux/arm64/v8", true}, // arm64 ignores the variant
		{"linux/arm/v7", "linux/arm/v6", false},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm", "linux/arm/v7", true}, // transfer once said no
	} {
		if got := MatchPlatform(p(tc.have), p(tc.want)); got != tc.match {
			t.Errorf("MatchPlatform(%s, %s) = %v, want %v", tc.have, tc.want, got, tc.match)
		}
	}
	if !MatchAnyPlatform(p("linux/arm64"), []ocispec.Platform{p("linux/amd64"), p("linux/arm64/v8")}) {
		t.Error("MatchAnyPlatform missed linux/arm64/v8")
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := ParsePlatforms([]string{"linux/amd64, linux/arm64/v8", "linux/arm/v7"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, PlatformString(p))
	}
	if strings.Join(s, " ") != "linux/amd64 linux/arm64/v8 linux/arm/v7" {
		t.Errorf("ParsePlatforms = %v", s)
	}
	for _, bad := range [][]string{{"linux/amd64,"}, {"linux"}, {"linux/amd64", "x"}} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q) accepted", bad)
		}
	}
	if got, err := ParsePlatforms(nil); err != nil || len(got) != 0 {
		t.Errorf("ParsePlatforms(nil) = %v, %v", got, err)
	}
}

func TestEqualPlatform(t *testing.T) {
	a := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	if !EqualPlatform(a, a) || EqualPlatform(a, ocispec.Platform{OS: "linux", Architecture: "arm64"}) {
		t.Error("EqualPlatform compares every field")
	}
	if !IsZeroPlatform(ocispec.Platform{}) || IsZeroPlatform(DefaultPlatform) {
		t.Error("IsZeroPlatform")
	}
	win := ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763", OSFeatures: []string{"win32k"}}
	if EqualPlatform(win, ocispec.Platform{OS: "windows", Architecture: "amd64"}) || !EqualPlatform(win, win) {
		t.Error("EqualPlatform ignores os.version or os.features")
	}
}
