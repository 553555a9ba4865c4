package build

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
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
	// BaseLayers are the base image's layers: a registry tree already
	// carried there need not be carried again.
	BaseLayers []ocispec.Descriptor
	Options    CollectOptions
}

// CollectResult is what collection adds to the image.
type CollectResult struct {
	Layer   *clusterimage.Layer           // the registry/ layer; nil when nothing new
	History ocispec.History               // history entry for Layer
	Images  []clusterimage.ContainerImage // every image the image carries (base's included)
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
	if base != nil {
		creq.Base = base.Images
		creq.BaseLayers = base.Manifest.Layers
	}
	res, err := b.Collector.Collect(ctx, creq)
	if err != nil {
		return nil, fmt.Errorf("collect container images for %s: %w", clusterimage.PlatformString(platform), err)
	}
	return res, nil
}
