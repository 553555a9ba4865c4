// Package assemble builds container images from files on disk, the way a
// `FROM scratch` Dockerfile of COPY lines would, without a container engine:
// the Kubernetes base's control-plane, kube-proxy, etcd, CoreDNS, pause and
// CNI images are assembled from the pinned binaries tools/install.sh builds,
// and the sample stack's stand-in images from testdata/images.
//
// A recipe (YAML) lists images; each names its reference, platforms, layers
// (files copied from the host, or written inline) and config (entrypoint,
// env, labels). Assembly is deterministic — the same files give the same
// digests on any machine, through pkg/layer — and writes into the cnstack
// store, tagging each image by its reference. Several platforms give an OCI
// index (or a Docker manifest list for the docker format).
package assemble

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cnstack/cnstack/pkg/reference"
)

// Recipe is a file of images to assemble.
type Recipe struct {
	// Vars are defaults for ${NAME} in the recipe; Options.Vars override them.
	Vars   map[string]string `yaml:"vars,omitempty"`
	Images []Image           `yaml:"images"`
	// Dir is the directory relative sources resolve against (the recipe's).
	Dir string `yaml:"-"`
}

// Image is one image of a recipe.
type Image struct {
	Ref       string   `yaml:"ref"`
	Platforms []string `yaml:"platforms"`
	// Format is "oci" (default) or "docker" (Docker schema 2 media types).
	Format     string            `yaml:"format,omitempty"`
	Layers     []Layer           `yaml:"layers"`
	Entrypoint []string          `yaml:"entrypoint,omitempty"`
	Cmd        []string          `yaml:"cmd,omitempty"`
	Env        []string          `yaml:"env,omitempty"`
	WorkingDir string            `yaml:"workingDir,omitempty"`
	User       string            `yaml:"user,omitempty"`
	Labels     map[string]string `yaml:"labels,omitempty"`
	// Comment goes into the image history.
	Comment string `yaml:"comment,omitempty"`
}

// Layer is one filesystem layer: the files it adds.
type Layer struct {
	Files []File `yaml:"files"`
}

// File puts a host file or directory (Src), or inline text (Content), at Dst
// in the image. A directory's contents go under Dst, symlinks kept. Mode, if
// set, is an octal permission for a single file or inline content.
type File struct {
	Src     string `yaml:"src,omitempty"`
	Dst     string `yaml:"dst"`
	Content string `yaml:"content,omitempty"`
	Mode    string `yaml:"mode,omitempty"`
	// Optional files may be absent for a platform (e.g. a binary that does
	// not cross-compile); a missing required file is an error.
	Optional bool `yaml:"optional,omitempty"`
}

// Load reads and validates a recipe file.
func Load(path string) (*Recipe, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	r.Dir = abs
	return r, nil
}

// Parse decodes a recipe strictly (unknown fields are errors) and validates
// its shape; variables are expanded later, per platform.
func Parse(b []byte) (*Recipe, error) {
	var r Recipe
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	if len(r.Images) == 0 {
		return nil, fmt.Errorf("recipe: no images")
	}
	seen := map[string]bool{}
	for i, img := range r.Images {
		where := fmt.Sprintf("images[%d] (%s)", i, img.Ref)
		if img.Ref == "" {
			return nil, fmt.Errorf("%s: ref is empty", where)
		}
		if seen[img.Ref] {
			return nil, fmt.Errorf("%s: ref listed twice", where)
		}
		seen[img.Ref] = true
		if len(img.Platforms) == 0 {
			return nil, fmt.Errorf("%s: no platforms", where)
		}
		switch img.Format {
		case "", "oci", "docker":
		default:
			return nil, fmt.Errorf("%s: format %q: want oci or docker", where, img.Format)
		}
		if len(img.Layers) == 0 {
			return nil, fmt.Errorf("%s: no layers", where)
		}
		for j, l := range img.Layers {
			if len(l.Files) == 0 {
				return nil, fmt.Errorf("%s: layers[%d] has no files", where, j)
			}
			for k, f := range l.Files {
				fw := fmt.Sprintf("%s: layers[%d].files[%d]", where, j, k)
				if f.Dst == "" {
					return nil, fmt.Errorf("%s: dst is empty", fw)
				}
				if (f.Src == "") == (f.Content == "") {
					return nil, fmt.Errorf("%s: give exactly one of src and content", fw)
				}
				if f.Mode != "" {
					if _, err := parseMode(f.Mode); err != nil {
						return nil, fmt.Errorf("%s: %w", fw, err)
					}
				}
			}
		}
	}
	return &r, nil
}

func parseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %q is not an octal permission such as 0755", s)
	}
	return os.FileMode(m), nil
}

var varPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} with vars[NAME], again in what a value brings in
// (PAYLOAD=/x/${OS}-${ARCH}), a few levels deep. An unknown name is an error,
// so a typo never silently becomes an empty path.
func expand(s string, vars map[string]string) (string, error) {
	out := s
	for range 8 {
		var missing []string
		next := varPattern.ReplaceAllStringFunc(out, func(m string) string {
			v, ok := vars[m[2:len(m)-1]]
			if !ok {
				missing = append(missing, m[2:len(m)-1])
			}
			return v
		})
		if len(missing) > 0 {
			sort.Strings(missing)
			return "", fmt.Errorf("%q uses undefined variable(s) %s (define them under vars: or with --var NAME=VALUE)", s, strings.Join(missing, ", "))
		}
		if next == out {
			return out, nil
		}
		out = next
	}
	return "", fmt.Errorf("%q: variables refer to each other too deeply", s)
}

// Refs lists the recipe's image references, expanded with vars.
func (r *Recipe) Refs(vars map[string]string) ([]string, error) {
	all := r.vars(vars, nil)
	var out []string
	for _, img := range r.Images {
		ref, err := expand(img.Ref, all)
		if err != nil {
			return nil, err
		}
		if _, err := reference.Parse(ref); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// vars merges cnstack's defaults (PAYLOAD: DefaultPayload), the recipe's
// vars, the caller's overrides and the platform's own variables (OS, ARCH,
// VARIANT, PLATFORM), which win.
func (r *Recipe) vars(overrides, platform map[string]string) map[string]string {
	all := map[string]string{"PAYLOAD": DefaultPayload()}
	for _, m := range []map[string]string{r.Vars, overrides, platform} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

// DefaultPayload is the PAYLOAD variable's default: where tools/install.sh
// and tools/debs.sh put the binaries and trees cluster images carry,
// ${CNSTACK_TOOLS_DIR:-~/.cache/cnstack/tools}/payload/${OS}-${ARCH}.
func DefaultPayload() string {
	dir := os.Getenv("CNSTACK_TOOLS_DIR")
	if dir == "" {
		if h, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(h, ".cache", "cnstack", "tools")
		}
	}
	return filepath.Join(dir, "payload") + "/${OS}-${ARCH}"
}
