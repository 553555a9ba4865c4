package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/layer"
	cnoci "github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/sign/provenance"
	"github.com/cnstack/cnstack/pkg/sign/sbom"
)

// Predicate types cnstack attaches, and cosign's --type names for them.
const (
	PredicateSPDX  = sbom.PredicateType       // cosign --type spdxjson
	PredicateSLSA1 = provenance.PredicateType // cosign --type slsaprovenance1
)

// cosignType maps a predicate URI to cosign's statement generator name.
var cosignType = map[string]string{
	PredicateSPDX:  "spdxjson",
	PredicateSLSA1: "slsaprovenance1",
}

// AttestOptions configure Attest and Describe.
type AttestOptions struct {
	// Builder names cnstack and its version in the provenance (a
	// build-time io.cnstack.build.version annotation takes precedence).
	Builder provenance.Builder
	// Tool is the SBOM creator ("cnstack-v0.1.0"); default "cnstack".
	Tool string
	// Created is the SBOM's creation time; zero means SOURCE_DATE_EPOCH,
	// or the Unix epoch when unset, so the document is reproducible.
	Created time.Time
	// Predicates limits what is attached (default: SPDX and SLSA v1).
	Predicates []string
}

func (o AttestOptions) predicates() []string {
	if len(o.Predicates) == 0 {
		return []string{PredicateSPDX, PredicateSLSA1}
	}
	return o.Predicates
}

// Description is the predicates of one subject.
type Description struct {
	Subject Subject
	// Predicates maps a predicate type to its JSON.
	Predicates map[string][]byte
}

// Describe computes, for each subject of img (see Subjects), its SPDX SBOM
// and SLSA v1 provenance predicates. Each platform image's layers are read
// once.
func Describe(ctx context.Context, src content.Fetcher, img Image, opts AttestOptions) ([]Description, error) {
	subjects, err := Subjects(ctx, src, img)
	if err != nil {
		return nil, err
	}
	created := opts.Created
	if created.IsZero() {
		if created, err = layer.SourceDateEpoch(); err != nil {
			return nil, err
		}
	}
	type platformImage struct {
		part  sbom.Part
		input provenance.Image
	}
	var platforms []platformImage
	for _, s := range subjects {
		if s.Missing {
			return nil, fmt.Errorf("describe %s: platform image %s is not in the target; an SBOM needs every platform (pull them all)", img.Name, s)
		}
		if s.isIndex() {
			continue
		}
		c, err := sbom.Scan(ctx, src, s.Descriptor)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", s, err)
		}
		in, err := provenanceInput(ctx, src, s.Descriptor, c)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", s, err)
		}
		platforms = append(platforms, platformImage{sbom.Part{Digest: s.Descriptor.Digest, Contents: c}, in})
	}
	var out []Description
	for _, s := range subjects {
		var parts []sbom.Part
		var inputs []provenance.Image
		for _, p := range platforms {
			if s.isIndex() || p.part.Digest == s.Descriptor.Digest {
				parts = append(parts, p.part)
				inputs = append(inputs, p.input)
			}
		}
		d := Description{Subject: s, Predicates: map[string][]byte{}}
		for _, pt := range opts.predicates() {
			var b []byte
			switch pt {
			case PredicateSPDX:
				doc, err := sbom.Build(sbom.Subject{Name: img.Name, Tag: img.Tag, Digest: s.Descriptor.Digest, MediaType: s.Descriptor.MediaType}, parts,
					sbom.Options{Created: created, Tool: opts.Tool})
				if err != nil {
					return nil, err
				}
				if b, err = doc.Marshal(); err != nil {
					return nil, err
				}
			case PredicateSLSA1:
				pred, err := provenance.Predicate(provenance.Subject{Name: img.Name, Digest: s.Descriptor.Digest}, inputs, opts.Builder)
				if err != nil {
					return nil, err
				}
				if b, err = provenance.Marshal(pred); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("predicate type %q is not one cnstack makes (%s, %s)", pt, PredicateSPDX, PredicateSLSA1)
			}
			d.Predicates[pt] = b
		}
		out = append(out, d)
	}
	return out, nil
}

func provenanceInput(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, c *sbom.Contents) (provenance.Image, error) {
	raw, err := fetchManifest(ctx, src, desc)
	if err != nil {
		return provenance.Image{}, err
	}
	in := provenance.Image{Digest: desc.Digest}
	if err := json.Unmarshal(raw, &in.Manifest); err != nil {
		return in, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cfg, err := fetchManifest(ctx, src, in.Manifest.Config)
	if err != nil {
		return in, fmt.Errorf("config of %s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(cfg, &in.Config); err != nil {
		return in, fmt.Errorf("config of %s: %w", desc.Digest, err)
	}
	for _, ci := range c.Images {
		if ci.Digest == "" {
			continue
		}
		in.Images = append(in.Images, provenance.Dependency{Name: ci.Name, URI: "oci://" + nameOnly(ci.Name) + "@" + ci.Digest.String(), Digest: ci.Digest})
	}
	return in, nil
}

// Attest attaches, to the image's root and each platform manifest, the
// predicates Describe computes, as in-toto statements in DSSE envelopes
// signed by signer, in the subject's sha256-<hex>.att image (cosign's
// attestation form). An attestation of the same predicate type by the same
// key is replaced when its statement changed and left alone when it is
// identical; attestations by other keys are kept.
func Attest(ctx context.Context, dst oras.Target, img Image, signer signature.SignerVerifier, opts AttestOptions) ([]Result, error) {
	descs, err := Describe(ctx, dst, img, opts)
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", img.Name, err)
	}
	var out []Result
	for _, d := range descs {
		rs, err := attestOne(ctx, dst, img, d, signer, opts.predicates())
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("attest %s %s: %w", img.Name, d.Subject, err)
		}
	}
	return out, nil
}

func attestOne(ctx context.Context, dst oras.Target, img Image, d Description, signer signature.SignerVerifier, predicates []string) ([]Result, error) {
	s := d.Subject
	id, err := img.identity(s.Descriptor.Digest)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(s.Descriptor.Digest.String())
	if err != nil {
		return nil, err
	}
	ref := img.Ref(cnoci.AttestationTag(s.Descriptor.Digest))
	existing, desc, _, err := readSigned(ctx, dst, ref)
	if err != nil {
		return nil, err
	}
	kept := existing
	var results []Result
	changed := false
	for _, pt := range predicates {
		statement, err := statementOf(pt, d.Predicates[pt], s.Descriptor.Digest.Encoded(), id.Repository.Name())
		if err != nil {
			return results, fmt.Errorf("%s statement: %w", pt, err)
		}
		res := Result{Subject: s, Kind: pt, Ref: ref}
		var next []oci.Signature
		same := false
		for _, att := range kept {
			got, gotType, err := verifyAttestation(ctx, att, h, signer)
			switch {
			case err != nil || gotType != pt:
				next = append(next, att) // another key's, or another predicate
			case bytes.Equal(got, statement) && !same:
				same = true
				next = append(next, att)
			default:
				changed = true // ours, outdated (or a duplicate): replaced
			}
		}
		kept = next
		if !same {
			env, err := dsse.WrapSigner(signer, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(statement), options.WithContext(ctx))
			if err != nil {
				return results, fmt.Errorf("sign %s statement: %w", pt, err)
			}
			att, err := static.NewAttestation(env, static.WithLayerMediaType(ctypes.DssePayloadType),
				static.WithAnnotations(map[string]string{"predicateType": pt}))
			if err != nil {
				return results, err
			}
			kept = append(kept, att)
			res.Added, changed = true, true
		}
		results = append(results, res)
	}
	if changed {
		if desc, err = writeSigned(ctx, dst, ref, kept); err != nil {
			return results, err
		}
	}
	for i := range results {
		results[i].Manifest, results[i].Total = desc, len(kept)
	}
	return results, nil
}

// statementOf is the in-toto statement of one predicate about a subject:
// cosign's own generator for the types it knows (so the bytes are what
// cosign attest writes), else an in-toto v0.1 statement carrying the
// predicate JSON as it is (cosign's "custom" type would wrap it in a
// string with a timestamp, and the statement would change every run).
func statementOf(predicateType string, predicate []byte, hexDigest, repo string) ([]byte, error) {
	if t, ok := cosignType[predicateType]; ok {
		st, err := attestation.GenerateStatement(attestation.GenerateOpts{
			Predicate: bytes.NewReader(predicate), Type: t, Digest: hexDigest, Repo: repo,
		})
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	}
	if !json.Valid(predicate) {
		return nil, fmt.Errorf("predicate of type %s is not JSON", predicateType)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, predicate); err != nil {
		return nil, err
	}
	type subject struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	return json.Marshal(struct {
		Type          string          `json:"_type"`
		PredicateType string          `json:"predicateType"`
		Subject       []subject       `json:"subject"`
		Predicate     json.RawMessage `json:"predicate"`
	}{"https://in-toto.io/Statement/v0.1", predicateType, []subject{{Name: repo, Digest: map[string]string{"sha256": hexDigest}}}, compact.Bytes()})
}

// AttestPredicate attaches one predicate (JSON) of predicateType to the
// image's root manifest (its index, for a multi-platform image): a
// statement about the image as a whole, such as the verdict of booting it.
// Like Attest, an identical statement by the same key is left alone and an
// outdated one replaced.
func AttestPredicate(ctx context.Context, dst oras.Target, img Image, signer signature.SignerVerifier, predicateType string, predicate []byte) ([]Result, error) {
	if predicateType == "" {
		return nil, fmt.Errorf("attest %s: a predicate type is required", img.Name)
	}
	subjects, err := Subjects(ctx, dst, img)
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", img.Name, err)
	}
	d := Description{Subject: subjects[0], Predicates: map[string][]byte{predicateType: predicate}}
	rs, err := attestOne(ctx, dst, img, d, signer, []string{predicateType})
	if err != nil {
		return rs, fmt.Errorf("attest %s %s: %w", img.Name, d.Subject, err)
	}
	return rs, nil
}

// nameOnly strips the tag or digest from an image reference.
func nameOnly(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
