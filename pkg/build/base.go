package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// baseImage is a FROM image resolved for one platform.
type baseImage struct {
	Ref       string
	Digest    digest.Digest // platform manifest
	Manifest  ocispec.Manifest
	Config    ocispec.Image
	Extension *clusterimage.Extension
	Images    []clusterimage.ContainerImage
	src       content.Fetcher // where its blobs are read: the store, or its registry while planning
}

// resolveBase finds a FROM image for one platform: a layer of the same
// stack (by name), an image in the local store, or an image in a registry
// (pulled into the store, only the platform needed).
// When dry is set (planning), a registry image is read but not stored.
func (b *Builder) resolveBase(ctx context.Context, ref string, platform ocispec.Platform, stackBases map[string]Base, dry bool) (*baseImage, error) {
	sb, ok := stackBases[ref]
	desc := sb.Descriptor
	var src content.Fetcher = b.Store
	if !ok {
		var err error
		desc, err = b.Store.Resolve(ctx, ref)
		if errors.Is(err, store.ErrNotFound) {
			desc, src, err = b.pullBase(ctx, ref, platform, dry)
		}
		if err != nil {
			return nil, fmt.Errorf("FROM %s: %w", ref, err)
		}
	}
	desc, err := oci.SelectPlatform(ctx, src, desc, platform)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", ref, err)
	}
	bi, err := loadBase(ctx, src, ref, desc)
	if err != nil {
		return nil, err
	}
	if sb.Name != "" {
		bi.Ref = sb.Name
	}
	bi.src = src
	return bi, nil
}

func loadBase(ctx context.Context, s content.Fetcher, ref string, desc ocispec.Descriptor) (*baseImage, error) {
	mb, err := content.FetchAll(ctx, s, desc)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", ref, err)
	}
	bi := &baseImage{Ref: ref, Digest: desc.Digest}
	if err := json.Unmarshal(mb, &bi.Manifest); err != nil {
		return nil, fmt.Errorf("FROM %s: manifest: %w", ref, err)
	}
	cb, err := content.FetchAll(ctx, s, bi.Manifest.Config)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: config: %w", ref, err)
	}
	// What the base is decides whether it can be built on: a sealer v0.9+
	// cluster image, not a legacy sealer image or a container image.
	det, err := clusterimage.Detect(mb, cb)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", ref, err)
	}
	if err := det.Check(ref); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cb, &bi.Config); err != nil {
		return nil, fmt.Errorf("FROM %s: config: %w", ref, err)
	}
	ann := bi.Manifest.Annotations[clusterimage.AnnotationExtension]
	if bi.Extension, err = clusterimage.ParseExtension(ann); err != nil {
		return nil, fmt.Errorf("FROM %s: %w", ref, err)
	}
	if bi.Images, err = clusterimage.ParseContainerImages(bi.Manifest.Annotations[clusterimage.AnnotationContainerImages]); err != nil {
		return nil, fmt.Errorf("FROM %s: %w", ref, err)
	}
	return bi, nil
}

// pullBase copies one platform of a registry image into the store (or, when
// dry, returns the registry itself as the source to read it from).
func (b *Builder) pullBase(ctx context.Context, ref string, platform ocispec.Platform, dry bool) (ocispec.Descriptor, content.Fetcher, error) {
	if b.Remote == nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("image %s is not in the local store: %w", ref, store.ErrNotFound)
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	repo, err := b.Remote.Repository(ctx, r)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := repo.Resolve(ctx, r.Identifier())
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("image %s is neither in the local store nor pullable from %s: %w", ref, b.Remote.Endpoint(r.Registry), err)
	}
	child, err := oci.SelectPlatform(ctx, repo, desc, platform)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if dry {
		return child, repo, nil
	}
	b.logf("pulling base %s (%s)", ref, oci.PlatformString(platform))
	opts := oras.DefaultCopyGraphOptions
	opts.Concurrency = 8
	if err := oras.CopyGraph(ctx, repo, b.Store, child, opts); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("pull %s from %s: %w", ref, b.Remote.Endpoint(r.Registry), err)
	}
	return child, b.Store, nil
}
