package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"

	"github.com/cnstack/cnstack/internal/progress"
)

// imageState is what the builder knows of the image so far.
type imageState struct {
	dirs    map[string]bool
	layers  []ocispec.Descriptor
	diffIDs []digest.Digest
	indexes []*layerIndex // aligned with layers; nil until needed
}

func (s *imageState) addLayer(desc ocispec.Descriptor, diffID digest.Digest, li *layerIndex) {
	s.layers = append(s.layers, desc)
	s.diffIDs = append(s.diffIDs, diffID)
	s.indexes = append(s.indexes, li)
	if li != nil {
		for _, d := range li.Dirs {
			s.dirs[d] = true
		}
	}
}

// evaluate runs kubefile.Evaluate twice when needed: once to learn FROM, and
// once more with the base's apps known, so APPCMDS/LAUNCH may name them.
func (b *Builder) evaluate(ctx context.Context, req *Request, file *kubefile.File, p ocispec.Platform, dry bool) (*kubefile.Image, *baseImage, error) {
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
		if base, err = b.resolveBase(ctx, img.From.Ref, bp, req.Bases, dry); err != nil {
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

// buildPlatform builds one platform's image; with dry set it only computes
// keys and cache hits (stack plan) and writes nothing to the store.
func (b *Builder) buildPlatform(ctx context.Context, req *Request, file *kubefile.File, p ocispec.Platform, dry bool) (*PlatformResult, error) {
	img, base, err := b.evaluate(ctx, req, file, p, dry)
	if err != nil {
		return nil, err
	}
	if oci.EqualPlatform(p, req.Platforms[0]) && !req.SharedArgs {
		warnUnusedArgs(req, img)
	}
	platform := p
	created, err := layer.SourceDateEpoch()
	if err != nil {
		return nil, err
	}
	st := &imageState{dirs: map[string]bool{}}
	baseID := "scratch"
	if sb, ok := req.Bases[img.From.Ref]; ok && sb.Keys[oci.PlatformString(platform)] != "" {
		baseID = "stack:" + sb.Keys[oci.PlatformString(platform)]
	} else if base != nil {
		baseID = base.Digest.String()
	}
	if base != nil {
		if len(base.Manifest.Layers) != len(base.Config.RootFS.DiffIDs) {
			return nil, fmt.Errorf("FROM %s: %d layers but %d diff IDs", base.Ref, len(base.Manifest.Layers), len(base.Config.RootFS.DiffIDs))
		}
		for i, l := range base.Manifest.Layers {
			st.addLayer(l, base.Config.RootFS.DiffIDs[i], b.Cache.cachedIndex(base.Config.RootFS.DiffIDs[i]))
		}
	}
	chain := keyOf(FormatVersion, oci.PlatformString(platform), baseID, created.Format(time.RFC3339))

	res := &PlatformResult{Platform: platform, Cached: true}
	var steps []clusterimage.Step
	var env []string
	var inputs []string // digests of every COPY's files, for the context digest
	total := countCopies(img.Steps)
	n := 0
	for i := range img.Steps {
		s := &img.Steps[i]
		switch s.Kind {
		case kubefile.StepCopy:
			n++
			t0 := time.Now()
			entries, cleanup, err := b.entries(ctx, req, s, st)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
			}
			sum, err := b.entriesDigest(ctx, entries)
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
			}
			chain = keyOf(chain, s.Text, sum)
			inputs = append(inputs, s.Text, sum)
			if dry {
				cleanup()
				if rec, ok := b.cachedLayer(ctx, req, chain); ok {
					st.addLayer(rec.Descriptor, rec.DiffID, b.Cache.cachedIndex(rec.DiffID))
				} else {
					// Not built: later COPYs still need to see its directories.
					res.BuiltLayers++
					norm, _ := layer.Normalize(entries)
					for _, e := range norm {
						if e.Mode.IsDir() {
							st.dirs[e.Name] = true
						}
					}
				}
				continue
			}
			l, li, built, err := b.layerFor(ctx, req, chain, entries)
			cleanup()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
			}
			st.addLayer(l.Descriptor, l.DiffID, li)
			steps = append(steps, clusterimage.Step{History: history(s.Text), Layer: l})
			status := "cached"
			if built {
				status = fmt.Sprintf("built %s in %s", progress.Bytes(l.Descriptor.Size), time.Since(t0).Round(time.Millisecond))
				res.BuiltLayers++
				res.Cached = false
			}
			b.logf("  [%s %d/%d] %s: %s", oci.PlatformString(p), n, total, s.Text, status)
		case kubefile.StepLabel, kubefile.StepEnv, kubefile.StepMaintainer:
			chain = keyOf(chain, s.Text)
			steps = append(steps, clusterimage.Step{History: history(s.Text)})
			if s.Kind == kubefile.StepEnv {
				for _, kv := range s.Pairs {
					env = append(env, kv.Key+"="+kv.Value)
				}
			}
		default:
			chain = keyOf(chain, s.Text)
		}
	}

	ext := clusterimage.Inherit(baseExtension(base), req.Type)
	for _, a := range img.Apps {
		ext.SetApp(clusterimage.Application{Name: a.Name, Type: a.Type, Files: a.Files, Version: "v1", Env: a.Env, Cmds: a.Cmds})
	}
	for _, u := range img.AppUpdates {
		a := ext.App(u.Name)
		if a == nil {
			if dry && base == nil {
				continue // planning on a parent not built yet: its apps are unknown
			}
			return nil, fmt.Errorf("%s: app %s is not in the base image", u.Pos, u.Name)
		}
		if u.CmdsSet {
			a.Cmds = u.Cmds
		}
		for k, v := range u.Env {
			if a.Env == nil {
				a.Env = map[string]string{}
			}
			a.Env[k] = v
		}
	}
	if img.Launch != nil {
		ext.Launch.AppNames = img.Launch.AppNames
		ext.Launch.Cmds = img.Launch.Cmds
	}
	if len(img.Env) > 0 {
		ext.Env = img.Env
	}
	labels := map[string]string{clusterimage.LabelSealerVersion: clusterimage.SealerVersion}
	for k, v := range img.Labels {
		labels[k] = v
	}
	for k, v := range req.Labels {
		labels[k] = v
	}
	annotations := map[string]string{}
	if base != nil {
		annotations[ocispec.AnnotationBaseImageName] = base.Ref
		annotations[ocispec.AnnotationBaseImageDigest] = base.Digest.String()
	} else if sb, ok := req.Bases[img.From.Ref]; ok && sb.Name != "" {
		annotations[ocispec.AnnotationBaseImageName] = sb.Name // planning: the parent is not built yet
	}
	annotations[clusterimage.AnnotationContextDigest] = "sha256:" + keyOf(inputs...)
	for k, v := range req.Annotations {
		annotations[k] = v
	}
	// The key covers what this Kubefile says of the extension; what it
	// inherits is already covered by the base's key or digest in chain, so
	// a stack's keys can be known before its parents are built.
	own, err := ownExtension(img, req.Type)
	if err != nil {
		return nil, err
	}
	keyAnn := maps.Clone(annotations)
	delete(keyAnn, ocispec.AnnotationBaseImageDigest) // the base's key or digest is in chain already
	imageKey := keyOf(chain, req.Type, req.Mode, own, sortedPairs(labels), sortedPairs(keyAnn),
		img.Author, strings.Join(env, "\n"), collectKey(req))
	res.Key = imageKey
	if !req.NoCache {
		if rec, ok := b.Cache.Image(imageKey); ok && b.complete(ctx, rec.Descriptor) {
			res.Descriptor = rec.Descriptor
			res.Layers = len(st.layers)
			res.Images = countImages(ctx, b, rec.Descriptor)
			return res, nil
		}
	}
	res.Cached = false
	if dry {
		return res, nil
	}

	var images []clusterimage.ContainerImage
	if base != nil {
		images = base.Images
	}
	if req.Mode == ModeAll && b.Collector != nil {
		cres, err := b.collect(ctx, req, st, base, ext, platform)
		if err != nil {
			return nil, err
		}
		images = cres.Images
		if len(cres.Entries) > 0 {
			sum, err := b.entriesDigest(ctx, cres.Entries)
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			l, li, built, err := b.layerFor(ctx, req, keyOf(chain, "registry", sum), cres.Entries)
			if err != nil {
				return nil, fmt.Errorf("write registry layer: %w", err)
			}
			status := "cached"
			if built {
				res.BuiltLayers++
				status = fmt.Sprintf("built %s in %s", progress.Bytes(l.Descriptor.Size), time.Since(t0).Round(time.Millisecond))
			}
			b.logf("  [%s] registry/ (%d container images): %s", oci.PlatformString(p), len(images), status)
			steps = append(steps, clusterimage.Step{History: history(cres.CreatedBy), Layer: l})
			st.addLayer(l.Descriptor, l.DiffID, li)
		}
	}

	asm := &clusterimage.Assembly{
		Platform: platform, Created: created,
		Steps: steps, Labels: labels, Env: env, Author: img.Author,
		Extension: ext, ContainerImages: images, Annotations: annotations,
	}
	if base != nil {
		asm.BaseConfig, asm.BaseLayers = &base.Config, base.Manifest.Layers
	}
	cfg, man, err := asm.Build()
	if err != nil {
		return nil, err
	}
	if _, err := b.Store.PushBytes(ctx, ocispec.MediaTypeImageConfig, cfg); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	md, err := b.Store.PushBytes(ctx, ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	md.Platform = &platform
	res.Descriptor = md
	res.Layers = len(st.layers)
	res.Images = len(images)
	if err := b.Cache.PutImage(imageKey, ImageRecord{Descriptor: md}); err != nil {
		return nil, fmt.Errorf("record image in cache: %w", err)
	}
	return res, nil
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

func baseExtension(b *baseImage) *clusterimage.Extension {
	if b == nil {
		return nil
	}
	return b.Extension
}

func history(text string) ocispec.History {
	return ocispec.History{CreatedBy: text, Comment: "cnstack"}
}

func countCopies(steps []kubefile.Step) int {
	n := 0
	for _, s := range steps {
		if s.Kind == kubefile.StepCopy {
			n++
		}
	}
	return n
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

// complete reports whether a manifest and every blob it needs are in the store.
func (b *Builder) complete(ctx context.Context, d ocispec.Descriptor) bool {
	return b.Store.Complete(ctx, d) == nil
}

func countImages(ctx context.Context, b *Builder, d ocispec.Descriptor) int {
	mb, err := b.Store.ReadBlob(ctx, d.Digest)
	if err != nil {
		return 0
	}
	var m ocispec.Manifest
	if err := jsonUnmarshal(mb, &m); err != nil {
		return 0
	}
	list, _ := clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages])
	return len(list)
}

func (b *Builder) cachedLayer(ctx context.Context, req *Request, key string) (LayerRecord, bool) {
	if req.NoCache {
		return LayerRecord{}, false
	}
	rec, ok := b.Cache.Layer(key)
	if !ok {
		return rec, false
	}
	ok, _ = b.Store.Exists(ctx, rec.Descriptor)
	return rec, ok
}

// testHookBeforeLayerWrite runs between hashing a step's sources and
// writing its layer: tests change the context there, as a racing attacker would.
var testHookBeforeLayerWrite func()

// layerFor returns the layer for entries, from the cache or newly written,
// with its index.
func (b *Builder) layerFor(ctx context.Context, req *Request, key string, entries []layer.Entry) (*clusterimage.Layer, *layerIndex, bool, error) {
	if rec, ok := b.cachedLayer(ctx, req, key); ok {
		l := &clusterimage.Layer{Descriptor: rec.Descriptor, DiffID: rec.DiffID}
		return l, b.Cache.cachedIndex(rec.DiffID), false, nil
	}
	w, err := b.Store.Create()
	if err != nil {
		return nil, nil, false, err
	}
	defer w.Close()
	modTime, _ := layer.SourceDateEpoch()
	if testHookBeforeLayerWrite != nil {
		testHookBeforeLayerWrite()
	}
	lr, err := layer.Write(ctx, w, entries, layer.Options{ModTime: modTime, Level: b.Level})
	if err != nil {
		if errors.Is(err, layer.ErrChanged) {
			b.forget(entries) // rehash them next time: their stat data lied
		}
		return nil, nil, false, err
	}
	desc, err := w.CommitDescriptor(ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		return nil, nil, false, err
	}
	if desc.Digest != lr.Digest {
		return nil, nil, false, fmt.Errorf("layer digest changed while writing (%s vs %s)", desc.Digest, lr.Digest)
	}
	norm, _ := layer.Normalize(entries)
	li, err := b.Cache.indexFromEntries(ctx, lr.DiffID, norm)
	if err != nil {
		return nil, nil, false, fmt.Errorf("index layer: %w", err)
	}
	if err := b.Cache.PutLayer(key, LayerRecord{Descriptor: desc, DiffID: lr.DiffID}); err != nil {
		return nil, nil, false, err
	}
	return &clusterimage.Layer{Descriptor: desc, DiffID: lr.DiffID}, li, true, nil
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

func (b *Builder) forget(entries []layer.Entry) {
	for _, e := range entries {
		if e.Verify {
			b.Cache.Forget(e.Source)
		}
	}
}

// entries lists the files a COPY-like step adds. cleanup removes
// temporary files (unpacked archives) once the layer is written.
func (b *Builder) entries(ctx context.Context, req *Request, s *kubefile.Step, st *imageState) ([]layer.Entry, func(), error) {
	var out []layer.Entry
	var tmpDirs []func() // unpacked archives
	cleanup := func() {
		for _, done := range tmpDirs {
			done()
		}
	}
	dest := strings.TrimSuffix(s.Dest, "/")
	if dest == "" {
		dest = "."
	}
	multi := len(s.Sources) > 1
	destIsDir := strings.HasSuffix(s.Dest, "/") || dest == "." || multi || st.isDir(ctx, b, dest)
	for _, src := range s.Sources {
		if src.IsRemote() {
			p, err := b.download(ctx, src)
			if err != nil {
				cleanup()
				return nil, nil, err
			}
			name := path.Base(strings.SplitN(src.URL, "?", 2)[0])
			if name == "" || name == "/" || name == "." {
				name = "download"
			}
			target := dest
			if destIsDir {
				target = path.Join(dest, name)
			}
			fi, err := os.Stat(p)
			if err != nil {
				cleanup()
				return nil, nil, err
			}
			out = append(out, layer.Entry{Name: target, Mode: fi.Mode(), Size: fi.Size(), Source: p})
			continue
		}
		es, done, err := req.context.Source(ctx, src, dest, destIsDir, s.Unpack)
		tmpDirs = append(tmpDirs, done)
		if err != nil {
			cleanup()
			return nil, nil, err // names the path; the caller adds the step's position
		}
		out = append(out, es...)
	}
	return out, cleanup, nil
}

// isDir reports whether name is a directory in the image so far.
func (s *imageState) isDir(ctx context.Context, b *Builder, name string) bool {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if s.dirs[name] {
		return true
	}
	// Index base layers lazily: most Kubefiles never need it.
	if err := b.indexLayers(ctx, s); err != nil {
		return false
	}
	return s.dirs[name]
}

// indexLayers makes sure every layer so far has an index (dirs and scan files).
func (b *Builder) indexLayers(ctx context.Context, s *imageState) error {
	for i, li := range s.indexes {
		if li != nil {
			continue
		}
		desc, diffID := s.layers[i], s.diffIDs[i]
		li, err := b.Cache.indexFromBlob(ctx, b.Store, desc, diffID)
		if err != nil {
			return fmt.Errorf("index layer %s: %w", desc.Digest, err)
		}
		s.indexes[i] = li
		for _, d := range li.Dirs {
			s.dirs[d] = true
		}
	}
	return nil
}
