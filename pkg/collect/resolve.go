package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
)

// wanted is one image to carry, as discovery found it.
type wanted struct {
	Ref     string // normalized
	AppName string
	Source  string // where it was first found, for messages
}

// resolved is an image resolved for one platform: its manifests are in the
// store, its blobs are known.
type resolved struct {
	wanted
	ref       reference.Reference
	host      string // the endpoint content comes from, for messages
	repoMu    sync.Mutex
	repo      *regclient.Repository
	top       ocispec.Descriptor
	manifests []ocispec.Descriptor
	blobs     []ocispec.Descriptor
}

// ImageError is a failure to collect one image: it names the image, the
// registry endpoint asked and the cause.
type ImageError struct {
	Image    string
	Endpoint string
	Platform string
	Source   string // where the reference was found
	Err      error
}

func (e *ImageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s", e.Image)
	if e.Platform != "" {
		fmt.Fprintf(&b, " (%s)", e.Platform)
	}
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " from %s", e.Endpoint)
	}
	if e.Source != "" {
		fmt.Fprintf(&b, ", found in %s", e.Source)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ImageError) Unwrap() error { return e.Err }

// PlatformError is an index without the platform being built.
type PlatformError struct {
	Platform string
	Have     []string
}

func (e *PlatformError) Error() string {
	have := "none"
	if len(e.Have) > 0 {
		have = strings.Join(e.Have, ", ")
	}
	return fmt.Sprintf("the image has no %s variant (its index has: %s)", e.Platform, have)
}

// PlatformKey is how lock files and messages name a platform: os/arch,
// plus the variant except for arm64, whose variant sealer ignores.
func PlatformKey(p ocispec.Platform) string {
	if p.Architecture == "arm64" {
		p.Variant = ""
	}
	return oci.PlatformString(p)
}

// resolve fetches the manifests of w for platform, from the store when a
// digest is known and the store has it, else from the registry. pin, when
// set, is what the lock file says to pull (by digest).
func (c *Collector) resolve(ctx context.Context, w wanted, platform ocispec.Platform, pin *lockfile.Pinned) (*resolved, error) {
	r, err := reference.Parse(w.Ref)
	if err != nil {
		return nil, err
	}
	res := &resolved{wanted: w, ref: r, host: c.endpointName(r)}
	var topRef string
	switch {
	case pin != nil:
		topRef = pin.Digest.String()
	case r.Digest != "":
		topRef = r.Digest
	default:
		topRef = r.Tag
	}
	top, tm, err := c.readManifest(ctx, res, topRef)
	if err != nil {
		return res, err
	}
	res.top = top
	res.manifests = []ocispec.Descriptor{top}
	m, mdesc := tm, top
	if tm.IsIndex() {
		child, err := selectChild(tm.Manifests, platform, pin)
		if err != nil {
			return res, err
		}
		cdesc, cm, err := c.readManifest(ctx, res, child.Digest.String())
		if err != nil {
			return res, fmt.Errorf("platform manifest %s: %w", child.Digest, err)
		}
		if cm.IsIndex() {
			return res, fmt.Errorf("the %s entry of index %s is itself an index; nested indexes are not supported", PlatformKey(platform), top.Digest)
		}
		cdesc.Platform = child.Platform
		res.manifests = append(res.manifests, cdesc)
		m, mdesc = cm, cdesc
	}
	if m.Config == nil {
		return res, fmt.Errorf("manifest %s has no config", mdesc.Digest)
	}
	res.blobs = append(append(res.blobs, *m.Config), m.Layers...)
	return res, nil
}

// readManifest returns a manifest by digest from the store, or by tag or
// digest from the registry (storing it in the shared cache). What it is
// comes from its bytes (pkg/manifest), never from what anyone claims.
func (c *Collector) readManifest(ctx context.Context, res *resolved, ref string) (ocispec.Descriptor, *manifest.Manifest, error) {
	if d := digest.Digest(ref); d.Validate() == nil {
		if b, err := c.Store.ReadBlob(ctx, d); err == nil {
			m, err := manifest.Parse(b)
			if err != nil {
				return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", d, err)
			}
			return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(b))}, m, nil
		}
	}
	return c.fetchManifest(ctx, res, ref)
}

// fetchManifest asks the registry for the manifest a tag or digest names,
// checks its bytes against the digest (the one asked for, or the one the
// registry answers a tag with) and keeps it in the store.
func (c *Collector) fetchManifest(ctx context.Context, res *resolved, ref string) (ocispec.Descriptor, *manifest.Manifest, error) {
	repo, err := c.repository(ctx, res)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, rc, err := repo.FetchReference(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer rc.Close()
	if desc.Size > manifest.MaxSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is %d bytes, over the %d-byte limit", desc.Digest, desc.Size, manifest.MaxSize)
	}
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	desc = ocispec.Descriptor{MediaType: m.MediaType, Digest: desc.Digest, Size: desc.Size}
	if err := c.Store.Push(ctx, desc, bytes.NewReader(b)); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("store manifest %s: %w", desc.Digest, err)
	}
	return desc, m, nil
}

// repository opens the registry repository res comes from, once.
func (c *Collector) repository(ctx context.Context, res *resolved) (*regclient.Repository, error) {
	res.repoMu.Lock()
	defer res.repoMu.Unlock()
	if res.repo != nil {
		return res.repo, nil
	}
	if c.Remote == nil {
		return nil, fmt.Errorf("not in the local cache and no registry access configured")
	}
	repo, err := c.Remote.Repository(ctx, res.ref)
	if err != nil {
		return nil, err
	}
	res.repo = repo
	return repo, nil
}

func (c *Collector) endpointName(r reference.Reference) string {
	if c.Remote == nil {
		return r.Registry
	}
	return c.Remote.Endpoint(r.Registry)
}

// selectChild picks the index entry for platform (the pinned one when the
// lock file names it), as sealer does: os, architecture and variant, the
// variant ignored for arm64.
func selectChild(manifests []ocispec.Descriptor, platform ocispec.Platform, pin *lockfile.Pinned) (ocispec.Descriptor, error) {
	if pin != nil && pin.Child != "" {
		for _, m := range manifests {
			if m.Digest == pin.Child {
				return m, nil
			}
		}
		return ocispec.Descriptor{}, fmt.Errorf("%w: the lock pins %s for %s, which the index does not list", lockfile.ErrDrifted, pin.Child, PlatformKey(platform))
	}
	var have []string
	for _, m := range manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.OS == "unknown" { // attestation manifests (BuildKit)
			continue
		}
		have = append(have, oci.PlatformString(*m.Platform))
		if oci.MatchPlatform(*m.Platform, platform) {
			return m, nil
		}
	}
	sort.Strings(have)
	return ocispec.Descriptor{}, &PlatformError{Platform: PlatformKey(platform), Have: have}
}

// resolveAll resolves images in parallel and reports every failure, not
// just the first, so one run shows all that is wrong.
func (c *Collector) resolveAll(ctx context.Context, ws []wanted, platform ocispec.Platform, pins map[string]*lockfile.Pinned, procs int) ([]*resolved, error) {
	out := make([]*resolved, len(ws))
	errs := make([]error, len(ws))
	sem := make(chan struct{}, procs)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			r, err := c.resolve(ctx, w, platform, pins[w.Ref])
			if err != nil {
				host := ""
				if r != nil {
					host = r.host
				}
				errs[i] = &ImageError{Image: w.Ref, Endpoint: host, Platform: PlatformKey(platform), Source: w.Source, Err: err}
				return
			}
			out[i] = r
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
