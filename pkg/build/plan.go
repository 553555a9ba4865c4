package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/contents"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
)

// platformPlan is one platform's image as its Kubefile, base, context and
// options define it: every key, computed without writing to the store.
// `stack plan` reports it; materialise writes it.
type platformPlan struct {
	platform ocispec.Platform
	img      *kubefile.Image
	base     *baseImage // nil: FROM scratch, or a stack parent not built yet
	created  time.Time
	contents *contents.Contents // close when done
	steps    []plannedStep
	chain    string // the key after the last step; the registry layer's derives from it
	labels   map[string]string
	ann      map[string]string
	env      []string
	key      string // the image key
	inputs   map[string]string
}

// plannedStep is one instruction that shows in the image: a layer with its
// key (COPY-like steps) or a history entry (LABEL, ENV, MAINTAINER).
type plannedStep struct {
	text string
	copy *contents.Copy // nil for a step without a layer
	key  string         // the layer's key
}

// baseResolver finds a FROM image for one platform: Build pulls a registry
// image into the store first, Plan reads it where it is.
type baseResolver func(ctx context.Context, ref string, platform ocispec.Platform) (*baseImage, error)

// plan computes the keys of one platform's image. It reads the context
// (hashing files, unpacking archives), fetches remote sources into the
// download cache and reads the base; it writes nothing to the store.
func (b *Builder) plan(ctx context.Context, req *Request, file *kubefile.File, p ocispec.Platform, bases baseResolver) (*platformPlan, error) {
	img, base, err := b.evaluate(ctx, req, file, p, bases)
	if err != nil {
		return nil, err
	}
	if oci.EqualPlatform(p, req.Platforms[0]) && !req.SharedArgs {
		warnUnusedArgs(req, img)
	}
	pp := &platformPlan{platform: p, img: img, base: base}
	if pp.created, err = layer.SourceDateEpoch(); err != nil {
		return nil, err
	}
	platformKey := oci.PlatformString(pp.platform)
	sb, fromStack := req.Bases[img.From.Ref]
	baseID := "scratch"
	switch {
	case fromStack && sb.Keys[platformKey] != "":
		baseID = "stack:" + sb.Keys[platformKey]
	case base != nil:
		baseID = base.Digest.String()
	}
	if base != nil && len(base.Manifest.Layers) != len(base.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("FROM %s: %d layers but %d diff IDs", base.Ref, len(base.Manifest.Layers), len(base.Config.RootFS.DiffIDs))
	}

	src, err := b.sources(req)
	if err != nil {
		return nil, err
	}
	opts := contents.Options{Context: req.context, Download: src.Fetch, Type: req.Type}
	if base != nil {
		opts.BaseExtension = base.Extension
		opts.BaseIsDir = (&baseDirs{b: b, ctx: ctx, base: base}).isDir
	} else if fromStack {
		// Planning on a parent not built yet: its apps are unknown, its
		// directories are what its plan says.
		opts.BaseUnknown, opts.BaseIsDir = true, sb.isDir[platformKey]
	}
	if pp.contents, err = contents.Resolve(ctx, img, opts); err != nil {
		return nil, err
	}

	chain := keyOf(FormatVersion, platformKey, baseID, pp.created.Format(time.RFC3339))
	// What the key is made of, by name, so a rebuild can say which input changed.
	pp.inputs = map[string]string{"FROM " + img.From.Ref: baseID}
	var texts []string
	var inputs []string // every COPY's text and files, for the context digest
	copies := pp.contents.Copies
	for i := range img.Steps {
		s := &img.Steps[i]
		switch s.Kind {
		case kubefile.StepCopy:
			cp := &copies[0]
			copies = copies[1:]
			sum, err := b.entriesDigest(ctx, cp.Entries)
			if err != nil {
				pp.close()
				return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
			}
			chain = keyOf(chain, s.Text, sum)
			inputs = append(inputs, s.Text, sum)
			pp.inputs["files of "+s.Text] = sum
			pp.steps = append(pp.steps, plannedStep{text: s.Text, copy: cp, key: chain})
		case kubefile.StepLabel, kubefile.StepEnv, kubefile.StepMaintainer:
			chain = keyOf(chain, s.Text)
			pp.steps = append(pp.steps, plannedStep{text: s.Text})
			if s.Kind == kubefile.StepEnv {
				for _, kv := range s.Pairs {
					pp.env = append(pp.env, kv.Key+"="+kv.Value)
				}
			}
		default:
			chain = keyOf(chain, s.Text)
		}
	}
	for i := range img.Steps {
		texts = append(texts, img.Steps[i].Text)
	}
	pp.inputs["Kubefile instructions"] = keyOf(texts...)
	pp.inputs["container images (lock file, image lists)"] = collectKey(req)
	pp.chain = chain

	pp.labels = map[string]string{clusterimage.LabelSealerVersion: clusterimage.SealerVersion}
	maps.Copy(pp.labels, img.Labels)
	maps.Copy(pp.labels, req.Labels)
	pp.ann = map[string]string{}
	if base != nil {
		pp.ann[ocispec.AnnotationBaseImageName] = base.Ref
		pp.ann[ocispec.AnnotationBaseImageDigest] = base.Digest.String()
	} else if fromStack && sb.Name != "" {
		pp.ann[ocispec.AnnotationBaseImageName] = sb.Name // planning: the parent is not built yet
	}
	pp.ann[clusterimage.AnnotationContextDigest] = "sha256:" + keyOf(inputs...)
	maps.Copy(pp.ann, req.Annotations)
	// The key covers what this Kubefile says of the extension; what it
	// inherits is already covered by the base's key or digest in chain, so
	// a stack's keys can be known before its parents are built.
	own, err := ownExtension(img, req.Type)
	if err != nil {
		pp.close()
		return nil, err
	}
	keyAnn := maps.Clone(pp.ann)
	delete(keyAnn, ocispec.AnnotationBaseImageDigest) // the base's key or digest is in chain already
	pp.key = keyOf(chain, req.Type, req.Mode, own, sortedPairs(pp.labels), sortedPairs(keyAnn),
		img.Author, strings.Join(pp.env, "\n"), collectKey(req))
	return pp, nil
}

// kubeVersion is the Kubernetes the image installs: its own
// cluster-runtime-version label, else its base's.
func (pp *platformPlan) kubeVersion() string {
	if v := pp.labels[clusterimage.LabelClusterRuntimeVersion]; v != "" {
		return v
	}
	if pp.base != nil {
		return pp.base.Config.Config.Labels[clusterimage.LabelClusterRuntimeVersion]
	}
	return ""
}

func (pp *platformPlan) close() {
	if pp.contents != nil {
		pp.contents.Close()
	}
}

// layers is how many layers the image has before collection.
func (pp *platformPlan) layers() int {
	n := len(pp.contents.Copies)
	if pp.base != nil {
		n += len(pp.base.Manifest.Layers)
	}
	return n
}

// result says what building pp would do, from the cache alone.
func (b *Builder) planResult(ctx context.Context, req *Request, pp *platformPlan) *PlatformResult {
	res := &PlatformResult{Platform: pp.platform, Key: pp.key, Cached: true, Inputs: pp.inputs, isDir: pp.contents.IsDir}
	for _, s := range pp.steps {
		if s.copy != nil {
			if _, ok := b.cachedLayer(ctx, req, s.key); !ok {
				res.BuiltLayers++
			}
		}
	}
	if rec, ok := b.cachedImage(ctx, req, pp.key); ok {
		res.Descriptor = rec.Descriptor
		res.Layers = pp.layers()
		res.Images = countImages(ctx, b, rec.Descriptor)
		return res
	}
	res.Cached = false
	return res
}

// evaluate runs kubefile.Evaluate twice when needed: once to learn FROM, and
// once more with the base's apps known, so APPCMDS/LAUNCH may name them.
func (b *Builder) evaluate(ctx context.Context, req *Request, file *kubefile.File, p ocispec.Platform, bases baseResolver) (*kubefile.Image, *baseImage, error) {
	opts := kubefile.EvalOptions{Platform: p, BuildArgs: req.BuildArgs, Context: req.context.FS(), BaseApps: []string{}}
	img, diags := kubefile.Evaluate(file, opts)
	var base *baseImage
	if sb, ok := req.Bases[fromRef(img)]; ok && sb.Descriptor.Digest == "" {
		// Planning a stack layer whose parent is not built: its apps are unknown.
		opts.BaseApps = nil
		img, diags = kubefile.Evaluate(file, opts)
	} else if img != nil && !img.From.IsScratch() && img.From.Ref != "" {
		bp := p
		if img.From.Platform != nil {
			bp = *img.From.Platform
		}
		var err error
		if base, err = bases(ctx, img.From.Ref, bp); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", img.From.Pos, err)
		}
		opts.BaseApps = base.Extension.AppNames()
		img, diags = kubefile.Evaluate(file, opts)
	}
	logWarnings(diags)
	if err := diags.Err(); err != nil {
		return nil, nil, err
	}
	return img, base, nil
}

func fromRef(img *kubefile.Image) string {
	if img == nil {
		return ""
	}
	return img.From.Ref
}

// baseDirs answers whether a path is a directory of a base image, indexing
// its layers (read from wherever the base is: the store, or its registry
// while planning) the first time it is asked; most Kubefiles never ask.
type baseDirs struct {
	b    *Builder
	ctx  context.Context
	base *baseImage
	once sync.Once
	dirs map[string]bool
}

func (d *baseDirs) isDir(name string) bool {
	d.once.Do(func() {
		d.dirs = map[string]bool{}
		for i, desc := range d.base.Manifest.Layers {
			li, err := d.b.layerIndex(d.ctx, d.base.src, desc, d.base.Config.RootFS.DiffIDs[i])
			if err != nil {
				slog.Debug("base layer not indexed", "layer", desc.Digest, "error", err)
				continue
			}
			for _, dir := range li.Dirs {
				d.dirs[dir] = true
			}
		}
	})
	return d.dirs[name]
}

// ownExtension is what one Kubefile contributes to the extension, without
// positions (they name files, which must not change keys).
func ownExtension(img *kubefile.Image, typ string) (string, error) {
	type app struct {
		Name, Type, Kind string
		Files, Cmds      []string
		Env              map[string]string
	}
	type update struct {
		Name    string
		Cmds    []string
		CmdsSet bool
		Env     map[string]string
	}
	v := struct {
		Type       string
		Apps       []app
		Updates    []update
		LaunchApps []string
		LaunchCmds []string
		Env        map[string]string
	}{Type: typ, Env: img.Env}
	for _, a := range img.Apps {
		v.Apps = append(v.Apps, app{a.Name, a.Type, a.Kind, a.Files, a.Cmds, a.Env})
	}
	for _, u := range img.AppUpdates {
		v.Updates = append(v.Updates, update{u.Name, u.Cmds, u.CmdsSet, u.Env})
	}
	if img.Launch != nil {
		v.LaunchApps, v.LaunchCmds = img.Launch.AppNames, img.Launch.Cmds
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// warnUnusedArgs says which --build-arg the Kubefile never declared, as a
// typo there would otherwise silently build with the default.
func warnUnusedArgs(req *Request, img *kubefile.Image) {
	used := map[string]bool{}
	for _, a := range img.UsedArgs {
		used[a] = true
	}
	for k := range req.BuildArgs {
		if !used[k] {
			slog.Warn("build arg was not consumed by any ARG of the Kubefile", "arg", k, "kubefile", req.Kubefile)
		}
	}
}

func collectKey(req *Request) string {
	if req.Mode == ModeLite {
		return "lite"
	}
	o := req.Collect
	lock := ""
	if o.LockFile != "" {
		if b, err := os.ReadFile(o.LockFile); err == nil {
			lock = digest.FromBytes(b).String()
		}
	}
	// Locked only refuses unpinned references; it does not change the bytes,
	// so it is not part of the key.
	return keyOf(strings.Join(o.ImageList, "\n"), strings.Join(o.Ignored, "\n"), lock)
}

// entriesDigest digests what a COPY puts in the image: names, modes and
// content digests, in sorted order. It records each context file's digest
// in its entry (Verify set), so the layer writer checks that what it reads
// is what the key was computed from: a file changed or swapped meanwhile
// fails the build instead of entering the cache under a stale key.
func (b *Builder) entriesDigest(ctx context.Context, entries []layer.Entry) (string, error) {
	for i := range entries {
		e := &entries[i]
		if !e.Mode.IsRegular() || e.Digest != "" {
			continue
		}
		d, size, err := b.Cache.FileDigest(ctx, *e)
		if err == nil && size != e.Size {
			err = fmt.Errorf("%s: %w (%d bytes when listed, %d when hashed)", e.Source, layer.ErrChanged, e.Size, size)
		}
		if err != nil {
			b.Cache.Forget(e.Source)
			return "", err
		}
		e.Digest, e.Verify = d, true
	}
	norm, err := layer.Normalize(entries)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, e := range norm {
		fmt.Fprintf(&sb, "%s\x00%o\x00", e.Name, uint32(e.Mode))
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			sb.WriteString(e.Linkname)
		case e.Digest != "":
			sb.WriteString(e.Digest.String())
		}
		sb.WriteByte('\n')
	}
	return keyOf(sb.String()), nil
}

// layerIndex indexes one layer of a base image read from src.
func (b *Builder) layerIndex(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, diffID digest.Digest) (*layerIndex, error) {
	if li := b.Cache.cachedIndex(diffID); li != nil {
		return li, nil
	}
	li, err := b.Cache.indexFromBlob(ctx, src, desc, diffID)
	if err != nil {
		return nil, fmt.Errorf("index layer %s: %w", desc.Digest, err)
	}
	return li, nil
}
