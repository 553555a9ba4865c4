package sign_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/pkg/sign"
)

// cosignCLI runs the real cosign v2.6.5 offline (no TUF, no Rekor).
type cosignCLI struct {
	t   *testing.T
	env []string
}

func newCosign(t *testing.T) *cosignCLI {
	tooltest.Path(t, tooltest.Cosign)
	return &cosignCLI{t: t, env: tooltest.CosignEnv(t)}
}

func (c *cosignCLI) run(password string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute)
	defer cancel()
	env := append(append([]string(nil), c.env...), "COSIGN_PASSWORD="+password)
	return tooltest.RunEnv(c.t, ctx, env, tooltest.Cosign, args...)
}

func (c *cosignCLI) mustPass(password string, args ...string) string {
	c.t.Helper()
	out, err := c.run(password, args...)
	if err != nil {
		c.t.Fatalf("cosign should accept: %v", err)
	}
	return out
}

func (c *cosignCLI) mustFail(args ...string) {
	c.t.Helper()
	if out, err := c.run("", args...); err == nil {
		c.t.Fatalf("cosign accepted what it should refuse: cosign %s\n%s", strings.Join(args, " "), out)
	}
}

// TestRealCosignAcceptsCnstackSignatures: cnstack signs and attests in the
// store, the image and its .sig/.att tags are copied to a real registry,
// and the real cosign CLI verifies every manifest, the SPDX and SLSA
// attestations, and refuses a foreign key.
func TestRealCosignAcceptsCnstackSignatures(t *testing.T) {
	ctx := t.Context()
	cosign := newCosign(t)
	reg := regproc.Start(t, regproc.Options{})
	st, img, _ := storeImage(t)
	k := newKey(t, "cnstack-pw")
	mustSign(t, st, img, k, true)

	name := reg.Ref("cnstack/cluster")
	repo := repository(t, name)
	copyWithCompanions(t, st, img, repo, func(tag string) string { return tag })
	subjects, err := sign.Subjects(ctx, st, img)
	if err != nil {
		t.Fatal(err)
	}

	foreign := filepath.Join(t.TempDir(), "foreign")
	cosign.mustPass("", "generate-key-pair", "--output-key-prefix", foreign)

	for _, s := range subjects {
		ref := name + "@" + s.Descriptor.Digest.String()
		t.Run(s.Platform, func(t *testing.T) {
			c := &cosignCLI{t: t, env: cosign.env}
			out := c.mustPass("", "verify", "--key", k.pubPath, "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
			if !strings.Contains(out, s.Descriptor.Digest.String()) {
				t.Errorf("cosign verify output does not name %s:\n%s", s.Descriptor.Digest, out)
			}
			for _, typ := range []string{"spdxjson", "slsaprovenance1"} {
				c.mustPass("", "verify-attestation", "--key", k.pubPath, "--type", typ, "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
			}
			c.mustFail("verify", "--key", foreign+".pub", "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
			c.mustFail("verify-attestation", "--key", foreign+".pub", "--type", "spdxjson", "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
			// A predicate type cnstack did not attach is not there.
			c.mustFail("verify-attestation", "--key", k.pubPath, "--type", "cyclonedx", "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
		})
	}

	// cosign signing with cnstack's key appends to cnstack's signature image;
	// both keep verifying, with cosign and with cnstack.
	index := name + "@" + img.Descriptor.Digest.String()
	cosign.mustPass("", "sign", "--key", foreign+".key", "--tlog-upload=false", "--allow-insecure-registry", "-y", index)
	cosign.mustPass("cnstack-pw", "sign", "--key", k.keyPath, "--tlog-upload=false", "--allow-insecure-registry", "-y", index)
	for _, pub := range []string{k.pubPath, foreign + ".pub"} {
		cosign.mustPass("", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", index)
		v, err := sign.LoadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		rimg := sign.Image{Name: name, Descriptor: img.Descriptor, BareTags: true}
		rep, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: v, PredicateTypes: nil})
		if pub == k.pubPath && err != nil {
			t.Errorf("cnstack verify after cosign appended: %v\n%v", err, rep.Checks)
		}
		if pub != k.pubPath {
			// cosign signed only the index with the foreign key.
			if !errors.Is(err, sign.ErrVerification) || len(rep.Failed()) != 2 || !rep.Checks[0].OK() {
				t.Errorf("foreign key: want the index verified and both platforms failing, got %v", rep.Checks)
			}
		}
	}
}

// TestCnstackAcceptsRealCosignSignatures: an image signed and attested by
// the real cosign CLI (key from `cosign generate-key-pair`) verifies with
// cnstack's library, and cnstack reads cosign's key files.
func TestCnstackAcceptsRealCosignSignatures(t *testing.T) {
	ctx := t.Context()
	cosign := newCosign(t)
	reg := regproc.Start(t, regproc.Options{})
	st, img, _ := storeImage(t)
	name := reg.Ref("upstream/cluster")
	repo := repository(t, name)
	if _, err := oras.Copy(ctx, st, imageRef, repo, "v1", oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	rimg := sign.Image{Name: name, Tag: "v1", Descriptor: img.Descriptor, BareTags: true}

	prefix := filepath.Join(t.TempDir(), "upstream")
	cosign.mustPass("upstream-pw", "generate-key-pair", "--output-key-prefix", prefix)
	signer, err := sign.LoadPrivateKey(prefix+".key", []byte("upstream-pw"))
	if err != nil {
		t.Fatalf("cnstack cannot read cosign's private key: %v", err)
	}
	pub, err := sign.LoadPublicKey(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	index := name + "@" + img.Descriptor.Digest.String()
	cosign.mustPass("upstream-pw", "sign", "--key", prefix+".key", "--tlog-upload=false", "--allow-insecure-registry", "-y", "--recursive", index)
	if rep, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: pub}); err != nil {
		t.Fatalf("cnstack verify of cosign signatures: %v\n%v", err, rep.Checks)
	}
	if _, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: newKey(t, "").verifier}); !errors.Is(err, sign.ErrVerification) {
		t.Errorf("cosign's signatures verified with a foreign key: %v", err)
	}

	// cosign attestations of cnstack's predicates verify with cnstack.
	descs, err := sign.Describe(ctx, repo, rimg, sign.AttestOptions{Tool: "cnstack-test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range descs {
		ref := name + "@" + d.Subject.Descriptor.Digest.String()
		for pt, typ := range map[string]string{sign.PredicateSPDX: "spdxjson", sign.PredicateSLSA1: "slsaprovenance1"} {
			file := filepath.Join(dir, d.Subject.Descriptor.Digest.Encoded()+"-"+typ+".json")
			if err := os.WriteFile(file, d.Predicates[pt], 0o644); err != nil {
				t.Fatal(err)
			}
			cosign.mustPass("upstream-pw", "attest", "--key", prefix+".key", "--type", typ, "--predicate", file,
				"--tlog-upload=false", "--allow-insecure-registry", "-y", ref)
		}
	}
	if rep, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: pub, Attestations: true}); err != nil {
		t.Fatalf("cnstack verify of cosign attestations: %v\n%v", err, rep.Checks)
	}
	got, err := sign.FindPredicate(ctx, repo, rimg, img.Descriptor.Digest, sign.PredicateSPDX, pub)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, descs[0].Predicates[sign.PredicateSPDX]) {
		t.Error("the SBOM read back from cosign's attestation differs from the one attested")
	}
	// cnstack re-signing with cosign's key recognises cosign's signatures as its own.
	res, err := sign.Sign(ctx, repo, rimg, signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Added {
			t.Errorf("cnstack duplicated cosign's signature: %s", r)
		}
	}
}

// TestAttestPredicateCustomType: a statement about the whole image (a boot
// verdict) attached to its root with AttestPredicate verifies with cnstack
// (RootOnly) and with the real cosign verify-attestation --type URI;
// attaching it again adds nothing; a platform manifest does not carry it.
func TestAttestPredicateCustomType(t *testing.T) {
	ctx := t.Context()
	cosign := newCosign(t)
	reg := regproc.Start(t, regproc.Options{})
	st, img, _ := storeImage(t)
	k := newKey(t, "pw")
	mustSign(t, st, img, k, true)
	const pt = "https://cnstack.dev/attestations/boot/v1"
	pred := []byte(`{"passed": true, "image": "x"}`)
	res, err := sign.AttestPredicate(ctx, st, img, k.signer, pt, pred)
	if err != nil || len(res) != 1 || !res[0].Added {
		t.Fatalf("attest: %v %v", res, err)
	}
	if res, err := sign.AttestPredicate(ctx, st, img, k.signer, pt, pred); err != nil || res[0].Added {
		t.Fatalf("attesting the same predicate again added one: %v %v", res, err)
	}
	if _, err := sign.AttestPredicate(ctx, st, img, k.signer, pt, []byte("not json")); err == nil {
		t.Error("a predicate that is not JSON was attached")
	}
	opts := sign.VerifyOptions{Key: k.verifier, Attestations: true, PredicateTypes: []string{pt}, RootOnly: true}
	if rep, err := sign.Verify(ctx, st, img, opts); err != nil || len(rep.Checks) != 2 {
		t.Fatalf("verify root only: %v %v", err, rep)
	}
	opts.RootOnly = false
	if _, err := sign.Verify(ctx, st, img, opts); !errors.Is(err, sign.ErrVerification) {
		t.Errorf("the platform manifests verified a statement attached to the root only: %v", err)
	}
	got, err := sign.FindPredicate(ctx, st, img, img.Descriptor.Digest, pt, k.verifier)
	if err != nil || !jsonEqual(t, got, pred) {
		t.Fatalf("predicate read back: %s %v", got, err)
	}
	name := reg.Ref("cnstack/verified")
	repo := repository(t, name)
	copyWithCompanions(t, st, img, repo, func(tag string) string { return tag })
	index := name + "@" + img.Descriptor.Digest.String()
	cosign.mustPass("", "verify-attestation", "--key", k.pubPath, "--type", pt, "--insecure-ignore-tlog", "--allow-insecure-registry", index)
	cosign.mustFail("verify-attestation", "--key", k.pubPath, "--type", "https://cnstack.dev/other/v1", "--insecure-ignore-tlog", "--allow-insecure-registry", index)
}
