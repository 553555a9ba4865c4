package regclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/testutil/regfault"
	"github.com/cnstack/cnstack/pkg/reference"
)

// Issue 8 defect 8: a registry that stops sending in the middle of a blob
// fails the read after the idle timeout, with an error naming the registry
// and the blob, instead of hanging forever; and one that stops reading an
// upload fails the push the same way.
func TestIdleTimeout(t *testing.T) {
	faults := regfault.New(quietRegistry())
	srv := httptest.NewServer(faults)
	defer srv.Close()
	defer close(faults.Release)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := New(Options{DockerConfig: filepath.Join(t.TempDir(), "config.json"), IdleTimeout: 300 * time.Millisecond, MaxRetry: 1})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reference.Parse(host + "/stall/blob:v1")
	repo, err := c.Repository(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 4<<20)
	rand.Read(blob)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := repo.Push(context.Background(), desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}

	faults.StallBlobs.Store(true)
	start := time.Now()
	rc, err := repo.Fetch(context.Background(), desc)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	var ie *IdleError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("stalled download: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the stall was noticed after %s", d)
	}
	t.Logf("stalled download failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

	faults.StallBlobs.Store(false)
	faults.StallPuts.Store(true)
	big := make([]byte, 32<<20) // more than the socket buffers hold
	rand.Read(big)
	bd := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(big), Size: int64(len(big))}
	start = time.Now()
	err = repo.Push(context.Background(), bd, bytes.NewReader(big))
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), host) {
		t.Fatalf("stalled upload: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the upload stall was noticed after %s", d)
	}
	t.Logf("stalled upload failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// A slow but moving transfer is not cut: only silence counts.
func TestIdleTimeoutSparesSlowTransfers(t *testing.T) {
	srv := httptest.NewServer(quietRegistry())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, _ := New(Options{DockerConfig: filepath.Join(t.TempDir(), "config.json"), IdleTimeout: 200 * time.Millisecond})
	ref, _ := reference.Parse(host + "/slow/blob:v1")
	repo, _ := c.Repository(context.Background(), ref)
	blob := []byte(strings.Repeat("x", 1<<20))
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := repo.Push(context.Background(), desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	rc, err := repo.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := rc.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
		time.Sleep(20 * time.Millisecond) // 16 reads of 64 KiB: ~0.3 s in all, above the idle timeout
	}
	if total != len(blob) {
		t.Fatalf("read %d bytes", total)
	}
}
