package vmimage

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/vmtest"
)

// recipeDir is the repository's development image recipe.
func recipeDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "images", "debian12")
}

// TestBuildDebian12 builds the real development image into the machine's VM
// cache (only the first run on a machine pays), then checks that a second
// build, and two concurrent ones, return the cached entry at once.
func TestBuildDebian12(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a VM image with debootstrap; skipped in -short mode")
	}
	if why := vmtest.Missing(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cache := DefaultImageCache()
	start := time.Now()
	img, err := Build(ctx, recipeDir(t), cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Build: %v (key %s, kernel %s)", time.Since(start).Round(time.Millisecond), img.Key[:12], img.KernelVersion)
	for _, f := range []string{img.Kernel, img.Initrd, img.Disk} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v); cached images must be read-only", f, fi.Mode())
		}
	}
	if img.Seed != SeedCmdline || img.User != "root" || img.KernelVersion == "" {
		t.Errorf("unexpected manifest: %+v", img)
	}

	var wg sync.WaitGroup
	start = time.Now()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			again, err := Build(ctx, recipeDir(t), cache, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			if again.Dir != img.Dir {
				t.Errorf("cached build went to %s, want %s", again.Dir, img.Dir)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cached Build took %v; want it to return at once", d)
	}
	t.Logf("cached Build: %v", time.Since(start).Round(time.Millisecond))
}

// TestMain keeps the images these tests build in the test VM cache, out of
// the user's $CNSTACK_HOME.
func TestMain(m *testing.M) {
	vmtest.UseTestCache()
	os.Exit(m.Run())
}

// TestVMCacheEnvName: vmtest sets the variable CacheRoot reads.
func TestVMCacheEnvName(t *testing.T) {
	if got, want := CacheRoot(), vmtest.CacheDir(); got != want {
		t.Fatalf("CacheRoot() = %s under the test cache, want %s (vmtest's name for %s drifted?)", got, want, CacheEnv)
	}
}
