package vmimage

import (
	"os"
	"testing"

	"github.com/cnstack/cnstack/images"
)

// TestMaterializeRecipeSameKey checks that the embedded debian12 recipe,
// written out, has the cache key of the checked-out directory: cnstack boot
// from any directory reuses the image a checkout built.
func TestMaterializeRecipeSameKey(t *testing.T) {
	const checkout = "../../../images/debian12"
	dir, err := MaterializeRecipe(images.Debian12, "debian12", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(checkout)
	if err != nil {
		t.Fatal(err)
	}
	want, err := CacheKey(checkout, r, "http://mirror.invalid/debian")
	if err != nil {
		t.Fatal(err)
	}
	got, err := CacheKey(dir, r, "http://mirror.invalid/debian")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("materialized recipe key %s, checkout %s", got, want)
	}
	again, err := MaterializeRecipe(images.Debian12, "debian12", t.TempDir())
	if err != nil || again == "" {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir + "/rootfs/usr/local/sbin/cnstack-seed"); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("cnstack-seed: %v %v", fi, err)
	}
}
