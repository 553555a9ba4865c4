package collect

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"
)

// upstream is an in-process go-containerregistry registry on 127.0.0.1,
// served through a proxy that records requests and can inject faults.
type upstream struct {
	t        *testing.T
	Addr     string // the proxy: what clients use
	Registry string // the registry itself, for pushing test images
	mu       sync.Mutex
	requests []string // "GET /v2/…[ Range]"
	// fault, when set, may handle a request itself (return true).
	fault func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{t: t}
	reg := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	t.Cleanup(reg.Close)
	target, _ := url.Parse(reg.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = discardLogger()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.URL.Path
		if rg := r.Header.Get("Range"); rg != "" {
			line += " " + rg
		}
		u.mu.Lock()
		u.requests = append(u.requests, line)
		fault := u.fault
		u.mu.Unlock()
		if fault != nil && fault(w, r, proxy) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	u.Addr = strings.TrimPrefix(front.URL, "http://")
	u.Registry = strings.TrimPrefix(reg.URL, "http://")
	return u
}

func (u *upstream) setFault(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	u.mu.Lock()
	u.fault = f
	u.mu.Unlock()
}

// blobGets counts GET requests for blobs (not manifests) since the last reset.
func (u *upstream) blobGets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.requests {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/") {
			out = append(out, r)
		}
	}
	return out
}

func (u *upstream) manifestGets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.requests {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/manifests/") {
			out = append(out, r)
		}
	}
	return out
}

func (u *upstream) reset() {
	u.mu.Lock()
	u.requests = nil
	u.mu.Unlock()
}

func (u *upstream) push(repoTag string, img v1.Image) v1.Hash {
	u.t.Helper()
	ref, err := name.ParseReference(u.Registry+"/"+repoTag, name.Insecure)
	if err != nil {
		u.t.Fatal(err)
	}
	if err := ggcrremote.Write(ref, img); err != nil {
		u.t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

func (u *upstream) pushIndex(repoTag string, idx v1.ImageIndex) v1.Hash {
	u.t.Helper()
	ref, err := name.ParseReference(u.Registry+"/"+repoTag, name.Insecure)
	if err != nil {
		u.t.Fatal(err)
	}
	if err := ggcrremote.WriteIndex(ref, idx); err != nil {
		u.t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// randomImage is an image of n random layers of size bytes, for platform.
func randomImage(t *testing.T, size int64, n int, platform string, shared ...v1.Layer) v1.Image {
	t.Helper()
	img, err := random.Image(size, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) > 0 {
		if img, err = mutate.AppendLayers(img, shared...); err != nil {
			t.Fatal(err)
		}
	}
	if platform != "" {
		p, _ := v1.ParsePlatform(platform)
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func multiArch(t *testing.T, platforms ...string) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	imgs := map[string]v1.Image{}
	for _, ps := range platforms {
		p, _ := v1.ParsePlatform(ps)
		img := randomImage(t, 1024, 2, ps)
		imgs[ps] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return idx, imgs
}

// rig is a collector with its own store, talking to upstreams.
type rig struct {
	t     *testing.T
	store *store.Store
	c     *Collector
	out   *strings.Builder
}

func newRig(t *testing.T, opts regclient.Options) *rig {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.DockerConfig == "" {
		opts.DockerConfig = filepath.Join(t.TempDir(), "config.json")
		os.WriteFile(opts.DockerConfig, []byte(`{"auths":{}}`), 0o600)
	}
	opts.MaxRetry = 3
	rc, err := regclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	return &rig{t: t, store: s, c: &Collector{Store: s, Remote: rc, Out: &syncWriter{w: out}}, out: out}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// rootWith is an image root whose manifests/imageList names refs.
func rootWith(t *testing.T, refs ...string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "manifests"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "manifests", "imageList"), []byte(strings.Join(refs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (r *rig) collect(root string, platform string, mod ...func(*collector.Request)) (*collector.Result, error) {
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		r.t.Fatal(err)
	}
	req := collector.Request{
		Name: "test", Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		Root: os.DirFS(root),
	}
	for _, m := range mod {
		m(&req)
	}
	return r.c.Collect(context.Background(), req)
}

// writeTree materialises collected entries under dir/registry and reads the tree back.
func writeTree(t *testing.T, dir string, res *collector.Result) *registrytree.Tree {
	t.Helper()
	for _, e := range res.Entries {
		dst := filepath.Join(dir, filepath.FromSlash(e.Name))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		rc, err := e.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != e.Size {
			t.Fatalf("%s: %d bytes, entry says %d", e.Name, len(b), e.Size)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := registrytree.Read(filepath.Join(dir, registrytree.ImageDir))
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func dockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(p, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func hashToDigest(h v1.Hash) string { return h.String() }
