package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/cnstack/cnstack/pkg/oci"
)

// TestRemoveCompanions pins rmi -f: an image's signatures go with its last
// image tag, not before.
func TestRemoveCompanions(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	md := image(t, s, "app")
	sig := image(t, s, "signature")
	for _, ref := range []string{"x/app:v1", "x/app:v2"} {
		if err := s.Tag(ctx, md, ref); err != nil {
			t.Fatal(err)
		}
	}
	sigRef := "docker.io/x/app:" + oci.SignatureTag(md.Digest)
	if err := s.Tag(ctx, sig, sigRef); err != nil {
		t.Fatal(err)
	}

	removed, err := s.Remove(ctx, "x/app:v1", true)
	if err != nil || !slices.Equal(removed, []string{"x/app:v1"}) {
		t.Fatalf("first tag: removed %v, %v; want only the tag (v2 still names the image)", removed, err)
	}
	removed, err = s.Remove(ctx, "x/app:v2", true)
	if err != nil || !slices.Equal(removed, []string{"x/app:v2", sigRef}) {
		t.Fatalf("last tag: removed %v, %v; want the tag and its signature", removed, err)
	}
	if _, err := s.Remove(ctx, "x/app:v2", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("again: %v, want ErrNotFound", err)
	}

	entries, _ := s.List(ctx)
	for _, e := range entries {
		if e.Ref != "" {
			t.Errorf("left %s", e.Ref)
		}
	}
	if err := s.Tag(ctx, md, "x/app:v3"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, sig, sigRef); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.Remove(ctx, "x/app:v3", false); err != nil || len(removed) != 1 {
		t.Errorf("without companions: removed %v, %v", removed, err)
	}
	if _, err := s.Resolve(ctx, sigRef); err != nil {
		t.Errorf("without companions the signature went: %v", err)
	}
}
