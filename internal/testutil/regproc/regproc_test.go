package regproc_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
)

func TestStartPushServeReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	writable := regproc.Start(t, regproc.Options{})
	if !strings.HasPrefix(writable.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:PORT", writable.Addr)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(writable.Ref("test/img:v1"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push to writable registry: %v", err)
	}
	if _, err := os.Stat(filepath.Join(writable.Root, "docker", "registry", "v2", "repositories", "test", "img")); err != nil {
		t.Errorf("pushed repository not in the filesystem tree under Root: %v", err)
	}

	writable.Stop()
	if err := writable.Ping(ctx); err == nil {
		t.Fatalf("registry still answers after Stop")
	}

	// Serve the same tree read-only from a second process.
	ro := regproc.Start(t, regproc.Options{Root: writable.Root})
	if !ro.ReadOnly || ro.Root != writable.Root {
		t.Fatalf("Root option: ReadOnly=%v Root=%s, want true and %s", ro.ReadOnly, ro.Root, writable.Root)
	}
	roRef, err := name.ParseReference(ro.Ref("test/img:v1"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(roRef, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull from read-only registry: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("read-only registry served %s, want %s", d, want)
	}
	other, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	newRef, _ := name.ParseReference(ro.Ref("test/other:v1"), name.Insecure)
	if err := remote.Write(newRef, other, remote.WithContext(ctx)); err == nil {
		t.Errorf("push to read-only registry succeeded")
	}
}

func TestStopKillsProcessGroup(t *testing.T) {
	r := regproc.Start(t, regproc.Options{})
	pid := registryPID(t, r)
	r.Stop()
	r.Stop() // idempotent
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("registry process %d still exists after Stop", pid)
	}
}

// registryPID finds the registry process serving r by its config path, which
// lies beside r.LogPath.
func registryPID(t *testing.T, r *regproc.Registry) int {
	t.Helper()
	cfg := filepath.Join(filepath.Dir(r.LogPath), "config.yml")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), cfg) {
			continue
		}
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			return pid
		}
	}
	t.Fatalf("no process runs with config %s", cfg)
	return 0
}
