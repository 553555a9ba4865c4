package build

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
)

// CollectOptions are the user's choices about container images.
type CollectOptions struct {
	ImageList []string // extra references (--image-list)
	Ignored   []string // references to leave out (--ignored-image-list)
	MaxProcs  int      // parallel pulls (--max-pull-procs)
	Locked    bool     // refuse references the lock file does not pin (--locked)
	LockFile  string   // path of the lock file ("" when there is none)
}

// CollectRequest describes one platform image whose container images are
// to be collected.
type CollectRequest struct {
	Name      string
	Platform  ocispec.Platform
	Root      fs.FS // the image root (manifests/, charts/, application/ of every layer)
	Extension *clusterimage.Extension
	Env       map[string]string // image env, for *.tmpl rendering
	Base      []clusterimage.ContainerImage
	// BaseLayers are the base image's layers.
	BaseLayers []ocispec.Descriptor
	// BaseHas reports whether the base image already carries a file (for
	// example "registry/docker/registry/v2/blobs/sha256/ab/<hex>/data"): a
	// child carries only what its parents lack, since registry trees union
	// at sealer run.
	BaseHas func(path string) bool
	Options CollectOptions
}

// CollectResult is what collection adds to the image.
type CollectResult struct {
	// Entries are the registry/ tree files the image adds (each with Open
	// and Digest set); the builder writes them as one layer. Empty when the
	// base already carries everything.
	Entries []layer.Entry
	// CreatedBy describes the layer in the image history.
	CreatedBy string
	Images    []clusterimage.ContainerImage // every image the image carries (base's included)
}

// Collector finds the container images an image needs and builds the layer
// holding them as a registry tree.
type Collector interface {
	Collect(ctx context.Context, req CollectRequest) (*CollectResult, error)
}

// collect builds the scan root of the image so far and hands it to the
// Collector.
func (b *Builder) collect(ctx context.Context, req *Request, st *imageState, base *baseImage, ext *clusterimage.Extension, platform ocispec.Platform) (*CollectResult, error) {
	if err := b.indexLayers(ctx, st); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cnstack-scan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := mergeRoots(dir, st.indexes); err != nil {
		return nil, err
	}
	creq := CollectRequest{
		Name: req.Name, Platform: platform, Root: os.DirFS(dir), Extension: ext, Env: ext.Env,
		Options: req.Collect,
	}
	have := map[string]bool{}
	for _, li := range st.indexes {
		paths, err := li.RegistryPaths()
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			have[p] = true
		}
	}
	creq.BaseHas = func(p string) bool { return have[p] }
	if base != nil {
		creq.Base = base.Images
		creq.BaseLayers = base.Manifest.Layers
	}
	res, err := b.Collector.Collect(ctx, creq)
	if err != nil {
		return nil, fmt.Errorf("collect container images for %s: %w", oci.PlatformString(platform), err)
	}
	return res, nil
}
