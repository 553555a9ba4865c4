// Package collector is the contract between the builder and a container
// image collector (pkg/collect implements it), as database/sql/driver is
// between database/sql and its drivers: what the builder asks for one
// platform image, and the registry tree files it gets back. It is kept
// apart so the builder does not link what collecting needs (Helm, the
// registry client) through it, and the collector does not import the
// builder.
package collector

import (
	"context"
	"io/fs"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/layer"
)

// Options are the user's choices about container images.
type Options struct {
	ImageList []string // extra references (--image-list)
	Ignored   []string // references to leave out (--ignored-image-list)
	MaxProcs  int      // parallel pulls (--max-pull-procs)
	Locked    bool     // refuse references the lock file does not pin (--locked)
	LockFile  string   // path of the lock file ("" when there is none)
}

// Request describes one platform image whose container images are to be
// collected.
type Request struct {
	Name      string
	Platform  ocispec.Platform
	Root      fs.FS // the image root (manifests/, charts/, application/ of every layer)
	Extension *clusterimage.Extension
	Env       map[string]string // image env, for *.tmpl rendering
	// KubeVersion is the Kubernetes the image installs (its
	// cluster-runtime-version label), which charts are rendered for.
	KubeVersion string
	Base        []clusterimage.ContainerImage
	// BaseLayers are the base image's layers.
	BaseLayers []ocispec.Descriptor
	// BaseHas reports whether the base image already carries a file (for
	// example "registry/docker/registry/v2/blobs/sha256/ab/<hex>/data"): a
	// child carries only what its parents lack, since registry trees union
	// at sealer run.
	BaseHas func(path string) bool
	Options Options
}

// Result is what collection adds to the image.
type Result struct {
	// Entries are the registry/ tree files the image adds (each with Open
	// and Digest set); the builder writes them as one layer. Empty when the
	// base already carries everything.
	Entries []layer.Entry
	// CreatedBy describes the layer in the image history.
	CreatedBy string
	Images    []clusterimage.ContainerImage // every image the image carries (base's included)
}

// Collector finds the container images an image needs and returns the
// layer holding them as a registry tree.
type Collector interface {
	Collect(ctx context.Context, req Request) (*Result, error)
}
