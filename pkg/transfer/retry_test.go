package transfer

import (
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cnstack/cnstack/internal/testutil/regfault"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

func faultyRegistry(t *testing.T) (*regfault.Registry, string) {
	t.Helper()
	f := regfault.New(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.Release) })
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func noWait(int) time.Duration { return time.Millisecond }

// Issue 8 defect 10: one 500 or one reset on a blob-upload PUT does not
// fail the push: the upload starts over with a new session, and the image
// arrives whole.
func TestPushRetriesFailedUploads(t *testing.T) {
	s := sample(t)
	for _, tt := range []struct {
		name    string
		failure regfault.Failure
		fails   int64
	}{
		{"one 500", regfault.Status500, 1},
		{"one reset", regfault.Reset, 1},
		{"a 500 on each of the first three uploads", regfault.Status500, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := faultyRegistry(t)
			f.PutFailure = tt.failure
			f.FailPuts.Store(tt.fails)
			dst := addr + "/retry/cnstack:v1"
			rep, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, client(t), dst), Options{uploadWait: noWait, Concurrency: 1})
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if f.PutFailed.Load() != tt.fails || rep.Retried != tt.fails {
				t.Fatalf("%d PUTs failed on purpose, %d uploads retried; want %d of each", f.PutFailed.Load(), rep.Retried, tt.fails)
			}
			// What arrived is whole: pull it back.
			s2, _ := store.Open(t.TempDir())
			if _, err := Copy(ctx, remoteEP(t, client(t), dst), storeEP(t, s2, "back/x:1"), Options{}); err != nil {
				t.Fatalf("pull back: %v", err)
			}
			t.Logf("%d uploads failed, %d retried, %d PUTs reached the registry", f.PutFailed.Load(), rep.Retried, f.PutDone.Load())
		})
	}
	// A registry that keeps failing: a clear error after the retries.
	f, addr := faultyRegistry(t)
	f.FailPuts.Store(1 << 30)
	_, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, client(t), addr+"/retry/cnstack:v1"), Options{uploadWait: noWait, UploadRetries: 2})
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 retries") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("always failing: %v", err)
	}
}

// Issue 8 defect 8: a pull from a registry that stops sending mid-blob
// fails after the idle timeout (and the resumes the store tries), naming
// the image and the registry, instead of hanging.
func TestPullFromStalledRegistry(t *testing.T) {
	s := sample(t)
	f, addr := faultyRegistry(t)
	src := addr + "/stall/cnstack:v1"
	if _, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, client(t), src), Options{}); err != nil {
		t.Fatal(err)
	}
	f.StallBlobs.Store(true)
	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(t.TempDir(), "config.json"), IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := store.Open(t.TempDir())
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := Copy(ctx, remoteEP(t, rc, src), storeEP(t, s2, "pulled/x:1"), Options{})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the pull hangs on a stalled registry")
	}
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "stall/cnstack") || !strings.Contains(err.Error(), "stalled transfer") {
		t.Fatalf("stalled pull: %v", err)
	}
	if _, rerr := s2.Resolve(ctx, "pulled/x:1"); rerr == nil {
		t.Fatal("a failed pull tagged the image")
	}
	t.Logf("stalled pull failed after %s (%d stalled requests): %v", time.Since(start).Round(time.Millisecond), f.Stalled.Load(), err)
}
