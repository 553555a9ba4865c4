// Package build executes a Kubefile into the local store: one gzip layer per
// filesystem-changing instruction, reused from the cache when its inputs are
// unchanged, the sealer extension and labels, container images collected by
// a collector.Collector, and an OCI image (or index for several platforms).
//
// Each platform is first planned (plan.go: every cache key, from the
// Kubefile, its base, the files pkg/contents says it adds and the options,
// writing nothing; `stack plan` stops there), then materialised
// (platform.go: layers, collection, config and manifest). A stack's layers
// are scheduled and their keys chained by pkg/stack.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// FormatVersion is part of every cache key: bump it when the bytes cnstack
// writes for the same inputs change.
const FormatVersion = "cnstack-build/1"

// Build modes, as sealer v0.11's --build-mode.
const (
	ModeAll  = "all"  // collect container images into registry/
	ModeLite = "lite" // skip collection
)

// Builder builds images into a store.
type Builder struct {
	Store     *store.Store
	Cache     *Cache
	Remote    *regclient.Client   // FROM images in registries; nil: local store only
	Collector collector.Collector // container images (collect.Collector); nil: none collected
	HTTP      *http.Client        // remote ADD/APP sources; nil: http.DefaultClient
	Out       io.Writer           // one line per step and per image; nil: quiet
	Level     int                 // gzip level; 0: layer.DefaultLevel
}

// Request is one `cnstack build`.
type Request struct {
	Kubefile  string // path of the Kubefile
	Context   string // build context directory
	Name      string // display name (a stack layer's name); default the first tag
	Tags      []string
	Platforms []ocispec.Platform // default linux/amd64
	BuildArgs map[string]string
	// SharedArgs says BuildArgs are meant for many Kubefiles (a stack), so
	// one that this Kubefile does not use is not worth a warning.
	SharedArgs bool
	Type       string // kube-installer (default) or app-installer
	Mode       string // all (default) or lite

	// Bases maps FROM names to images already in the store: the stack
	// builder puts a layer's name and full reference here, so FROM of a
	// sibling layer uses its freshly built digest.
	Bases       map[string]Base
	Labels      map[string]string
	Annotations map[string]string
	NoCache     bool
	Collect     collector.Options

	context *buildcontext.Context // open while Build or Plan runs
}

// Base is an image a stack layer builds FROM.
type Base struct {
	// Name is the base's image reference, recorded in the
	// org.opencontainers.image.base.name annotation.
	Name string
	// Descriptor is the image in the store; zero while planning a layer
	// whose parent is not built yet.
	Descriptor ocispec.Descriptor
	// Keys are the parent's image keys by platform ("linux/amd64"): a
	// child's keys chain through them, so a whole stack's keys are known
	// before anything is built.
	Keys map[string]string
	// isDir are the parent's directories by platform, from its plan, for a
	// parent not built yet: a child's COPY into one of them plans as it
	// will build.
	isDir map[string]func(name string) bool
}

// PlatformResult is the outcome for one platform.
type PlatformResult struct {
	Platform    ocispec.Platform
	Descriptor  ocispec.Descriptor
	Key         string
	Cached      bool // nothing was built: every layer and the image came from the cache
	Layers      int  // layers the image has
	BuiltLayers int  // layers written in this build
	Images      int  // container images carried
	// Inputs name what the key is made of (the FROM image or parent key,
	// each COPY's files, the Kubefile's instructions, the container image
	// list) with a digest each: comparing two plans says which input changed.
	Inputs map[string]string

	isDir func(name string) bool // the image's directories, from its plan
}

// Result is the built image.
type Result struct {
	Descriptor ocispec.Descriptor // manifest (one platform) or index
	Platforms  []PlatformResult
	Cached     bool
	Duration   time.Duration
}

// Build runs req.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	if err := b.normalize(&req); err != nil {
		return nil, err
	}
	release, err := b.Store.Use(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	defer b.Cache.Flush()
	if req.context, err = buildcontext.Open(req.Context); err != nil {
		return nil, err
	}
	defer req.context.Close()

	file, src, err := parseKubefile(req.Kubefile)
	if err != nil {
		return nil, err
	}
	buildAnnotations(&req, src)
	results := make([]PlatformResult, len(req.Platforms))
	errs := make([]error, len(req.Platforms))
	var wg sync.WaitGroup
	for i, p := range req.Platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.buildPlatform(ctx, &req, file, p)
			if err != nil {
				errs[i] = fmt.Errorf("build %s for %s: %w", req.Name, oci.PlatformString(p), err)
				return
			}
			results[i] = *r
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	res := &Result{Platforms: results, Cached: true}
	for _, r := range results {
		res.Cached = res.Cached && r.Cached
	}
	if len(results) == 1 {
		res.Descriptor = results[0].Descriptor
	} else {
		var manifests []ocispec.Descriptor
		for _, r := range results {
			manifests = append(manifests, r.Descriptor)
		}
		created, _ := layer.SourceDateEpoch()
		idx, err := clusterimage.PlatformIndex(manifests, created)
		if err != nil {
			return nil, err
		}
		if res.Descriptor, err = b.Store.PushBytes(ctx, ocispec.MediaTypeImageIndex, idx); err != nil {
			return nil, fmt.Errorf("write index: %w", err)
		}
	}
	for _, t := range req.Tags {
		if err := b.Store.Tag(ctx, res.Descriptor, t); err != nil {
			return nil, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// buildPlatform plans one platform's image, then writes it.
func (b *Builder) buildPlatform(ctx context.Context, req *Request, file *kubefile.File, p ocispec.Platform) (*PlatformResult, error) {
	pp, err := b.plan(ctx, req, file, p, b.bases(req, true))
	if err != nil {
		return nil, err
	}
	defer pp.close()
	return b.materialise(ctx, req, pp)
}

// bases finds the FROM images of req: a layer of the same stack, an image
// in the store, or one in a registry, pulled into the store first when
// pull is set (a build) and read where it is otherwise (a plan).
func (b *Builder) bases(req *Request, pull bool) baseResolver {
	return func(ctx context.Context, ref string, platform ocispec.Platform) (*baseImage, error) {
		return b.resolveBase(ctx, ref, platform, req.Bases, !pull)
	}
}

// Plan computes the keys of req and whether building it would write
// anything, without writing to the store.
func (b *Builder) Plan(ctx context.Context, req Request) (*Result, error) {
	if err := b.normalize(&req); err != nil {
		return nil, err
	}
	var err error
	if req.context, err = buildcontext.Open(req.Context); err != nil {
		return nil, err
	}
	defer req.context.Close()
	file, src, err := parseKubefile(req.Kubefile)
	if err != nil {
		return nil, err
	}
	buildAnnotations(&req, src)
	res := &Result{Cached: true}
	for _, p := range req.Platforms {
		pp, err := b.plan(ctx, &req, file, p, b.bases(&req, false))
		if err != nil {
			return nil, fmt.Errorf("plan %s for %s: %w", req.Name, oci.PlatformString(p), err)
		}
		r := b.planResult(ctx, &req, pp)
		pp.close()
		res.Platforms = append(res.Platforms, *r)
		res.Cached = res.Cached && r.Cached
	}
	if len(res.Platforms) == 1 {
		res.Descriptor = res.Platforms[0].Descriptor
	}
	return res, nil
}

func (b *Builder) normalize(req *Request) error {
	if fi, err := os.Stat(req.Context); err != nil || !fi.IsDir() {
		return fmt.Errorf("build context %q is not a directory", req.Context)
	}
	// Absolute from here on: every containment check and every message
	// works the same for "build .", "build ./ctx" and "build /abs/ctx".
	var err error
	if req.Context, err = filepath.Abs(req.Context); err != nil {
		return err
	}
	if req.Kubefile == "" {
		req.Kubefile = filepath.Join(req.Context, "Kubefile")
	}
	if req.Kubefile, err = filepath.Abs(req.Kubefile); err != nil {
		return err
	}
	if len(req.Platforms) == 0 {
		req.Platforms = []ocispec.Platform{oci.DefaultPlatform}
	}
	if req.Type == "" {
		req.Type = clusterimage.KubeInstaller
	}
	if err := clusterimage.ValidateType(req.Type); err != nil {
		return err
	}
	switch req.Mode {
	case "":
		req.Mode = ModeAll
	case ModeAll, ModeLite:
	default:
		return fmt.Errorf("build mode %q is not valid: use %s (collect container images) or %s (skip them)", req.Mode, ModeAll, ModeLite)
	}
	if req.Name == "" {
		req.Name = req.Kubefile
		if len(req.Tags) > 0 {
			req.Name = req.Tags[0]
		}
	}
	return nil
}

// buildAnnotations records what the build is made from (for provenance):
// the Kubefile's digest and context-relative path, and the lock file's.
func buildAnnotations(req *Request, kubefileSrc []byte) {
	ann := map[string]string{clusterimage.AnnotationKubefileDigest: digest.FromBytes(kubefileSrc).String()}
	if rel, err := filepath.Rel(req.Context, req.Kubefile); err == nil && !strings.HasPrefix(rel, "..") {
		ann[clusterimage.AnnotationKubefile] = filepath.ToSlash(rel)
	} else {
		ann[clusterimage.AnnotationKubefile] = filepath.Base(req.Kubefile)
	}
	if lf := req.Collect.LockFile; lf != "" {
		if b, err := os.ReadFile(lf); err == nil {
			ann[clusterimage.AnnotationLockDigest] = digest.FromBytes(b).String()
			ann[clusterimage.AnnotationLock] = filepath.Base(lf)
		}
	}
	for k, v := range req.Annotations {
		ann[k] = v // the caller's word wins
	}
	req.Annotations = ann
}

// parseKubefile reads (see kubefile.ReadFile: no FIFO, bounded) and parses
// the Kubefile, returning its bytes too.
func parseKubefile(path string) (*kubefile.File, []byte, error) {
	src, err := kubefile.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, diags := kubefile.Parse(displayPath(path), src)
	logWarnings(diags)
	if err := diags.Err(); err != nil {
		return nil, nil, err
	}
	return f, src, nil
}

func displayPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

func logWarnings(diags kubefile.Diagnostics) {
	for _, w := range diags.Warnings() {
		slog.Warn(w.Error())
	}
}

func (b *Builder) logf(format string, args ...any) {
	if b.Out != nil {
		fmt.Fprintf(b.Out, format+"\n", args...)
	}
}

// keyOf hashes parts into a cache key; parts are length-prefixed so no two
// different part lists give the same stream.
func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%q=%q\n", k, m[k])
	}
	return sb.String()
}
