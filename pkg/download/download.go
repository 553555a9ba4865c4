// Package download fetches the remote sources a Kubefile names (ADD and APP
// with an http or https URL, pinned by a sha256 checksum) into a cache
// directory shared by every build and by the views `cnstack lock` and
// `cnstack images why` scan. A file is fetched once, checked against its
// pin while it streams, and kept under its checksum; content that does not
// match the pin is refused and not kept.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/internal/ctxio"
	"github.com/cnstack/cnstack/pkg/kubefile"
)

// Path is where the source pinned by d is kept in cacheDir.
func Path(cacheDir string, d digest.Digest) string {
	return filepath.Join(cacheDir, d.Encoded())
}

// Fetch returns the path in cacheDir of the remote source src, fetching it
// first when the cache lacks it. A nil client is http.DefaultClient.
func Fetch(ctx context.Context, client *http.Client, cacheDir string, src kubefile.Source) (string, error) {
	want, err := digest.Parse(src.Checksum)
	if err != nil || want.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%s: %s must be pinned with a sha256 checksum", src.Pos, src.URL)
	}
	final := Path(cacheDir, want)
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
	if _, err := ctxio.Copy(ctx, io.MultiWriter(f, h), resp.Body, nil); err != nil {
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
