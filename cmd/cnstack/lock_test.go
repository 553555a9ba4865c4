package main

import (
	"context"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cnstack/cnstack/internal/sampleimages"
	"github.com/cnstack/cnstack/pkg/lockfile"
)

func serveSampleRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := sampleimages.Push(t.Context(), addr); err != nil {
		t.Fatal(err)
	}
	return addr
}

// copyDir copies the sample stack so lock can write beside its Kubefiles.
func copyStackDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLockAndWhy(t *testing.T) {
	addr := serveSampleRegistry(t)
	home := t.TempDir()
	dir := copyStackDir(t, sample)
	mirrors := []string{"--registry-mirror", "docker.io=" + addr, "--registry-mirror", "registry.k8s.io=" + addr}

	out, errOut, err := runApp(t, home, append([]string{"lock"}, append(mirrors, dir)...)...)
	if err != nil {
		t.Fatalf("lock: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "11 container images (7 multi-arch)") {
		t.Errorf("lock output: %s", out)
	}
	lf, err := lockfile.Read(filepath.Join(dir, lockfile.FileName))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := sampleimages.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		im, ok := lf.Lookup(s.Ref)
		if !ok {
			t.Errorf("%s not in the lock file", s.Ref)
			continue
		}
		d, _ := s.Digest()
		if im.Digest != d.String() {
			t.Errorf("%s pinned to %s, want %s", s.Ref, im.Digest, d)
		}
		if s.Index != nil {
			amd, _ := s.Platforms["linux/amd64"].Digest()
			if len(im.Platforms) != 1 || im.Platforms[0].Platform != "linux/amd64" || im.Platforms[0].Digest != amd.String() {
				t.Errorf("%s platforms %v, want linux/amd64 %s", s.Ref, im.Platforms, amd)
			}
		}
	}
	if im, _ := lf.Lookup("docker.io/library/redis:7.2"); im == nil || strings.Join(im.Layers, ",") != "middleware" {
		t.Errorf("redis layers: %+v, want the layer that brings it in (middleware)", im)
	}

	// Again: unchanged, and --check agrees.
	out, _, err = runApp(t, home, append([]string{"lock", "--check"}, append(mirrors, dir)...)...)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("lock --check: %v %s", err, out)
	}
	// A tag that moves makes the lock out of date.
	ref, _ := name.ParseReference(addr+"/library/redis:7.2", name.Insecure)
	other, _ := name.ParseReference(addr+"/library/busybox:1.36", name.Insecure)
	desc, err := ggcrremote.Get(other)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	_, _, err = runApp(t, home, append([]string{"lock", "--check"}, append(mirrors, dir)...)...)
	if err == nil || !strings.Contains(err.Error(), "~ docker.io/library/redis:7.2") {
		t.Errorf("lock --check after the tag moved: %v", err)
	}

	out, errOut, err = runApp(t, home, append(append([]string{"images", "why"}, mirrors...), "redis:7.2", dir)...)
	if err != nil {
		t.Fatalf("images why: %v\n%s", err, errOut)
	}
	t.Logf("images why redis:7.2:\n%s", out)
	for _, want := range []string{
		"docker.io/library/redis:7.2",
		"layer middleware (linux/amd64) brings it in; carried by middleware, cnstack",
		"app: redis",
		"application/apps/redis (app redis, chart redis",
		"spec.template.spec.containers[0].image",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("images why output lacks %q:\n%s", want, out)
		}
	}
	_, _, err = runApp(t, home, "images", "why", "redis:9", dir)
	if err == nil || !strings.Contains(err.Error(), "similar: docker.io/library/redis:7.2") {
		t.Errorf("images why of an absent image: %v", err)
	}
}

func TestDevPushSamples(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	out, errOut, err := runApp(t, t.TempDir(), "dev", "push-samples", "--registry", addr)
	if err != nil || !strings.Contains(out, "pushed 11 sample images") {
		t.Fatalf("dev push-samples: %v\n%s%s", err, out, errOut)
	}
	ref, _ := name.ParseReference(addr+"/coredns/coredns:v1.12.1", name.Insecure)
	if _, err := ggcrremote.Get(ref); err != nil {
		t.Errorf("registry.k8s.io/coredns/coredns not served as coredns/coredns: %v", err)
	}
}

func TestDevServeSamples(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "addr")
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, []string{"cnstack", "--home", t.TempDir(), "dev", "serve-samples", "--addr-file", addrFile})
	}()
	var addr string
	for i := 0; i < 200 && addr == ""; i++ {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve-samples exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatal("serve-samples wrote no address")
	}
	ref, _ := name.ParseReference(addr+"/library/redis:7.2", name.Insecure)
	if _, err := ggcrremote.Get(ref); err != nil {
		t.Errorf("sample not served: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve-samples did not stop cleanly: %v", err)
	}
}
