package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
)

func TestLayerCompression(t *testing.T) {
	for _, tc := range []struct {
		mediaType string
		want      Compression
		err       bool
	}{
		{ocispec.MediaTypeImageLayer, Uncompressed, false},
		{ocispec.MediaTypeImageLayerGzip, Gzip, false},
		{ocispec.MediaTypeImageLayerZstd, Zstd, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Gzip, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Zstd, false},
		{MediaTypeDockerLayer, Gzip, false},
		{MediaTypeDockerForeignLayer, Gzip, false},
		{"application/vnd.docker.image.rootfs.diff.tar", Uncompressed, false},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", Zstd, false},
		{ocispec.MediaTypeImageLayerGzip + "; charset=binary", Gzip, false},
		{"", 0, true},
		{"application/octet-stream", 0, true},
		{"application/vnd.oci.image.layer.v1.tar+bzip2", 0, true},
		{ocispec.MediaTypeImageConfig, 0, true},
		{"application/x-tar+zstd", 0, true},
	} {
		got, err := LayerCompression(tc.mediaType)
		if tc.err {
			if !errors.Is(err, ErrUnknownLayerType) || !strings.Contains(err.Error(), "not a tar, tar+gzip or tar+zstd layer") {
				t.Errorf("LayerCompression(%q) = %v, %v; want ErrUnknownLayerType", tc.mediaType, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LayerCompression(%q) = %v, %v; want %v", tc.mediaType, got, err, tc.want)
		}
	}
}

// entry is one tar entry of a test layer: a file (body), a directory (name
// ending in "/"), a symlink (symlink) or a hard link (hardlink).
type entry struct {
	name, body, symlink, hardlink string
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.symlink != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.symlink
		case e.hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, e.hardlink
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, c Compression, tarBytes []byte) (blob []byte, mediaType string) {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case Uncompressed:
		return tarBytes, ocispec.MediaTypeImageLayer
	case Gzip:
		zw := gzip.NewWriter(&buf)
		zw.Write(tarBytes)
		zw.Close()
		return buf.Bytes(), ocispec.MediaTypeImageLayerGzip
	case Zstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(tarBytes)
		zw.Close()
		return buf.Bytes(), ocispec.MediaTypeImageLayerZstd
	}
	t.Fatalf("compression %v", c)
	return nil, ""
}

// push stores blob in a memory store and returns its descriptor.
func push(t testing.TB, s content.Pusher, mediaType string, blob []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := s.Push(t.Context(), desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	return desc
}

func TestOpenLayerDecodesEveryCompression(t *testing.T) {
	want := tarOf(t, entry{name: "bin/"}, entry{name: "bin/kubectl", body: strings.Repeat("kubectl ", 1000)})
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			s := memory.New()
			blob, mt := compress(t, c, want)
			rc, err := OpenLayer(t.Context(), s, push(t, s, mt, blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s layer decoded to %d bytes, want the %d-byte tar", c, len(got), len(want))
			}
		})
	}
}

// fetcherFunc serves whatever bytes it returns, whatever the descriptor:
// a corrupt store or a lying registry.
type fetcherFunc func() io.ReadCloser

func (f fetcherFunc) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return f(), nil
}

func TestOpenLayerChecksTheDigest(t *testing.T) {
	stored := func(tarBytes []byte) []byte { // gzip without compression: the size depends on the length only
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
		zw.Write(tarBytes)
		zw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		mediaType string
		good, bad []byte
	}{
		{ocispec.MediaTypeImageLayer, tarOf(t, entry{name: "a", body: "a"}), tarOf(t, entry{name: "a", body: "b"})},
		{ocispec.MediaTypeImageLayerGzip, stored(tarOf(t, entry{name: "a", body: "a"})), stored(tarOf(t, entry{name: "a", body: "b"}))},
	} {
		if len(tc.good) != len(tc.bad) {
			t.Fatalf("test layers differ in size (%d, %d); the test wants a same-size forgery", len(tc.good), len(tc.bad))
		}
		desc := ocispec.Descriptor{MediaType: tc.mediaType, Digest: digest.FromBytes(tc.good), Size: int64(len(tc.good))}
		rc, err := OpenLayer(t.Context(), fetcherFunc(func() io.ReadCloser { return io.NopCloser(bytes.NewReader(tc.bad)) }), desc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(rc); !errors.Is(err, content.ErrMismatchedDigest) {
			t.Errorf("reading a forged %s layer: %v, want content.ErrMismatchedDigest", tc.mediaType, err)
		}
		rc.Close()
	}
}

func TestOpenLayerRefusesUnknownMediaType(t *testing.T) {
	s := memory.New()
	desc := push(t, s, "application/octet-stream", tarOf(t, entry{name: "a", body: "a"}))
	if _, err := OpenLayer(t.Context(), s, desc); !errors.Is(err, ErrUnknownLayerType) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("OpenLayer of an octet-stream blob: %v, want ErrUnknownLayerType naming %s", err, desc.Digest)
	}
}
