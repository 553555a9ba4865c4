package transfer

import (
	"errors"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// TestLocate pins the one "store, then registry" lookup: where each Lookup
// looks, that a store miss never silently reaches a registry, and how a
// miss is named.
func TestLocate(t *testing.T) {
	s := sample(t)
	_, addr := newRegistry(t)
	rc := client(t)
	remoteRef := addr + "/cnstack/cnstack:v0.1.0"
	if _, err := Push(t.Context(), s, rc, mustRef(t, top), mustRef(t, remoteRef), Options{}); err != nil {
		t.Fatal(err)
	}
	root, err := s.Resolve(t.Context(), top)
	if err != nil {
		t.Fatal(err)
	}
	registryOpened := 0
	places := Places{
		Store: func() (*store.Store, error) { return s, nil },
		Registry: func() (*regclient.Client, error) {
			registryOpened++
			return rc, nil
		},
	}
	for _, tc := range []struct {
		name, raw    string
		lookup       Lookup
		inRegistry   bool
		wantErr      string
		notInStore   bool
		opensNetwork bool
	}{
		{name: "store tag", raw: top, lookup: InStore},
		{name: "store digest", raw: root.Digest.String(), lookup: InStore},
		{name: "store first", raw: top, lookup: InStoreThenRegistry},
		{name: "missing in store", raw: remoteRef, lookup: InStore, wantErr: "image " + remoteRef + " is not in the local store", notInStore: true},
		{name: "falls back to registry", raw: remoteRef, lookup: InStoreThenRegistry, inRegistry: true, opensNetwork: true},
		{name: "registry only", raw: remoteRef, lookup: InRegistry, inRegistry: true, opensNetwork: true},
		{name: "neither", raw: addr + "/cnstack/cnstack:nope", lookup: InStoreThenRegistry, wantErr: "is neither in the local store nor in its registry", opensNetwork: true},
		{name: "bare digest has no registry", raw: root.Digest.String(), lookup: InRegistry, wantErr: "is a bare digest"},
		{name: "bad reference", raw: "Not A Ref", lookup: InStore, wantErr: "Not A Ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			registryOpened = 0
			loc, err := Locate(t.Context(), places, tc.raw, tc.lookup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				var missing *NotInStoreError
				if errors.As(err, &missing) != tc.notInStore || (tc.notInStore && !errors.Is(err, store.ErrNotFound)) {
					t.Errorf("err = %v: NotInStoreError wrapping store.ErrNotFound = %v, want %v", err, !tc.notInStore, tc.notInStore)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				defer loc.Close()
				if loc.Descriptor.Digest != root.Digest || loc.InRegistry != tc.inRegistry {
					t.Errorf("found %s (in registry %v), want %s (in registry %v)", loc.Descriptor.Digest, loc.InRegistry, root.Digest, tc.inRegistry)
				}
				if want := "the local store"; !tc.inRegistry && loc.Where != want {
					t.Errorf("Where = %q, want %q", loc.Where, want)
				}
			}
			if opened := registryOpened > 0; opened != tc.opensNetwork {
				t.Errorf("registry settings opened = %v, want %v", opened, tc.opensNetwork)
			}
		})
	}
}

func mustRef(t *testing.T, raw string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPulledRef pins the pull tag policy: a pull by digest alone is named
// NAME:sha256-<hex>, as crane and cosign name a digest.
func TestPulledRef(t *testing.T) {
	const d = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for raw, want := range map[string]string{
		"127.0.0.1:5000/a/b:v1":       "127.0.0.1:5000/a/b:v1",
		"127.0.0.1:5000/a/b@" + d:     "127.0.0.1:5000/a/b:sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"127.0.0.1:5000/a/b:v1@" + d:  "127.0.0.1:5000/a/b:v1",
		"docker.io/library/redis:7.2": "docker.io/library/redis:7.2",
	} {
		if got := PulledRef(mustRef(t, raw)).String(); got != want {
			t.Errorf("PulledRef(%s) = %s, want %s", raw, got, want)
		}
	}
}

func TestMountCandidates(t *testing.T) {
	s := sample(t)
	got := MountCandidates(t.Context(), s, "registry.cnstack.local")
	// Each repository once, however many tags (the signature's too) name it.
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r] {
			t.Errorf("%s listed twice", r)
		}
		seen[r] = true
	}
	if !seen["cnstack/cnstack"] || !seen["cnstack/base"] {
		t.Errorf("MountCandidates = %v, want the stack's repositories", got)
	}
	if got := MountCandidates(t.Context(), s, "127.0.0.1:5000"); len(got) != 0 {
		t.Errorf("another registry: %v, want none", got)
	}
}

// TestRetag pins how tag --remote promotes a digest: a tag in the same
// repository moves nothing; another repository gets a copy whose blobs are
// mounted, with the signature; the digest stays; across registries and to
// a digest it refuses.
func TestRetag(t *testing.T) {
	s := sample(t)
	srv := startRegistry(t)
	rc := client(t)
	staging := mustRef(t, srv.Addr()+"/staging/cnstack:v1")
	pushed, err := Push(ctx, s, rc, mustRef(t, top), staging, Options{})
	if err != nil {
		t.Fatal(err)
	}

	desc, rep, err := Retag(ctx, rc, staging, mustRef(t, srv.Addr()+"/staging/cnstack:stable"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep != nil || desc.Digest != pushed.Root.Digest {
		t.Errorf("same repository: report %v, digest %s; want no copy, digest %s", rep, desc.Digest, pushed.Root.Digest)
	}

	desc, rep, err = Retag(ctx, rc, staging, mustRef(t, srv.Addr()+"/release/cnstack:stable"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || desc.Digest != pushed.Root.Digest || rep.Root.Digest != pushed.Root.Digest {
		t.Fatalf("other repository: report %+v, digest %s; want a copy of %s", rep, desc.Digest, pushed.Root.Digest)
	}
	if rep.Mounted == 0 || rep.Bytes >= pushed.Bytes || len(rep.Companions) == 0 {
		t.Errorf("other repository: %d blobs mounted, %d bytes sent (push sent %d), companions %v; want mounts and the signature", rep.Mounted, rep.Bytes, pushed.Bytes, rep.Companions)
	}
	for _, stable := range []string{"/staging/cnstack:stable", "/release/cnstack:stable"} {
		loc, err := Locate(ctx, Places{Registry: func() (*regclient.Client, error) { return rc, nil }}, srv.Addr()+stable, InRegistry)
		if err != nil {
			t.Fatal(err)
		}
		loc.Close()
		if loc.Descriptor.Digest != pushed.Root.Digest {
			t.Errorf("%s names %s, want %s", stable, loc.Descriptor.Digest, pushed.Root.Digest)
		}
	}

	for _, tc := range []struct{ dst, want string }{
		{"other.test/release/cnstack:stable", "different registries"},
		{srv.Addr() + "/release/cnstack@" + pushed.Root.Digest.String(), "name a tag"},
	} {
		if _, _, err := Retag(ctx, rc, staging, mustRef(t, tc.dst), Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Retag to %s: err = %v, want %q", tc.dst, err, tc.want)
		}
	}
}
