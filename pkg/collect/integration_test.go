package collect_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/sampleimages"
	"github.com/cnstack/cnstack/internal/testutil/regproc"
	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

const sampleStack = "../../testdata/stack"

// serveSamples runs an in-process registry holding the sample images.
func serveSamples(t *testing.T) (string, []*sampleimages.Sample) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	samples, err := sampleimages.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	if err := sampleimages.PushSamples(context.Background(), addr, samples); err != nil {
		t.Fatal(err)
	}
	return addr, samples
}

// TestSampleStackImages checks that the sample images cover every image the
// sample stack refers to, as lock and the collector discover them.
func TestSampleStackImages(t *testing.T) {
	s, err := stack.Load(sampleStack, nil)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := sampleimages.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, smp := range samples {
		have[smp.Ref] = true
	}
	for _, p := range s.Platforms {
		views, err := collect.StackViews(context.Background(), s, t.TempDir(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, v := range views {
			res, err := collect.Discover(context.Background(), os.DirFS(v.Dir), collect.DiscoverOptions{Env: v.Env(), Extension: v.Extension})
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range res.Images {
				found[im.Ref] = true
				if !have[im.Ref] {
					t.Errorf("layer %s (%s) refers to %s, which testdata/images/images.yaml lacks", v.Name, p, im.Ref)
				}
			}
		}
		for ref := range have {
			if !found[ref] {
				t.Errorf("sample image %s is not referred to by the stack", ref)
			}
		}
	}
}

// TestBuildSampleStack builds the sample stack with the collector, images
// served from the sample registry through mirrors, then serves the top
// image's registry tree with the real registry (read-only) and pulls every
// image by its stripped name, by tag and by digest.
func TestBuildSampleStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole sample stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr, samples := serveSamples(t)

	home := t.TempDir()
	st, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := build.OpenCache(filepath.Join(home, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "config.json")
	os.WriteFile(cfg, []byte(`{"auths":{}}`), 0o600)
	rc, err := regclient.New(regclient.Options{DockerConfig: cfg, Mirrors: map[string]string{"docker.io": addr, "registry.k8s.io": addr}})
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	b := &build.Builder{Store: st, Cache: cache, Remote: rc, HTTP: rc.HTTPClient(), Out: &out,
		Collector: &collect.Collector{Store: st, Remote: rc, Out: &out}}
	s, err := stack.Load(sampleStack, nil)
	if err != nil {
		t.Fatal(err)
	}
	results, err := b.BuildStack(ctx, s, build.StackOptions{Mode: build.ModeAll})
	t.Logf("build output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	byLayer := map[string]*build.Result{}
	for _, r := range results {
		byLayer[r.Layer.Name] = r.Result
	}

	samplesByRef := map[string]*sampleimages.Sample{}
	for _, smp := range samples {
		samplesByRef[smp.Ref] = smp
	}
	for _, tt := range []struct {
		layer string
		want  []string
	}{
		{"cnstack", nil}, // every sample but busybox
		{"addon-demo", []string{"docker.io/library/busybox:1.36"}},
	} {
		t.Run(tt.layer, func(t *testing.T) {
			want := tt.want
			if want == nil {
				for ref := range samplesByRef {
					if !strings.Contains(ref, "busybox") {
						want = append(want, ref)
					}
				}
			}
			sort.Strings(want)
			man := readManifest(t, st, byLayer[tt.layer].Descriptor)
			list, err := clusterimage.ParseContainerImages(man.Annotations[clusterimage.AnnotationContainerImages])
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ci := range list {
				got = append(got, ci.Image)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s annotation lists\n%s\nwant\n%s", clusterimage.AnnotationContainerImages, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			root := t.TempDir()
			seen := extractRegistry(t, st, man, root)
			for p, n := range seen {
				if n > 1 && strings.Contains(p, "/blobs/") {
					t.Errorf("blob %s is stored in %d layers of the stack", p, n)
				}
			}
			tree, err := registrytree.Read(filepath.Join(root, registrytree.ImageDir))
			if err != nil {
				t.Fatal(err)
			}
			if p := tree.Problems(); len(p) > 0 {
				t.Errorf("tree problems: %v", p)
			}
			reg := regproc.Start(t, regproc.Options{Root: filepath.Join(root, registrytree.ImageDir)})
			for _, ref := range want {
				smp := samplesByRef[ref]
				checkPull(t, ctx, reg.Addr, smp)
			}
		})
	}

	// A rebuild is cached and downloads nothing.
	out.Reset()
	if _, err := b.BuildStack(ctx, s, build.StackOptions{Mode: build.ModeAll}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), ": pulled ") {
		t.Errorf("rebuild pulled images again:\n%s", out.String())
	}
}

// checkPull pulls a sample from the tree's registry by stripped name, by
// tag and by digest, and checks what it gets.
func checkPull(t *testing.T, ctx context.Context, addr string, smp *sampleimages.Sample) {
	t.Helper()
	top, err := smp.Digest()
	if err != nil {
		t.Fatal(err)
	}
	amd := smp.Image
	if smp.Index != nil {
		amd = smp.Platforms["linux/amd64"]
	}
	wantChild, _ := amd.Digest()
	for _, r := range []string{addr + "/" + smp.Repository + ":" + smp.Tag, addr + "/" + smp.Repository + "@" + top.String()} {
		ref, err := name.ParseReference(r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := ggcrremote.Get(ref, ggcrremote.WithContext(ctx))
		if err != nil {
			t.Errorf("%s (%s): %v", r, smp.Ref, err)
			continue
		}
		if desc.Digest != top {
			t.Errorf("%s: digest %s, want %s", r, desc.Digest, top)
		}
		img, err := ggcrremote.Image(ref, ggcrremote.WithContext(ctx), ggcrremote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			t.Errorf("%s: image for linux/amd64: %v", r, err)
			continue
		}
		if d, _ := img.Digest(); d != wantChild {
			t.Errorf("%s: linux/amd64 image %s, want %s", r, d, wantChild)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest as it reads
			if err != nil {
				t.Errorf("%s: layer: %v", r, err)
				continue
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Errorf("%s: layer: %v", r, err)
			}
			rc.Close()
		}
	}
}

func readManifest(t *testing.T, st *store.Store, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	b, err := st.ReadBlob(context.Background(), d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// extractRegistry writes the registry/ files of every layer of m into root
// (later layers over earlier ones, as sealer's rootfs merge does) and
// counts how many layers hold each path.
func extractRegistry(t *testing.T, st *store.Store, m ocispec.Manifest, root string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, l := range m.Layers {
		rc, err := st.Fetch(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeReg || !strings.HasPrefix(h.Name, registrytree.ImageDir+"/") {
				continue
			}
			seen[h.Name]++
			dst := filepath.Join(root, filepath.FromSlash(h.Name))
			os.MkdirAll(filepath.Dir(dst), 0o755)
			f, err := os.Create(dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		rc.Close()
	}
	return seen
}

// lockedBuffer is an io.Writer for the builder, which logs from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
