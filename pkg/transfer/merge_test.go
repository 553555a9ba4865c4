package transfer

import (
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// Per-platform CI jobs each build one platform; merging their images gives
// the index one machine building both writes, digest for digest, in the
// store and in a registry. Bad merges are refused, naming why.
func TestMergePlatforms(t *testing.T) {
	amd64, arm64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"}
	newStore := func(t *testing.T) (*store.Store, *build.Builder) {
		home := t.TempDir()
		s, err := store.Open(filepath.Join(home, "store"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := build.OpenCache(filepath.Join(home, "cache"))
		if err != nil {
			t.Fatal(err)
		}
		return s, &build.Builder{Store: s, Cache: c}
	}
	buildFor := func(t *testing.T, b *build.Builder, tag string, ps ...ocispec.Platform) ocispec.Descriptor {
		t.Helper()
		res, err := b.Build(ctx, build.Request{Context: "../build/testdata/golden/context", Tags: []string{tag}, Platforms: ps})
		if err != nil {
			t.Fatal(err)
		}
		return res.Descriptor
	}
	const repo = "registry.cnstack.local/cnstack/base"

	_, oneMachine := newStore(t)
	want := buildFor(t, oneMachine, repo+":v1", amd64, arm64)

	s, jobs := newStore(t) // the jobs' images, gathered in one store
	buildFor(t, jobs, repo+":v1-linux-amd64", amd64)
	buildFor(t, jobs, repo+":v1-linux-arm64", arm64)
	inStore := Places{Store: func() (*store.Store, error) { return s, nil }}
	got, err := MergePlatforms(ctx, inStore, InStore, mustRef(t, repo+":v1"), []string{repo + ":v1-linux-amd64", repo + ":v1-linux-arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.Digest {
		t.Errorf("merged in the store: %s, one machine's build: %s", got.Digest, want.Digest)
	}
	if d, err := s.Resolve(ctx, repo+":v1"); err != nil || d.Digest != want.Digest {
		t.Errorf("the store's %s:v1 = %v (%v)", repo, d.Digest, err)
	}

	// In a registry, where the jobs pushed them.
	srv := startRegistry(t)
	rc := client(t)
	remote := srv.Addr() + "/staging/base"
	for _, p := range []string{"amd64", "arm64"} {
		if _, err := Push(ctx, s, rc, mustRef(t, repo+":v1-linux-"+p), mustRef(t, remote+":v1-linux-"+p), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	inRegistry := Places{Registry: func() (*regclient.Client, error) { return rc, nil }}
	got, err = MergePlatforms(ctx, inRegistry, InRegistry, mustRef(t, remote+":v1"), []string{remote + ":v1-linux-amd64", remote + ":v1-linux-arm64"})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := Locate(ctx, inRegistry, remote+":v1", InRegistry)
	if err != nil {
		t.Fatal(err)
	}
	loc.Close()
	if got.Digest != want.Digest || loc.Descriptor.Digest != want.Digest {
		t.Errorf("merged in the registry: %s, tagged %s; one machine's build: %s", got.Digest, loc.Descriptor.Digest, want.Digest)
	}

	// An index whose entry claims another platform than its image's config.
	amd64Image, err := s.Resolve(ctx, repo+":v1-linux-amd64")
	if err != nil {
		t.Fatal(err)
	}
	amd64Image.Platform = &arm64
	lying, err := clusterimage.Index([]ocispec.Descriptor{amd64Image}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lyingDesc, err := s.PushBytes(ctx, ocispec.MediaTypeImageIndex, lying)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, lyingDesc, repo+":lying"); err != nil {
		t.Fatal(err)
	}
	// An image built at another SOURCE_DATE_EPOCH is not of the same build.
	t.Setenv("SOURCE_DATE_EPOCH", "86400")
	buildFor(t, jobs, repo+":later-linux-arm64", arm64)
	for _, tc := range []struct {
		name   string
		places Places
		lookup Lookup
		dst    string
		srcs   []string
		want   string
	}{
		{"one platform twice", inStore, InStore, repo + ":x", []string{repo + ":v1-linux-amd64", repo + ":v1-linux-amd64"}, "two images for platform linux/amd64"},
		{"an index and one of its platforms", inStore, InStore, repo + ":x", []string{repo + ":v1", repo + ":v1-linux-arm64"}, "two images for platform linux/arm64"},
		{"another build time", inStore, InStore, repo + ":x", []string{repo + ":v1-linux-amd64", repo + ":later-linux-arm64"}, "SOURCE_DATE_EPOCH differs"},
		{"missing source", inStore, InStore, repo + ":x", []string{repo + ":v1-linux-amd64", repo + ":nope"}, "nope"},
		{"digest target", inStore, InStore, repo + "@" + want.Digest.String(), []string{repo + ":v1-linux-amd64"}, "name a tag"},
		{"no sources", inStore, InStore, repo + ":x", nil, "no platform images"},
		{"an index that lies about a platform", inStore, InStore, repo + ":x", []string{repo + ":lying"}, "is listed as linux/arm64 but its config says linux/amd64"},
		{"another repository", inRegistry, InRegistry, srv.Addr() + "/release/base:v1", []string{remote + ":v1-linux-amd64"}, "is not in the repository of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := MergePlatforms(ctx, tc.places, tc.lookup, mustRef(t, tc.dst), tc.srcs); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
