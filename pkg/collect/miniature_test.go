package collect_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/chartref"
	"github.com/cnstack/cnstack/pkg/chartrepo"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

const productStack = "../../Kubefiles"

// miniUpstream stands in for the internet: chart repositories and archive
// URLs on one HTTP server (the upstream host is the first path element),
// OCI charts and container images in one registry (docker.io mirrored to it).
type miniUpstream struct {
	charts   *httptest.Server
	reg      *httptest.Server
	regAddr  string
	mu       sync.Mutex
	files    map[string][]byte          // path -> archive
	indexes  map[string]map[string]bool // repository path -> "name version"
	images   map[string]bool            // docker.io references the stand-ins name
	requests []string
}

func newMiniUpstream(t *testing.T) *miniUpstream {
	u := &miniUpstream{files: map[string][]byte{}, indexes: map[string]map[string]bool{}, images: map[string]bool{}}
	u.charts = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.charts.Close)
	u.reg = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(u.reg.Close)
	u.regAddr = strings.TrimPrefix(u.reg.URL, "http://")
	return u
}

func (u *miniUpstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests = append(u.requests, r.URL.Path)
	if repo, ok := strings.CutSuffix(r.URL.Path, "/index.yaml"); ok && u.indexes[repo] != nil {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nentries:\n")
		last := ""
		for _, nv := range slices.Sorted(mapKeys(u.indexes[repo])) {
			n, v, _ := strings.Cut(nv, " ")
			if n != last {
				fmt.Fprintf(&b, "  %s:\n", n)
				last = n
			}
			arch := u.files[repo+"/"+n+"-"+v+".tgz"]
			fmt.Fprintf(&b, "  - version: %s\n    urls: [%s-%s.tgz]\n    digest: %s\n", v, n, v, digest.FromBytes(arch).Encoded())
		}
		io.WriteString(w, b.String())
		return
	}
	if b, ok := u.files[r.URL.Path]; ok {
		w.Write(b)
		return
	}
	http.NotFound(w, r)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// rewrite points a Kubefile's upstream chart sources at the stand-ins.
func (u *miniUpstream) rewrite(kubefile string) string {
	host := strings.TrimPrefix(u.charts.URL, "http://")
	kubefile = strings.ReplaceAll(kubefile, "helm+https://", "helm+http://"+host+"/")
	return strings.ReplaceAll(kubefile, "oci://registry-1.docker.io/", "oci://"+u.regAddr+"/")
}

// standIn is a chart named and versioned as ref whose one Deployment runs
// docker.io/cnstackmini/<chart>:<version>, in its release's namespace.
// kube-prometheus-stack keeps its real kubeVersion floor (1.25 from 73.0.0),
// so an ack pin that forgets Kubernetes 1.22 fails as the real one would.
func standIn(t *testing.T, ref chartref.Ref) ([]byte, string) {
	image := "docker.io/cnstackmini/" + ref.Name + ":" + ref.Version
	kubeVersion := ">=1.19.0-0"
	if ref.Name == "kube-prometheus-stack" && !strings.HasPrefix(ref.Version, "72.") {
		kubeVersion = ">=1.25.0-0"
	}
	files := map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\nkubeVersion: %q\n", ref.Name, ref.Version, kubeVersion),
		"values.yaml": "standIn:\n  image: " + image + "\n",
		"templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: '{{ .Release.Name }}', namespace: '{{ .Release.Namespace }}'}\n" +
			"spec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: '{{ .Values.standIn.image }}'\n",
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range slices.Sorted(mapKeys(files)) {
		body := files[n]
		tw.WriteHeader(&tar.Header{Name: ref.Name + "/" + n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		io.WriteString(tw, body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes(), image
}

// publish serves a stand-in for every chart source of the stack.
func (u *miniUpstream) publish(t *testing.T, s *stack.Stack) {
	for _, l := range s.Inventory(nil, "", nil).Layers {
		for _, a := range l.Apps {
			for _, src := range a.Sources {
				if src.Kind != stack.KindChart {
					continue
				}
				ref, err := chartref.Parse(src.Ref)
				if err != nil {
					t.Fatal(err)
				}
				arch, image := standIn(t, ref)
				u.mu.Lock()
				u.images[image] = true
				switch ref.Kind {
				case chartref.Repository:
					repo := strings.TrimPrefix(ref.Location, u.charts.URL)
					if u.indexes[repo] == nil {
						u.indexes[repo] = map[string]bool{}
					}
					u.indexes[repo][ref.Name+" "+ref.Version] = true
					u.files[repo+"/"+ref.Name+"-"+ref.Version+".tgz"] = arch
				case chartref.Archive:
					u.files[strings.TrimPrefix(ref.Location, u.charts.URL)] = arch
				case chartref.OCI:
					img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(arch, chartrepo.MediaTypeChartLayer)})
					if err != nil {
						t.Fatal(err)
					}
					img = mutate.MediaType(mutate.ConfigMediaType(img, chartrepo.MediaTypeChartConfig), types.OCIManifestSchema1)
					tag, err := name.NewTag(ref.Location + ":" + ref.Tag())
					if err != nil {
						t.Fatal(err)
					}
					if err := ggcrremote.Write(tag, img); err != nil {
						t.Fatal(err)
					}
				}
				u.mu.Unlock()
			}
		}
	}
}

// pushImages pushes a small image for every docker.io, quay.io or ghcr.io
// reference given (those registries are mirrored to the stand-in registry).
func (u *miniUpstream) pushImages(t *testing.T, refs []string) {
	for _, ref := range refs {
		_, path, _ := strings.Cut(ref, "/")
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(u.regAddr + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		if err := ggcrremote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
	}
}

// copyKubefiles copies the product Kubefiles into dir, every Kubefile with
// its chart sources pointed at the stand-ins; nothing else changes.
func copyKubefiles(t *testing.T, u *miniUpstream, dir string) {
	err := filepath.WalkDir(productStack, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(productStack, p)
		if rel == "kubernetes" || strings.HasPrefix(rel, "kubernetes"+string(filepath.Separator)) || filepath.Base(p) == lockfile.FileName {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // the open base is stood in for; locks are written here
		}
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(filepath.Base(p), "Kubefile") {
			b = []byte(u.rewrite(string(b)))
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMiniatureEditions builds both editions of the product stack offline:
// the Kubefiles of Kubefiles/ with their pins, values, manifests and app
// order as they are, only the chart sources pointed at stand-in charts
// (same names and versions) on 127.0.0.1 and the bases replaced by small
// cluster images (the open base's flannel app; ACK Distro's none). It locks
// each edition (charts and images), builds it --locked, and checks the
// layering, the top image's apps and LAUNCH order, that the optional apps
// are carried but not launched, that an --apps selection names apps the
// image has, and the images collected per pin.
func TestMiniatureEditions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two 7-layer stacks")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	u := newMiniUpstream(t)
	dir := filepath.Join(t.TempDir(), "Kubefiles")
	copyKubefiles(t, u, dir)

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
	rc, err := regclient.New(regclient.Options{DockerConfig: cfg, Mirrors: map[string]string{"docker.io": u.regAddr, "quay.io": u.regAddr, "ghcr.io": u.regAddr}, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	b := &build.Builder{Store: st, Cache: cache, Remote: rc, HTTP: rc.HTTPClient(), Out: &out,
		Collector: &collect.Collector{Store: st, Remote: rc, Out: &out}}

	// The middleware manifests' images, as the Kubefiles name them.
	manifestImages := []string{"docker.io/nacos/nacos-server:v3.2.3", "docker.io/bladex/sentinel-dashboard:1.8.9", "docker.io/apache/seata-server:2.5.0"}
	u.pushImages(t, manifestImages)
	// The Envoy proxy istiod injects, which the mesh layer lists per edition.
	u.pushImages(t, []string{"docker.io/istio/proxyv2:1.30.3", "docker.io/istio/proxyv2:1.16.7", "ghcr.io/dapr/daprd:1.18.3", "ghcr.io/dapr/daprd:1.16.19",
		"quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1", "quay.io/prometheus-operator/prometheus-config-reloader:v0.82.2"})
	// And the klusterlet's agents, which the multicluster layer lists (mirrored like docker.io).
	agents := []string{"quay.io/open-cluster-management/registration:v1.3.1", "quay.io/open-cluster-management/work:v1.3.1"}
	u.pushImages(t, agents)

	defaultApps := []string{"kruise", "istio-base", "istiod", "istio-ingress", "dapr", "otel-collector", "prometheus", "elasticsearch",
		"fluentd", "skywalking", "chaosblade", "nacos", "sentinel", "seata", "rocketmq", "shardingsphere-proxy"}
	for _, ed := range []struct {
		name, dir, base, baseKubefile string
		launch                        []string
		want                          []string // images the top image carries
		ignored                       []string
	}{
		{
			name: "oss", dir: dir, base: "registry.cnstack.local/cnstack/kubernetes:v1.34.4",
			baseKubefile: "FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-type=kubernetes\nCNI flannel local://flannel.yaml\nLAUNCH [\"flannel\"]\n",
			launch:       append([]string{"flannel"}, defaultApps...),
			want:         []string{"docker.io/istio/proxyv2:1.30.3", "ghcr.io/dapr/daprd:1.18.3", "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1", "docker.io/cnstackmini/istiod:1.30.3", "docker.io/cnstackmini/kube-prometheus-stack:88.5.3", "docker.io/cnstackmini/dapr:1.18.3", "docker.io/cnstackmini/vela-core:1.10.9"},
		},
		{
			name: "ack", dir: filepath.Join(dir, "ack"), base: "registry.cn-qingdao.aliyuncs.com/sealer-io/ackdistro:v1-22-15-ack-10",
			baseKubefile: "FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-type=kubernetes\nCOPY flannel.yaml plugins/\n",
			launch:       defaultApps,
			want:         []string{"docker.io/istio/proxyv2:1.16.7", "ghcr.io/dapr/daprd:1.16.19", "quay.io/prometheus-operator/prometheus-config-reloader:v0.82.2", "docker.io/cnstackmini/istiod:1.16.7", "docker.io/cnstackmini/kube-prometheus-stack:72.9.1", "docker.io/cnstackmini/dapr:1.16.19", "docker.io/cnstackmini/vela-core:1.9.14"},
		},
	} {
		t.Run(ed.name, func(t *testing.T) {
			// The base: a small cluster image under the edition's base reference.
			baseCtx := t.TempDir()
			os.WriteFile(filepath.Join(baseCtx, "Kubefile"), []byte(ed.baseKubefile), 0o644)
			os.WriteFile(filepath.Join(baseCtx, "flannel.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cni}\n"), 0o644)
			if _, err := b.Build(ctx, build.Request{Context: baseCtx, Tags: []string{ed.base}, Mode: build.ModeLite}); err != nil {
				t.Fatal(err)
			}
			s, err := stack.Load(ed.dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.Names(), " "); got != "base mesh observability ha middleware multicluster cnstack" {
				t.Fatalf("layers %s", got)
			}
			u.publish(t, s)
			u.mu.Lock()
			var standIns []string
			for im := range u.images {
				standIns = append(standIns, im)
			}
			u.mu.Unlock()
			u.pushImages(t, standIns)

			// Lock, as `cnstack lock` does: views with charts resolved afresh.
			lf := lockEdition(t, ctx, s, st, rc, cache.DownloadDir())
			if len(lf.Charts) != 15 {
				t.Errorf("the lock pins %d charts, want 15", len(lf.Charts))
			}
			for _, c := range lf.Charts {
				if !strings.Contains(c.Chart, "127.0.0.1") || len(c.Layers) != 1 {
					t.Errorf("chart pin %+v", c)
				}
			}
			lockPath := filepath.Join(ed.dir, lockfile.FileName)
			if err := lockfile.Write(lockPath, lf); err != nil {
				t.Fatal(err)
			}

			// Build --locked.
			out.Reset()
			results, err := b.BuildStack(ctx, s, build.StackOptions{Mode: build.ModeAll, Collect: collectorOptions(lockPath)})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			top := results[len(results)-1]
			if top.Layer.Name != "cnstack" {
				t.Fatalf("last built %s", top.Layer.Name)
			}
			man := readManifest(t, st, top.Result.Descriptor)
			ext, err := clusterimage.ParseExtension(man.Annotations[clusterimage.AnnotationExtension])
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ext.Launch.AppNames, ","); got != strings.Join(ed.launch, ",") {
				t.Errorf("LAUNCH %s\nwant %s", got, strings.Join(ed.launch, ","))
			}
			apps := ext.AppNames()
			for _, opt := range []string{"klusterlet", "kubevela"} {
				if !slices.Contains(apps, opt) || slices.Contains(ext.Launch.AppNames, opt) {
					t.Errorf("optional app %s: carried %v, launched %v", opt, slices.Contains(apps, opt), slices.Contains(ext.Launch.AppNames, opt))
				}
			}
			// sealer run --apps: every name of a selection is an app of the
			// image, and a chart app installs its chart with helm.
			for _, sel := range []string{"kruise,istio-base,istiod,prometheus", "kruise,klusterlet,kubevela"} {
				for _, n := range strings.Split(sel, ",") {
					a := ext.App(n)
					if a == nil {
						t.Errorf("--apps %s: the image has no app %s (apps: %v)", sel, n, apps)
						continue
					}
					if n != "nacos" && (len(a.Cmds) == 0 || !strings.Contains(strings.Join(a.Cmds, " "), "helm upgrade --install "+n+" ")) {
						t.Errorf("--apps %s: app %s installs with %q", sel, n, a.Cmds)
					}
				}
			}
			list, err := clusterimage.ParseContainerImages(man.Annotations[clusterimage.AnnotationContainerImages])
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ci := range list {
				got = append(got, ci.Image)
			}
			for _, w := range append(append(ed.want, manifestImages...), agents...) {
				if !slices.Contains(got, w) {
					t.Errorf("the top image does not carry %s; it carries:\n%s", w, strings.Join(got, "\n"))
				}
			}
			for _, im := range got {
				if strings.Contains(im, "cnstackmini/") && !strings.HasPrefix(im, "docker.io/cnstackmini/") {
					t.Errorf("unexpected image %s", im)
				}
			}
			if n := len(got); n != 23 {
				t.Errorf("the top image carries %d images, want 15 charts' + 3 manifests' + 5 injected (Istio's proxy, daprd, config reloader, 2 OCM agents):\n%s", n, strings.Join(got, "\n"))
			}
		})
	}

	// The ack edition with the oss pin of kube-prometheus-stack: its chart
	// refuses Kubernetes 1.22, and so does the lock.
	t.Run("ack with a chart too new for 1.22", func(t *testing.T) {
		s, err := stack.Load(filepath.Join(dir, "ack"), map[string]string{"KUBE_PROMETHEUS_STACK": "88.5.3"})
		if err != nil {
			t.Fatal(err)
		}
		u.publish(t, s)
		_, err = lockEditionErr(ctx, s, st, rc, cache.DownloadDir())
		if err == nil || !strings.Contains(err.Error(), "chart kube-prometheus-stack 88.5.3 requires Kubernetes >=1.25.0-0, but the image's Kubernetes is v1.22.15") {
			t.Fatalf("lock: %v", err)
		}
	})
}

func collectorOptions(lockPath string) collector.Options {
	return collector.Options{LockFile: lockPath, Locked: true}
}

func lockEdition(t *testing.T, ctx context.Context, s *stack.Stack, st *store.Store, rc *regclient.Client, cacheDir string) *lockfile.File {
	t.Helper()
	lf, err := lockEditionErr(ctx, s, st, rc, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	return lf
}

func lockEditionErr(ctx context.Context, s *stack.Stack, st *store.Store, rc *regclient.Client, cacheDir string) (*lockfile.File, error) {
	src := &chartrepo.Sources{HTTP: rc.HTTPClient(), Charts: &chartrepo.Fetcher{HTTP: rc.HTTPClient(), CacheDir: cacheDir,
		OpenOCI: chartrepo.OpenRegistry(rc)}}
	tmp, err := os.MkdirTemp("", "mini-views-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var pvs []collect.PlatformViews
	for _, p := range s.Platforms {
		views, err := collect.StackViews(ctx, s, filepath.Join(tmp, p.Architecture), p, src.Fetch)
		if err != nil {
			return nil, err
		}
		pvs = append(pvs, collect.PlatformViews{Platform: p, Views: views})
	}
	col := &collect.Collector{Store: st, Remote: rc}
	return col.Lock(ctx, pvs, collect.LockOptions{Charts: src.Pinned()})
}
