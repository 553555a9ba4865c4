package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// maxPayloadSize bounds one signature or attestation layer read whole: an
// SBOM of a large image is a few MiB.
const maxPayloadSize = 64 << 20

// readSigned reads the cosign signature image tagged ref (a .sig or .att
// tag): one oci.Signature per layer. A missing tag is not an error: it
// returns no signatures and found false.
func readSigned(ctx context.Context, src oras.ReadOnlyTarget, ref string) (sigs []oci.Signature, desc ocispec.Descriptor, found bool, err error) {
	desc, err = src.Resolve(ctx, ref)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, desc, false, nil
	}
	if err != nil {
		return nil, desc, false, fmt.Errorf("look up %s: %w", ref, err)
	}
	raw, err := fetchManifest(ctx, src, desc)
	if err != nil {
		return nil, desc, true, fmt.Errorf("%s: %w", ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, desc, true, fmt.Errorf("%s: manifest %s: %w", ref, desc.Digest, err)
	}
	for i, l := range m.Layers {
		if l.Size > maxPayloadSize {
			return nil, desc, true, fmt.Errorf("%s: layer %d (%s) is %d bytes, too big for a signature", ref, i+1, l.Digest, l.Size)
		}
		payload, err := content.FetchAll(ctx, src, l)
		if err != nil {
			return nil, desc, true, fmt.Errorf("%s: read layer %d (%s): %w", ref, i+1, l.Digest, err)
		}
		sig, err := signatureFromLayer(l, payload)
		if err != nil {
			return nil, desc, true, fmt.Errorf("%s: layer %d: %w", ref, i+1, err)
		}
		sigs = append(sigs, sig)
	}
	return sigs, desc, true, nil
}

// signatureFromLayer rebuilds cosign's view of one layer: payload, base64
// signature annotation, media type, and every other annotation kept as is
// (certificates, bundles, predicateType), so rewriting preserves them.
func signatureFromLayer(l ocispec.Descriptor, payload []byte) (oci.Signature, error) {
	rest := map[string]string{}
	for k, v := range l.Annotations {
		if k != static.SignatureAnnotationKey {
			rest[k] = v
		}
	}
	opts := []static.Option{static.WithLayerMediaType(types.MediaType(l.MediaType)), static.WithAnnotations(rest)}
	if cert := rest[static.CertificateAnnotationKey]; cert != "" {
		opts = append(opts, static.WithCertChain([]byte(cert), []byte(rest[static.ChainAnnotationKey])))
	}
	return static.NewSignature(payload, l.Annotations[static.SignatureAnnotationKey], opts...)
}

// writeSigned writes sigs as one cosign signature image (built with cosign's
// own empty image and append, so the bytes are what cosign writes) and tags
// it ref in dst.
func writeSigned(ctx context.Context, dst oras.Target, ref string, sigs []oci.Signature) (ocispec.Descriptor, error) {
	img, err := mutate.AppendSignatures(empty.Signatures(), false, sigs...)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assemble %s: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		size, err := l.Size()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		mt, err := l.MediaType()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		err = pushIfMissing(ctx, dst, ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: size}, rc)
		rc.Close()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("write %s layer %s: %w", ref, d, err)
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: string(manifest.Config.MediaType), Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := pushIfMissing(ctx, dst, cfgDesc, bytes.NewReader(cfg)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write %s config: %w", ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := oras.TagBytes(ctx, dst, string(mt), raw, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write %s: %w", ref, err)
	}
	return desc, nil
}

func pushIfMissing(ctx context.Context, dst oras.Target, desc ocispec.Descriptor, r io.Reader) error {
	ok, err := dst.Exists(ctx, desc)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	err = dst.Push(ctx, desc, r)
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}
