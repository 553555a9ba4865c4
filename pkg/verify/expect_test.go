package verify

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/internal/testutil/zstdimage"
)

// Issue 9: the expectation reader took any layer not named gzip for a raw
// tar, so a zstd image's expected files were garbage (or an error). The
// same image with zstd layers must promise the same files and tags.
func TestReadExpectedZstdAsGzip(t *testing.T) {
	ctx := t.Context()
	repo, err := tooltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := sampleStack(t, ctx, repo)
	const gzipRef, zstdRef = "registry.cnstack.local/cnstack/cnstack:v0.1.0", "registry.cnstack.local/cnstack/cnstack:zstd"
	if _, err := zstdimage.Recompress(ctx, s, gzipRef, zstdRef); err != nil {
		t.Fatal(err)
	}
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	want, err := readExpected(ctx, s, gzipRef, amd64)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readExpected(ctx, s, zstdRef, amd64)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Files) == 0 || len(want.Tags) == 0 || want.Files["bin/cnstack-hello"] == "" {
		t.Fatalf("the gzip image promises %d files and %d tags, want bin/cnstack-hello and a registry tree", len(want.Files), len(want.Tags))
	}
	if got.Digest == want.Digest {
		t.Fatalf("the zstd image has the gzip image's digest %s", got.Digest)
	}
	if !reflect.DeepEqual(got.Files, want.Files) {
		t.Errorf("zstd image files differ: %d files, want %d", len(got.Files), len(want.Files))
	}
	if !reflect.DeepEqual(got.Tags, want.Tags) || !reflect.DeepEqual(got.Checks, want.Checks) || got.Kube != want.Kube {
		t.Errorf("zstd image: tags %v checks %v kube %v; want %v %v %v", got.Tags, got.Checks, got.Kube, want.Tags, want.Checks, want.Kube)
	}
}

// An app-installer needs a cluster to go onto: one FROM scratch must be
// given --base, and the base must bring Kubernetes; both refusals say what
// to do before any VM boots.
func TestReadBaseRefusals(t *testing.T) {
	ctx := t.Context()
	repo, err := tooltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := sampleStack(t, ctx, repo)
	const addon, top = "registry.cnstack.local/cnstack/addon-demo:v0.1.0", "registry.cnstack.local/cnstack/cnstack:v0.1.0"
	app, err := readExpected(ctx, s, addon, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ base, want string }{
		{"", "--base REF"},
		{top, "brings no Kubernetes"},
		{"registry.cnstack.local/cnstack/absent:v1", "the base registry.cnstack.local/cnstack/absent:v1"},
	} {
		_, err := readBase(ctx, Options{Store: s, Ref: addon, Base: tc.base}, app)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("base %q: error %v, want it to say %q", tc.base, err, tc.want)
		}
	}
	if _, err := withDefaults(Options{Ref: addon, Base: top, Installer: InstallerCnstack}, app); err == nil || !strings.Contains(err.Error(), "app-installer") {
		t.Errorf("--installer cnstack for an app-installer: %v", err)
	}
}
