// Package collect gathers the container images a cluster image needs into
// the registry tree sealer's embedded registry serves (sealer-format.md §3).
//
// For one platform image it discovers references (pkg/imagescan over the
// image root, plus --image-list, minus --ignored-image-list), skips what the
// base image already carries, resolves each reference on its registry (or
// mirror), and downloads every blob into the local store, which is the one
// blob cache for every image, layer and build: a blob there is never
// downloaded again. Downloads run in parallel, largest first, each blob
// once, through cnstack's one pull path (pkg/regclient's resumable blob reader
// into the store's verifying writer: broken transfers resume with HTTP
// Range, retry with backoff, digests are checked while streaming). The
// result is the list of registry tree files (pkg/registrytree) the builder
// writes as one layer.
//
// Without building, views (View, TargetViews) lay out what each Kubefile of
// a stack would put into its image (pkg/contents, as the build does), and
// Lock pins and Why explains the container images found there.
package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"

	units "github.com/cnstack/cnstack/internal/progress"
)

// DefaultMaxProcs is the default number of parallel transfers.
const DefaultMaxProcs = 8

// Collector collects the container images of cluster images: it is the
// builder's collector.Collector.
type Collector struct {
	Store  *store.Store
	Remote *regclient.Client // registry access; nil: only what the store has
	// Out receives progress: one line per image, and a bar on a terminal.
	Out io.Writer
}

var _ collector.Collector = (*Collector)(nil)

// Collect gathers the images req's image root refers to.
func (c *Collector) Collect(ctx context.Context, req collector.Request) (*collector.Result, error) {
	start := time.Now()
	plat := PlatformKey(req.Platform)
	found, err := Discover(ctx, req.Root, DiscoverOptions{
		Env: req.Env, Extension: req.Extension, ImageList: req.Options.ImageList, Ignored: req.Options.Ignored,
		KubeVersion: req.KubeVersion,
	})
	if err != nil {
		return nil, err
	}
	for _, w := range found.Warnings {
		slog.Warn("container image reference not collected", "platform", plat, "where", w.Source.String(), "ref", w.Ref, "reason", w.Message)
	}

	inBase := map[string]bool{}
	for _, b := range req.Base {
		if n, err := reference.Normalize(b.Image); err == nil {
			inBase[n] = true
		}
	}
	var todo []wanted
	fromBase := 0
	for _, im := range found.Images {
		if inBase[im.Ref] {
			fromBase++
			continue
		}
		w := wanted{Ref: im.Ref, AppName: im.AppName}
		if len(im.Sources) > 0 {
			w.Source = im.Sources[0].String()
		}
		todo = append(todo, w)
	}

	pins, err := c.pins(req, todo)
	if err != nil {
		return nil, err
	}
	procs := req.Options.MaxProcs
	if procs <= 0 {
		procs = DefaultMaxProcs
	}
	images, err := c.resolveAll(ctx, todo, req.Platform, pins, procs)
	if err != nil {
		return nil, err
	}
	has := req.BaseHas
	if has == nil {
		has = func(string) bool { return false }
	}
	stats, err := c.fetchAll(ctx, images, plat, procs, func(p string) bool { return has(registrytree.ImageDir + "/" + p) })
	if err != nil {
		return nil, err
	}

	entries, err := c.entries(images, has)
	if err != nil {
		return nil, err
	}
	res := &collector.Result{
		Entries:   entries,
		CreatedBy: fmt.Sprintf("cnstack collect: %d container images into registry/ (%s)", len(images), plat),
		Images:    mergeImages(req.Base, images, req.Platform),
	}
	if c.Out != nil {
		fmt.Fprintf(c.Out, "  [%s] container images: %d found, %d carried by the base, %d collected (%d pulled %s, %d cached) in %s\n",
			plat, len(found.Images), fromBase, len(images), stats.pulledImages, units.Bytes(stats.pulledBytes),
			len(images)-stats.pulledImages, time.Since(start).Round(time.Millisecond))
	}
	return res, nil
}

// pins reads the lock file: a pinned image is pulled by digest; with
// Locked, every image to pull must be pinned for this platform.
func (c *Collector) pins(req collector.Request, todo []wanted) (map[string]*lockfile.Pinned, error) {
	o := req.Options
	if o.LockFile == "" {
		if o.Locked && len(todo) > 0 {
			return nil, fmt.Errorf("--locked: there is no lock file (%s); run `cnstack lock` first", lockfile.FileName)
		}
		return nil, nil
	}
	lf, err := lockfile.Read(o.LockFile)
	if err != nil {
		if o.Locked || !errors.Is(err, errNotExist) {
			return nil, err
		}
		return nil, nil
	}
	plat := PlatformKey(req.Platform)
	pins := map[string]*lockfile.Pinned{}
	var problems []string
	for _, w := range todo {
		p, err := lf.Pin(w.Ref, plat)
		if err != nil {
			if o.Locked {
				problems = append(problems, fmt.Sprintf("  %v (found in %s)", err, w.Source))
			} else if c.Out != nil {
				fmt.Fprintf(c.Out, "  [%s] %v; resolving its tag\n", plat, err)
			}
			continue
		}
		pins[w.Ref] = &p
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("--locked: %d container images are not pinned by %s for %s:\n%s", len(problems), o.LockFile, plat, strings.Join(problems, "\n"))
	}
	return pins, nil
}

var errNotExist = fs.ErrNotExist

type fetchStats struct {
	pulledImages int
	pulledBytes  int64
}

// fetchAll downloads every blob the images need that the base does not
// carry, each once, largest first, procs at a time. An image's line is
// printed when its last blob is in.
func (c *Collector) fetchAll(ctx context.Context, images []*resolved, plat string, procs int, baseHas func(string) bool) (fetchStats, error) {
	type task struct {
		desc   ocispec.Descriptor
		images []int
	}
	tasks := map[string]*task{}
	remaining := make([]int, len(images))
	pulled := make([]atomic.Bool, len(images))
	sizes := make([]int64, len(images))
	for i, im := range images {
		for _, b := range im.blobs {
			sizes[i] += b.Size
			if baseHas(registrytree.BlobPath(b.Digest)) {
				continue
			}
			t := tasks[b.Digest.String()]
			if t == nil {
				t = &task{desc: b}
				tasks[b.Digest.String()] = t
			}
			t.images = append(t.images, i)
			remaining[i]++
		}
	}
	var total int64
	var list []*task
	for _, t := range tasks {
		total += t.desc.Size
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].desc.Size != list[j].desc.Size {
			return list[i].desc.Size > list[j].desc.Size
		}
		return list[i].desc.Digest < list[j].desc.Digest
	})
	prog := newProgress(c.Out, plat, len(images), total)
	defer prog.finish()
	start := time.Now()
	var mu sync.Mutex
	var stats fetchStats
	imageDone := func(i int) {
		status := "cached"
		if pulled[i].Load() {
			status = "pulled"
			stats.pulledImages++
		}
		prog.imageDone(fmt.Sprintf("  [%s] %s: %s %s in %s", plat, images[i].Ref, status, units.Bytes(sizes[i]), time.Since(start).Round(time.Millisecond)))
	}
	for i := range images {
		if remaining[i] == 0 {
			imageDone(i)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *task)
	errs := make([]error, 0)
	var wg sync.WaitGroup
	for range min(procs, max(len(list), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				im := images[t.images[0]]
				fetched := false
				var err error
				if ok, _ := c.Store.Exists(ctx, t.desc); !ok {
					repo, rerr := c.repository(ctx, im)
					if rerr != nil {
						err = rerr
					} else {
						err = c.pullBlob(ctx, repo, t.desc, func(n int64) {
							fetched = true
							prog.addBytes(n)
							atomic.AddInt64(&stats.pulledBytes, n)
						})
					}
				} else {
					prog.addBytes(t.desc.Size)
				}
				mu.Lock()
				if err != nil {
					if !errors.Is(err, context.Canceled) || len(errs) == 0 {
						errs = append(errs, &ImageError{Image: im.Ref, Endpoint: im.host, Platform: plat, Source: im.Source,
							Err: fmt.Errorf("blob %s (%s): %w", t.desc.Digest, units.Bytes(t.desc.Size), err)})
					}
					cancel()
					mu.Unlock()
					continue
				}
				for _, i := range t.images {
					if fetched {
						pulled[i].Store(true)
					}
					remaining[i]--
					if remaining[i] == 0 {
						imageDone(i)
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range list {
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return stats, errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	return stats, nil
}

// entries lays the images out as registry tree files, leaving out those the
// base carries. A tag's current link is always written: it is the one file
// whose content may differ from the base's at the same path.
func (c *Collector) entries(images []*resolved, baseHas func(string) bool) ([]layer.Entry, error) {
	var tree []registrytree.Image
	for _, im := range images {
		tree = append(tree, registrytree.Image{
			Ref: im.Ref, Repository: im.ref.Repository, Tag: im.ref.Tag,
			Top: im.top, Manifests: im.manifests, Blobs: im.blobs,
		})
	}
	files, err := registrytree.Entries(tree)
	if err != nil {
		return nil, err
	}
	var out []layer.Entry
	for _, f := range files {
		name := registrytree.ImageDir + "/" + f.Path
		if baseHas(name) && !f.IsTagLink() {
			continue
		}
		e := layer.Entry{Name: name, Mode: 0o644, Size: f.Size, Digest: f.Digest}
		if f.Blob {
			d := f.Digest
			e.Open = func(ctx context.Context) (io.ReadCloser, error) {
				return c.Store.Fetch(ctx, ocispec.Descriptor{Digest: d, Size: f.Size})
			}
		} else {
			text := f.Link
			e.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
		}
		out = append(out, e)
	}
	return out, nil
}

// mergeImages is the sealer.image.container.images list: the base's, then
// the images this layer adds.
func mergeImages(base []clusterimage.ContainerImage, images []*resolved, p ocispec.Platform) []clusterimage.ContainerImage {
	out := append([]clusterimage.ContainerImage(nil), base...)
	seen := map[string]bool{}
	for _, b := range base {
		seen[b.Image+"\x00"+b.AppName] = true
	}
	for _, im := range images {
		if seen[im.Ref+"\x00"+im.AppName] {
			continue
		}
		seen[im.Ref+"\x00"+im.AppName] = true
		out = append(out, clusterimage.ContainerImage{
			Image: im.Ref, AppName: im.AppName,
			Platform: clusterimage.NewPlatform(p),
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Image != out[j].Image {
			return out[i].Image < out[j].Image
		}
		return out[i].AppName < out[j].AppName
	})
	return out
}
