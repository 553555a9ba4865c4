package regserver_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
)

// benchBlobSize is the blob the throughput benchmark pushes and pulls.
var benchBlobSize = envInt("REGSERVER_BENCH_MB", 200) << 20

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchBlob writes a random blob of benchBlobSize into dir.
func benchBlob(b *testing.B, dir string) (string, digest.Digest) {
	b.Helper()
	path := filepath.Join(dir, "blob")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(benchBlobSize)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, digest.NewDigest(digest.SHA256, h)
}

// pushBlob streams the file the way crane and go-containerregistry do:
// POST to open an upload, one PATCH with the whole body, PUT with the digest.
func pushBlob(b *testing.B, client *http.Client, addr, repo, path string, dgst digest.Digest) {
	b.Helper()
	base := "http://" + addr
	resp, err := client.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("POST upload: %s", resp.Status)
	}
	loc := resolve(b, base, resp.Header.Get("Location"))
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	req, _ := http.NewRequest(http.MethodPatch, loc, f)
	req.ContentLength = int64(benchBlobSize)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("PATCH upload: %s", resp.Status)
	}
	u, err := url.Parse(resolve(b, base, resp.Header.Get("Location")))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", dgst.String())
	u.RawQuery = q.Encode()
	req, _ = http.NewRequest(http.MethodPut, u.String(), nil)
	resp, err = client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("PUT upload: %s", resp.Status)
	}
}

func pullBlob(b *testing.B, client *http.Client, addr, repo string, dgst digest.Digest) {
	b.Helper()
	resp, err := client.Get("http://" + addr + "/v2/" + repo + "/blobs/" + dgst.String())
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || n != int64(benchBlobSize) {
		b.Fatalf("GET blob: %s, %d bytes, %v", resp.Status, n, err)
	}
}

func resolve(b *testing.B, base, loc string) string {
	b.Helper()
	bu, _ := url.Parse(base)
	u, err := bu.Parse(loc)
	if err != nil {
		b.Fatalf("Location %q: %v", loc, err)
	}
	return u.String()
}

// BenchmarkBlobThroughput pushes and pulls a 200 MB blob (REGSERVER_BENCH_MB
// to change) against this package's registry (in-process) and the upstream
// distribution registry binary (a child process), each on its own temporary
// root; REGSERVER_BENCH_ADDR adds a registry already running there. MB/s is
// the figure to compare.
//
//	go test -run '^$' -bench BlobThroughput -benchtime 3x ./pkg/regserver
func BenchmarkBlobThroughput(b *testing.B) {
	// The parent runs once; its temporary directory outlives the sub-benchmarks.
	path, dgst := benchBlob(b, b.TempDir())
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"regserver", func(b *testing.B) string { return start(b, b.TempDir(), false).Addr() }},
		{"distribution", func(b *testing.B) string { return startDistribution(b, b.TempDir(), false).addr }},
	}
	if addr := os.Getenv("REGSERVER_BENCH_ADDR"); addr != "" {
		// Any running registry, e.g. `cnstack registry serve` as its own process.
		servers = append(servers, struct {
			name  string
			start func(b *testing.B) string
		}{"external", func(*testing.B) string { return addr }})
	}
	for _, srv := range servers {
		b.Run(srv.name+"/push", func(b *testing.B) {
			addr := srv.start(b)
			client := &http.Client{Transport: &http.Transport{Proxy: nil}}
			b.SetBytes(int64(benchBlobSize))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pushBlob(b, client, addr, fmt.Sprintf("bench/push%d", i), path, dgst)
			}
		})
		b.Run(srv.name+"/pull", func(b *testing.B) {
			addr := srv.start(b)
			client := &http.Client{Transport: &http.Transport{Proxy: nil}}
			pushBlob(b, client, addr, "bench/pull", path, dgst)
			b.SetBytes(int64(benchBlobSize))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pullBlob(b, client, addr, "bench/pull", dgst)
			}
		})
	}
}
