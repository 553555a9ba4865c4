package regserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/cnstack/cnstack/pkg/regserver"
)

// start runs a registry on 127.0.0.1:0 in-process and closes it at cleanup.
func start(t testing.TB, root string, readOnly bool) *regserver.Server {
	t.Helper()
	s, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: root, ReadOnly: readOnly, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("regserver.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

// ref names repo (with :tag or @digest) in the registry at addr.
func ref(t *testing.T, addr, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(addr+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pushed is what a test pushed and expects to pull back.
type pushed struct {
	image, index v1.Hash
}

func pushImageAndIndex(t *testing.T, addr string) pushed {
	t.Helper()
	ctx := t.Context()
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, addr, "library/app:v1"), img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push image: %v", err)
	}
	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, addr, "team/platforms:multi"), idx, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push index: %v", err)
	}
	return pushed{image: digestOf(t, img), index: digestOf(t, idx)}
}

// pullAndValidate pulls both and checks every blob against its digest.
func pullAndValidate(t *testing.T, addr string, want pushed) {
	t.Helper()
	ctx := t.Context()
	img, err := remote.Image(ref(t, addr, "library/app:v1"), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull image: %v", err)
	}
	if got := digestOf(t, img); got != want.image {
		t.Fatalf("image digest = %s, want %s", got, want.image)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pulled image is not intact: %v", err)
	}
	idx, err := remote.Index(ref(t, addr, "team/platforms:multi"), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	if got := digestOf(t, idx); got != want.index {
		t.Fatalf("index digest = %s, want %s", got, want.index)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("pulled index is not intact: %v", err)
	}
	byDigest := ref(t, addr, "library/app@"+want.image.String())
	if _, err := remote.Image(byDigest, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
}

func TestPushPullSurvivesRestart(t *testing.T) {
	root := t.TempDir()
	s1 := start(t, root, false)
	if !strings.HasPrefix(s1.Addr(), "127.0.0.1:") || strings.HasSuffix(s1.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the bound 127.0.0.1 port", s1.Addr())
	}
	want := pushImageAndIndex(t, s1.Addr())
	pullAndValidate(t, s1.Addr(), want)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s1.Addr() + "/v2/"); err == nil {
		t.Fatal("closed server still answers")
	}
	if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories/library/app/_manifests/tags/v1/current/link")); err != nil {
		t.Fatalf("tag not persisted in the distribution layout: %v", err)
	}

	s2 := start(t, root, false)
	pullAndValidate(t, s2.Addr(), want)
	tags, err := remote.List(ref(t, s2.Addr(), "team/platforms").Context(), remote.WithContext(t.Context()))
	if err != nil || !slices.Equal(tags, []string{"multi"}) {
		t.Fatalf("tags after restart = %v, %v; want [multi]", tags, err)
	}
	catalog, err := remote.Catalog(t.Context(), ref(t, s2.Addr(), "x").Context().Registry)
	if err != nil || !slices.Equal(catalog, []string{"library/app", "team/platforms"}) {
		t.Fatalf("catalog after restart = %v, %v", catalog, err)
	}
}

func TestDeleteInWritableMode(t *testing.T) {
	s := start(t, t.TempDir(), false)
	want := pushImageAndIndex(t, s.Addr())
	byDigest := ref(t, s.Addr(), "library/app@"+want.image.String())
	if err := remote.Delete(byDigest, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	_, err := remote.Image(byDigest, remote.WithContext(t.Context()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("pull after delete: %v, want 404", err)
	}
}

// orasRepo is an oras-go client for repo in s.
func orasRepo(t *testing.T, s *regserver.Server, repo string) *orasremote.Repository {
	t.Helper()
	r, err := orasremote.NewRepository(s.Addr() + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

const (
	sbomType = "application/vnd.example.sbom.v1+json"
	sigType  = "application/vnd.example.signature.v1"
)

// attach pushes an artifact of artifactType whose subject is subject.
func attach(t *testing.T, repo *orasremote.Repository, subject ocispec.Descriptor, artifactType, body string) ocispec.Descriptor {
	t.Helper()
	ctx := t.Context()
	layer, err := oras.PushBytes(ctx, repo, "application/octet-stream", []byte(body))
	if err != nil {
		t.Fatalf("push artifact layer: %v", err)
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
		Subject:             &subject,
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-01-01T00:00:00Z", "test.body": body},
	})
	if err != nil {
		t.Fatalf("pack %s manifest: %v", artifactType, err)
	}
	return desc
}

type referrersAnswer struct {
	status  int
	header  http.Header
	index   ocispec.Index
	errCode string
}

func getReferrers(t *testing.T, s *regserver.Server, repo string, subject digest.Digest, query string) referrersAnswer {
	t.Helper()
	u := fmt.Sprintf("http://%s/v2/%s/referrers/%s%s", s.Addr(), repo, subject, query)
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := referrersAnswer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.index); err != nil {
			t.Fatalf("referrers body %q: %v", body, err)
		}
		if !bytes.Contains(body, []byte(`"manifests":[`)) {
			t.Fatalf("referrers body has no manifests array: %s", body)
		}
	} else {
		var e struct{ Errors []struct{ Code string } }
		if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
			a.errCode = e.Errors[0].Code
		}
	}
	return a
}

func digests(descs []ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, 0, len(descs))
	for _, d := range descs {
		out = append(out, d.Digest)
	}
	slices.Sort(out)
	return out
}

func sorted(ds ...digest.Digest) []digest.Digest {
	slices.Sort(ds)
	return ds
}

func TestReferrers(t *testing.T) {
	root := t.TempDir()
	s := start(t, root, false)
	ctx := t.Context()

	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s.Addr(), "app/signed:v1"), img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	repo := orasRepo(t, s, "app/signed")
	subject, err := repo.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	sbom := attach(t, repo, subject, sbomType, "sbom")
	sig := attach(t, repo, subject, sigType, "sig")
	// A referrer of a referrer must not be listed for the image.
	nested := attach(t, repo, sbom, sigType, "sig-of-sbom")

	// oras detected the API from OCI-Subject and did not write the fallback tag.
	fallbackTag := strings.Replace(subject.Digest.String(), ":", "-", 1)
	if _, err := repo.Resolve(ctx, fallbackTag); err == nil {
		t.Fatalf("referrers fallback tag %s exists: the registry was not recognised as supporting referrers", fallbackTag)
	}

	check := func(t *testing.T, s *regserver.Server) {
		t.Helper()
		all := getReferrers(t, s, "app/signed", subject.Digest, "")
		if all.status != http.StatusOK || all.header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
			t.Fatalf("referrers: %d %q", all.status, all.header.Get("Content-Type"))
		}
		if all.header.Get("OCI-Filters-Applied") != "" {
			t.Fatalf("unfiltered answer has OCI-Filters-Applied %q", all.header.Get("OCI-Filters-Applied"))
		}
		if got := digests(all.index.Manifests); !slices.Equal(got, sorted(sbom.Digest, sig.Digest)) {
			t.Fatalf("referrers = %v, want sbom %s and sig %s", got, sbom.Digest, sig.Digest)
		}
		for _, d := range all.index.Manifests {
			want := map[digest.Digest]ocispec.Descriptor{sbom.Digest: sbom, sig.Digest: sig}[d.Digest]
			if d.MediaType != want.MediaType || d.Size != want.Size || d.ArtifactType != want.ArtifactType {
				t.Errorf("descriptor %+v, want media type %s size %d artifact type %s", d, want.MediaType, want.Size, want.ArtifactType)
			}
			if d.Annotations["test.body"] == "" {
				t.Errorf("descriptor %s lacks the manifest's annotations: %v", d.Digest, d.Annotations)
			}
		}

		filtered := getReferrers(t, s, "app/signed", subject.Digest, "?artifactType="+url.QueryEscape(sbomType))
		if filtered.status != http.StatusOK || filtered.header.Get("OCI-Filters-Applied") != "artifactType" {
			t.Fatalf("filtered: %d, OCI-Filters-Applied %q", filtered.status, filtered.header.Get("OCI-Filters-Applied"))
		}
		if got := digests(filtered.index.Manifests); !slices.Equal(got, []digest.Digest{sbom.Digest}) {
			t.Fatalf("filtered referrers = %v, want [%s]", got, sbom.Digest)
		}
		none := getReferrers(t, s, "app/signed", subject.Digest, "?artifactType=application/x-none")
		if none.status != http.StatusOK || len(none.index.Manifests) != 0 {
			t.Fatalf("filter matching nothing: %d %v", none.status, none.index.Manifests)
		}
		ofSBOM := getReferrers(t, s, "app/signed", sbom.Digest, "")
		if got := digests(ofSBOM.index.Manifests); !slices.Equal(got, []digest.Digest{nested.Digest}) {
			t.Fatalf("referrers of the sbom = %v, want [%s]", got, nested.Digest)
		}
		unknownSubject := getReferrers(t, s, "app/signed", digest.FromString("nothing"), "")
		if unknownSubject.status != http.StatusOK || len(unknownSubject.index.Manifests) != 0 {
			t.Fatalf("subject without referrers: %d %v", unknownSubject.status, unknownSubject.index.Manifests)
		}
		// The spec forbids 404 here: clients take it to mean "no referrers API".
		if a := getReferrers(t, s, "no/such/repo", subject.Digest, ""); a.status != http.StatusOK || len(a.index.Manifests) != 0 {
			t.Fatalf("unknown repository: %d %v, want 200 and no referrers", a.status, a.index.Manifests)
		}
		if a := getReferrers(t, s, "app/signed", "sha256:zz", ""); a.status != http.StatusBadRequest || a.errCode != "DIGEST_INVALID" {
			t.Fatalf("bad digest: %d %q, want 400 DIGEST_INVALID", a.status, a.errCode)
		}
		if a := getReferrers(t, s, "App", subject.Digest, ""); a.status != http.StatusBadRequest || a.errCode != "NAME_INVALID" {
			t.Fatalf("bad name: %d %q, want 400 NAME_INVALID", a.status, a.errCode)
		}

		// oras-go's client, with and without a filter.
		client := orasRepo(t, s, "app/signed")
		for _, tc := range []struct {
			artifactType string
			want         []digest.Digest
		}{
			{"", sorted(sbom.Digest, sig.Digest)},
			{sigType, []digest.Digest{sig.Digest}},
		} {
			var got []ocispec.Descriptor
			err := client.Referrers(t.Context(), subject, tc.artifactType, func(refs []ocispec.Descriptor) error {
				got = append(got, refs...)
				return nil
			})
			if err != nil {
				t.Fatalf("oras Referrers(%q): %v", tc.artifactType, err)
			}
			if !slices.Equal(digests(got), tc.want) {
				t.Fatalf("oras Referrers(%q) = %v, want %v", tc.artifactType, digests(got), tc.want)
			}
		}
	}
	check(t, s)

	// A restarted server, with an empty cache, and a read-only one give the
	// same answers from the tree alone.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, start(t, root, false))
	check(t, start(t, root, true))
}

func TestOCISubjectHeaderOnManifestPut(t *testing.T) {
	s := start(t, t.TempDir(), false)
	ctx := t.Context()
	repo := orasRepo(t, s, "raw")
	cfg, err := oras.PushBytes(ctx, repo, ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = nil
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent subject"), Size: 14}
	for _, tc := range []struct {
		name    string
		subject *ocispec.Descriptor
		want    string
	}{
		{"with subject", &subject, subject.Digest.String()},
		{"without subject", nil, ""},
	} {
		m := ocispec.Manifest{
			MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example",
			Config: cfg, Layers: []ocispec.Descriptor{cfg}, Subject: tc.subject,
		}
		m.SchemaVersion = 2
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+s.Addr()+"/v2/raw/manifests/"+digest.FromBytes(body).String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: PUT manifest: %s", tc.name, resp.Status)
		}
		if got := resp.Header.Get("OCI-Subject"); got != tc.want {
			t.Fatalf("%s: OCI-Subject = %q, want %q", tc.name, got, tc.want)
		}
		if got := resp.Header.Get("Docker-Content-Digest"); got != digest.FromBytes(body).String() {
			t.Fatalf("%s: stored digest %q, want %s: the body was altered on the way", tc.name, got, digest.FromBytes(body))
		}
	}
}

// treeState maps every path under root to its mode, size, mtime and content
// hash, to prove that serving a tree left it untouched.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			entry += " " + hex.EncodeToString(sum[:])
		}
		state[p] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func TestReadOnlyServesTreeAndRefusesWrites(t *testing.T) {
	root := t.TempDir()
	writer := start(t, root, false)
	want := pushImageAndIndex(t, writer.Addr())
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, root)

	s := start(t, root, true)
	pullAndValidate(t, s.Addr(), want)

	// A push through a real client fails with the registry's reason.
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref(t, s.Addr(), "library/app:v2"), img, remote.WithContext(t.Context()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusMethodNotAllowed ||
		len(terr.Errors) == 0 || terr.Errors[0].Code != transport.UnsupportedErrorCode ||
		!strings.Contains(terr.Errors[0].Message, "read-only") {
		t.Fatalf("push to read-only registry: %v; want 405 UNSUPPORTED saying read-only", err)
	}

	// Every write method on every write route is refused the same way.
	base := "http://" + s.Addr() + "/v2/library/app"
	for _, tc := range []struct{ method, url string }{
		{http.MethodPost, base + "/blobs/uploads/"},
		{http.MethodPut, base + "/manifests/v1"},
		{http.MethodDelete, base + "/manifests/" + want.image.String()},
		{http.MethodDelete, base + "/blobs/" + want.image.String()},
		{http.MethodPatch, base + "/blobs/uploads/abc"},
		{http.MethodPost, base + "/referrers/" + want.image.String()},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, tc.url, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), `"code":"UNSUPPORTED"`) {
			t.Errorf("%s %s: %d %s; want 405 UNSUPPORTED", tc.method, tc.url, resp.StatusCode, body)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := treeState(t, root)
	for p, st := range before {
		if after[p] != st {
			t.Errorf("read-only serving changed %s: %q -> %q", p, st, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("read-only serving created %s", p)
		}
	}
}

func TestReadOnlyNeedsATree(t *testing.T) {
	dir := t.TempDir()
	_, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: dir, ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "no registry tree") {
		t.Fatalf("read-only on an empty directory: %v, want a 'no registry tree' error", err)
	}
	_, err = regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: filepath.Join(dir, "missing"), ReadOnly: true})
	if err == nil {
		t.Fatal("read-only on a missing directory succeeded")
	}
}

func TestImageRootIsAccepted(t *testing.T) {
	imageRoot := t.TempDir()
	tree := filepath.Join(imageRoot, "registry")
	w := start(t, tree, false)
	want := pushImageAndIndex(t, w.Addr())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := start(t, imageRoot, true)
	if s.Root() != tree {
		t.Fatalf("Root() = %s, want the nested registry tree %s", s.Root(), tree)
	}
	pullAndValidate(t, s.Addr(), want)
}

func TestRefusesRemoteAddr(t *testing.T) {
	_, err := regserver.New(regserver.Options{Addr: "0.0.0.0:0", Root: t.TempDir()})
	if !errors.Is(err, regserver.ErrRemoteAddr) || !strings.Contains(err.Error(), "no authentication") {
		t.Fatalf("New on 0.0.0.0: %v, want ErrRemoteAddr explaining why", err)
	}
	s, err := regserver.New(regserver.Options{Addr: "0.0.0.0:0", Root: t.TempDir(), AllowRemote: true})
	if err != nil {
		t.Fatalf("New with AllowRemote: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServeStopsOnCancelAndReleasesPort(t *testing.T) {
	s, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitUp(t, s.Addr())
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("address not released: %v", err)
	}
	ln.Close()
}

func waitUp(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry at %s did not come up: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestLogLinesCarryNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-token"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr()+"/v2/?token="+secret, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := remote.Write(ref(t, s.Addr(), "logged:v1"), mustImage(t), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("log contains a credential:\n%s", out)
	}
	if strings.Contains(out, "_state") {
		t.Fatalf("log contains upload state from a query string:\n%s", out)
	}
	for _, want := range []string{
		`msg="registry request" method=GET path=/v2/ status=200`,
		`method=PUT path=/v2/logged/manifests/v1 status=201`,
		`method=PATCH path=/v2/logged/blobs/uploads/`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func mustImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestForeignLayerURLsAccepted(t *testing.T) {
	s := start(t, t.TempDir(), false)
	ctx := t.Context()
	repo := orasRepo(t, s, "windows/base")
	cfg, err := oras.PushBytes(ctx, repo, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	foreign := ocispec.Descriptor{
		MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		Digest:    digest.FromString("not pushed"), Size: 10,
		URLs: []string{"https://store.example.com/blobs/layer"},
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{foreign}}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.PushBytes(ctx, repo.Manifests(), ocispec.MediaTypeImageManifest, body); err != nil {
		t.Fatalf("push manifest with a foreign layer: %v", err)
	}
}

func TestCloseWaitsForUploadInFlight(t *testing.T) {
	root := t.TempDir()
	s := start(t, root, false)
	base := "http://" + s.Addr()
	resp, err := http.Post(base+"/v2/graceful/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("open upload: %s %v", resp.Status, err)
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, (&url.URL{Scheme: "http", Host: s.Addr()}).ResolveReference(loc).String(), pr)
	patched := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("PATCH: %v", err)
			resp = &http.Response{}
		}
		patched <- resp
	}()
	go func() { _, _ = pw.Write(bytes.Repeat([]byte("a"), 1<<20)) }()

	// Wait until the server is writing the upload to disk: the request is
	// then being handled, not merely buffered in the socket.
	data := filepath.Join(root, "docker/registry/v2/repositories/graceful/_uploads", path.Base(loc.Path), "data")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if fi, err := os.Stat(data); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload data %s never appeared", data)
		}
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an upload was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := pw.Write(bytes.Repeat([]byte("b"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-patched; r.StatusCode != http.StatusAccepted {
		t.Fatalf("upload in flight during Close: status %d, want 202", r.StatusCode)
	} else {
		r.Body.Close()
		if got := r.Header.Get("Range"); got != "0-2097151" {
			t.Fatalf("upload received Range %q, want all 2 MiB", got)
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the upload finished")
	}
}
