package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
	"oras.land/oras-go/v2"

	cnoci "github.com/cnstack/cnstack/pkg/oci"
)

// Result says what signing did for one subject.
type Result struct {
	Subject Subject
	// Kind is "signature" or the attestation's predicate type.
	Kind string
	// Ref is the .sig or .att reference written.
	Ref string
	// Manifest is the signature image now tagged Ref.
	Manifest ocispec.Descriptor
	// Added is false when an identical signature by the same key was
	// already there (nothing was written).
	Added bool
	// Total is the number of signatures (or attestations) under Ref now.
	Total int
}

func (r Result) String() string {
	what := "added"
	if !r.Added {
		what = "already present"
	}
	return fmt.Sprintf("%-11s %-12s %s: %s (%d under %s)", kindLabel(r.Kind), r.Subject.Platform, r.Subject.Descriptor.Digest, what, r.Total, r.Ref)
}

// Sign signs the image's root and, for an index, every platform manifest,
// with cosign's simple-signing payload. Each signature is appended to the
// subject's sha256-<hex>.sig image in dst (created if missing); a
// signature by the same key over the same payload that is already there is
// kept and not duplicated. Nothing goes to a transparency log.
func Sign(ctx context.Context, dst oras.Target, img Image, signer signature.SignerVerifier) ([]Result, error) {
	subjects, err := Subjects(ctx, dst, img)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", img.Name, err)
	}
	var out []Result
	for _, s := range subjects {
		r, err := signOne(ctx, dst, img, s, signer)
		if err != nil {
			return out, fmt.Errorf("sign %s %s: %w", img.Name, s, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func signOne(ctx context.Context, dst oras.Target, img Image, s Subject, signer signature.SignerVerifier) (Result, error) {
	id, err := img.identity(s.Descriptor.Digest)
	if err != nil {
		return Result{}, err
	}
	payload, err := (&sigpayload.Cosign{Image: id}).MarshalJSON()
	if err != nil {
		return Result{}, fmt.Errorf("payload: %w", err)
	}
	ref := img.Ref(cnoci.SignatureTag(s.Descriptor.Digest))
	res := Result{Subject: s, Kind: "signature", Ref: ref}
	existing, desc, _, err := readSigned(ctx, dst, ref)
	if err != nil {
		return res, err
	}
	if hasSignature(existing, payload, signer) {
		res.Manifest, res.Total = desc, len(existing)
		return res, nil
	}
	sig, err := signer.SignMessage(bytes.NewReader(payload), options.WithContext(ctx))
	if err != nil {
		return res, fmt.Errorf("sign payload: %w", err)
	}
	ociSig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return res, err
	}
	all := append(existing, ociSig)
	if res.Manifest, err = writeSigned(ctx, dst, ref, all); err != nil {
		return res, err
	}
	res.Added, res.Total = true, len(all)
	return res, nil
}

// hasSignature reports whether sigs holds a simple-signing signature over
// exactly payload that v verifies: re-signing with the same key is a no-op,
// as with cosign's duplicate detector.
func hasSignature(sigs []oci.Signature, payload []byte, v signature.Verifier) bool {
	for _, s := range sigs {
		mt, err := s.MediaType()
		if err != nil || mt != ctypes.SimpleSigningMediaType {
			continue
		}
		p, err := s.Payload()
		if err != nil || !bytes.Equal(p, payload) {
			continue
		}
		raw, err := s.Signature()
		if err != nil || len(raw) == 0 {
			continue
		}
		if v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(p)) == nil {
			return true
		}
	}
	return false
}

func kindLabel(kind string) string {
	if kind == "signature" {
		return "signature"
	}
	return "attestation"
}
