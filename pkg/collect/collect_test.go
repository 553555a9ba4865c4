package collect

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"
)

func digestsOf(t *testing.T, img v1.Image) (top digest.Digest, blobs []digest.Digest) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	blobs = append(blobs, digest.Digest(m.Config.Digest.String()))
	for _, l := range m.Layers {
		blobs = append(blobs, digest.Digest(l.Digest.String()))
	}
	return digest.Digest(d.String()), blobs
}

func TestCollectSelectsPlatformFromIndex(t *testing.T) {
	up := newUpstream(t)
	idx, imgs := multiArch(t, "linux/amd64", "linux/arm64/v8")
	idxDigest := up.pushIndex("multi/app:v1", idx)
	ref := up.Addr + "/multi/app:v1"
	for _, tt := range []struct{ build, child string }{
		{"linux/amd64", "linux/amd64"},
		{"linux/arm64", "linux/arm64/v8"},    // no variant asked: any arm64
		{"linux/arm64/v8", "linux/arm64/v8"}, // exact
		{"linux/arm64/v7", "linux/arm64/v8"}, // sealer ignores arm64 variants
	} {
		t.Run(tt.build, func(t *testing.T) {
			r := newRig(t, regclient.Options{})
			res, err := r.collect(rootWith(t, ref), tt.build)
			if err != nil {
				t.Fatal(err)
			}
			tree := writeTree(t, t.TempDir(), res)
			repo := tree.Repository("multi/app")
			if repo == nil {
				t.Fatalf("no multi/app repository in\n%s", tree.Listing())
			}
			if repo.Tags["v1"].String() != idxDigest.String() {
				t.Errorf("tag v1 -> %s, want the index %s", repo.Tags["v1"], idxDigest)
			}
			child, blobs := digestsOf(t, imgs[tt.child])
			if fmt.Sprint(repo.Revisions) != fmt.Sprint(sortedDigests(digest.Digest(idxDigest.String()), child)) {
				t.Errorf("revisions %v, want the index and %s's manifest %s", repo.Revisions, tt.child, child)
			}
			if fmt.Sprint(repo.Layers) != fmt.Sprint(sortedDigests(blobs...)) {
				t.Errorf("layers %v, want %v", repo.Layers, sortedDigests(blobs...))
			}
			for ps, img := range imgs {
				if ps == tt.child {
					continue
				}
				other, otherBlobs := digestsOf(t, img)
				for _, d := range append(otherBlobs, other) {
					if tree.HasBlob(d) {
						t.Errorf("the %s image's blob %s is in the %s tree", ps, d, tt.build)
					}
				}
			}
			if p := tree.Problems(); len(p) > 0 {
				t.Errorf("tree problems: %v", p)
			}
			want := []clusterimage.ContainerImage{{Image: ref, Platform: &clusterimage.Platform{OS: "linux", Architecture: strings.Split(tt.build, "/")[1], Variant: variantOf(tt.build)}}}
			if fmt.Sprint(derefImages(res.Images)) != fmt.Sprint(derefImages(want)) {
				t.Errorf("images %v, want %v", derefImages(res.Images), derefImages(want))
			}
		})
	}

	t.Run("missing platform", func(t *testing.T) {
		r := newRig(t, regclient.Options{})
		_, err := r.collect(rootWith(t, ref), "linux/s390x")
		var ie *ImageError
		var pe *PlatformError
		if !errors.As(err, &ie) || !errors.As(err, &pe) {
			t.Fatalf("err = %v, want an ImageError with a PlatformError", err)
		}
		for _, want := range []string{ref, "linux/s390x", up.Addr, "linux/amd64", "linux/arm64/v8"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
}

func variantOf(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) == 3 {
		return parts[2]
	}
	return ""
}

func derefImages(list []clusterimage.ContainerImage) []string {
	var out []string
	for _, c := range list {
		s := c.Image + " app=" + c.AppName
		if c.Platform != nil {
			s += fmt.Sprintf(" %s/%s/%s", c.Platform.OS, c.Platform.Architecture, c.Platform.Variant)
		}
		out = append(out, s)
	}
	return out
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	out := append([]digest.Digest(nil), ds...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestBlobDedupe(t *testing.T) {
	up := newUpstream(t)
	shared, err := random.Layer(64<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	img1 := randomImage(t, 32<<10, 2, "linux/amd64", shared)
	img2 := randomImage(t, 32<<10, 1, "linux/amd64", shared)
	img3 := randomImage(t, 32<<10, 1, "linux/amd64", shared)
	up.push("team/one:v1", img1)
	up.push("team/two:v1", img2)
	up.push("team/three:v1", img3)
	one, two, three := up.Addr+"/team/one:v1", up.Addr+"/team/two:v1", up.Addr+"/team/three:v1"
	sharedDigest, _ := shared.Digest()

	r := newRig(t, regclient.Options{})
	parent, err := r.collect(rootWith(t, one, two), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	gets := up.blobGets()
	seen := map[string]int{}
	for _, g := range gets {
		seen[g]++
	}
	for g, n := range seen {
		if n != 1 {
			t.Errorf("%s fetched %d times", g, n)
		}
	}
	if want := 4 + 3 - 1; len(gets) != want { // one: config + 3 layers; two: config + 2; the shared layer once
		t.Errorf("%d blob fetches, want %d: %v", len(gets), want, gets)
	}

	t.Run("a later build pulls nothing it has", func(t *testing.T) {
		up.reset()
		again, err := r.collect(rootWith(t, two), "linux/amd64")
		if err != nil {
			t.Fatal(err)
		}
		if g := up.blobGets(); len(g) != 0 {
			t.Errorf("second collection fetched blobs again: %v", g)
		}
		if !strings.Contains(r.out.String(), two+": cached") {
			t.Errorf("progress does not say %s was cached:\n%s", two, r.out)
		}
		if len(again.Entries) == 0 {
			t.Errorf("a cached image still needs its tree files")
		}
	})

	t.Run("a child carries only what its parent lacks", func(t *testing.T) {
		up.reset()
		has := map[string]bool{}
		for _, e := range parent.Entries {
			has[e.Name] = true
		}
		child, err := r.collect(rootWith(t, one, two, three), "linux/amd64", func(req *collector.Request) {
			req.Base = parent.Images
			req.BaseHas = func(p string) bool { return has[p] }
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range child.Entries {
			if has[e.Name] && !strings.HasSuffix(e.Name, "/current/link") {
				t.Errorf("child repeats the parent's %s", e.Name)
			}
			if strings.Contains(e.Name, "/repositories/team/one/") || strings.Contains(e.Name, "/repositories/team/two/") {
				t.Errorf("child re-collects an image of its parent: %s", e.Name)
			}
		}
		sharedPath := registrytree.ImageDir + "/" + registrytree.BlobPath(digest.Digest(sharedDigest.String()))
		for _, e := range child.Entries {
			if e.Name == sharedPath {
				t.Errorf("child carries the shared layer the parent has")
			}
		}
		_, blobs3 := digestsOf(t, img3)
		var linked bool
		for _, e := range child.Entries {
			if e.Name == registrytree.ImageDir+"/"+registrytree.LayerLinkPath("team/three", digest.Digest(sharedDigest.String())) {
				linked = true
			}
		}
		if !linked {
			t.Errorf("child lacks team/three's link to the shared layer")
		}
		// The union of parent and child is a complete tree.
		dir := t.TempDir()
		writeTree(t, dir, parent)
		tree := writeTree(t, dir, child)
		if p := tree.Problems(); len(p) > 0 {
			t.Errorf("parent+child tree problems: %v", p)
		}
		for _, d := range blobs3 {
			if !tree.HasBlob(d) {
				t.Errorf("team/three blob %s missing", d)
			}
		}
		if g := up.blobGets(); len(g) != 2 { // team/three's config and own layer
			t.Errorf("child fetched %v, want only team/three's two new blobs", g)
		}
		if len(child.Images) != 3 {
			t.Errorf("child lists %v, want the parent's two and its own", derefImages(child.Images))
		}
	})
}

// abortAfter is a ResponseWriter that drops the connection once n body
// bytes are through.
type abortAfter struct {
	http.ResponseWriter
	n int
}

func (a *abortAfter) Write(p []byte) (int, error) {
	if len(p) >= a.n {
		m, _ := a.ResponseWriter.Write(p[:a.n])
		a.ResponseWriter.(http.Flusher).Flush()
		a.n = 0
		_ = m
		panic(http.ErrAbortHandler)
	}
	a.n -= len(p)
	return a.ResponseWriter.Write(p)
}

func (a *abortAfter) Flush() { a.ResponseWriter.(http.Flusher).Flush() }

func TestResumePartialBlob(t *testing.T) {
	up := newUpstream(t)
	big, err := random.Layer(3<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t, 1024, 1, "linux/amd64", big)
	up.push("big/img:v1", img)
	bigDigest, _ := big.Digest()
	var dropped atomic.Bool
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+bigDigest.String()) && r.Method == http.MethodGet && dropped.CompareAndSwap(false, true) {
			next.ServeHTTP(&abortAfter{ResponseWriter: w, n: 1 << 20}, r)
			return true
		}
		return false
	})
	r := newRig(t, regclient.Options{})
	if _, err := r.collect(rootWith(t, up.Addr+"/big/img:v1"), "linux/amd64"); err != nil {
		t.Fatal(err)
	}
	var tries []string
	for _, g := range up.blobGets() {
		if strings.Contains(g, bigDigest.String()) {
			tries = append(tries, g)
		}
	}
	if len(tries) != 2 {
		t.Fatalf("big blob fetched %d times, want 2 (dropped, resumed): %v", len(tries), tries)
	}
	var start, end int64
	size, _ := big.Size()
	if _, err := fmt.Sscanf(tries[1][strings.Index(tries[1], " bytes=")+1:], "bytes=%d-%d", &start, &end); err != nil || start <= 0 || start > 1<<20 || end != size-1 {
		t.Errorf("second fetch %q: want a Range from where the first stopped (≤ 1 MiB) to the end", tries[1])
	}
	rc, err := r.store.Fetch(context.Background(), ocispec.Descriptor{Digest: digest.Digest(bigDigest.String())})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if digest.FromBytes(got).String() != bigDigest.String() {
		t.Errorf("resumed blob has digest %s", digest.FromBytes(got))
	}
}

func TestRetryOn500(t *testing.T) {
	up := newUpstream(t)
	img := randomImage(t, 4096, 1, "linux/amd64")
	up.push("flaky/img:v1", img)
	_, blobs := digestsOf(t, img)
	var failures atomic.Int32
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+blobs[1].String()) && failures.Add(1) <= 2 {
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"try again"}]}`, http.StatusInternalServerError)
			return true
		}
		return false
	})
	r := newRig(t, regclient.Options{})
	if _, err := r.collect(rootWith(t, up.Addr+"/flaky/img:v1"), "linux/amd64"); err != nil {
		t.Fatalf("collection failed despite retries: %v", err)
	}
	if n := failures.Load(); n != 3 {
		t.Errorf("layer requested %d times, want 3 (two 500s, then success)", n)
	}
	if ok, _ := r.store.Exists(context.Background(), ocispec.Descriptor{Digest: blobs[1]}); !ok {
		t.Errorf("layer not in the store")
	}
}

func TestAuth(t *testing.T) {
	up := newUpstream(t)
	up.push("private/img:v1", randomImage(t, 1024, 1, "linux/amd64"))
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return true
		}
		return false
	})
	ref := up.Addr + "/private/img:v1"
	for _, tt := range []struct {
		name, config, wantErr string
	}{
		{"wrong password", dockerConfig(t, up.Addr, "alice", "wrong"), "authentication failed (HTTP 401)"},
		{"no credentials", "", "authentication required"},
		{"right password", dockerConfig(t, up.Addr, "alice", "s3cret"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, regclient.Options{DockerConfig: tt.config})
			_, err := r.collect(rootWith(t, ref), "linux/amd64")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *regclient.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an AuthError", err)
			}
			for _, w := range []string{tt.wantErr, ref, up.Addr} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestDigestMismatchRefused(t *testing.T) {
	up := newUpstream(t)
	img := randomImage(t, 64<<10, 1, "linux/amd64")
	up.push("evil/img:v1", img)
	_, blobs := digestsOf(t, img)
	layerDigest := blobs[1]
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+layerDigest.String()) {
			next.ServeHTTP(&flipByte{ResponseWriter: w, at: 1000}, r)
			return true
		}
		return false
	})
	r := newRig(t, regclient.Options{})
	ref := up.Addr + "/evil/img:v1"
	res, err := r.collect(rootWith(t, ref), "linux/amd64")
	if !errors.Is(err, store.ErrDigestMismatch) || !errors.Is(err, content.ErrMismatchedDigest) || res != nil {
		t.Fatalf("res %v, err = %v; want store.ErrDigestMismatch (content.ErrMismatchedDigest) and no result", res, err)
	}
	for _, w := range []string{"digest mismatch", ref, up.Addr, layerDigest.String()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if ok, _ := r.store.Exists(context.Background(), ocispec.Descriptor{Digest: layerDigest}); ok {
		t.Errorf("the corrupt blob was committed to the store")
	}
	if _, err := os.Stat(filepath.Join(r.store.Root(), "ingest", layerDigest.Encoded()+".partial")); !os.IsNotExist(err) {
		t.Errorf("corrupt bytes kept for resuming: %v", err)
	}
}

// flipByte inverts the body byte at offset at.
type flipByte struct {
	http.ResponseWriter
	at int
}

func (f *flipByte) Write(p []byte) (int, error) {
	if f.at >= 0 && f.at < len(p) {
		q := bytes.Clone(p)
		q[f.at] ^= 0xff
		f.at = -1
		return f.ResponseWriter.Write(q)
	}
	if f.at >= 0 {
		f.at -= len(p)
	}
	return f.ResponseWriter.Write(p)
}

func TestErrorsNameImageEndpointAndCause(t *testing.T) {
	up := newUpstream(t)
	gone := closedAddr(t)
	tests := []struct {
		name    string
		ref     string
		opts    regclient.Options
		want    []string
		errType any
	}{
		{"unknown image", up.Addr + "/nope/missing:v1", regclient.Options{}, []string{up.Addr + "/nope/missing:v1", up.Addr, "manifest unknown"}, new(*regclient.NotFoundError)},
		{"unreachable registry", gone + "/x/y:1", regclient.Options{}, []string{gone + "/x/y:1", gone, "registry unreachable"}, new(*regclient.UnreachableError)},
		{"unreachable mirror", "docker.io/library/redis:7.2", regclient.Options{Mirrors: map[string]string{"docker.io": gone}}, []string{"docker.io/library/redis:7.2", gone, "registry unreachable"}, new(*regclient.UnreachableError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.opts)
			_, err := r.collect(rootWith(t, tt.ref), "linux/amd64")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.As(err, tt.errType) {
				t.Errorf("err %v is not a %T", err, tt.errType)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "found in manifests/imageList") {
				t.Errorf("error %q does not say where the reference was found", err)
			}
		})
	}
}

func TestLockedBuilds(t *testing.T) {
	up := newUpstream(t)
	idx, _ := multiArch(t, "linux/amd64", "linux/arm64")
	up.pushIndex("locked/multi:v1", idx)
	first := randomImage(t, 2048, 1, "linux/amd64")
	firstDigest := up.push("locked/single:v1", first)
	multi, single := up.Addr+"/locked/multi:v1", up.Addr+"/locked/single:v1"
	unpinned := up.Addr + "/locked/other:v1"
	up.push("locked/other:v1", randomImage(t, 2048, 1, "linux/amd64"))

	r := newRig(t, regclient.Options{})
	lf := &lockfile.File{Version: lockfile.Version}
	for _, ref := range []string{multi, single} {
		im, err := r.c.LockImage(context.Background(), ref, []ocispec.Platform{{OS: "linux", Architecture: "amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		lf.Images = append(lf.Images, im)
	}
	lockPath := filepath.Join(t.TempDir(), lockfile.FileName)
	if err := lockfile.Write(lockPath, lf); err != nil {
		t.Fatal(err)
	}
	// The tag moves after locking: a build with the lock keeps the old image.
	up.push("locked/single:v1", randomImage(t, 2048, 1, "linux/amd64"))

	locked := func(req *collector.Request) {
		req.Options.Locked = true
		req.Options.LockFile = lockPath
	}
	t.Run("unpinned refused, each named", func(t *testing.T) {
		r := newRig(t, regclient.Options{})
		_, err := r.collect(rootWith(t, multi, unpinned, up.Addr+"/locked/third:v2"), "linux/amd64", locked)
		if err == nil || !errors.Is(err, lockfile.ErrUnpinned) && !strings.Contains(err.Error(), "not pinned") {
			t.Fatalf("err = %v", err)
		}
		for _, w := range []string{unpinned, up.Addr + "/locked/third:v2", "2 container images are not pinned"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	})
	t.Run("platform not locked is drift", func(t *testing.T) {
		r := newRig(t, regclient.Options{})
		_, err := r.collect(rootWith(t, multi), "linux/arm64", locked)
		if err == nil || !strings.Contains(err.Error(), "differs from the lock file") || !strings.Contains(err.Error(), multi) {
			t.Fatalf("err = %v, want drift naming %s", err, multi)
		}
	})
	t.Run("pinned pulls by digest only", func(t *testing.T) {
		up.reset()
		r := newRig(t, regclient.Options{})
		res, err := r.collect(rootWith(t, multi, single), "linux/amd64", locked)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range up.manifestGets() {
			if !strings.Contains(g, "/manifests/sha256:") {
				t.Errorf("a locked build asked for a tag: %s", g)
			}
		}
		tree := writeTree(t, t.TempDir(), res)
		if got := tree.Repository("locked/single").Tags["v1"].String(); got != firstDigest.String() {
			t.Errorf("locked build carries %s, want the locked %s", got, firstDigest)
		}
	})
	t.Run("without --locked, unpinned images resolve their tags", func(t *testing.T) {
		r := newRig(t, regclient.Options{})
		_, err := r.collect(rootWith(t, single, unpinned), "linux/amd64", func(req *collector.Request) { req.Options.LockFile = lockPath })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.out.String(), unpinned+": not pinned by the lock file") {
			t.Errorf("no note about the unpinned image:\n%s", r.out)
		}
	})
	t.Run("a warm cache needs no registry", func(t *testing.T) {
		r2 := &Collector{Store: r.store} // no registry access at all
		if _, err := r.collect(rootWith(t, multi, single), "linux/amd64", locked); err != nil {
			t.Fatal(err)
		}
		req := collector.Request{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Root: os.DirFS(rootWith(t, multi, single))}
		locked(&req)
		if _, err := r2.Collect(context.Background(), req); err != nil {
			t.Errorf("locked collection from a warm store failed without a registry: %v", err)
		}
	})
}

func TestLockImage(t *testing.T) {
	up := newUpstream(t)
	idx, imgs := multiArch(t, "linux/amd64", "linux/arm64/v8")
	idxDigest := up.pushIndex("lk/multi:v1", idx)
	r := newRig(t, regclient.Options{})
	ref := up.Addr + "/lk/multi:v1"
	im, err := r.c.LockImage(context.Background(), ref, []ocispec.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	amd, _ := imgs["linux/amd64"].Digest()
	arm, _ := imgs["linux/arm64/v8"].Digest()
	want := fmt.Sprintf("{%s %s %s [{linux/arm64 %s} {linux/amd64 %s}] []}", ref, idxDigest, ocispec.MediaTypeImageIndex, arm, amd)
	if got := fmt.Sprint(im); got != want {
		t.Errorf("LockImage = %s\nwant %s", got, want)
	}
	_, err = r.c.LockImage(context.Background(), ref, []ocispec.Platform{{OS: "linux", Architecture: "ppc64le"}})
	if err == nil || !strings.Contains(err.Error(), "linux/ppc64le") || !strings.Contains(err.Error(), ref) {
		t.Errorf("missing platform: err = %v", err)
	}
}

// A manifest is what its bytes say (pkg/manifest), whatever the registry
// claims: a Docker schema 1 manifest is refused, as sealer does, naming
// the image and the registry; an index served as a manifest is an index.
func TestManifestJudgedByContent(t *testing.T) {
	up := newUpstream(t)
	idx, _ := multiArch(t, "linux/amd64", "linux/arm64")
	up.pushIndex("judge/multi:v1", idx)
	schema1 := []byte(`{"schemaVersion":1,"name":"judge/old","tag":"v1","fsLayers":[],"history":[]}`)
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/judge/old/manifests/v1"):
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(schema1).String())
			w.Header().Set("Content-Length", fmt.Sprint(len(schema1)))
			w.Write(schema1)
			return true
		case strings.HasSuffix(r.URL.Path, "/judge/multi/manifests/v1"):
			next.ServeHTTP(&contentType{ResponseWriter: w, value: ocispec.MediaTypeImageManifest}, r)
			return true
		}
		return false
	})
	r := newRig(t, regclient.Options{})
	old := up.Addr + "/judge/old:v1"
	_, err := r.collect(rootWith(t, old), "linux/amd64")
	for _, want := range []string{"Docker schema 1", old, up.Addr} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("schema 1: err = %v, want it to say %q", err, want)
		}
	}
	if !errors.Is(err, manifest.ErrInvalid) {
		t.Errorf("schema 1: err = %v, want manifest.ErrInvalid", err)
	}
	res, err := r.collect(rootWith(t, up.Addr+"/judge/multi:v1"), "linux/arm64")
	if err != nil {
		t.Fatalf("an index served as a manifest: %v", err)
	}
	tree := writeTree(t, t.TempDir(), res)
	if p := tree.Problems(); len(p) > 0 {
		t.Errorf("tree problems: %v", p)
	}
}

// contentType overrides the Content-Type header of a response.
type contentType struct {
	http.ResponseWriter
	value string
}

func (c *contentType) WriteHeader(code int) {
	c.ResponseWriter.Header().Set("Content-Type", c.value)
	c.ResponseWriter.WriteHeader(code)
}

// Issue 8 defect 8: a registry that stops sending in the middle of a layer
// makes the collection fail (after the retries, which resume with Range)
// with an error naming the image and the registry, instead of hanging.
func TestStalledBlobFails(t *testing.T) {
	up := newUpstream(t)
	img := randomImage(t, 64<<10, 1, "linux/amd64")
	up.push("stall/img:v1", img)
	_, blobs := digestsOf(t, img)
	release := make(chan struct{})
	defer close(release)
	var stalls atomic.Int32
	up.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+blobs[1].String()) {
			return false
		}
		stalls.Add(1)
		w.Header().Set("Content-Length", "65536")
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, 100))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	r := newRig(t, regclient.Options{IdleTimeout: 200 * time.Millisecond})
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := r.collect(rootWith(t, up.Addr+"/stall/img:v1"), "linux/amd64")
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(2 * time.Minute):
		t.Fatal("collection hangs on a stalled registry")
	}
	for _, want := range []string{up.Addr + "/stall/img:v1", up.Addr, "stalled transfer"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to say %q", err, want)
		}
	}
	t.Logf("failed after %s and %d stalled requests: %v", time.Since(start).Round(time.Millisecond), stalls.Load(), err)
}
