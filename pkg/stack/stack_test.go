package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeStack(t *testing.T, spec string, kubefiles map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(spec), 0o644)
	for layer, kf := range kubefiles {
		os.MkdirAll(filepath.Join(dir, layer), 0o755)
		os.WriteFile(filepath.Join(dir, layer, "Kubefile"), []byte(kf), 0o644)
	}
	return dir
}

const header = "name: s\nversion: v1\nrepository: reg.local/s\n"

func TestLoadOrdersLayers(t *testing.T) {
	dir := writeStack(t, header, map[string]string{
		"top":   "FROM mid\n",
		"mid":   "FROM reg.local/s/base:v1\n", // by full reference
		"base":  "FROM scratch\n",
		"other": "FROM base\n",
		"ext":   "FROM docker.io/library/external:1\n",
	})
	s, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "base,ext,mid,other,top" {
		t.Fatalf("order = %s", got)
	}
	if s.Layer("mid").Parent != "base" || s.Layer("top").Parent != "mid" || s.Layer("ext").Parent != "" {
		t.Fatalf("parents: mid=%q top=%q ext=%q", s.Layer("mid").Parent, s.Layer("top").Parent, s.Layer("ext").Parent)
	}
	if s.Layer("top").Ref != "reg.local/s/top:v1" {
		t.Fatalf("ref = %s", s.Layer("top").Ref)
	}
	for _, tt := range []struct {
		name    string
		sel     func([]string) ([]*Layer, error)
		names   []string
		want    string // layer names in build order
		wantErr string
	}{
		{"Select adds parents", s.Select, []string{"top"}, "base,mid,top", ""},
		{"Select keeps build order", s.Select, []string{"top", "ext"}, "base,ext,mid,top", ""},
		{"Select all", s.Select, nil, "base,ext,mid,other,top", ""},
		{"Select unknown", s.Select, []string{"nope"}, "", `stack s has no layer "nope" (layers: base, ext, mid, other, top)`},
		{"Only leaves parents out", s.Only, []string{"top"}, "top", ""},
		{"Only keeps build order", s.Only, []string{"top", "base"}, "base,top", ""},
		{"Only needs a name", s.Only, nil, "", "selecting only named layers needs at least one name"},
		{"Only unknown", s.Only, []string{"mid", "nope"}, "", `has no layer "nope"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := tt.sel(tt.names)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range sel {
				names = append(names, l.Name)
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Fatalf("%v → %s, want %s", tt.names, got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		spec      string
		kubefiles map[string]string
		want      string
	}{
		{"cycle", header, map[string]string{"a": "FROM b\n", "b": "FROM c\n", "c": "FROM a\n"}, "cycle: a → FROM b, b → FROM c, c → FROM a"},
		{"self cycle", header, map[string]string{"a": "FROM a\n"}, "cycle"},
		{"unknown layer", header, map[string]string{"a": "FROM scratch\n", "b": "FROM bsae\n"}, "b/Kubefile:1:1: FROM bsae names no layer of stack s (layers: a, b)"},
		{"duplicate", header + "layers:\n  - name: a\n  - name: a\n", map[string]string{"a": "FROM scratch\n"}, `two layers are called "a"`},
		{"missing layer dir", header + "layers:\n  - name: a\n  - name: gone\n", map[string]string{"a": "FROM scratch\n"}, "layer gone: missing Kubefile"},
		{"no repository", "name: s\nversion: v1\n", map[string]string{"a": "FROM scratch\n"}, "repository is missing"},
		{"unknown key", header + "platform: linux/amd64\n", map[string]string{"a": "FROM scratch\n"}, "field platform not found"},
		{"bad platform", header + "platforms: [linux]\n", map[string]string{"a": "FROM scratch\n"}, `platform "linux"`},
		{"bad type", header + "layers:\n  - name: a\n    type: app\n", map[string]string{"a": "FROM scratch\n"}, `image type "app" is not valid`},
		{"kubefile error", header, map[string]string{"a": "FROM scratch\nRUN x\n"}, "layer a:"},
		{"no layers", header, nil, "has no layers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeStack(t, tt.spec, tt.kubefiles), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSampleStack(t *testing.T) {
	s, err := Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Layers) != 8 || s.Layer("base").Parent != "kubernetes" || s.Layer("cnstack").Parent != "middleware" || s.Layer("addon-demo").Type != "app-installer" {
		t.Fatalf("sample stack: %v", s.Names())
	}
}

func TestBuildArgsPrecedence(t *testing.T) {
	// An edition in its own directory: stack-wide pins, layers from the
	// directory above, a layer's own args, then --build-arg.
	dir := writeStack(t, header, map[string]string{
		"base": "ARG BASE\nFROM ${BASE}\n",
		"top":  "FROM base\n",
	})
	ed := filepath.Join(dir, "edition")
	os.MkdirAll(ed, 0o755)
	os.WriteFile(filepath.Join(ed, FileName), []byte(header+`buildArgs: {BASE: "reg.local/k8s:v1", PIN: stack, OTHER: stack}
layers:
  - {name: base, dir: ../base, buildArgs: {PIN: layer}}
  - {name: top, dir: ../top}
`), 0o644)
	s, err := Load(ed, map[string]string{"OTHER": "flag"})
	if err != nil {
		t.Fatal(err)
	}
	b, top := s.Layer("base"), s.Layer("top")
	if b.From != "reg.local/k8s:v1" || b.Dir != filepath.Join(dir, "base") {
		t.Fatalf("base: FROM %q in %s", b.From, b.Dir)
	}
	if b.BuildArgs["PIN"] != "layer" || b.BuildArgs["OTHER"] != "flag" || top.BuildArgs["PIN"] != "stack" || top.Parent != "base" {
		t.Fatalf("base args %v, top args %v (parent %q)", b.BuildArgs, top.BuildArgs, top.Parent)
	}
}
