package sign

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"oras.land/oras-go/v2"

	"github.com/cnstack/cnstack/pkg/sign/sbom"
)

// PredicateType maps cosign's --type names (spdxjson, spdx,
// slsaprovenance1) to the predicate URIs they stand for; any other name is
// taken to be a URI already.
func PredicateType(name string) string {
	switch name {
	case "spdxjson", "spdx":
		return PredicateSPDX
	case "slsaprovenance1":
		return PredicateSLSA1
	}
	return name
}

// SBOMSource says where SBOM found its document.
type SBOMSource int

const (
	// SBOMAttested: from an SBOM attestation that SBOMOptions.Key verified.
	SBOMAttested SBOMSource = iota
	// SBOMUnverified: from an SBOM attestation, with no key to verify it.
	SBOMUnverified
	// SBOMComputed: computed from the image's layers.
	SBOMComputed
)

// SBOMOptions configure SBOM.
type SBOMOptions struct {
	// Platform ("os/arch[/variant]") picks one platform of an index; ""
	// describes the image's root (for an index, every platform).
	Platform string
	// Key, if set, accepts only an attestation it verifies, and then an
	// image without one is an error (ErrNoAttestation), never a document
	// computed in its place.
	Key Verifier
	// Compute skips attestations and computes the document from the layers.
	Compute bool
	// Attest names the builder and tool a computed document records.
	Attest AttestOptions
}

// SBOMResult is the document SBOM found.
type SBOMResult struct {
	Subject  Subject
	Document []byte // SPDX JSON, formatted as cnstack writes it, ending in a newline
	Source   SBOMSource
}

// SBOM returns the SPDX document describing img (or one of its platforms):
// its SBOM attestation's predicate when there is one, else the document
// Attest would attach, computed from the layers. See SBOMOptions for what a
// key and Compute change.
func SBOM(ctx context.Context, src oras.ReadOnlyTarget, img Image, opts SBOMOptions) (*SBOMResult, error) {
	subjects, err := Subjects(ctx, src, img)
	if err != nil {
		return nil, err
	}
	subject := subjects[0]
	if p := opts.Platform; p != "" {
		found := false
		for _, s := range subjects {
			if s.Platform == strings.TrimSuffix(p, "/") {
				subject, found = s, true
				break
			}
		}
		if !found {
			var have []string
			for _, s := range subjects {
				have = append(have, s.Platform)
			}
			return nil, fmt.Errorf("%s has no platform %s (it has %s)", img.Name, p, strings.Join(have, ", "))
		}
	}
	if !opts.Compute {
		doc, err := FindPredicate(ctx, src, img, subject.Descriptor.Digest, PredicateSPDX, opts.Key)
		switch {
		case err == nil && opts.Key != nil:
			return &SBOMResult{Subject: subject, Document: sbom.Format(doc), Source: SBOMAttested}, nil
		case err == nil:
			return &SBOMResult{Subject: subject, Document: sbom.Format(doc), Source: SBOMUnverified}, nil
		case !errors.Is(err, ErrNoAttestation):
			return nil, err
		case opts.Key != nil:
			return nil, fmt.Errorf("sbom: %w", err)
		}
	}
	attest := opts.Attest
	attest.Predicates = []string{PredicateSPDX}
	descs, err := Describe(ctx, src, img, attest)
	if err != nil {
		return nil, err
	}
	for _, d := range descs {
		if d.Subject.Descriptor.Digest == subject.Descriptor.Digest {
			return &SBOMResult{Subject: subject, Document: d.Predicates[PredicateSPDX], Source: SBOMComputed}, nil
		}
	}
	return nil, fmt.Errorf("sbom: no document for %s", subject)
}
