package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/kubefile"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// download fetches a remote source into the build cache.
func (b *Builder) download(ctx context.Context, src kubefile.Source) (string, error) {
	return Download(ctx, b.HTTP, b.Cache.DownloadDir(), src)
}

// Download fetches a remote source pinned by checksum into cacheDir once
// (named by its sha256, so every user of the cache shares it). Content that
// does not match the pin is refused and not kept. A nil client is
// http.DefaultClient.
func Download(ctx context.Context, client *http.Client, cacheDir string, src kubefile.Source) (string, error) {
	want, err := digest.Parse(src.Checksum)
	if err != nil || want.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%s: %s must be pinned with a sha256 checksum", src.Pos, src.URL)
	}
	final := filepath.Join(cacheDir, want.Encoded())
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", src.URL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", src.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: %s", src.URL, resp.Status)
	}
	f, err := os.CreateTemp(filepath.Dir(final), ".dl-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		return "", fmt.Errorf("download %s: %w", src.URL, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	if got != want {
		return "", fmt.Errorf("download %s: checksum mismatch: got %s, the Kubefile pins %s", src.URL, got, want)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return "", err
	}
	return final, nil
}
