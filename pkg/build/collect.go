package build

import (
	"context"
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/oci"
)

// collect builds the scan root of the image so far and hands it to the
// Collector.
func (b *Builder) collect(ctx context.Context, req *Request, st *imageState, base *baseImage, ext *clusterimage.Extension, platform ocispec.Platform, kubeVersion string) (*collector.Result, error) {
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
	creq := collector.Request{
		Name: req.Name, Platform: platform, Root: os.DirFS(dir), Extension: ext, Env: ext.Env,
		Options: req.Collect, KubeVersion: kubeVersion,
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
