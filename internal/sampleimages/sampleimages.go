// Package sampleimages assembles the tiny container images that stand in for
// every image the sample stack (testdata/stack) references, from the recipe
// testdata/images/images.yaml (pkg/assemble is the one image assembler), and
// pushes them to a local registry under sealer's stripped names (registry
// domain dropped: registry.k8s.io/pause becomes <addr>/pause,
// docker.io/library/redis becomes <addr>/library/redis). With
// --registry-mirror docker.io=<addr> and registry.k8s.io=<addr> the sample
// stack then builds with no internet.
//
// The images are deterministic: the same files (and payload) give the same
// digests. They are assembled into a cache store shared by every process
// (the user cache dir's cnstack/samples), so a second load reads nothing.
package sampleimages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cnstack/cnstack/pkg/assemble"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// ListFile is the image list in the samples directory.
const ListFile = "images.yaml"

// Sample is one assembled image: Index is set for several platforms,
// Image for one.
type Sample struct {
	Ref    string
	Format string // "oci" or "docker"
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

// CacheDir is where samples are assembled: $CNSTACK_SAMPLES_CACHE, else
// <user cache dir>/cnstack/samples.
func CacheDir() string {
	if d := os.Getenv("CNSTACK_SAMPLES_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil && d != "" {
		return filepath.Join(d, "cnstack", "samples")
	}
	return filepath.Join(os.TempDir(), "cnstack-samples")
}

var loadMu sync.Mutex

// Load assembles every image of dir's images.yaml (PAYLOAD defaults to
// tools/install.sh's cache, whose busybox makes the images runnable).
func Load(dir string) ([]*Sample, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	r, err := assemble.Load(filepath.Join(dir, ListFile))
	if err != nil {
		return nil, fmt.Errorf("sample images: %w", err)
	}
	cache := CacheDir()
	s, err := store.Open(filepath.Join(cache, "store"))
	if err != nil {
		return nil, err
	}
	results, err := assemble.Assemble(context.Background(), s, r, assemble.Options{CacheDir: filepath.Join(cache, "layers")})
	if err != nil {
		return nil, fmt.Errorf("sample images: %w", err)
	}
	lp, err := layout.FromPath(s.Root())
	if err != nil {
		return nil, err
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	var out []*Sample
	for i, res := range results {
		ref, err := reference.Parse(res.Ref)
		if err != nil {
			return nil, err
		}
		format := r.Images[i].Format
		if format == "" {
			format = "oci"
		}
		smp := &Sample{Ref: res.Ref, Format: format, Repository: ref.Repository, Tag: ref.Tag, Platforms: map[string]v1.Image{}}
		h, err := v1.NewHash(res.Descriptor.Digest.String())
		if err != nil {
			return nil, err
		}
		if len(res.Platforms) == 1 {
			if smp.Image, err = top.Image(h); err != nil {
				return nil, err
			}
			smp.Platforms[res.Platforms[0]] = smp.Image
		} else {
			if smp.Index, err = top.ImageIndex(h); err != nil {
				return nil, err
			}
			im, err := smp.Index.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, d := range im.Manifests {
				img, err := smp.Index.Image(d.Digest)
				if err != nil {
					return nil, err
				}
				smp.Platforms[d.Platform.String()] = img
			}
		}
		out = append(out, smp)
	}
	return out, nil
}

// LoadDefault loads the samples from DefaultDir.
func LoadDefault() ([]*Sample, error) {
	dir, err := DefaultDir()
	if err != nil {
		return nil, err
	}
	return Load(dir)
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
