package sign_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/sign"
	"github.com/cnstack/cnstack/pkg/sign/signtest"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	cnoci "github.com/cnstack/cnstack/pkg/oci"
)

const (
	repoName = "registry.example/cnstack/cluster"
	imageRef = repoName + ":v1"
)

type keyPair struct {
	signer           sign.Signer
	verifier         sign.Verifier
	keyPath, pubPath string
}

// newKey writes a cosign key pair with a password and loads it back, as
// the CLI does.
func newKey(t *testing.T, password string) keyPair {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "cosign")
	keyPath, pubPath, err := sign.WriteKeyPair(prefix, []byte(password), false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.LoadPrivateKey(keyPath, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{s, v, keyPath, pubPath}
}

// storeImage puts the standard two-platform cluster image into a new store.
func storeImage(t *testing.T) (*store.Store, sign.Image, *signtest.Image) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := signtest.Standard()
	if err := signtest.Push(t.Context(), st, fx, imageRef); err != nil {
		t.Fatal(err)
	}
	desc, err := st.Resolve(t.Context(), imageRef)
	if err != nil {
		t.Fatal(err)
	}
	return st, sign.Image{Name: repoName, Tag: "v1", Descriptor: desc}, fx
}

func mustSign(t *testing.T, dst oras.Target, img sign.Image, k keyPair, attest bool) {
	t.Helper()
	ctx := t.Context()
	if _, err := sign.Sign(ctx, dst, img, k.signer); err != nil {
		t.Fatal(err)
	}
	if attest {
		if _, err := sign.Attest(ctx, dst, img, k.signer, sign.AttestOptions{Tool: "cnstack-test"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	k := newKey(t, "")
	fi, err := os.Stat(k.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(k.keyPath)
	if !bytes.HasPrefix(b, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
		t.Errorf("private key is not a cosign encrypted key:\n%s", b)
	}
	if _, err := sign.LoadPrivateKey(k.keyPath, []byte("wrong")); err == nil {
		t.Error("private key decrypted with a wrong password")
	}
	if _, _, err := sign.WriteKeyPair(strings.TrimSuffix(k.keyPath, ".key"), nil, false); err == nil {
		t.Error("WriteKeyPair replaced an existing key without overwrite")
	}
}

func TestSignVerifyStore(t *testing.T) {
	ctx := t.Context()
	st, img, fx := storeImage(t)
	k := newKey(t, "secret")

	rep, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier})
	if !errors.Is(err, sign.ErrVerification) || len(rep.Failed()) != 3 {
		t.Fatalf("verify before signing: err=%v, failed=%d; want 3 failed checks", err, len(rep.Failed()))
	}

	results, err := sign.Sign(ctx, st, img, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("signed %d subjects, want index + 2 platforms", len(results))
	}
	wantPlatforms := []string{"index", "linux/amd64", "linux/arm64"}
	for i, r := range results {
		if !r.Added || r.Total != 1 || r.Subject.Platform != wantPlatforms[i] {
			t.Errorf("result %d: %s", i, r)
		}
		// The signature lives in the store under cosign's tag.
		if _, err := st.Resolve(ctx, repoName+":"+cnoci.SignatureTag(r.Subject.Descriptor.Digest)); err != nil {
			t.Errorf("store lacks the signature tag of %s: %v", r.Subject, err)
		}
	}
	if results[1].Subject.Descriptor.Digest != fx.Manifests[0].Digest {
		t.Errorf("subject 1 is %s, want the amd64 manifest %s", results[1].Subject.Descriptor.Digest, fx.Manifests[0].Digest)
	}

	rep, err = sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier})
	if err != nil {
		t.Fatalf("verify: %v\n%v", err, rep.Checks)
	}
	if len(rep.Checks) != 3 {
		t.Errorf("%d checks, want 3", len(rep.Checks))
	}

	// Re-signing with the same key adds nothing.
	again, err := sign.Sign(ctx, st, img, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Added || r.Total != 1 {
			t.Errorf("re-sign: %s", r)
		}
	}

	// Attestations are required only when asked for.
	if _, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier, Attestations: true}); !errors.Is(err, sign.ErrVerification) {
		t.Fatalf("verify --attestations before attesting: %v", err)
	}
	atts, err := sign.Attest(ctx, st, img, k.signer, sign.AttestOptions{Tool: "cnstack-test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 6 {
		t.Fatalf("%d attestation results, want 3 subjects x 2 predicates", len(atts))
	}
	rep, err = sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier, Attestations: true})
	if err != nil {
		t.Fatalf("verify attestations: %v\n%v", err, rep.Checks)
	}
	if len(rep.Checks) != 9 {
		t.Errorf("%d checks, want 3 signatures + 6 attestations", len(rep.Checks))
	}

	// Re-attesting the same content writes nothing.
	attRef := repoName + ":" + cnoci.AttestationTag(img.Descriptor.Digest)
	before, _ := st.Resolve(ctx, attRef)
	again, err = sign.Attest(ctx, st, img, k.signer, sign.AttestOptions{Tool: "cnstack-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Added || r.Total != 2 {
			t.Errorf("re-attest: %s", r)
		}
	}
	if after, _ := st.Resolve(ctx, attRef); after.Digest != before.Digest {
		t.Errorf("re-attest rewrote %s", attRef)
	}

	// The attested SBOM is the computed one.
	descs, err := sign.Describe(ctx, st, img, sign.AttestOptions{Tool: "cnstack-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range descs {
		got, err := sign.FindPredicate(ctx, st, img, d.Subject.Descriptor.Digest, sign.PredicateSPDX, k.verifier)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, got, d.Predicates[sign.PredicateSPDX]) {
			t.Errorf("attested SBOM of %s differs from the computed one", d.Subject)
		}
	}

	// A second key appends; either key verifies.
	k2 := newKey(t, "")
	res2, err := sign.Sign(ctx, st, img, k2.signer)
	if err != nil {
		t.Fatal(err)
	}
	if !res2[0].Added || res2[0].Total != 2 {
		t.Errorf("second key: %s", res2[0])
	}
	for _, k := range []keyPair{k, k2} {
		if _, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier}); err != nil {
			t.Errorf("verify after a second signer: %v", err)
		}
	}
	// The second key made no attestations.
	if _, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k2.verifier, Attestations: true}); !errors.Is(err, sign.ErrVerification) {
		t.Errorf("attestations verified with a key that made none: %v", err)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

func TestVerifyForeignKey(t *testing.T) {
	ctx := t.Context()
	st, img, _ := storeImage(t)
	mustSign(t, st, img, newKey(t, ""), true)
	rep, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: newKey(t, "").verifier, Attestations: true})
	if !errors.Is(err, sign.ErrVerification) {
		t.Fatalf("verify with a foreign key: %v", err)
	}
	if n := len(rep.Failed()); n != len(rep.Checks) || n != 9 {
		t.Errorf("%d of %d checks failed, want all 9", n, len(rep.Checks))
	}
	if !strings.Contains(err.Error(), img.Descriptor.Digest.String()) {
		t.Errorf("error does not name the index: %v", err)
	}
}

// pushJSON stores v as a blob of mediaType.
func pushJSON(t *testing.T, st *store.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.PushBytes(t.Context(), mediaType, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readManifest(t *testing.T, st *store.Store, d digest.Digest) ocispec.Manifest {
	t.Helper()
	b, err := st.ReadBlob(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		// tamper changes the signed store image and returns the image to
		// verify and the manifest that must be named as failing.
		tamper     func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest)
		wantFailed int
	}{
		{
			name: "layer digest changed in a copy of a platform manifest, old signatures copied over",
			tamper: func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest) {
				m := readManifest(t, st, fx.Manifests[0].Digest)
				evil, err := st.PushBytes(ctx, m.Layers[0].MediaType, []byte("evil layer"))
				if err != nil {
					t.Fatal(err)
				}
				m.Layers[0].Digest, m.Layers[0].Size = evil.Digest, evil.Size // a whole image: the store tags nothing less
				md := pushJSON(t, st, ocispec.MediaTypeImageManifest, m)
				md.Platform = fx.Manifests[0].Platform
				idx := ocispec.Index{Versioned: m.Versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md, fx.Manifests[1]}}
				id := pushJSON(t, st, ocispec.MediaTypeImageIndex, idx)
				// The attacker reuses the genuine signatures under the new digests.
				for old, nu := range map[digest.Digest]digest.Digest{img.Descriptor.Digest: id.Digest, fx.Manifests[0].Digest: md.Digest} {
					sig, err := st.Resolve(ctx, repoName+":"+cnoci.SignatureTag(old))
					if err != nil {
						t.Fatal(err)
					}
					if err := st.Tag(ctx, sig, repoName+":"+cnoci.SignatureTag(nu)); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Tag(ctx, id, imageRef); err != nil {
					t.Fatal(err)
				}
				return sign.Image{Name: repoName, Descriptor: id}, md.Digest
			},
			wantFailed: 2, // the index and the amd64 manifest
		},
		{
			name: "signature payload swapped for another manifest's",
			tamper: func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest) {
				victim, donor := fx.Manifests[1].Digest, fx.Manifests[0].Digest
				vm := readManifest(t, st, mustResolve(t, st, repoName+":"+cnoci.SignatureTag(victim)).Digest)
				dm := readManifest(t, st, mustResolve(t, st, repoName+":"+cnoci.SignatureTag(donor)).Digest)
				// The donor's payload (signed, but for the amd64 digest) with the victim's signature annotation.
				vm.Layers[0].Digest, vm.Layers[0].Size = dm.Layers[0].Digest, dm.Layers[0].Size
				sd := pushJSON(t, st, vm.MediaType, vm)
				if err := st.Tag(ctx, sd, repoName+":"+cnoci.SignatureTag(victim)); err != nil {
					t.Fatal(err)
				}
				return img, victim
			},
			wantFailed: 1,
		},
		{
			name: "signature and payload both from another manifest",
			tamper: func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest) {
				victim, donor := fx.Manifests[1].Digest, fx.Manifests[0].Digest
				sig := mustResolve(t, st, repoName+":"+cnoci.SignatureTag(donor))
				if err := st.Tag(ctx, sig, repoName+":"+cnoci.SignatureTag(victim)); err != nil {
					t.Fatal(err)
				}
				return img, victim
			},
			wantFailed: 1,
		},
		{
			name: "payload edited to name the manifest, signature kept",
			tamper: func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest) {
				victim := fx.Manifests[1].Digest
				ref := repoName + ":" + cnoci.SignatureTag(victim)
				m := readManifest(t, st, mustResolve(t, st, ref).Digest)
				payload, err := st.ReadBlob(ctx, m.Layers[0].Digest)
				if err != nil {
					t.Fatal(err)
				}
				edited := bytes.Replace(payload, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
				if bytes.Equal(edited, payload) {
					t.Fatalf("payload has no optional field: %s", payload)
				}
				pd, err := st.PushBytes(ctx, m.Layers[0].MediaType, edited)
				if err != nil {
					t.Fatal(err)
				}
				m.Layers[0].Digest, m.Layers[0].Size = pd.Digest, pd.Size
				if err := st.Tag(ctx, pushJSON(t, st, m.MediaType, m), ref); err != nil {
					t.Fatal(err)
				}
				return img, victim
			},
			wantFailed: 1,
		},
		{
			name: "signature image deleted",
			tamper: func(t *testing.T, st *store.Store, img sign.Image, fx *signtest.Image) (sign.Image, digest.Digest) {
				victim := fx.Manifests[0].Digest
				if err := st.Untag(ctx, repoName+":"+cnoci.SignatureTag(victim)); err != nil {
					t.Fatal(err)
				}
				return img, victim
			},
			wantFailed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, img, fx := storeImage(t)
			k := newKey(t, "")
			mustSign(t, st, img, k, false)
			if _, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier}); err != nil {
				t.Fatalf("verify before tampering: %v", err)
			}
			bad, named := tt.tamper(t, st, img, fx)
			rep, err := sign.Verify(ctx, st, bad, sign.VerifyOptions{Key: k.verifier})
			if !errors.Is(err, sign.ErrVerification) {
				t.Fatalf("verify after tampering: err = %v, want a verification failure", err)
			}
			failed := rep.Failed()
			if len(failed) != tt.wantFailed {
				t.Errorf("%d failed checks, want %d: %v", len(failed), tt.wantFailed, failed)
			}
			found := false
			for _, f := range failed {
				t.Logf("%s", f)
				if f.Subject.Descriptor.Digest == named {
					found = true
					if !strings.Contains(f.String(), named.String()) || !strings.HasPrefix(f.String(), "FAIL") {
						t.Errorf("check line does not name %s: %s", named, f)
					}
				}
			}
			if !found {
				t.Errorf("no failed check names %s: %v", named, failed)
			}
		})
	}
}

func mustResolve(t *testing.T, st *store.Store, ref string) ocispec.Descriptor {
	t.Helper()
	d, err := st.Resolve(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// copyWithCompanions copies the image and its .sig/.att tags, as push and
// save do, from the store into dst under dstName (tagRef names tags there).
func copyWithCompanions(t *testing.T, st *store.Store, img sign.Image, dst oras.Target, tagRef func(string) string) {
	t.Helper()
	ctx := t.Context()
	if _, err := oras.Copy(ctx, st, imageRef, dst, tagRef("v1"), oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	subjects, err := sign.Subjects(ctx, st, img)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range subjects {
		for _, tag := range []string{cnoci.SignatureTag(s.Descriptor.Digest), cnoci.AttestationTag(s.Descriptor.Digest)} {
			if _, err := oras.Copy(ctx, st, repoName+":"+tag, dst, tagRef(tag), oras.DefaultCopyOptions); err != nil {
				t.Fatalf("copy %s: %v", tag, err)
			}
			n++
		}
	}
	if n != 6 {
		t.Fatalf("copied %d companions, want 6", n)
	}
}

func newRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func repository(t *testing.T, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(name)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

func TestVerifyAfterPushToRegistry(t *testing.T) {
	ctx := t.Context()
	st, img, _ := storeImage(t)
	k := newKey(t, "pw")
	mustSign(t, st, img, k, true)
	host := newRegistry(t)

	// Pushed, and relocated under another prefix: the signatures still
	// verify, since (as with cosign) the claimed repository is not enforced.
	for _, name := range []string{host + "/cnstack/cluster", host + "/mirror/team/cnstack/cluster"} {
		t.Run(name, func(t *testing.T) {
			repo := repository(t, name)
			copyWithCompanions(t, st, img, repo, func(tag string) string { return tag })
			desc, err := repo.Resolve(ctx, "v1")
			if err != nil {
				t.Fatal(err)
			}
			rimg := sign.Image{Name: name, Descriptor: desc, BareTags: true}
			rep, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: k.verifier, Attestations: true})
			if err != nil {
				t.Fatalf("verify in registry: %v\n%v", err, rep.Checks)
			}
			if _, err := sign.Verify(ctx, repo, rimg, sign.VerifyOptions{Key: newKey(t, "").verifier}); !errors.Is(err, sign.ErrVerification) {
				t.Errorf("foreign key verified in the registry: %v", err)
			}
		})
	}
}

func TestSignInRegistry(t *testing.T) {
	ctx := t.Context()
	st, _, _ := storeImage(t)
	name := newRegistry(t) + "/cnstack/cluster"
	repo := repository(t, name)
	if _, err := oras.Copy(ctx, st, imageRef, repo, "v1", oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	img := sign.Image{Name: name, Tag: "v1", Descriptor: desc, BareTags: true}
	k := newKey(t, "")
	mustSign(t, repo, img, k, true)
	if rep, err := sign.Verify(ctx, repo, img, sign.VerifyOptions{Key: k.verifier, Attestations: true}); err != nil {
		t.Fatalf("verify: %v\n%v", err, rep.Checks)
	}
	// Idempotent against a registry too.
	res, err := sign.Sign(ctx, repo, img, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Added {
			t.Errorf("re-sign in registry added: %s", r)
		}
	}
}

func TestVerifyOCILayout(t *testing.T) {
	ctx := t.Context()
	st, img, _ := storeImage(t)
	k := newKey(t, "")
	mustSign(t, st, img, k, true)
	dir := t.TempDir()
	layout, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle names tags as the store does: full references.
	copyWithCompanions(t, st, img, layout, func(tag string) string { return repoName + ":" + tag })

	// Read it back read-only from disk, as `check` does.
	ro, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := ro.Resolve(ctx, imageRef)
	if err != nil {
		t.Fatal(err)
	}
	limg := sign.Image{Name: repoName, Descriptor: desc}
	if rep, err := sign.Verify(ctx, ro, limg, sign.VerifyOptions{Key: k.verifier, Attestations: true}); err != nil {
		t.Fatalf("verify layout: %v\n%v", err, rep.Checks)
	}

	// A flipped byte in a signature payload blob is caught, naming the manifest.
	sigDesc, err := ro.Resolve(ctx, repoName+":"+cnoci.SignatureTag(desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := content.FetchAll(ctx, ro, sigDesc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(sm, &m); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Encoded())
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := sign.Verify(ctx, ro, limg, sign.VerifyOptions{Key: k.verifier})
	if !errors.Is(err, sign.ErrVerification) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("verify with a corrupt signature blob: %v", err)
	}
	if len(rep.Failed()) != 1 {
		t.Errorf("failed checks %v, want only the index's signature", rep.Failed())
	}
}

// TestPartialImage: an index whose arm64 manifest the store lacks (pulled
// for one platform) is still signed and verified by digest; describing it
// is refused rather than giving an SBOM that silently omits a platform.
func TestPartialImage(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := signtest.Standard()
	for _, b := range fx.Blobs {
		if b.Desc.Digest == fx.Manifests[1].Digest {
			continue
		}
		if err := st.Push(ctx, b.Desc, bytes.NewReader(b.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Tag(ctx, fx.Root, imageRef); err != nil {
		t.Fatal(err)
	}
	img := sign.Image{Name: repoName, Descriptor: fx.Root}
	k := newKey(t, "")
	res, err := sign.Sign(ctx, st, img, k.signer)
	if err != nil || len(res) != 3 {
		t.Fatalf("sign partial image: %v (%d results)", err, len(res))
	}
	if !res[2].Subject.Missing || res[2].Subject.Platform != "linux/arm64" {
		t.Errorf("subject 2 = %+v, want the missing linux/arm64 manifest", res[2].Subject)
	}
	rep, err := sign.Verify(ctx, st, img, sign.VerifyOptions{Key: k.verifier})
	if err != nil {
		t.Fatalf("verify partial image: %v", err)
	}
	if !strings.Contains(rep.Checks[2].String(), "not present") {
		t.Errorf("check line does not say the manifest is absent: %s", rep.Checks[2])
	}
	if _, err := sign.Attest(ctx, st, img, k.signer, sign.AttestOptions{}); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("attest of a partial image: %v, want an error naming linux/arm64", err)
	}
}
