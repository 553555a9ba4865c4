package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Compression is how a layer's tar is compressed.
type Compression int

// Compressions a layer may have.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// Docker's layer media types (the OCI ones are ocispec.MediaTypeImageLayer*).
const (
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ErrUnknownLayerType marks a layer whose media type names no tar, tar+gzip
// or tar+zstd layer: its bytes are never guessed at.
var ErrUnknownLayerType = errors.New("not a tar, tar+gzip or tar+zstd layer")

// layerTypePrefixes are the families of layer media types: OCI
// ("application/vnd.oci.image.layer.v1.tar+gzip", also nondistributable) and
// Docker ("application/vnd.docker.image.rootfs.diff.tar.gzip", also foreign).
var layerTypePrefixes = []string{"application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs."}

// LayerCompression returns the compression a layer media type names: OCI
// "…tar", "…tar+gzip", "…tar+zstd", Docker "…tar", "…tar.gzip", "…tar.zstd"
// (containerd's name for zstd Docker layers). Anything else is
// ErrUnknownLayerType.
func LayerCompression(mediaType string) (Compression, error) {
	mt, _, _ := strings.Cut(mediaType, ";") // parameters never change the encoding
	mt = strings.TrimSpace(mt)
	known := false
	for _, p := range layerTypePrefixes {
		known = known || strings.HasPrefix(mt, p)
	}
	if known {
		switch {
		case strings.HasSuffix(mt, ".tar"):
			return Uncompressed, nil
		case strings.HasSuffix(mt, ".tar+gzip"), strings.HasSuffix(mt, ".tar.gzip"):
			return Gzip, nil
		case strings.HasSuffix(mt, ".tar+zstd"), strings.HasSuffix(mt, ".tar.zstd"):
			return Zstd, nil
		}
	}
	return 0, fmt.Errorf("layer media type %q: %w", mediaType, ErrUnknownLayerType)
}

// OpenLayer returns the uncompressed tar stream of the layer desc, decoded
// by its media type (see LayerCompression), as go-containerregistry's
// Layer.Uncompressed does. The compressed bytes are checked against desc's
// size and digest: the read that reaches the end of the tar stream drains
// what is left of the blob and fails (content.ErrMismatchedDigest,
// content.ErrTrailingData, …) if the blob is not what desc says. Errors of
// Read do not name the layer; errors of OpenLayer do. Callers that
// stop at the tar's end-of-archive marker must read on to io.EOF to get that
// check; Walk does.
func OpenLayer(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) (io.ReadCloser, error) {
	comp, err := LayerCompression(desc.MediaType)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	vr := content.NewVerifyReader(rc, desc)
	l := &layerReader{rc: rc, vr: vr, comp: comp, closeDec: func() {}}
	switch comp {
	case Uncompressed:
		l.dec = vr
	case Gzip:
		zr, err := gzip.NewReader(vr)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("layer %s: gunzip: %w", desc.Digest, err)
		}
		l.dec, l.closeDec = zr, func() { zr.Close() }
	case Zstd:
		zr, err := zstd.NewReader(vr, zstd.WithDecoderConcurrency(2))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("layer %s: zstd: %w", desc.Digest, err)
		}
		l.dec, l.closeDec = zr, zr.Close
	}
	return l, nil
}

// layerReader decompresses a fetched layer and verifies the blob at the end.
type layerReader struct {
	rc       io.ReadCloser
	vr       *content.VerifyReader
	dec      io.Reader
	closeDec func()
	comp     Compression
	err      error // sticky: the end-of-stream verdict
}

func (l *layerReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.dec.Read(p)
	switch {
	case err == io.EOF:
		l.err = l.verify()
		if l.err == nil {
			l.err = io.EOF
		}
		return n, l.err
	case err != nil:
		l.err = fmt.Errorf("decode %s: %w", l.comp, err)
		return n, l.err
	}
	return n, nil
}

// verify reads what the decoder left of the blob (gzip's trailer is read,
// a tar's padding may not be) and checks size and digest.
func (l *layerReader) verify() error {
	if _, err := io.Copy(io.Discard, l.vr); err != nil {
		return err
	}
	return l.vr.Verify()
}

func (l *layerReader) Close() error {
	l.closeDec()
	return l.rc.Close()
}
