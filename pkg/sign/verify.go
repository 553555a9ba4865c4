package sign

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"

	cnoci "github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Key is the trusted public key (see LoadPublicKey).
	Key signature.Verifier
	// Attestations also requires, for every subject, a verified attestation
	// of each of PredicateTypes.
	Attestations bool
	// PredicateTypes required with Attestations (default SPDX and SLSA v1).
	PredicateTypes []string
	// RootOnly checks only the image's root manifest (its index, for a
	// multi-platform image): for statements about the whole image, which
	// AttestPredicate makes.
	RootOnly bool
}

// Check is the outcome of one verification: a subject's signatures, or its
// attestations of one predicate type.
type Check struct {
	Kind          string // "signature" or "attestation"
	PredicateType string // attestations only
	Subject       Subject
	Ref           string // the .sig or .att reference read
	Verified      int    // signatures (attestations) the key verified
	Total         int    // signatures (attestations) found
	Err           error  // nil when at least one verified
}

// OK reports whether the check passed.
func (c Check) OK() bool { return c.Err == nil }

func (c Check) String() string {
	status := "OK  "
	if c.Err != nil {
		status = "FAIL"
	}
	what := c.Kind
	if c.PredicateType != "" {
		what += " " + c.PredicateType
	}
	s := fmt.Sprintf("%s %-12s %s  %s", status, c.Subject.Platform, c.Subject.Descriptor.Digest, what)
	if c.Subject.Missing {
		s += " (manifest not present here)"
	}
	if c.Err != nil {
		return s + ": " + c.Err.Error()
	}
	noun := "signatures"
	if c.Kind != "signature" {
		noun = "attestations"
	}
	return fmt.Sprintf("%s: %d of %d %s verified", s, c.Verified, c.Total, noun)
}

// Report is every check Verify made.
type Report struct {
	Image  Image
	Checks []Check
}

// Failed returns the checks that did not pass.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Err != nil {
			out = append(out, c)
		}
	}
	return out
}

// ErrVerification is wrapped by Verify's error when a check failed (as
// opposed to the target being unreadable).
var ErrVerification = errors.New("verification failed")

// Verify checks, with only src (no network beyond it, no transparency log),
// that the image's root and every platform manifest carry a cosign
// signature by opts.Key over their digest, and with opts.Attestations a
// DSSE attestation of each predicate type whose subject is that digest.
// It works on any target: the store, a registry repository, an OCI layout.
// The report lists every check; the error names the first failed manifest.
func Verify(ctx context.Context, src oras.ReadOnlyTarget, img Image, opts VerifyOptions) (*Report, error) {
	if opts.Key == nil {
		return nil, errors.New("verify: a public key is required")
	}
	rep := &Report{Image: img}
	subjects, err := Subjects(ctx, src, img)
	if err != nil {
		return rep, fmt.Errorf("verify %s@%s: %w", img.Name, img.Descriptor.Digest, err)
	}
	types := opts.PredicateTypes
	if len(types) == 0 {
		types = []string{PredicateSPDX, PredicateSLSA1}
	}
	if opts.RootOnly {
		subjects = subjects[:1]
	}
	for _, s := range subjects {
		c, err := verifySignatures(ctx, src, img, s, opts.Key)
		if err != nil {
			return rep, err
		}
		rep.Checks = append(rep.Checks, c)
		if opts.Attestations {
			cs, err := verifyAttestations(ctx, src, img, s, opts.Key, types)
			if err != nil {
				return rep, err
			}
			rep.Checks = append(rep.Checks, cs...)
		}
	}
	if failed := rep.Failed(); len(failed) > 0 {
		f := failed[0]
		return rep, fmt.Errorf("%w: %s %s of %s (%s): %v (%d of %d checks failed)", ErrVerification, f.Kind, strings.TrimSpace(f.PredicateType),
			img.Name, f.Subject, f.Err, len(failed), len(rep.Checks))
	}
	return rep, nil
}

func checkOpts(key signature.Verifier, claims func(oci.Signature, v1.Hash, map[string]any) error) *cosign.CheckOpts {
	return &cosign.CheckOpts{SigVerifier: key, IgnoreTlog: true, ClaimVerifier: claims}
}

func verifySignatures(ctx context.Context, src oras.ReadOnlyTarget, img Image, s Subject, key signature.Verifier) (Check, error) {
	ref := img.Ref(cnoci.SignatureTag(s.Descriptor.Digest))
	c := Check{Kind: "signature", Subject: s, Ref: ref}
	h, err := v1.NewHash(s.Descriptor.Digest.String())
	if err != nil {
		return c, err
	}
	sigs, _, found, err := readSigned(ctx, src, ref)
	if err != nil {
		// A malformed or unreadable signature image fails the check, naming it.
		c.Err = err
		return c, nil
	}
	if !found || len(sigs) == 0 {
		c.Err = fmt.Errorf("not signed (no %s)", ref)
		return c, nil
	}
	c.Total = len(sigs)
	var errs []string
	for _, sig := range sigs {
		if _, err := cosign.VerifyImageSignature(ctx, sig, h, checkOpts(key, cosign.SimpleClaimVerifier)); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		c.Verified++
	}
	if c.Verified == 0 {
		c.Err = fmt.Errorf("no signature verifies with this key (%d checked: %s)", c.Total, summarize(errs))
	}
	return c, nil
}

func verifyAttestations(ctx context.Context, src oras.ReadOnlyTarget, img Image, s Subject, key signature.Verifier, types []string) ([]Check, error) {
	ref := img.Ref(cnoci.AttestationTag(s.Descriptor.Digest))
	h, err := v1.NewHash(s.Descriptor.Digest.String())
	if err != nil {
		return nil, err
	}
	atts, _, found, readErr := readSigned(ctx, src, ref)
	verified := map[string]int{}
	var errs []string
	for _, att := range atts {
		_, pt, err := verifyAttestation(ctx, att, h, key)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		verified[pt]++
	}
	var out []Check
	for _, pt := range types {
		c := Check{Kind: "attestation", PredicateType: pt, Subject: s, Ref: ref, Total: len(atts), Verified: verified[pt]}
		switch {
		case readErr != nil:
			c.Err = readErr
		case !found || len(atts) == 0:
			c.Err = fmt.Errorf("no attestations (no %s)", ref)
		case c.Verified == 0 && len(errs) > 0:
			c.Err = fmt.Errorf("no %s attestation verifies with this key (%d checked: %s)", pt, c.Total, summarize(errs))
		case c.Verified == 0:
			c.Err = fmt.Errorf("no %s attestation among %d verified ones", pt, c.Total)
		}
		out = append(out, c)
	}
	return out, nil
}

// verifyAttestation checks a DSSE attestation's signature with key and that
// its in-toto subject is h; it returns the statement and its predicate type.
func verifyAttestation(ctx context.Context, att oci.Signature, h v1.Hash, key signature.Verifier) ([]byte, string, error) {
	if _, err := cosign.VerifyBlobAttestation(ctx, att, h, checkOpts(key, cosign.IntotoSubjectClaimVerifier)); err != nil {
		return nil, "", err
	}
	statement, err := envelopeStatement(att)
	if err != nil {
		return nil, "", err
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(statement, &st); err != nil {
		return nil, "", fmt.Errorf("in-toto statement: %w", err)
	}
	return statement, st.PredicateType, nil
}

func envelopeStatement(att oci.Signature) ([]byte, error) {
	p, err := att.Payload()
	if err != nil {
		return nil, err
	}
	var env dsse.Envelope
	if err := json.Unmarshal(p, &env); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE payload: %w", err)
	}
	return b, nil
}

// summarize joins distinct error messages.
func summarize(errs []string) string {
	seen := map[string]bool{}
	var out []string
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// ErrNoAttestation is returned by FindPredicate when the subject has no
// (verified, if a key is given) attestation of the predicate type.
var ErrNoAttestation = errors.New("no attestation")

// FindPredicate returns the predicate of subject d's attestation of
// predicateType in img's target. With a key only verified attestations
// count; without one the first of that type is returned unverified.
func FindPredicate(ctx context.Context, src oras.ReadOnlyTarget, img Image, d digest.Digest, predicateType string, key signature.Verifier) ([]byte, error) {
	ref := img.Ref(cnoci.AttestationTag(d))
	atts, _, _, err := readSigned(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d.String())
	if err != nil {
		return nil, err
	}
	for _, att := range atts {
		var statement []byte
		if key != nil {
			st, pt, err := verifyAttestation(ctx, att, h, key)
			if err != nil || pt != predicateType {
				continue
			}
			statement = st
		} else {
			ann, err := att.Annotations()
			if err != nil || ann["predicateType"] != predicateType {
				continue
			}
			if statement, err = envelopeStatement(att); err != nil {
				continue
			}
		}
		var st struct {
			PredicateType string          `json:"predicateType"`
			Predicate     json.RawMessage `json:"predicate"`
		}
		if err := json.Unmarshal(statement, &st); err != nil || st.PredicateType != predicateType {
			continue
		}
		return st.Predicate, nil
	}
	return nil, fmt.Errorf("%s of %s: %w (%s)", predicateType, d, ErrNoAttestation, ref)
}

// IsNotFound reports whether err means a missing image or tag.
func IsNotFound(err error) bool { return errors.Is(err, errdef.ErrNotFound) }

// VerifyNamed verifies the image ref names, whose root is root, in a target
// with name:tag tags (the store, a bundle): its signatures, and its
// attestations when src holds any for root (an image signed without
// --attest has none to check). It returns one line per check, for a
// report, and Verify's error.
func VerifyNamed(ctx context.Context, src oras.ReadOnlyTarget, ref string, root ocispec.Descriptor, key Verifier) ([]string, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	img := Image{Name: r.Name(), Tag: r.Tag, Descriptor: root}
	_, attErr := src.Resolve(ctx, img.Ref(cnoci.AttestationTag(root.Digest)))
	rep, err := Verify(ctx, src, img, VerifyOptions{Key: key, Attestations: attErr == nil})
	var lines []string
	if rep != nil {
		for _, c := range rep.Checks {
			lines = append(lines, c.String())
		}
	}
	return lines, err
}
