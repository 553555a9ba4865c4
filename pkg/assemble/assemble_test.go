package assemble

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/store"
)

// fixture writes a recipe directory with per-platform "binaries".
func fixture(t *testing.T, recipe string) (*Recipe, string) {
	t.Helper()
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, "payload", "linux-"+arch)
		if err := os.MkdirAll(filepath.Join(p, "tree", "lib"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "server"), []byte("binary for "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "tree", "lib", "libx.so.1"), []byte("lib "+arch), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("libx.so.1", filepath.Join(p, "tree", "lib", "libx.so")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "images.yaml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(filepath.Join(dir, "images.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

const twoImages = `
vars:
  VERSION: v1.2.3
  PAYLOAD: payload/${OS}-${ARCH}
images:
  - ref: example.com/server:${VERSION}
    platforms: [linux/amd64, linux/arm64]
    layers:
      - files:
          - {src: "${PAYLOAD}/server", dst: usr/local/bin/server}
      - files:
          - {src: "${PAYLOAD}/tree", dst: /}
          - {content: "built for ${PLATFORM}\n", dst: etc/platform}
    entrypoint: [/usr/local/bin/server]
    cmd: ["--version=${VERSION}"]
    labels: {org.example: yes}
  - ref: example.com/legacy:1
    format: docker
    platforms: [linux/amd64]
    layers:
      - files:
          - {src: "${PAYLOAD}/server", dst: bin/legacy, mode: "0700"}
`

func TestAssembleDeterministicAndValid(t *testing.T) {
	r, _ := fixture(t, twoImages)
	ctx := t.Context()
	var digests [2][]string
	for round := range 2 {
		s, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		res, err := Assemble(ctx, s, r, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 {
			t.Fatalf("got %d results", len(res))
		}
		for _, x := range res {
			digests[round] = append(digests[round], x.Ref+"@"+x.Descriptor.Digest.String())
		}
		if res[0].Descriptor.MediaType != ocispec.MediaTypeImageIndex || res[0].Layers != 4 {
			t.Errorf("server: %+v, want an OCI index over 4 layers", res[0])
		}
		if res[1].Descriptor.MediaType != dockerManifest {
			t.Errorf("legacy: media type %s, want %s", res[1].Descriptor.MediaType, dockerManifest)
		}
		// go-containerregistry reads the store as an OCI layout and validates
		// every manifest, config, diff ID and layer digest.
		lp, err := layout.FromPath(s.Root())
		if err != nil {
			t.Fatal(err)
		}
		top, err := lp.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := top.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			if d.MediaType.IsIndex() {
				idx, err := top.ImageIndex(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Index(idx); err != nil {
					t.Errorf("%s: %v", d.Annotations[ocispec.AnnotationRefName], err)
				}
				continue
			}
			img, err := top.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("%s: %v", d.Annotations[ocispec.AnnotationRefName], err)
			}
		}
	}
	if strings.Join(digests[0], " ") != strings.Join(digests[1], " ") {
		t.Errorf("two assemblies differ:\n%v\n%v", digests[0], digests[1])
	}
}

func TestAssembleContents(t *testing.T) {
	r, _ := fixture(t, twoImages)
	ctx := t.Context()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Assemble(ctx, s, r, Options{Platforms: []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}}); err == nil {
		t.Fatal("legacy has no arm64: selecting only arm64 must fail for it")
	}
	r.Images = r.Images[:1]
	res, err := Assemble(ctx, s, r, Options{Platforms: []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Descriptor.MediaType != ocispec.MediaTypeImageManifest || res[0].Platforms[0] != "linux/arm64" {
		t.Fatalf("one selected platform must give a plain manifest: %+v", res[0])
	}
	var m ocispec.Manifest
	readJSON(t, s, res[0].Descriptor.Digest.Encoded(), &m)
	var cfg ocispec.Image
	readJSON(t, s, m.Config.Digest.Encoded(), &cfg)
	if cfg.Architecture != "arm64" || cfg.Config.Entrypoint[0] != "/usr/local/bin/server" || cfg.Config.Cmd[0] != "--version=v1.2.3" ||
		cfg.Config.Labels["org.example"] != "yes" || !strings.HasPrefix(cfg.Config.Env[0], "PATH=") {
		t.Errorf("config: %+v", cfg)
	}
	files := map[string]string{}
	for _, l := range m.Layers {
		f, err := os.Open(filepath.Join(s.Root(), "blobs", "sha256", l.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			v := string(b)
			if h.Typeflag == tar.TypeSymlink {
				v = "-> " + h.Linkname
			}
			if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
				t.Errorf("%s: owner %d:%d mtime %v, want 0:0 at 1970", h.Name, h.Uid, h.Gid, h.ModTime)
			}
			files[h.Name] = v
		}
		f.Close()
	}
	for name, want := range map[string]string{
		"usr/local/bin/server": "binary for arm64",
		"lib/libx.so.1":        "lib arm64",
		"lib/libx.so":          "-> libx.so.1",
		"etc/platform":         "built for linux/arm64\n",
	} {
		if files[name] != want {
			t.Errorf("%s = %q, want %q (all: %v)", name, files[name], want, files)
		}
	}
}

func TestAssembleCache(t *testing.T) {
	r, dir := fixture(t, twoImages)
	ctx := t.Context()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CacheDir: t.TempDir()}
	first, err := Assemble(ctx, s, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Assemble(ctx, s, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second[0].Cached != second[0].Layers || second[0].Descriptor.Digest != first[0].Descriptor.Digest {
		t.Errorf("unchanged recipe: %d of %d layers cached, digest %s vs %s", second[0].Cached, second[0].Layers, second[0].Descriptor.Digest, first[0].Descriptor.Digest)
	}
	// A changed binary changes its layer, and only the images using it.
	if err := os.WriteFile(filepath.Join(dir, "payload", "linux-amd64", "server"), []byte("new binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	third, err := Assemble(ctx, s, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Descriptor.Digest == first[0].Descriptor.Digest || third[0].Cached != 3 {
		t.Errorf("after a change: digest %s (was %s), %d layers cached, want 3", third[0].Descriptor.Digest, first[0].Descriptor.Digest, third[0].Cached)
	}
}

func TestRecipeErrors(t *testing.T) {
	for _, tc := range []struct{ name, recipe, want string }{
		{"no images", `images: []`, "no images"},
		{"unknown field", "images:\n  - ref: a/b:1\n    platform: [linux/amd64]\n", "field platform not found"},
		{"duplicate", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{content: x, dst: a}]}]}\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{content: x, dst: a}]}]}\n", "listed twice"},
		{"src and content", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{src: x, content: x, dst: a}]}]}\n", "exactly one of src and content"},
		{"bad mode", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{content: x, dst: a, mode: rwx}]}]}\n", "octal"},
		{"bad format", "images:\n  - {ref: a/b:1, format: v1, platforms: [linux/amd64], layers: [{files: [{content: x, dst: a}]}]}\n", "want oci or docker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.recipe))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAssembleErrors(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct{ name, recipe, want string }{
		{"undefined var", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{src: \"${NOPE}/x\", dst: a}]}]}\n", "undefined variable(s) NOPE"},
		{"missing file", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{src: absent, dst: a}]}]}\n", "absent"},
		{"all optional absent", "images:\n  - {ref: a/b:1, platforms: [linux/amd64], layers: [{files: [{src: absent, dst: a, optional: true}]}]}\n", "every file is optional and absent"},
		{"bad platform", "images:\n  - {ref: a/b:1, platforms: [linux], layers: [{files: [{content: x, dst: a}]}]}\n", "want os/arch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := fixture(t, tc.recipe)
			s, err := store.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = Assemble(ctx, s, r, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "a/b:1") {
				t.Errorf("error %q does not name the image", err)
			}
		})
	}
}

func readJSON(t *testing.T, s *store.Store, hex string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Root(), "blobs", "sha256", hex))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
