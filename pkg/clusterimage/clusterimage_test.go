package clusterimage

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMarshalWritesSuperset(t *testing.T) {
	e := NewExtension("")
	e.SetApp(Application{Name: "calico", Type: "shell", Files: []string{"calico.sh"}, Version: "v1"})
	e.SetApp(Application{Name: "web", Files: []string{"a.yaml"}, Version: "v1", Cmds: []string{"kubectl apply -f a.yaml"}, Env: map[string]string{"b": "2", "a": "1"}})
	e.Env = map[string]string{"globalKey": "globalValue"}
	e.Launch.AppNames = []string{"calico", "web"}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"buildClient":{"sealerVersion":"v0.11.0","buildahVersion":"1.27.1"},"schemaVersion":"v1alpha1","type":"kube-installer",` +
		`"applications":[{"name":"calico","type":"shell","files":["calico.sh"],"version":"v1","launchfiles":["calico.sh"]},` +
		`{"name":"web","files":["a.yaml"],"version":"v1","env":{"a":"1","b":"2"},"cmds":["kubectl apply -f a.yaml"],"launchfiles":["a.yaml"]}],` +
		`"env":{"globalKey":"globalValue"},"launch":{"app_names":["calico","web"],"appConfigs":[{"name":"web","launch":{"cmds":["kubectl apply -f a.yaml"]}}]}}`
	if string(b) != want {
		t.Fatalf("Marshal:\n%s\nwant:\n%s", b, want)
	}
	back, err := ParseExtension(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Applications, e.Applications) || !reflect.DeepEqual(back.Launch.AppNames, e.Launch.AppNames) {
		t.Fatalf("round trip lost data: %+v", back)
	}
	empty, _ := NewExtension(AppInstaller).Marshal()
	if !strings.Contains(string(empty), `"launch":{}`) {
		t.Errorf("launch must always be written: %s", empty)
	}
}

func TestParseOlderVersions(t *testing.T) {
	tests := []struct {
		name, in  string
		files     []string
		cmds      []string
		wantError string
	}{
		{name: "v0.9.0 launchfiles", in: `{"schemaVersion":"v1alpha1","applications":[{"name":"a","type":"kube","launchfiles":["x.yaml"]}],"launch":{}}`, files: []string{"x.yaml"}},
		{name: "v0.10 appConfigs", in: `{"applications":[{"name":"a","files":["x"]}],"launch":{"appConfigs":[{"name":"a","launch":{"cmds":["run"]}}]}}`, files: []string{"x"}, cmds: []string{"run"}},
		{name: "v0.11 cmds", in: `{"applications":[{"name":"a","files":["x"],"cmds":["v11"]}],"launch":{}}`, files: []string{"x"}, cmds: []string{"v11"}},
		{name: "empty", in: ``, wantError: "does not exist"},
		{name: "bad json", in: `{"applications":`, wantError: "not valid JSON"},
	}
	for _, tt := range tests {
		e, err := ParseExtension(tt.in)
		if tt.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("%s: err = %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		a := e.App("a")
		if !reflect.DeepEqual(a.Files, tt.files) || !reflect.DeepEqual(a.Cmds, tt.cmds) {
			t.Errorf("%s: files %v cmds %v", tt.name, a.Files, a.Cmds)
		}
	}
}

func TestInheritKeepsAppsOnly(t *testing.T) {
	base := NewExtension(KubeInstaller)
	base.SetApp(Application{Name: "calico", Type: "shell", Files: []string{"c.sh"}})
	base.Env = map[string]string{"k": "v"}
	base.Launch.AppNames = []string{"calico"}
	child := Inherit(base, AppInstaller)
	if child.Type != AppInstaller || child.Env != nil || len(child.Launch.AppNames) != 0 || child.App("calico") == nil {
		t.Fatalf("Inherit = %+v", child)
	}
	child.App("calico").Files[0] = "changed"
	if base.App("calico").Files[0] != "c.sh" {
		t.Fatal("Inherit shares slices with the base")
	}
}

func TestFoldLabels(t *testing.T) {
	got := FoldLabels(map[string]string{
		LabelKubeCNI + "-calico": "true", LabelKubeCNI + "-flannel": "true", LabelKubeCSI + "-openebs": "true", "a": "b",
	})
	want := map[string]string{LabelKubeCNI: `["calico","flannel"]`, LabelKubeCSI: `["openebs"]`, "a": "b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FoldLabels = %v", got)
	}
}

func TestAssemblyBuild(t *testing.T) {
	l := &Layer{Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("l"), Size: 1}, DiffID: digest.FromString("d")}
	base := &ocispec.Image{Config: ocispec.ImageConfig{Env: []string{"A=1", "B=2"}, Labels: map[string]string{"x": "base"}},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("bd")}},
		History: []ocispec.History{{CreatedBy: "base"}}}
	a := &Assembly{
		Platform:   ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Created:    time.Unix(0, 0),
		BaseConfig: base,
		BaseLayers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("b"), Size: 1}},
		Steps:      []Step{{History: ocispec.History{CreatedBy: "LABEL x=y"}}, {History: ocispec.History{CreatedBy: "COPY a ."}, Layer: l}},
		Labels:     map[string]string{"x": "child"},
		Env:        []string{"B=3", "C=4"},
		Extension:  NewExtension(""),
		ContainerImages: []ContainerImage{{Image: "docker.io/library/b:1", Platform: &Platform{OS: "linux"}},
			{Image: "docker.io/library/a:1", Platform: &Platform{OS: "linux"}}},
	}
	cfgB, manB, err := a.Build()
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	json.Unmarshal(cfgB, &cfg)
	if cfg.Config.Labels["x"] != "child" || strings.Join(cfg.Config.Env, ",") != "A=1,B=3,C=4" || cfg.Variant != "v8" {
		t.Errorf("config %s", cfgB)
	}
	if base.Config.Labels["x"] != "base" {
		t.Error("Build modified the base config")
	}
	if len(cfg.History) != 3 || !cfg.History[1].EmptyLayer || cfg.History[2].EmptyLayer || len(cfg.RootFS.DiffIDs) != 2 {
		t.Errorf("history/rootfs: %s", cfgB)
	}
	var m ocispec.Manifest
	json.Unmarshal(manB, &m)
	if m.Config.Digest != digest.FromBytes(cfgB) || len(m.Layers) != 2 || m.Annotations[ocispec.AnnotationCreated] != "1970-01-01T00:00:00Z" {
		t.Errorf("manifest %s", manB)
	}
	if !strings.HasPrefix(m.Annotations[AnnotationContainerImages], `[{"image":"docker.io/library/a:1"`) {
		t.Errorf("container images not sorted: %s", m.Annotations[AnnotationContainerImages])
	}
	spec, err := Inspect("x", manB, cfgB)
	if err != nil || spec.ID != m.Config.Digest.Encoded() || spec.OCIv1.Config.Labels != nil || spec.ImageExtension.Labels["x"] != "child" {
		t.Fatalf("Inspect = %+v, %v", spec, err)
	}
	if _, ok := spec.ManifestV1.Annotations[AnnotationExtension]; ok {
		t.Error("inspect must strip the extension annotation from manifestv1")
	}
	// A history that disagrees with the layers is refused (buildah would refuse it as a base).
	a.Steps = a.Steps[:1]
	a.BaseConfig.History = append(a.BaseConfig.History, ocispec.History{CreatedBy: "extra"})
	if _, _, err := a.Build(); err == nil || !strings.Contains(err.Error(), "non-empty layers") {
		t.Errorf("inconsistent history accepted: %v", err)
	}
}
