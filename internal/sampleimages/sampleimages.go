// Package sampleimages assembles the tiny container images that stand in for
// every image the sample stack (testdata/stack) references, from the files
// and list in testdata/images, and pushes them to a local registry under
// sealer's stripped names (registry domain dropped: registry.k8s.io/pause
// becomes <addr>/pause, docker.io/library/redis becomes <addr>/library/redis).
// With --registry-mirror docker.io=<addr> and registry.k8s.io=<addr> the
// sample stack then builds with no internet.
//
// The images are deterministic: the same files give the same digests.
package sampleimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.yaml.in/yaml/v3"

	"github.com/cnstack/cnstack/pkg/reference"
)

// ListFile is the image list in the samples directory.
const ListFile = "images.yaml"

// Spec is one entry of images.yaml.
type Spec struct {
	Ref       string   `yaml:"ref"`
	Dir       string   `yaml:"dir"`
	Format    string   `yaml:"format"` // oci or docker
	Platforms []string `yaml:"platforms"`
}

// Sample is one assembled image: Index is set for several platforms,
// Image for one.
type Sample struct {
	Spec
	// Repository and Tag are where it is pushed: the stripped name.
	Repository string
	Tag        string
	Image      v1.Image
	Index      v1.ImageIndex
	// Platforms maps "os/arch[/variant]" to the platform's image.
	Platforms map[string]v1.Image
}

// Digest is the digest of what the tag points at (index or manifest).
func (s *Sample) Digest() (v1.Hash, error) {
	if s.Index != nil {
		return s.Index.Digest()
	}
	return s.Image.Digest()
}

// DefaultDir finds testdata/images: under the working directory or one of
// its parents (a test runs in its package directory, `make demo` in the
// repository), else beside this source file.
func DefaultDir() (string, error) {
	wd, err := os.Getwd()
	if err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			p := filepath.Join(d, "testdata", "images")
			if _, err := os.Stat(filepath.Join(p, ListFile)); err == nil {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "images")
		if _, err := os.Stat(filepath.Join(p, ListFile)); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", errors.New("cannot find testdata/images (run from the cnstack repository, or pass its path)")
}

// Load assembles every image listed in fsys's images.yaml.
func Load(fsys fs.FS) ([]*Sample, error) {
	b, err := fs.ReadFile(fsys, ListFile)
	if err != nil {
		return nil, fmt.Errorf("sample images: %w", err)
	}
	var list struct {
		Images []Spec `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("sample images: %s: %w", ListFile, err)
	}
	common, err := dirLayer(fsys, "common")
	if err != nil {
		return nil, err
	}
	var out []*Sample
	for _, spec := range list.Images {
		s, err := assemble(fsys, spec, common)
		if err != nil {
			return nil, fmt.Errorf("sample image %s: %w", spec.Ref, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// LoadDefault loads the samples from DefaultDir.
func LoadDefault() ([]*Sample, error) {
	dir, err := DefaultDir()
	if err != nil {
		return nil, err
	}
	return Load(os.DirFS(dir))
}

type layerFiles struct {
	tar []byte
}

func assemble(fsys fs.FS, spec Spec, common layerFiles) (*Sample, error) {
	r, err := reference.Parse(spec.Ref)
	if err != nil {
		return nil, err
	}
	if r.Tag == "" {
		return nil, fmt.Errorf("a sample image needs a tag")
	}
	s := &Sample{Spec: spec, Repository: r.Repository, Tag: r.Tag, Platforms: map[string]v1.Image{}}
	var manifestType, listType, configType, layerType types.MediaType
	switch spec.Format {
	case "oci":
		manifestType, listType, configType, layerType = types.OCIManifestSchema1, types.OCIImageIndex, types.OCIConfigJSON, types.OCILayer
	case "docker":
		manifestType, listType, configType, layerType = types.DockerManifestSchema2, types.DockerManifestList, types.DockerConfigJSON, types.DockerLayer
	default:
		return nil, fmt.Errorf("format %q: want oci or docker", spec.Format)
	}
	own, err := dirLayer(fsys, spec.Dir)
	if err != nil {
		return nil, err
	}
	if len(spec.Platforms) == 0 {
		return nil, fmt.Errorf("no platforms")
	}
	idx := mutate.IndexMediaType(empty.Index, listType)
	for _, ps := range spec.Platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return nil, err
		}
		platLayer, err := tarOf(map[string]string{"etc/cnstack-sample": fmt.Sprintf("image=%s\nplatform=%s\n", spec.Ref, ps)})
		if err != nil {
			return nil, err
		}
		img := mutate.MediaType(empty.Image, manifestType)
		img = mutate.ConfigMediaType(img, configType)
		for _, l := range []layerFiles{common, own, platLayer} {
			layer, err := gzipLayer(l.tar, layerType)
			if err != nil {
				return nil, err
			}
			if img, err = mutate.AppendLayers(img, layer); err != nil {
				return nil, err
			}
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
		cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
		cfg.Config.Labels = map[string]string{"org.cnstack.sample": spec.Ref}
		cfg.Config.Cmd = []string{"/bin/sh"}
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			return nil, err
		}
		s.Platforms[ps] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
		s.Image = img
	}
	if len(spec.Platforms) > 1 {
		s.Image, s.Index = nil, idx
	}
	return s, nil
}

// dirLayer tars a directory of fsys with fixed owners, modes and times.
func dirLayer(fsys fs.FS, dir string) (layerFiles, error) {
	files := map[string]string{}
	modes := map[string]fs.FileMode{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files may make up a sample image", p)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, dir+"/")
		files[rel] = string(b)
		modes[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		return layerFiles{}, fmt.Errorf("sample files %s: %w", dir, err)
	}
	return tarOfModes(files, modes)
}

func tarOf(files map[string]string) (layerFiles, error) { return tarOfModes(files, nil) }

func tarOfModes(files map[string]string, modes map[string]fs.FileMode) (layerFiles, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	epoch := time.Unix(0, 0).UTC()
	for _, n := range names {
		var parents []string
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
				return layerFiles{}, err
			}
		}
		mode := int64(0o644)
		if modes[n]&0o111 != 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return layerFiles{}, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return layerFiles{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return layerFiles{}, err
	}
	return layerFiles{tar: buf.Bytes()}, nil
}

func gzipLayer(tarBytes []byte, mt types.MediaType) (v1.Layer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBytes); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(mt))
}

// Push assembles the samples from DefaultDir and pushes them to the
// registry at addr ("127.0.0.1:PORT", plain HTTP) under their stripped names.
func Push(ctx context.Context, addr string) error {
	samples, err := LoadDefault()
	if err != nil {
		return err
	}
	return PushSamples(ctx, addr, samples)
}

// PushSamples pushes samples to the registry at addr.
func PushSamples(ctx context.Context, addr string, samples []*Sample) error {
	for _, s := range samples {
		ref, err := name.ParseReference(addr+"/"+s.Repository+":"+s.Tag, name.Insecure)
		if err != nil {
			return err
		}
		if s.Index != nil {
			err = remote.WriteIndex(ref, s.Index, remote.WithContext(ctx))
		} else {
			err = remote.Write(ref, s.Image, remote.WithContext(ctx))
		}
		if err != nil {
			return fmt.Errorf("push sample %s to %s: %w", s.Ref, ref, err)
		}
	}
	return nil
}
