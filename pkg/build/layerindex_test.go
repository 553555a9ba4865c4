package build

import (
	"archive/tar"
	"encoding/json"
	"io"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/testutil/zstdimage"
	"github.com/cnstack/cnstack/pkg/oci"
)

// Issue 9: the layer index read gzip only and refused zstd base layers, so
// a build FROM a zstd image could not see the base's directories. COPY x
// bin onto a zstd base whose bin/ is a directory puts x in it, as on gzip.
func TestBuildOnZstdBase(t *testing.T) {
	ctx := t.Context()
	b := newBuilder(t)
	base := writeContext(t, map[string]string{"Kubefile": "FROM scratch\nCOPY bin bin\n", "bin/tool": "tool"})
	if _, err := b.Build(ctx, Request{Context: base, Tags: []string{"base:gzip"}}); err != nil {
		t.Fatal(err)
	}
	_, err := zstdimage.Recompress(ctx, b.Store, "base:gzip", "base:zstd")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"gzip", "zstd"} {
		// A fresh cache: the base's build indexed its layers by diff ID,
		// which the zstd copy shares.
		if b.Cache, err = OpenCache(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		child := writeContext(t, map[string]string{"Kubefile": "FROM base:" + tag + "\nCOPY x bin\n", "x": "x"})
		res, err := b.Build(ctx, Request{Context: child, Tags: []string{"child:" + tag}})
		if err != nil {
			t.Fatalf("FROM base:%s: %v", tag, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(readJSON(t, b.Store, res.Descriptor.Digest), &m); err != nil {
			t.Fatal(err)
		}
		var files []string
		err = oci.Walk(ctx, b.Store, m.Layers, func(h *tar.Header, _ io.Reader) error {
			if h.Typeflag == tar.TypeReg {
				files = append(files, h.Name)
			}
			return nil
		})
		slices.Sort(files)
		if err != nil || !slices.Equal(files, []string{"bin/tool", "bin/x"}) {
			t.Errorf("FROM base:%s: files %v, %v; want bin/tool and bin/x", tag, files, err)
		}
	}
}
