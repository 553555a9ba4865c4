// Package stack loads a layered stack: a directory holding stack.yaml and one
// directory per layer (a Kubefile and its build context). It resolves which
// layer builds FROM which, orders the layers, and finds cycles, missing
// layers and duplicates. It owns the stack plan too: Walk schedules the
// layers (parents first, independent ones in parallel, nothing new after a
// failure) and Plan chains their keys (a child's through its parent's; a
// child of a rebuilding layer rebuilds). What one layer's keys are, and how
// its image is written, is pkg/build's. OpenTarget is what the commands
// that read Kubefiles without building (lint, lock, images why) work on: a
// stack, or one build context.
package stack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.yaml.in/yaml/v3"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
)

// FileName is the stack file in a stack directory.
const FileName = "stack.yaml"

// Spec is stack.yaml.
type Spec struct {
	// Name of the stack, e.g. "cnstack".
	Name string `yaml:"name"`
	// Version tags every layer's image, e.g. "v0.1.0".
	Version string `yaml:"version"`
	// Repository prefixes every layer's image: <repository>/<layer>:<version>.
	Repository string `yaml:"repository"`
	// Platforms to build ("linux/amd64"); default linux/amd64.
	Platforms []string `yaml:"platforms,omitempty"`
	// BuildArgs apply to every layer (a layer's own buildArgs, then
	// --build-arg, override them): one place for the pins a stack's
	// Kubefiles share, so an edition of the stack is one stack file.
	BuildArgs map[string]string `yaml:"buildArgs,omitempty"`
	// Layers lists the layers; when empty, every subdirectory holding a
	// Kubefile is a layer named after it.
	Layers []LayerSpec `yaml:"layers,omitempty"`
}

// LayerSpec is one entry of stack.yaml's layers.
type LayerSpec struct {
	Name      string            `yaml:"name"`
	Dir       string            `yaml:"dir,omitempty"`      // default: Name
	Kubefile  string            `yaml:"kubefile,omitempty"` // default: <Dir>/Kubefile
	Type      string            `yaml:"type,omitempty"`     // kube-installer (default) or app-installer
	BuildArgs map[string]string `yaml:"buildArgs,omitempty"`
}

// Layer is a resolved layer of the stack.
type Layer struct {
	Name      string
	Dir       string // build context (absolute)
	Kubefile  string // absolute path
	Ref       string // the image reference it is tagged with
	Type      string // kube-installer or app-installer; Load fills in the default
	BuildArgs map[string]string
	// From is the FROM reference as written (expanded for the default platform).
	From string
	// Parent is the layer this one builds on, or "" for an external base or scratch.
	Parent  string
	FromPos kubefile.Pos
	// Image is the Kubefile evaluated for the stack's first platform
	// without its build context: its apps, sources and LAUNCH.
	Image *kubefile.Image
}

// Stack is a loaded, validated stack.
type Stack struct {
	Dir       string
	Spec      Spec
	Platforms []ocispec.Platform
	// Layers in build order: every layer after its parent.
	Layers []*Layer
	byName map[string]*Layer
}

// Load reads the stack in dir and validates it.
func Load(dir string, extraArgs map[string]string) (*Stack, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(abs, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load stack: %w", err)
	}
	var spec Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &Stack{Dir: abs, Spec: spec, byName: map[string]*Layer{}}
	if err := s.validateSpec(path); err != nil {
		return nil, err
	}
	if len(spec.Layers) == 0 {
		if spec.Layers, err = discover(abs); err != nil {
			return nil, err
		}
	}
	var errs []error
	var layers []*Layer
	for _, ls := range spec.Layers {
		l, err := s.layer(ls, extraArgs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := s.byName[l.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: two layers are called %q (%s and %s)", path, l.Name, prev.Dir, l.Dir))
			continue
		}
		s.byName[l.Name] = l
		layers = append(layers, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, l := range layers {
		if err := s.resolveParent(l); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if s.Layers, err = order(layers, s.byName); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) validateSpec(path string) error {
	var problems []string
	if s.Spec.Name == "" {
		problems = append(problems, "name is missing")
	}
	if s.Spec.Version == "" {
		problems = append(problems, "version is missing")
	}
	if s.Spec.Repository == "" {
		problems = append(problems, "repository is missing (the prefix of the layers' images, e.g. registry.example.com/cnstack)")
	} else if _, err := reference.Parse(s.Spec.Repository + "/x:" + s.Spec.Version); err != nil {
		problems = append(problems, fmt.Sprintf("repository %q with version %q does not make valid image references: %v", s.Spec.Repository, s.Spec.Version, err))
	}
	plats := s.Spec.Platforms
	if len(plats) == 0 {
		plats = []string{"linux/amd64"}
	}
	for _, p := range plats {
		pp, err := oci.ParsePlatform(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("platform %q: %v", p, err))
			continue
		}
		s.Platforms = append(s.Platforms, pp)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

// discover lists subdirectories that hold a Kubefile, sorted by name.
func discover(dir string) ([]LayerSpec, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []LayerSpec
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "Kubefile")); err == nil {
				out = append(out, LayerSpec{Name: e.Name()})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("stack %s has no layers: add layers to %s or subdirectories with a Kubefile", dir, FileName)
	}
	return out, nil
}

func (s *Stack) layer(ls LayerSpec, extraArgs map[string]string) (*Layer, error) {
	if ls.Name == "" {
		return nil, fmt.Errorf("%s: a layer has no name", filepath.Join(s.Dir, FileName))
	}
	if strings.ContainsAny(ls.Name, "/:@ ") || strings.ToLower(ls.Name) != ls.Name {
		return nil, fmt.Errorf("%s: layer name %q must be a lower-case image name component", filepath.Join(s.Dir, FileName), ls.Name)
	}
	dir := ls.Dir
	if dir == "" {
		dir = ls.Name
	}
	dir = filepath.Join(s.Dir, dir)
	kf := ls.Kubefile
	if kf == "" {
		kf = filepath.Join(dir, "Kubefile")
	} else if !filepath.IsAbs(kf) {
		kf = filepath.Join(s.Dir, kf)
	}
	if _, err := os.Stat(kf); err != nil {
		return nil, fmt.Errorf("layer %s: missing Kubefile %s", ls.Name, kf)
	}
	typ := ls.Type
	if typ == "" {
		typ = clusterimage.KubeInstaller
	}
	if err := clusterimage.ValidateType(typ); err != nil {
		return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
	}
	args := map[string]string{}
	for k, v := range s.Spec.BuildArgs {
		args[k] = v
	}
	for k, v := range ls.BuildArgs {
		args[k] = v
	}
	for k, v := range extraArgs {
		args[k] = v
	}
	l := &Layer{
		Name: ls.Name, Dir: dir, Kubefile: kf, Type: typ, BuildArgs: args,
		Ref: s.Spec.Repository + "/" + ls.Name + ":" + s.Spec.Version,
	}
	src, err := kubefile.ReadFile(kf)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
	}
	f, diags := kubefile.Parse(kf, src)
	if err := diags.Err(); err != nil {
		return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
	}
	img, diags := kubefile.Evaluate(f, kubefile.EvalOptions{Platform: s.Platforms[0], BuildArgs: args})
	if img == nil {
		return nil, fmt.Errorf("layer %s: %w", ls.Name, diags.Err())
	}
	l.From, l.FromPos, l.Image = img.From.Ref, img.From.Pos, img
	if l.From == "" {
		return nil, fmt.Errorf("layer %s: %w", ls.Name, diags.Err())
	}
	return l, nil
}

// resolveParent decides whether FROM names a sibling layer: by its name or
// by its full image reference. A bare word that is no layer is an error
// (it is almost always a typo, not docker.io/library/<word>).
func (s *Stack) resolveParent(l *Layer) error {
	from := l.From
	if from == "scratch" {
		return nil
	}
	if p, ok := s.byName[from]; ok {
		l.Parent = p.Name
		return nil
	}
	want, err := reference.Normalize(from)
	if err == nil {
		for _, p := range s.byName {
			if n, _ := reference.Normalize(p.Ref); n == want {
				l.Parent = p.Name
				return nil
			}
		}
	}
	if !strings.ContainsAny(from, "/:@.") {
		return fmt.Errorf("%s: FROM %s names no layer of stack %s (layers: %s); to build on an external image write its full reference", l.FromPos, from, s.Spec.Name, strings.Join(s.Names(), ", "))
	}
	return nil
}

// order sorts layers so every layer comes after its parent (Kahn's
// algorithm, ties broken by name for a stable order) and reports cycles.
func order(layers []*Layer, byName map[string]*Layer) ([]*Layer, error) {
	children := map[string][]*Layer{}
	indeg := map[string]int{}
	for _, l := range layers {
		if l.Parent != "" {
			children[l.Parent] = append(children[l.Parent], l)
			indeg[l.Name]++
		}
	}
	var ready []*Layer
	for _, l := range layers {
		if indeg[l.Name] == 0 {
			ready = append(ready, l)
		}
	}
	var out []*Layer
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
		l := ready[0]
		ready = ready[1:]
		out = append(out, l)
		for _, c := range children[l.Name] {
			indeg[c.Name]--
			if indeg[c.Name] == 0 {
				ready = append(ready, c)
			}
		}
	}
	if len(out) != len(layers) {
		var cyc []string
		for _, l := range layers {
			if indeg[l.Name] > 0 {
				cyc = append(cyc, l.Name+" → FROM "+byName[l.Parent].Name)
			}
		}
		sort.Strings(cyc)
		return nil, fmt.Errorf("the stack's layers build FROM each other in a cycle: %s", strings.Join(cyc, ", "))
	}
	return out, nil
}

// Layer returns the layer called name, or nil.
func (s *Stack) Layer(name string) *Layer { return s.byName[name] }

// Names lists the layers in build order.
func (s *Stack) Names() []string {
	var out []string
	for _, l := range s.Layers {
		out = append(out, l.Name)
	}
	if len(out) == 0 {
		for n := range s.byName {
			out = append(out, n)
		}
		sort.Strings(out)
	}
	return out
}

// Children lists the layers that build FROM name.
func (s *Stack) Children(name string) []*Layer {
	var out []*Layer
	for _, l := range s.Layers {
		if l.Parent == name {
			out = append(out, l)
		}
	}
	return out
}

// Select returns the named layers plus every layer they build on, in build
// order; no names means the whole stack.
func (s *Stack) Select(names []string) ([]*Layer, error) {
	return s.selectLayers(names, true)
}

// Only returns the named layers alone, in build order, without the layers
// they build on (a CI job whose parents another job built); it needs at
// least one name.
func (s *Stack) Only(names []string) ([]*Layer, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("stack %s: selecting only named layers needs at least one name", s.Spec.Name)
	}
	return s.selectLayers(names, false)
}

func (s *Stack) selectLayers(names []string, withParents bool) ([]*Layer, error) {
	if len(names) == 0 {
		return s.Layers, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		l := s.byName[n]
		if l == nil {
			return nil, fmt.Errorf("stack %s has no layer %q (layers: %s)", s.Spec.Name, n, strings.Join(s.Names(), ", "))
		}
		for ; l != nil; l = s.byName[l.Parent] {
			want[l.Name] = true
			if !withParents {
				break
			}
		}
	}
	var out []*Layer
	for _, l := range s.Layers {
		if want[l.Name] {
			out = append(out, l)
		}
	}
	return out, nil
}
