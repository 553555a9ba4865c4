package sampleimages

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestDeterministic(t *testing.T) {
	a, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	multi, docker := 0, 0
	for i := range a {
		da, _ := a[i].Digest()
		db, _ := b[i].Digest()
		if da != db {
			t.Errorf("%s: digest %s then %s", a[i].Ref, da, db)
		}
		if a[i].Index != nil {
			multi++
		}
		if a[i].Format == "docker" {
			docker++
		}
	}
	if multi == 0 || multi == len(a) || docker == 0 || docker == len(a) {
		t.Errorf("want a mix of indexes and single manifests, OCI and Docker types: %d of %d multi-arch, %d Docker", multi, len(a), docker)
	}
}

func TestPushPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := Push(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	samples, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		// registry.k8s.io/pause is served as <addr>/pause, docker.io/library/redis as <addr>/library/redis.
		ref, _ := name.ParseReference(addr+"/"+s.Repository+":"+s.Tag, name.Insecure)
		desc, err := remote.Get(ref)
		if err != nil {
			t.Errorf("%s: %v", s.Ref, err)
			continue
		}
		want, _ := s.Digest()
		if desc.Digest != want {
			t.Errorf("%s: pushed %s, want %s", s.Ref, desc.Digest, want)
		}
		wantType := map[string]map[bool]types.MediaType{
			"oci":    {true: types.OCIImageIndex, false: types.OCIManifestSchema1},
			"docker": {true: types.DockerManifestList, false: types.DockerManifestSchema2},
		}[s.Format][s.Index != nil]
		if desc.MediaType != wantType {
			t.Errorf("%s: media type %s, want %s", s.Ref, desc.MediaType, wantType)
		}
		for ps, img := range s.Platforms {
			p, _ := v1.ParsePlatform(ps)
			got, err := remote.Image(ref, remote.WithPlatform(*p))
			if err != nil {
				t.Errorf("%s %s: %v", s.Ref, ps, err)
				continue
			}
			gd, _ := got.Digest()
			wd, _ := img.Digest()
			cfg, _ := got.ConfigFile()
			if gd != wd || cfg.Architecture != p.Architecture {
				t.Errorf("%s %s: got %s (%s), want %s", s.Ref, ps, gd, cfg.Architecture, wd)
			}
			if size, _ := got.Size(); size > 4096 {
				t.Errorf("%s: manifest of %d bytes; samples should be tiny", s.Ref, size)
			}
		}
	}
}
