package transfer

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/regserver"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

var ctx = context.Background()

const top = "registry.cnstack.local/cnstack/cnstack:v0.1.0"

func sample(t *testing.T) *store.Store {
	t.Helper()
	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	st, err := stack.Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Platforms = []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	if _, err := (&build.Builder{Store: s, Cache: c}).BuildStack(ctx, st, build.StackOptions{Layers: []string{"cnstack"}}); err != nil {
		t.Fatal(err)
	}
	// A companion, as `cnstack sign` leaves it.
	root, _ := s.Resolve(ctx, top)
	cfg, _ := s.PushBytes(ctx, ocispec.MediaTypeImageConfig, []byte("{}"))
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfg.Digest.String() + `","size":2},"layers":[]}`
	md, _ := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(m))
	if err := s.Tag(ctx, md, "registry.cnstack.local/cnstack/cnstack:"+oci.SignatureTag(root.Digest)); err != nil {
		t.Fatal(err)
	}
	return s
}

// counting wraps a handler and counts blob uploads and requests.
type counting struct {
	h        http.Handler
	uploads  atomic.Int64
	requests atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Add(1)
	if r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")) {
		c.uploads.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

func newRegistry(t *testing.T) (*counting, string) {
	t.Helper()
	c := &counting{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, strings.TrimPrefix(srv.URL, "http://")
}

// startRegistry runs cnstack's own registry (distribution) on loopback for
// the test.
func startRegistry(t *testing.T) *regserver.Server {
	t.Helper()
	srv, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func client(t *testing.T) *regclient.Client {
	t.Helper()
	c, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func remoteEP(t *testing.T, rc *regclient.Client, ref string) Endpoint {
	t.Helper()
	r, err := reference.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := rc.Repository(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return Remote(repo, r)
}

func storeEP(t *testing.T, s *store.Store, ref string) Endpoint {
	r, err := reference.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return Store(s, r)
}

func TestPushPullWithCompanions(t *testing.T) {
	s := sample(t)
	reg, addr := newRegistry(t)
	rc := client(t)
	dst := addr + "/cnstack/cnstack:v0.1.0"
	rep, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, rc, dst), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Root.MediaType != ocispec.MediaTypeImageIndex || len(rep.Companions) != 1 || rep.Copied == 0 {
		t.Fatalf("push report %+v", rep)
	}
	// Re-pushing an unchanged image sends no blob.
	before := reg.uploads.Load()
	rep2, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, rc, dst), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reg.uploads.Load() != before || rep2.Copied != 0 || rep2.Bytes != 0 {
		t.Fatalf("re-push uploaded: %d uploads, report %+v", reg.uploads.Load()-before, rep2)
	}
	// Pull back into a fresh store: every platform and the signature.
	s2, _ := store.Open(t.TempDir())
	prep, err := Copy(ctx, remoteEP(t, rc, dst), storeEP(t, s2, dst), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if prep.Root.Digest != rep.Root.Digest || len(prep.Companions) != 1 {
		t.Fatalf("pull report %+v", prep)
	}
	live, _ := s2.Reachable(ctx)
	orig, _ := s.Resolve(ctx, top)
	children, _ := s.Children(ctx, orig)
	for _, c := range children {
		if !live[c.Digest] {
			t.Errorf("platform manifest %s not pulled", c.Digest)
		}
	}
	// Only one platform.
	s3, _ := store.Open(t.TempDir())
	if _, err := Copy(ctx, remoteEP(t, rc, dst), storeEP(t, s3, dst), Options{Platforms: []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, c := range children {
		if ok, _ := s3.Exists(ctx, c); ok {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("--platform pulled %d platform manifests, want 1", got)
	}
}

// flaky is a reverse proxy on 127.0.0.1 that fails the first requests with
// 500 and cuts the first large blob download in the middle.
type flaky struct {
	proxy    *httputil.ReverseProxy
	fail500  atomic.Int64
	cutBlobs atomic.Int64
	always   bool
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.always || f.fail500.Add(-1) >= 0 {
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Header.Get("Range") == "" && f.cutBlobs.Add(-1) >= 0 {
		rec := httptest.NewRecorder()
		f.proxy.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 64 {
			hj, ok := w.(http.Hijacker)
			if ok {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Set("Accept-Ranges", "bytes")
				w.WriteHeader(rec.Code)
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				conn, _, _ := hj.Hijack()
				conn.Close() // drop the connection mid-blob
				return
			}
		}
	}
	f.proxy.ServeHTTP(w, r)
}

func TestRetriesAndDroppedConnections(t *testing.T) {
	s := sample(t)
	_, addr := newRegistry(t)
	rc := client(t)
	origin := addr + "/cnstack/cnstack:v0.1.0"
	if _, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, rc, origin), Options{}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + addr)
	f := &flaky{proxy: httputil.NewSingleHostReverseProxy(u)}
	f.fail500.Store(3)
	f.cutBlobs.Store(1)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	via := ln.Addr().String() + "/cnstack/cnstack:v0.1.0"

	s2, _ := store.Open(t.TempDir())
	// The cut blob resumes with a Range request inside the same copy.
	_, err := Copy(ctx, remoteEP(t, rc, via), storeEP(t, s2, "pulled/x:1"), Options{})
	if f.cutBlobs.Load() >= 0 {
		t.Fatal("the proxy never cut a blob: the test proves nothing")
	}
	if err != nil {
		t.Fatalf("pull through a flaky registry: %v", err)
	}
	want, _ := s.Resolve(ctx, top)
	got, _ := s2.Resolve(ctx, "pulled/x:1")
	if got.Digest != want.Digest {
		t.Fatalf("pulled %s, want %s", got.Digest, want.Digest)
	}

	// A registry that always fails: a clear error naming it, after retries.
	f.always = true
	s3, _ := store.Open(t.TempDir())
	_, err = Copy(ctx, remoteEP(t, rc, via), storeEP(t, s3, "pulled/x:1"), Options{})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("always-failing registry: %v", err)
	}
}

// Within one registry, blobs another repository already holds are mounted,
// not uploaded (distribution v3 through cnstack registry serve).
func TestCrossRepositoryMount(t *testing.T) {
	s := sample(t)
	srv := startRegistry(t)
	rc := client(t)
	first, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, rc, srv.Addr()+"/team-a/cnstack:v1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Copy(ctx, storeEP(t, s, top), remoteEP(t, rc, srv.Addr()+"/team-b/cnstack:v1"), Options{MountFrom: []string{"team-a/cnstack"}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Mounted == 0 || second.Bytes >= first.Bytes {
		t.Fatalf("second repository: %d mounted, %d bytes sent (first push sent %d)", second.Mounted, second.Bytes, first.Bytes)
	}
	t.Logf("first push %d bytes; second repository %d blobs mounted, %d bytes sent", first.Bytes, second.Mounted, second.Bytes)
}

// Issue 9: transfer matched platforms by its own rule, under which
// --platform linux/arm64/v8 dropped an index's plain linux/arm64 image that
// build, install and verify (oci.MatchPlatform) all take for it.
func TestCopyPlatformsFollowOneMatchRule(t *testing.T) {
	s := sample(t)
	root, err := s.Resolve(ctx, top)
	if err != nil {
		t.Fatal(err)
	}
	children, err := s.Children(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want   string
		arches []string
	}{
		{"linux/arm64/v8", []string{"arm64"}},
		{"linux/arm64", []string{"arm64"}},
		{"linux/amd64,linux/arm64/v8", []string{"amd64", "arm64"}},
		{"linux/arm/v7", nil},
	} {
		plats, err := oci.ParsePlatforms([]string{tc.want})
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := store.Open(t.TempDir())
		if _, err := Copy(ctx, storeEP(t, s, top), storeEP(t, dst, top), Options{Platforms: plats}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range children {
			if ok, _ := dst.Exists(ctx, c); ok {
				got = append(got, c.Platform.Architecture)
				if !oci.MatchAnyPlatform(*c.Platform, plats) {
					t.Errorf("--platform %s copied %s, which oci.SelectPlatform would not pick", tc.want, oci.PlatformString(*c.Platform))
				}
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.arches, ",") {
			t.Errorf("--platform %s copied %v, want %v", tc.want, got, tc.arches)
		}
		for _, p := range plats {
			if _, err := oci.SelectPlatform(ctx, s, root, p); (err == nil) != (len(tc.arches) > 0) {
				t.Errorf("oci.SelectPlatform(%s) = %v, disagreeing with the copy", oci.PlatformString(p), err)
			}
		}
	}
}
