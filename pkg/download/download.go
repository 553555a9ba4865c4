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
	"errors"
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
	p, _, err := Store(ctx, cacheDir, resp.Body, want, 0)
	var mm *MismatchError
	if errors.As(err, &mm) {
		return "", fmt.Errorf("download %s: checksum mismatch: got %s, the Kubefile pins %s", src.URL, mm.Got, mm.Want)
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w", src.URL, err)
	}
	return p, nil
}

// MismatchError is Store's refusal of content that is not what was pinned.
type MismatchError struct{ Got, Want digest.Digest }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: got %s, want %s", e.Got, e.Want)
}

// Store streams r into cacheDir under its sha256 and returns its path and
// digest. Content that is not want (when set) or longer than limit (when
// positive) is refused and not kept; a partial write leaves nothing behind.
func Store(ctx context.Context, cacheDir string, r io.Reader, want digest.Digest, limit int64) (string, digest.Digest, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp(cacheDir, ".dl-*")
	if err != nil {
		return "", "", err
	}
	defer os.Remove(f.Name())
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	h := sha256.New()
	n, err := ctxio.Copy(ctx, io.MultiWriter(f, h), r, nil)
	if err == nil && limit > 0 && n > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", err
	}
	got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	if want != "" && got != want {
		return "", "", &MismatchError{Got: got, Want: want}
	}
	final := Path(cacheDir, got)
	if err := os.Rename(f.Name(), final); err != nil {
		return "", "", err
	}
	return final, got, nil
}
