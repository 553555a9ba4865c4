package regclient

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/pkg/reference"
)

// blobFaults sits in front of a registry and breaks blob GETs as a test
// says, recording each one ("GET" or "GET bytes=N-M").
type blobFaults struct {
	next http.Handler
	mu   sync.Mutex
	gets []string
	// cut, when set, returns how many body bytes the n-th GET (from 0)
	// sends before the connection drops; negative sends it whole.
	cut func(n int) int
	// ignoreRange answers Range requests with the whole blob (200).
	ignoreRange bool
}

func (f *blobFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
		f.next.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	n := len(f.gets)
	line := "GET"
	if rg := r.Header.Get("Range"); rg != "" {
		line += " " + strings.TrimPrefix(rg, "bytes=")
	}
	f.gets = append(f.gets, line)
	f.mu.Unlock()
	if f.ignoreRange {
		r.Header.Del("Range")
	}
	limit := -1
	if f.cut != nil {
		limit = f.cut(n)
	}
	if limit < 0 {
		f.next.ServeHTTP(w, r)
		return
	}
	f.next.ServeHTTP(&cutWriter{ResponseWriter: w, left: limit}, r)
}

func (f *blobFaults) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.gets...)
}

// cutWriter drops the connection after left body bytes.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) >= c.left {
		c.ResponseWriter.Write(p[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

// blobRig is a registry holding one random blob of size bytes.
func blobRig(t *testing.T, size int, maxRetry int) (*blobFaults, *Repository, ocispec.Descriptor, []byte) {
	t.Helper()
	f := &blobFaults{next: quietRegistry()}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Options{DockerConfig: filepath.Join(t.TempDir(), "config.json"), MaxRetry: maxRetry})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reference.Parse(strings.TrimPrefix(srv.URL, "http://") + "/blob/rig:v1")
	repo, err := c.Repository(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, size)
	rand.Read(blob)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(size)}
	if err := repo.Push(t.Context(), desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	return f, repo, desc, blob
}

// The one pull path: a blob whose body breaks resumes where it broke with
// a Range request (or, from a registry that ignores Range, skips what it
// has), a seek before the first read asks only for the rest, and a
// registry that keeps breaking without progress is given up on.
func TestOpenBlobResumes(t *testing.T) {
	const size = 3 << 20
	t.Run("cut mid-body resumes with Range", func(t *testing.T) {
		f, repo, desc, blob := blobRig(t, size, 3)
		f.cut = func(n int) int {
			if n == 0 {
				return 1 << 20
			}
			return -1
		}
		got, err := io.ReadAll(repo.OpenBlob(t.Context(), desc))
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("read %d bytes, err %v; want the whole blob", len(got), err)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[0] != "GET" || !strings.HasSuffix(reqs[1], fmt.Sprintf("-%d", size-1)) {
			t.Fatalf("requests %v: want one GET, then one Range from where it broke", reqs)
		}
		start, _ := strconv.Atoi(strings.Split(strings.TrimPrefix(reqs[1], "GET "), "-")[0])
		if start <= 0 || start > 1<<20 {
			t.Errorf("resumed at %d, want where the first body stopped (≤ 1 MiB)", start)
		}
	})
	t.Run("a registry ignoring Range", func(t *testing.T) {
		f, repo, desc, blob := blobRig(t, size, 3)
		f.ignoreRange = true
		f.cut = func(n int) int {
			if n == 0 {
				return 1 << 20
			}
			return -1
		}
		got, err := io.ReadAll(repo.OpenBlob(t.Context(), desc))
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("read %d bytes, err %v; want the whole blob", len(got), err)
		}
	})
	t.Run("seek first: only the rest is asked for", func(t *testing.T) {
		f, repo, desc, blob := blobRig(t, size, 3)
		rc := repo.OpenBlob(t.Context(), desc)
		defer rc.Close()
		if _, err := rc.Seek(size-100, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, blob[size-100:]) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
		if reqs := f.requests(); len(reqs) != 1 || reqs[0] != fmt.Sprintf("GET %d-%d", size-100, size-1) {
			t.Errorf("requests %v: want one Range request", reqs)
		}
	})
	t.Run("no progress: gives up after MaxRetry", func(t *testing.T) {
		f, repo, desc, _ := blobRig(t, size, 2)
		f.cut = func(int) int { return 1000 }
		_, err := io.ReadAll(repo.OpenBlob(t.Context(), desc))
		if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.requests()); n != 3 {
			t.Errorf("%d requests, want 3 (the first and two retries)", n)
		}
	})
	t.Run("missing blob: NotFoundError", func(t *testing.T) {
		_, repo, desc, _ := blobRig(t, 10, 1)
		desc.Digest = digest.FromString("nope")
		_, err := io.ReadAll(repo.OpenBlob(t.Context(), desc))
		var nf *NotFoundError
		if !errors.As(err, &nf) || !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), "blob unknown") {
			t.Fatalf("err = %v, want a NotFoundError wrapping errdef.ErrNotFound", err)
		}
	})
}
