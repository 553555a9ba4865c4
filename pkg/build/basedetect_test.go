package build

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/regclient"
)

// rawManifest is a manifest pushed as written (go-containerregistry's
// remote.Put takes any Taggable).
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// pushShape pushes an image of the given manifest media type, config and
// annotations, with one layer, and returns its reference.
func pushShape(t *testing.T, ref string, mt types.MediaType, configType types.MediaType, config []byte, annotations map[string]string) string {
	t.Helper()
	r := mustRef(t, ref)
	cfg := static.NewLayer(config, configType)
	layer := static.NewLayer([]byte("layer"), types.DockerLayer)
	for _, l := range []v1.Layer{cfg, layer} {
		if err := ggcrremote.WriteLayer(r.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(l v1.Layer, t types.MediaType) map[string]any {
		d, _ := l.Digest()
		n, _ := l.Size()
		return map[string]any{"mediaType": t, "digest": d.String(), "size": n}
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": mt, "config": desc(cfg, configType), "layers": []any{desc(layer, types.DockerLayer)}}
	if annotations != nil {
		m["annotations"] = annotations
	}
	b, _ := json.Marshal(m)
	if err := ggcrremote.Put(r, rawManifest{b, mt}); err != nil {
		t.Fatal(err)
	}
	return ref
}

// A base is inspected before anything is built on it: a sealer v0.9+
// cluster image is built on; a legacy (sealer v0.8) image, a cluster image
// that lost its annotations and a plain container image are refused with
// what each is and what to do, before any layer is written.
func TestBaseDetection(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	// A cluster image as cnstack makes it, pushed as it is.
	b := newBuilder(t)
	res, err := b.Build(ctx, Request{Context: "testdata/golden/context", Tags: []string{"base:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	lp, _ := layout.FromPath(b.Store.Root())
	h, _ := v1.NewHash(res.Descriptor.Digest.String())
	img, err := lp.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	clusterRef := addr + "/cnstack/base:v1"
	if err := ggcrremote.Write(mustRef(t, clusterRef), img); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.RawConfigFile()
	m, _ := img.Manifest()

	legacyConfig := `{"kind":"Image","apiVersion":"sealer.aliyun.com/v1alpha1","metadata":{"name":"ackdistro:v1-20-4-ack-5"},` +
		`"spec":{"id":"x","sealer_version":"v0.8.5","layers":[{"type":"COPY","value":"rootfs ."}],"platform":{"os":"linux","architecture":"amd64"},"image_config":{}},` +
		`"os":"linux","architecture":"amd64","history":[{"created_by":"COPY rootfs ."}]}`
	shapes := []struct {
		name, ref string
		want      []string
	}{
		{"legacy sealer image", pushShape(t, addr+"/sealer-io/ackdistro:v1-20-4-ack-5", types.DockerManifestSchema2, types.DockerConfigJSON, []byte(legacyConfig), nil),
			[]string{"is a legacy sealer image (sealer v0.8 or earlier)", "written by sealer v0.8.5", "built with sealer v0.9 or later"}},
		{"cluster image pushed as a Docker image", pushShape(t, addr+"/cnstack/base-docker:v1", types.DockerManifestSchema2, types.DockerConfigJSON, cfg, nil),
			[]string{"lost its annotations", "io.sealer.version=", "keeping the OCI manifest"}},
		{"OCI container image", pushShape(t, addr+"/library/busybox:1", types.OCIManifestSchema1, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`), nil),
			[]string{"is a container image, not a cluster image", "FROM a cluster image (a Kubernetes base"}},
		{"Docker container image", pushShape(t, addr+"/library/nginx:1", types.DockerManifestSchema2, types.DockerConfigJSON, []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"maintainer":"x"}}}`), nil),
			[]string{"is a container image"}},
	}
	if m.Annotations[clusterimage.AnnotationExtension] == "" {
		t.Fatal("the built base has no extension annotation")
	}

	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newBuilder(t)
	fresh.Remote = rc
	ok := writeContext(t, map[string]string{"Kubefile": "FROM " + clusterRef + "\nCOPY x .\n", "x": "x"})
	r, err := fresh.Build(ctx, Request{Context: ok, Tags: []string{"child:v1"}})
	if err != nil {
		t.Fatalf("FROM a cluster image: %v", err)
	}
	if r.Descriptor.MediaType != ocispec.MediaTypeImageManifest && r.Descriptor.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("built %s", r.Descriptor.MediaType)
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			for _, mode := range []string{"build", "plan"} {
				bad := writeContext(t, map[string]string{"Kubefile": "FROM " + s.ref + "\nCOPY x .\n", "x": "x"})
				var err error
				if mode == "build" {
					_, err = fresh.Build(ctx, Request{Context: bad, Tags: []string{"bad:v1"}})
				} else {
					_, err = fresh.Plan(ctx, Request{Context: bad, Tags: []string{"bad:v1"}})
				}
				if err == nil {
					t.Fatalf("%s FROM %s succeeded", mode, s.ref)
				}
				for _, w := range append([]string{"FROM " + s.ref + " is a "}, s.want...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %v\nwant it to say %q", mode, err, w)
					}
				}
			}
		})
	}
}
