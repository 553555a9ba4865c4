package chartrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/chartref"
	"github.com/cnstack/cnstack/pkg/regclient"
)

// repoServer serves a chart repository: index.yaml naming demo 1.0.0 (with
// a relative URL) and the archive.
func repoServer(t *testing.T, archive []byte, indexDigest string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "apiVersion: v1\nentries:\n  demo:\n  - version: 1.1.0\n    urls: [demo-1.1.0.tgz]\n  - version: 1.0.0\n    urls: [demo-1.0.0.tgz]\n    digest: %s\n", indexDigest)
	})
	mux.HandleFunc("/charts/demo-1.0.0.tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(archive) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRepository(t *testing.T) {
	ctx := context.Background()
	archive := []byte("not really a tgz, but bytes with a digest")
	want := digest.FromBytes(archive)
	srv := repoServer(t, archive, want.Encoded())
	ref, err := chartref.Parse("helm+" + srv.URL + "/charts/demo:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{CacheDir: t.TempDir()}
	pin, p, err := f.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pin.Digest != want.String() || pin.URL != srv.URL+"/charts/demo-1.0.0.tgz" {
		t.Fatalf("pin = %+v", pin)
	}
	if b, _ := os.ReadFile(p); string(b) != string(archive) {
		t.Fatalf("cached %q", b)
	}
	// A warm cache needs no server.
	srv.Close()
	f2 := &Fetcher{CacheDir: f.CacheDir}
	if got, err := f2.Fetch(ctx, ref, pin); err != nil || got != p {
		t.Fatalf("Fetch = %q, %v", got, err)
	}
}

func TestRepositoryRefusals(t *testing.T) {
	ctx := context.Background()
	archive := []byte("archive")
	tests := []struct {
		name, ref, indexDigest string
		pin                    *Pin
		want                   string
		is                     error
	}{
		{name: "index digest disagrees", ref: "demo:1.0.0", indexDigest: digest.FromString("other").Encoded(), want: "digest mismatch"},
		{name: "no such version", ref: "demo:2.0.0", want: "has no version 2.0.0 of demo (newest listed: 1.1.0, 1.0.0)", is: ErrNotFound},
		{name: "no such chart", ref: "nope:1.0.0", want: "lists no chart nope", is: ErrNotFound},
		{name: "pin disagrees", ref: "demo:1.0.0", pin: &Pin{Digest: digest.FromString("x").String()}, want: "digest mismatch"},
		{name: "pin is no digest", ref: "demo:1.0.0", pin: &Pin{Digest: "md5:1"}, want: "is not a sha256 digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := repoServer(t, archive, tt.indexDigest)
			ref, err := chartref.Parse("helm+" + srv.URL + "/charts/" + tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			f := &Fetcher{CacheDir: t.TempDir()}
			if tt.pin != nil {
				tt.pin.URL = srv.URL + "/charts/demo-1.0.0.tgz"
				_, err = f.Fetch(ctx, ref, *tt.pin)
			} else {
				_, _, err = f.Resolve(ctx, ref)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, not %v", err, tt.is)
			}
			if ents, _ := os.ReadDir(f.CacheDir); len(ents) != 0 {
				t.Fatalf("refused content kept in the cache: %v", ents)
			}
		})
	}
}

func TestOCI(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	archive := []byte("chart archive bytes")
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(archive, MediaTypeChartLayer)})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(mutate.ConfigMediaType(img, MediaTypeChartConfig), types.OCIManifestSchema1)
	tag, _ := name.NewTag(host + "/charts/demo:1.0.0_build.1")
	if err := ggcrremote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	notChart, _ := name.NewTag(host + "/charts/plain:1.0.0")
	if err := ggcrremote.Write(notChart, mutate.MediaType(empty.Image, types.OCIManifestSchema1)); err != nil {
		t.Fatal(err)
	}

	client, err := regclient.New(regclient.Options{DockerConfig: t.TempDir() + "/config.json"})
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{CacheDir: t.TempDir(), OpenOCI: OpenRegistry(client)}
	ref, err := chartref.Parse("oci://" + host + "/charts/demo:1.0.0+build.1")
	if err != nil {
		t.Fatal(err)
	}
	pin, p, err := f.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := img.Digest()
	if pin.Digest != digest.FromBytes(archive).String() || pin.Manifest != md.String() {
		t.Fatalf("pin = %+v", pin)
	}
	if b, _ := os.ReadFile(p); string(b) != string(archive) {
		t.Fatalf("cached %q", b)
	}
	f.CacheDir = t.TempDir()
	if _, err := f.Fetch(ctx, ref, pin); err != nil {
		t.Fatal(err)
	}
	bad := pin
	bad.Digest = digest.FromString("x").String()
	if _, err := f.Fetch(ctx, ref, bad); err == nil || !strings.Contains(err.Error(), "but the lock file pins") {
		t.Fatalf("Fetch of a moved pin: %v", err)
	}
	plain, _ := chartref.Parse("oci://" + host + "/charts/plain:1.0.0")
	if _, _, err := f.Resolve(ctx, plain); err == nil || !strings.Contains(err.Error(), "is not a Helm chart") {
		t.Fatalf("Resolve of an image: %v", err)
	}
}
