package sign_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/sign"
)

// TestSBOMPolicy pins where "cnstack sbom" takes its document from: an
// attestation when there is one (verified with a key, which then also
// makes a missing attestation an error), else the document Attest would
// attach; and that both print the same bytes.
func TestSBOMPolicy(t *testing.T) {
	ctx := t.Context()
	st, img, _ := storeImage(t)
	k := newKey(t, "")
	other := newKey(t, "")
	attest := sign.AttestOptions{Tool: "cnstack-test"}

	computed, err := sign.SBOM(ctx, st, img, sign.SBOMOptions{Attest: attest})
	if err != nil {
		t.Fatal(err)
	}
	if computed.Source != sign.SBOMComputed || computed.Subject.Descriptor.Digest != img.Descriptor.Digest {
		t.Fatalf("unsigned image: source %v subject %s, want computed for the root", computed.Source, computed.Subject)
	}
	if !bytes.Contains(computed.Document, []byte(`"spdxVersion"`)) || !bytes.HasSuffix(computed.Document, []byte("\n")) {
		t.Errorf("computed document is not SPDX JSON ending in a newline:\n%.300s", computed.Document)
	}
	if _, err := sign.SBOM(ctx, st, img, sign.SBOMOptions{Key: k.verifier, Attest: attest}); !errors.Is(err, sign.ErrNoAttestation) {
		t.Errorf("key and no attestation: err = %v, want ErrNoAttestation (never a computed document)", err)
	}

	arm, err := sign.SBOM(ctx, st, img, sign.SBOMOptions{Platform: "linux/arm64/", Attest: attest})
	if err != nil {
		t.Fatal(err)
	}
	if arm.Subject.Platform != "linux/arm64" || bytes.Equal(arm.Document, computed.Document) {
		t.Errorf("--platform linux/arm64/: subject %s, want the arm64 manifest's own document", arm.Subject)
	}
	if _, err := sign.SBOM(ctx, st, img, sign.SBOMOptions{Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "has no platform linux/s390x (it has ") {
		t.Errorf("missing platform: err = %v, want one naming the platforms it has", err)
	}

	mustSign(t, st, img, k, true)
	for _, tc := range []struct {
		name string
		opts sign.SBOMOptions
		want sign.SBOMSource
	}{
		{"attested, no key", sign.SBOMOptions{}, sign.SBOMUnverified},
		{"attested, key", sign.SBOMOptions{Key: k.verifier}, sign.SBOMAttested},
		{"attested, --compute", sign.SBOMOptions{Compute: true}, sign.SBOMComputed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Attest = attest
			res, err := sign.SBOM(ctx, st, img, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != tc.want {
				t.Errorf("source %v, want %v", res.Source, tc.want)
			}
			if !bytes.Equal(res.Document, computed.Document) {
				t.Errorf("document differs from the computed one:\n%.300s", res.Document)
			}
		})
	}
	if _, err := sign.SBOM(ctx, st, img, sign.SBOMOptions{Key: other.verifier}); !errors.Is(err, sign.ErrNoAttestation) {
		t.Errorf("attestation by another key: err = %v, want ErrNoAttestation", err)
	}
}

func TestPredicateType(t *testing.T) {
	for in, want := range map[string]string{
		"spdxjson":                   sign.PredicateSPDX,
		"spdx":                       sign.PredicateSPDX,
		"slsaprovenance1":            sign.PredicateSLSA1,
		"https://example.com/pred/1": "https://example.com/pred/1",
	} {
		if got := sign.PredicateType(in); got != want {
			t.Errorf("PredicateType(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerifyNamed pins the bundle check's policy: signatures always,
// attestations only when the target holds some for the image.
func TestVerifyNamed(t *testing.T) {
	ctx := t.Context()
	st, img, _ := storeImage(t)
	k := newKey(t, "")
	if _, err := sign.VerifyNamed(ctx, st, imageRef, img.Descriptor, k.verifier); !errors.Is(err, sign.ErrVerification) {
		t.Fatalf("unsigned: err = %v, want ErrVerification", err)
	}
	mustSign(t, st, img, k, false)
	lines, err := sign.VerifyNamed(ctx, st, imageRef, img.Descriptor, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if strings.Contains(l, "attestation") {
			t.Errorf("signed without attestations, yet checked one: %s", l)
		}
	}
	signatures := len(lines)
	if _, err := sign.Attest(ctx, st, img, k.signer, sign.AttestOptions{Tool: "cnstack-test"}); err != nil {
		t.Fatal(err)
	}
	lines, err = sign.VerifyNamed(ctx, st, imageRef, img.Descriptor, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) <= signatures {
		t.Errorf("attested: %d checks, want more than the %d signature checks:\n%s", len(lines), signatures, strings.Join(lines, "\n"))
	}
	if _, err := sign.VerifyNamed(ctx, st, "not a ref", img.Descriptor, k.verifier); err == nil {
		t.Error("a bad reference verified")
	}
}
