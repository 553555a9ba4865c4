package regclient

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/cnstack/cnstack/pkg/manifest"
)

// Repository is one repository of a registry: an oras-go repository (so it
// is an oras.Target and content moves with oras.Copy and CopyGraph) whose
// reads are cnstack's one pull path. Blob reads resume a broken or stalled
// body with HTTP Range where it stopped (see OpenBlob); what the registry
// refuses comes back as an AuthError, NotFoundError or UnreachableError
// that says what to do about it. Writes are oras-go's own.
type Repository struct {
	*remote.Repository
	client *Client
}

// Host is the registry host content comes from: a mirror, or the registry
// itself (registry-1.docker.io for docker.io). Errors name it.
func (r *Repository) Host() string { return r.Reference.Registry }

// Fetch opens the content of desc: a manifest through oras-go, a blob as a
// resumable reader (OpenBlob). The blob request is sent on the first Read,
// so a caller that seeks first (the store resuming a partial blob) asks
// only for the bytes it lacks.
func (r *Repository) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if isManifestType(desc.MediaType) {
		rc, err := r.Repository.Fetch(ctx, desc)
		return rc, explain(err, "manifest")
	}
	return r.OpenBlob(ctx, desc), nil
}

// Resolve resolves a tag or digest to the manifest's descriptor.
func (r *Repository) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	d, err := r.Repository.Resolve(ctx, reference)
	return d, explain(err, "manifest")
}

// FetchReference fetches the manifest a tag or digest names.
func (r *Repository) FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, io.ReadCloser, error) {
	d, rc, err := r.Repository.FetchReference(ctx, reference)
	return d, rc, explain(err, "manifest")
}

// isManifestType routes desc as oras-go does: these media types are read
// from /manifests/, everything else from /blobs/.
func isManifestType(mediaType string) bool {
	return manifest.IsManifestType(mediaType) || mediaType == artifactManifest
}

// artifactManifest is the OCI artifact manifest of image-spec 1.1-rc, which
// oras-go still reads from /manifests/.
const artifactManifest = "application/vnd.oci.artifact.manifest.v1+json"
