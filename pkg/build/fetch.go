package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/safearchive"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// download fetches a remote source pinned by checksum into the cache once.
// Content that does not match the pin is refused and not kept.
func (b *Builder) download(ctx context.Context, src kubefile.Source) (string, error) {
	want, err := digest.Parse(src.Checksum)
	if err != nil || want.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%s: %s must be pinned with a sha256 checksum", src.Pos, src.URL)
	}
	final := b.Cache.DownloadPath(want)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	client := b.HTTP
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

// unpackIfArchive unpacks a local tar (plain, gzip or bzip2) for ADD into a
// temporary directory, refusing entries that would escape it. ok is false
// when the file is not an archive (ADD then copies it as is).
func unpackIfArchive(ctx context.Context, path string) (dir string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return "", false, err
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(512)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", false, err
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(head, []byte("BZh")):
		r = bzip2.NewReader(br)
	case isTar(head):
	default:
		if bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
			return "", false, fmt.Errorf("xz archives are not supported by ADD yet; unpack it into the build context and COPY the directory")
		}
		return "", false, nil
	}
	dir, err = os.MkdirTemp("", "cnstack-add-")
	if err != nil {
		return "", false, err
	}
	if err := safearchive.Extract(ctx, tar.NewReader(r), dir, safearchive.Limits{}); err != nil {
		os.RemoveAll(dir)
		return "", false, err
	}
	return dir, true, nil
}

func isTar(head []byte) bool {
	return len(head) >= 262 && strings.HasPrefix(string(head[257:262]), "ustar")
}
