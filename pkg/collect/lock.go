package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/manifest"
	"github.com/cnstack/cnstack/pkg/reference"
)

// PlatformViews are the views of one platform's images.
type PlatformViews struct {
	Platform ocispec.Platform
	Views    []*View
}

// LockOptions tune Lock.
type LockOptions struct {
	ImageList, Ignored []string // --image-list and --ignored-image-list lines
	MaxProcs           int
	// Charts are the pins of the chart sources the views were laid out
	// with (pkg/chartrepo.Sources.Pinned); each view's chart sources must
	// be among them.
	Charts []lockfile.Chart
}

// Lock discovers every image of every view, for every platform, resolves
// each on its registry (tags are resolved afresh; an old lock is not
// consulted) and returns the lock file. Every failure is reported.
func (c *Collector) Lock(ctx context.Context, platforms []PlatformViews, o LockOptions) (*lockfile.File, error) {
	type need struct {
		platforms map[string]ocispec.Platform
		layers    map[string]bool
		source    string
	}
	needs := map[string]*need{}
	sources := map[[2]string]map[string]bool{}
	charts := map[string]map[string]bool{} // chart -> layers
	for _, pv := range platforms {
		found := map[string]map[string]bool{} // view -> refs
		for _, v := range pv.Views {
			for _, s := range v.Sources {
				if s.IsChart() {
					if charts[s.URL] == nil {
						charts[s.URL] = map[string]bool{}
					}
					charts[s.URL][v.Name] = true
					continue
				}
				k := [2]string{s.URL, s.Checksum}
				if sources[k] == nil {
					sources[k] = map[string]bool{}
				}
				sources[k][v.Name] = true
			}
			res, err := Discover(ctx, os.DirFS(v.Dir), DiscoverOptions{Env: v.Env(), Extension: v.Extension, ImageList: o.ImageList, Ignored: o.Ignored, KubeVersion: v.KubeVersion()})
			if err != nil {
				return nil, fmt.Errorf("layer %s (%s): %w", v.Name, PlatformKey(pv.Platform), err)
			}
			found[v.Name] = map[string]bool{}
			for _, im := range res.Images {
				found[v.Name][im.Ref] = true
				n := needs[im.Ref]
				if n == nil {
					n = &need{platforms: map[string]ocispec.Platform{}, layers: map[string]bool{}}
					if len(im.Sources) > 0 {
						n.source = im.Sources[0].String()
					}
					needs[im.Ref] = n
				}
				n.platforms[PlatformKey(pv.Platform)] = pv.Platform
				if v.Parent == "" || !found[v.Parent][im.Ref] {
					n.layers[v.Name] = true // the layer that brings the image in
				}
			}
		}
	}
	refs := make([]string, 0, len(needs))
	for r := range needs {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	procs := o.MaxProcs
	if procs <= 0 {
		procs = DefaultMaxProcs
	}
	images := make([]lockfile.Image, len(refs))
	errs := make([]error, len(refs))
	sem := make(chan struct{}, procs)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			n := needs[ref]
			var plats []ocispec.Platform
			for _, k := range sortedPlatformKeys(n.platforms) {
				plats = append(plats, n.platforms[k])
			}
			im, err := c.LockImage(ctx, ref, plats)
			if err != nil {
				var ie *ImageError
				if errors.As(err, &ie) {
					ie.Source = n.source
				}
				errs[i] = err
				return
			}
			for l := range n.layers {
				im.Layers = append(im.Layers, l)
			}
			images[i] = im
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f := &lockfile.File{Version: lockfile.Version, Images: images}
	for k, layers := range sources {
		s := lockfile.Source{URL: k[0], Checksum: k[1]}
		for l := range layers {
			s.Layers = append(s.Layers, l)
		}
		f.Sources = append(f.Sources, s)
	}
	pins := map[string]lockfile.Chart{}
	for _, c := range o.Charts {
		pins[c.Chart] = c
	}
	for ref, layers := range charts {
		c, ok := pins[ref]
		if !ok {
			return nil, fmt.Errorf("chart %s: not fetched, so it cannot be pinned", ref)
		}
		for l := range layers {
			c.Layers = append(c.Layers, l)
		}
		f.Charts = append(f.Charts, c)
	}
	return f, nil
}

func sortedPlatformKeys(m map[string]ocispec.Platform) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LockImage resolves ref on its registry and pins it: the manifest its tag
// (or digest) names and, for an index, each platform's child. Manifests
// are kept in the store, so a build right after needs no second request.
func (c *Collector) LockImage(ctx context.Context, ref string, platforms []ocispec.Platform) (lockfile.Image, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return lockfile.Image{}, err
	}
	res := &resolved{wanted: wanted{Ref: r.String()}, ref: r, host: c.endpointName(r)}
	fail := func(p string, err error) (lockfile.Image, error) {
		return lockfile.Image{}, &ImageError{Image: r.String(), Endpoint: res.host, Platform: p, Err: err}
	}
	id := r.Tag
	if r.Digest != "" {
		id = r.Digest
	}
	// A tag is always asked of the registry: the lock records what it names now.
	var top ocispec.Descriptor
	var m *manifest.Manifest
	if r.Digest != "" {
		top, m, err = c.readManifest(ctx, res, id)
	} else {
		top, m, err = c.fetchManifest(ctx, res, id)
	}
	if err != nil {
		return fail("", err)
	}
	im := lockfile.Image{Image: r.String(), Digest: top.Digest.String(), MediaType: top.MediaType}
	if !m.IsIndex() {
		return im, nil
	}
	for _, p := range platforms {
		child, err := selectChild(m.Manifests, p, nil)
		if err != nil {
			return fail(PlatformKey(p), err)
		}
		im.Platforms = append(im.Platforms, lockfile.Platform{Platform: PlatformKey(p), Digest: child.Digest.String()})
	}
	return im, nil
}
