package imagescan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fixtureOptions is how the golden scan of testdata/rootfs is run.
func fixtureOptions() Options {
	return Options{
		ImageEnv: map[string]string{"RegistryURL": "sea.hub:5000"},
		AppEnv: map[string]map[string]string{
			"nginx": {"NginxExporterTag": "0.11.0"},
		},
		ExtraImages: []string{"# from --image-list", "docker.io/library/traefik:v2.10 # edge proxy"},
		Ignored:     []string{"busybox", "example/not-found:1"},
	}
}

func scanFixture(t *testing.T, opts Options) *Result {
	t.Helper()
	res, err := Scan(t.Context(), os.DirFS("testdata/rootfs"), opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return res
}

func TestScanGolden(t *testing.T) {
	res := scanFixture(t, fixtureOptions())
	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/rootfs.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestScanGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("scan result differs from %s (rerun with -update and review the diff):\n%s", golden, firstDiff(string(want), string(got)))
	}

	// The same input gives byte-identical output.
	again, _ := json.MarshalIndent(scanFixture(t, fixtureOptions()), "", "  ")
	if !bytes.Equal(append(again, '\n'), got) {
		t.Error("two scans of the same rootfs differ")
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + wl + "\n  got: " + gl
		}
	}
	return ""
}

// TestScanFixture states, one property at a time, what the golden file must show.
func TestScanFixture(t *testing.T) {
	res := scanFixture(t, fixtureOptions())

	present := []struct {
		name, ref string
		want      Source // fields left empty are not compared
	}{
		{"imageList entry", "registry.k8s.io/pause:3.9", Source{File: "manifests/imageList", Line: 2}},
		{"imageList quotes and trailing comment", "quay.io/tigera/operator:v1.30.4", Source{File: "manifests/imageList", Line: 4}},
		{"imageList short name", "docker.io/sealerio/lvscare:v1.1.3-beta.8", Source{File: "manifests/imageList", Line: 6}},
		{"tag and digest kept", "docker.io/library/busybox:1.36@sha256:2376a0c12759aa1214ba83e771ff252c7b1663216b192fbe5e0fb364e952f85c", Source{File: "manifests/imageList"}},
		{"List item ephemeral container", "docker.io/nicolaka/netshoot:v0.11", Source{File: "manifests/multi.yaml", Document: 1, Path: "items[0].spec.ephemeralContainers[0].image", Line: 23}},
		{"image volume", "quay.io/example/models:v1", Source{File: "manifests/multi.yaml", Document: 1, Path: "items[0].spec.volumes[0].image"}},
		{"DaemonSet init container via anchor", "docker.io/library/alpine:3.18", Source{File: "manifests/multi.yaml", Document: 1, Path: "items[1].spec.template.spec.initContainers[0].image"}},
		{"alias reuses the anchor", "docker.io/library/alpine:3.18", Source{File: "manifests/multi.yaml", Document: 1, Path: "items[1].spec.template.spec.containers[1].image"}},
		{"CronJob", "registry.example.com:5000/tools/backup:2024.01", Source{File: "manifests/multi.yaml", Document: 2, Path: "spec.jobTemplate.spec.template.spec.containers[0].image"}},
		{"RELATED_IMAGE env", "registry.example.com:5000/tools/restore:2024.01", Source{File: "manifests/multi.yaml", Document: 2, Path: "spec.jobTemplate.spec.template.spec.containers[0].env[0].value"}},
		{"digest only", "gcr.io/google_samples/gb-frontend@sha256:0b3d0b2d1d6e4c3f6e4a4f0a1f0b4cb0c1c9cd4e8f2a6f0c5f1c3c5e0b3e2d1f", Source{File: "manifests/multi.yaml", Document: 3}},
		{"ReplicationController", "docker.io/library/nginx:1.25@sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac", Source{File: "manifests/multi.yaml", Document: 4}},
		{"JSON init container", "docker.io/kubernetesui/dashboard-init:v1.0.0", Source{File: "manifests/dashboard.json", Path: "spec.template.spec.initContainers[0].image", Line: 14}},
		{"CR string image", "quay.io/prometheus/prometheus:v2.47.0", Source{File: "manifests/monitoring/prometheus.yaml", Document: 1, Path: "spec.image"}},
		{"CR image map with numeric tag", "ghcr.io/example/gateway:1.10", Source{File: "manifests/monitoring/prometheus.yaml", Document: 2, Path: "spec.image"}},
		{"CR image map with digest", "docker.io/envoyproxy/envoy:v1.28.0@sha256:3f3a6b8f4c1b0a6c1d3e5f7a9b0c2d4e6f8a0b1c3d5e7f9a1b2c3d4e5f6a7b8c", Source{Path: "spec.sidecar.image"}},
		{"repository/image/version triple", "nvcr.io/nvidia/driver:535.104.05", Source{Path: "spec.driver.image"}},
		{"tmpl rendered with image env", "sea.hub:5000/library/registry:2.8.3", Source{File: "manifests/registry.yaml.tmpl", Path: "spec.template.spec.containers[0].image"}},
		{"multi-document file keeps going after a broken document", "docker.io/library/memcached:1.6", Source{File: "manifests/broken.yaml", Document: 2}},
		{"chart values-driven image", "docker.io/example/web:2.3.0", Source{File: "charts/web", Chart: "web", ChartVersion: "1.4.2", Template: "web/templates/deployment.yaml", Path: "spec.template.spec.containers[0].image"}},
		{"pre-install hook Job", "docker.io/example/web-migrate:2.3.0", Source{File: "charts/web", Chart: "web", Template: "web/templates/hooks/db-migrate.yaml", Path: "spec.template.spec.containers[0].image"}},
		{"test hook", "docker.io/library/busybox:1.36", Source{Template: "web/templates/tests/test-connection.yaml"}},
		{"vendored subchart", "docker.io/library/redis:7.2.3", Source{File: "charts/web", Chart: "cache", ChartVersion: "0.2.0", Template: "web/charts/cache/templates/statefulset.yaml"}},
		{"vendored subchart second container", "docker.io/oliver006/redis_exporter:v1.55.0", Source{Chart: "cache", Path: "spec.template.spec.containers[1].image"}},
		{"subchart from .tgz", "quay.io/prometheus/statsd-exporter:v0.24.0", Source{File: "charts/web", Chart: "metrics", ChartVersion: "0.3.0", Template: "web/charts/metrics/templates/deployment.yaml"}},
		{"packaged chart under charts/", "ghcr.io/stefanprodan/podinfo:6.5.0", Source{File: "charts/podinfo-6.5.0.tgz", Chart: "podinfo", ChartVersion: "6.5.0"}},
		{"chart values.yaml.tmpl rendered first", "sea.hub:5000/ingress-nginx/controller:v1.9.4", Source{File: "charts/ingress", Chart: "ingress"}},
		{"kube app", "docker.io/library/nginx:1.25.3", Source{File: "application/apps/nginx/nginx.yaml", App: "nginx"}},
		{"app tmpl with app env and image env", "sea.hub:5000/nginx/nginx-prometheus-exporter:0.11.0", Source{File: "application/apps/nginx/exporter.yaml.tmpl", App: "nginx"}},
		{"helm app", "docker.io/kubernetesui/metrics-scraper:v1.0.9", Source{File: "application/apps/dashboard", App: "dashboard", Chart: "kubernetes-dashboard", ChartVersion: "6.0.8"}},
		{"--image-list", "docker.io/library/traefik:v2.10", Source{File: SourceImageListFlag, Line: 2}},
	}
	for _, tc := range present {
		t.Run("found/"+tc.name, func(t *testing.T) {
			img, ignored, err := res.Lookup(tc.ref)
			if err != nil || ignored {
				t.Fatalf("Lookup(%q) = ignored %v, %v; want found", tc.ref, ignored, err)
			}
			if !slices.ContainsFunc(img.Sources, func(s Source) bool { return sourceMatches(s, tc.want) }) {
				t.Errorf("%s: no source matches %+v; sources: %+v", tc.ref, tc.want, img.Sources)
			}
		})
	}

	absent := []struct{ name, substring string }{
		{"disabled subchart (condition false)", "legacy-switched-off"},
		{"disabled subchart (tag false)", "extras-switched-off"},
		{"NOTES.txt", "notes-only"},
		{"baseImage key", "ubuntu:22.04"},
		{"baseImage key in CR", "golang"},
		{"parameter.image key", "parameter-not-an-image"},
		{"CUE text in a string", "parameter.image"},
		{"annotation named image", "annotation-not-an-image"},
		{"label named image", "not-an-image"},
		{"imagePullPolicy", "always"},
		{"CRD schema default", "from-crd-schema"},
		{"file shadowed by its .tmpl", "stale/should-not-appear"},
		{"sibling env var", "debug"},
	}
	for _, tc := range absent {
		t.Run("absent/"+tc.name, func(t *testing.T) {
			for _, img := range res.Images {
				if strings.Contains(img.Ref, tc.substring) {
					t.Errorf("found %s (%v)", img.Ref, img.Sources)
				}
			}
		})
	}

	warnings := []struct {
		name string
		want Warning // Message is matched as a substring
	}{
		{"invalid imageList line", Warning{Source: Source{File: "manifests/imageList", Line: 10}, Ref: "not a valid ref", Message: "invalid image reference"}},
		{"env key missing from a tmpl", Warning{Source: Source{File: "manifests/registry.yaml.tmpl", Path: "spec.template.spec.containers[1].image"}, Ref: "<no value>/tools/curl:8.4.0", Message: "missing from the env"}},
		{"broken document with its absolute line", Warning{Source: Source{File: "manifests/broken.yaml", Document: 1, Line: 16}, Message: "cannot parse document"}},
		{"ignored image that matches nothing", Warning{Source: Source{File: SourceIgnoredListFlag, Line: 2}, Ref: "docker.io/example/not-found:1", Message: "matches no image"}},
	}
	for _, tc := range warnings {
		t.Run("warning/"+tc.name, func(t *testing.T) {
			if !slices.ContainsFunc(res.Warnings, func(w Warning) bool {
				return sourceMatches(w.Source, tc.want.Source) && (tc.want.Ref == "" || w.Ref == tc.want.Ref) && strings.Contains(w.Message, tc.want.Message)
			}) {
				t.Errorf("no warning like %+v in %+v", tc.want, res.Warnings)
			}
		})
	}

	t.Run("ignored", func(t *testing.T) {
		img, ignored, err := res.Lookup("busybox")
		if err != nil || !ignored {
			t.Fatalf("Lookup(busybox) = ignored %v, %v; want ignored", ignored, err)
		}
		if img.Ref != "docker.io/library/busybox:latest" || len(img.Sources) != 1 || img.Sources[0].Path != "items[0].spec.containers[0].image" {
			t.Errorf("ignored image = %+v", img)
		}
	})

	t.Run("several provenances", func(t *testing.T) {
		img, _, _ := res.Lookup("kubernetesui/dashboard:v2.7.0")
		files := []string{}
		for _, s := range img.Sources {
			files = append(files, s.File)
		}
		if want := []string{"application/apps/dashboard", "manifests/dashboard.json"}; !slices.Equal(files, want) || img.AppName != "" {
			t.Errorf("sources %v, app %q; want %v and no app", files, img.AppName, want)
		}
		pause, _, _ := res.Lookup("registry.k8s.io/pause:3.9")
		if len(pause.Sources) != 2 {
			t.Errorf("pause listed twice in imageList: %d sources, want 2", len(pause.Sources))
		}
		scraper, _, _ := res.Lookup("kubernetesui/metrics-scraper:v1.0.9")
		if scraper.AppName != "dashboard" {
			t.Errorf("metrics-scraper app = %q, want dashboard", scraper.AppName)
		}
	})

	t.Run("charts", func(t *testing.T) {
		want := []Chart{
			{Name: "kubernetes-dashboard", Version: "6.0.8", AppVersion: "2.7.0", Dir: "application/apps/dashboard", Path: "kubernetes-dashboard", App: "dashboard", Enabled: true},
			{Name: "ingress", Version: "4.8.3", AppVersion: "1.9.4", Dir: "charts/ingress", Path: "ingress", Enabled: true},
			{Name: "podinfo", Version: "6.5.0", AppVersion: "6.5.0", Dir: "charts/podinfo-6.5.0.tgz", Path: "podinfo", Enabled: true},
			{Name: "web", Version: "1.4.2", AppVersion: "2.3.0", Dir: "charts/web", Path: "web", Enabled: true},
			{Name: "cache", Version: "0.2.0", AppVersion: "7.2.3", Dir: "charts/web", Path: "web/charts/cache", Enabled: true},
			{Name: "extras", Version: "0.1.0", Dir: "charts/web", Path: "web/charts/extras"},
			{Name: "legacy", Version: "0.1.0", Dir: "charts/web", Path: "web/charts/legacy"},
			{Name: "metrics", Version: "0.3.0", AppVersion: "0.24.0", Dir: "charts/web", Path: "web/charts/metrics", Enabled: true},
		}
		if !slices.Equal(res.Charts, want) {
			t.Errorf("charts:\n got %+v\nwant %+v", res.Charts, want)
		}
	})

	t.Run("sorted", func(t *testing.T) {
		if !slices.IsSortedFunc(res.Images, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) }) {
			t.Error("images not sorted by ref")
		}
	})
}

// sourceMatches compares the non-zero fields of want with got.
func sourceMatches(got, want Source) bool {
	return (want.File == "" || got.File == want.File) &&
		(want.Document == 0 || got.Document == want.Document) &&
		(want.Path == "" || got.Path == want.Path) &&
		(want.Chart == "" || got.Chart == want.Chart) &&
		(want.ChartVersion == "" || got.ChartVersion == want.ChartVersion) &&
		(want.Template == "" || got.Template == want.Template) &&
		(want.App == "" || got.App == want.App) &&
		(want.Line == 0 || got.Line == want.Line)
}

func TestScanChartValues(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]map[string]any
		present []string
		absent  []string
		warn    string
	}{
		{
			name:    "defaults",
			present: []string{"docker.io/example/web:2.3.0", "docker.io/library/redis:7.2.3"},
			absent:  []string{"docker.io/example/legacy-switched-off:0.1", "docker.io/example/web-migrate:2.3.0-rc"},
		},
		{
			name: "override tag, enable legacy, disable cache, relocate migrations",
			values: map[string]map[string]any{"./charts/web": {
				"image":      map[string]any{"tag": "2.4.0-rc1"},
				"legacy":     map[string]any{"enabled": true},
				"cache":      map[string]any{"enabled": false},
				"migrations": map[string]any{"image": "sea.hub:5000/example/web-migrate:2.4.0-rc1"},
			}},
			present: []string{"docker.io/example/web:2.4.0-rc1", "docker.io/example/legacy-switched-off:0.1", "sea.hub:5000/example/web-migrate:2.4.0-rc1"},
			absent:  []string{"docker.io/example/web:2.3.0", "docker.io/library/redis:7.2.3", "docker.io/example/web-migrate:2.3.0"},
		},
		{
			name:    "tags switch a subchart on",
			values:  map[string]map[string]any{"charts/web": {"tags": map[string]any{"extras": true}}},
			present: []string{"docker.io/example/extras-switched-off:0.1"},
		},
		{
			name:    "values for a path with no chart",
			values:  map[string]map[string]any{"charts/wbe": {"image": map[string]any{"tag": "x"}}},
			present: []string{"docker.io/example/web:2.3.0"},
			warn:    "holds no chart",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := fixtureOptions()
			opts.ChartValues = tc.values
			res := scanFixture(t, opts)
			for _, ref := range tc.present {
				if _, _, err := res.Lookup(ref); err != nil {
					t.Errorf("%s: %v", ref, err)
				}
			}
			for _, ref := range tc.absent {
				if _, _, err := res.Lookup(ref); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: found, want absent", ref)
				}
			}
			if tc.warn != "" && !slices.ContainsFunc(res.Warnings, func(w Warning) bool { return strings.Contains(w.Message, tc.warn) }) {
				t.Errorf("no warning containing %q", tc.warn)
			}
			for _, ch := range res.Charts {
				if ch.Path == "web/charts/legacy" && ch.Enabled != slices.Contains(tc.present, "docker.io/example/legacy-switched-off:0.1") {
					t.Errorf("legacy chart enabled = %v", ch.Enabled)
				}
			}
		})
	}
	// The caller's values are not modified by Helm.
	vals := map[string]map[string]any{"charts/web": {"image": map[string]any{"tag": "9"}}}
	opts := fixtureOptions()
	opts.ChartValues = vals
	scanFixture(t, opts)
	if got := vals["charts/web"]; len(got) != 1 || len(got["image"].(map[string]any)) != 1 {
		t.Errorf("ChartValues modified: %v", got)
	}
}

func TestScanErrors(t *testing.T) {
	chart := func(name, tpl string) fstest.MapFS {
		return fstest.MapFS{
			"charts/" + name + "/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n")},
			"charts/" + name + "/values.yaml":         {Data: []byte("db: {}\n")},
			"charts/" + name + "/templates/job.yaml":  {Data: []byte(tpl)},
			"charts/" + name + "/templates/_x.tpl":    {Data: []byte(`{{ define "x" }}{{ end }}`)},
			"charts/" + name + "/templates/ok.yaml":   {Data: []byte("kind: Pod\nspec: {containers: [{image: a}]}\n")},
			"charts/" + name + "/templates/NOTES.txt": {Data: []byte("hi")},
		}
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		opts Options
		want []string // substrings of the error
	}{
		{
			name: "required value",
			fsys: chart("db", "image: {{ required \"db.host is required\" .Values.db.host }}\n"),
			want: []string{"chart db at charts/db", "template db/templates/job.yaml", "db.host is required"},
		},
		{
			name: "template parse error",
			fsys: chart("bad", "image: {{ .Values.x \n"),
			want: []string{"chart bad at charts/bad", "template bad/templates/job.yaml"},
		},
		{
			name: "dependency not vendored",
			fsys: fstest.MapFS{
				"charts/app/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: redis\n  version: 1.x\n")},
				"charts/app/templates/pod.yaml": {Data: []byte("kind: Pod\n")},
			},
			want: []string{"chart app at charts/app", "missing in charts/ directory: redis"},
		},
		{
			name: "manifest tmpl that does not parse",
			fsys: fstest.MapFS{"manifests/x.yaml.tmpl": {Data: []byte("image: {{ .A \n")}},
			want: []string{"manifests/x.yaml.tmpl", "parse template"},
		},
		{
			name: "invalid --image-list entry",
			fsys: fstest.MapFS{},
			opts: Options{ExtraImages: []string{"ok:1", "Bad:Ref"}},
			want: []string{"--image-list line 2"},
		},
		{
			name: "invalid --ignored-image-list entry",
			fsys: fstest.MapFS{},
			opts: Options{Ignored: []string{"a b"}},
			want: []string{"--ignored-image-list line 1"},
		},
		{
			name: "chart that excludes the Kubernetes version",
			fsys: fstest.MapFS{
				"application/apps/p/p/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: p\nversion: 88.5.3\nkubeVersion: '>=1.25.0-0'\n")},
				"application/apps/p/p/templates/pod.yaml": {Data: []byte("kind: Pod\n")},
			},
			opts: Options{KubeVersion: "v1.22.15"},
			want: []string{"chart p 88.5.3 requires Kubernetes >=1.25.0-0, but the image's Kubernetes is v1.22.15"},
		},
		{
			name: "bad kube version",
			fsys: fstest.MapFS{},
			opts: Options{KubeVersion: "one.two"},
			want: []string{"kube version"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Scan(t.Context(), tc.fsys, tc.opts)
			if err == nil {
				t.Fatal("Scan succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("ChartError", func(t *testing.T) {
		_, err := Scan(t.Context(), chart("db", "image: {{ required \"need host\" .Values.db.host }}\n"), Options{})
		var ce *ChartError
		if !errors.As(err, &ce) || ce.Chart != "db" || ce.Dir != "charts/db" || ce.Template != "db/templates/job.yaml" {
			t.Fatalf("err = %#v, want a ChartError for db/templates/job.yaml", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Scan(ctx, os.DirFS("testdata/rootfs"), Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func TestScanSmall(t *testing.T) {
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		opts     Options
		refs     []string
		warnings []string
	}{
		{
			name: "empty rootfs",
			fsys: fstest.MapFS{},
		},
		{
			name: "chart without values.yaml or templates (an umbrella) still renders its subchart",
			fsys: fstest.MapFS{
				"charts/umbrella/Chart.yaml":                     {Data: []byte("apiVersion: v2\nname: umbrella\nversion: 1.0.0\n")},
				"charts/umbrella/charts/sub/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: sub\nversion: 1.0.0\n")},
				"charts/umbrella/charts/sub/templates/pod.yaml":  {Data: []byte("kind: Pod\nspec:\n  containers:\n  - image: sub:1\n")},
				"charts/umbrella/charts/sub/templates/pod2.yaml": {Data: []byte("{{/* nothing */}}\n")},
			},
			refs: []string{"docker.io/library/sub:1"},
		},
		{
			name: "helmignore hides a template, and a chart .tmpl renders into a template",
			fsys: fstest.MapFS{
				"charts/c/Chart.yaml":                  {Data: []byte("apiVersion: v2\nname: c\nversion: 1.0.0\n")},
				"charts/c/.helmignore":                 {Data: []byte("templates/old.yaml\n*.tmpl\n")},
				"charts/c/templates/old.yaml":          {Data: []byte("kind: Pod\nspec: {containers: [{image: old:1}]}\n")},
				"charts/c/templates/new.yaml.tmpl":     {Data: []byte("kind: Pod\nspec: {containers: [{image: '{{ .Reg }}/new:1'}]}\n")},
				"charts/c/templates/helm-and-env.tmpl": {Data: []byte("{{`kind: Pod`}}\n")},
			},
			opts: Options{ImageEnv: map[string]string{"Reg": "sea.hub:5000"}},
			refs: []string{"sea.hub:5000/new:1"},
		},
		{
			name:     "tgz that is not a chart is a warning",
			fsys:     fstest.MapFS{"charts/blob.tgz": {Data: []byte("not gzip")}},
			warnings: []string{"charts/blob.tgz: not scanned: not a loadable Helm chart archive"},
		},
		{
			name: "app env wins over image env; unknown app env is a warning",
			fsys: fstest.MapFS{
				"application/apps/a/pod.yaml.tmpl": {Data: []byte("kind: Pod\nspec: {containers: [{image: '{{ .Reg }}/a:{{ b64dec .Tag }}'}]}\n")},
			},
			opts: Options{
				ImageEnv: map[string]string{"Reg": "image.env", "Tag": "eA=="},
				AppEnv:   map[string]map[string]string{"a": {"Reg": "app.env"}, "zz": {"k": "v"}},
			},
			refs:     []string{"app.env/a:x"},
			warnings: []string{"application/apps/zz: app env given for an app that does not exist"},
		},
		{
			name: "empty and null container images are warnings, elsewhere they are unset fields",
			fsys: fstest.MapFS{"manifests/m.yaml": {Data: []byte(
				"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: ''\n  - name: b\n    image:\n  - name: c\n    image: 3\n" +
					"---\nkind: Thing\nspec: {image: '', other: {image: null}}\n")}},
			warnings: []string{
				`manifests/m.yaml:5 (document 0, spec.containers[0].image): container has an empty image`,
				`manifests/m.yaml:7 (document 0, spec.containers[1].image): container has no image`,
				`manifests/m.yaml:9 (document 0, spec.containers[2].image): "3": image field is !!int, not a string`,
			},
		},
		{
			name: "a chart app's release, namespace and values; its values files are not manifests",
			fsys: fstest.MapFS{
				"application/apps/a/c/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: c\nversion: 1.0.0\nkubeVersion: '>=1.20.0-0'\n")},
				"application/apps/a/c/values.yaml":        {Data: []byte("tag: default\n")},
				"application/apps/a/c/templates/pod.yaml": {Data: []byte("kind: Pod\nspec: {containers: [{image: '{{ .Release.Namespace }}/{{ .Release.Name }}:{{ .Values.tag }}'}]}\n")},
				"application/apps/a/a.values.yaml":        {Data: []byte("image: {repository: not/an-image}\n")},
				"application/apps/a/b.values.yaml.tmpl":   {Data: []byte("image: {repository: not/either}\n")},
				"application/apps/a/extra.yaml":           {Data: []byte("images: [{image: extra:1}]\n")},
			},
			opts: Options{
				ChartValues:   map[string]map[string]any{"application/apps/a/c": {"tag": "set"}},
				ChartReleases: map[string]Release{"application/apps/a/c": {Name: "rel", Namespace: "ns"}, "application/apps/a/nochart": {Name: "x"}},
				ValuesFiles:   []string{"application/apps/a/a.values.yaml", "./application/apps/a/b.values.yaml"},
				KubeVersion:   "v1.22.15",
			},
			refs:     []string{"docker.io/library/extra:1", "docker.io/ns/rel:set"},
			warnings: []string{"application/apps/a/nochart: a chart release given for a path that holds no chart"},
		},
		{
			name:     "Istio's injected proxy placeholder is no image",
			fsys:     fstest.MapFS{"manifests/gw.yaml": {Data: []byte("kind: Deployment\nspec: {template: {spec: {containers: [{name: istio-proxy, image: auto}, {name: x, image: autox:1}]}}}\n")}},
			refs:     []string{"docker.io/library/autox:1"},
			warnings: []string{`manifests/gw.yaml:2 (document 0, spec.template.spec.containers[0].image): "auto": "image: auto" is filled in by a mutating webhook`},
		},
		{
			name: "kube version reaches the chart",
			fsys: fstest.MapFS{
				"charts/k/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: k\nversion: 1.0.0\n")},
				"charts/k/templates/pod.yaml": {Data: []byte("kind: Pod\nspec: {containers: [{image: 'k:{{ .Capabilities.KubeVersion.Version }}'}]}\n")},
			},
			opts: Options{KubeVersion: "v1.28.2"},
			refs: []string{"docker.io/library/k:v1.28.2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scan(t.Context(), tc.fsys, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Refs(); !slices.Equal(got, tc.refs) && !(len(got) == 0 && len(tc.refs) == 0) {
				t.Errorf("refs = %v, want %v", got, tc.refs)
			}
			var got []string
			for _, w := range res.Warnings {
				got = append(got, w.String())
			}
			for _, want := range tc.warnings {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
					t.Errorf("no warning starting with %q in %q", want, got)
				}
			}
			if len(got) != len(tc.warnings) {
				t.Errorf("%d warnings, want %d: %q", len(got), len(tc.warnings), got)
			}
		})
	}
}

func TestSameRepository(t *testing.T) {
	r := &Result{Images: []Image{
		{Ref: "docker.io/library/redis:7.2"},
		{Ref: "docker.io/library/redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{Ref: "docker.io/library/redis-exporter:1"},
		{Ref: "127.0.0.1:5000/redis:7.2"},
	}}
	got := r.SameRepository("docker.io/library/redis:7.4")
	if len(got) != 2 || got[0] != r.Images[0].Ref || got[1] != r.Images[1].Ref {
		t.Errorf("SameRepository = %v, want the two docker.io/library/redis images", got)
	}
	if got := r.SameRepository("127.0.0.1:5000/redis"); len(got) != 1 {
		t.Errorf("a registry port is not a tag: %v", got)
	}
}
