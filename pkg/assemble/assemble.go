package assemble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/store"
)

// Docker schema 2 media types, for images assembled with format: docker.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// defaultPath is the PATH of an image whose env sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options control an assembly.
type Options struct {
	// Vars override the recipe's vars (which override PAYLOAD's default,
	// DefaultPayload).
	Vars map[string]string
	// Platforms, if set, limits every image to these of its platforms.
	Platforms []ocispec.Platform
	// ModTime stamps every file and the image creation time; zero means
	// SOURCE_DATE_EPOCH or 1970.
	ModTime time.Time
	// CacheDir remembers built layers by their inputs' names, modes and file
	// identities (size, mtime, ctime, inode), so an unchanged recipe is
	// assembled without reading or compressing anything. "" disables it.
	CacheDir string
	// Log receives one line per image; nil is quiet.
	Log io.Writer
}

// Result is one assembled image.
type Result struct {
	Ref        string
	Descriptor ocispec.Descriptor // the tagged manifest or index
	Platforms  []string
	Layers     int   // layer blobs over every platform
	Cached     int   // of which came from the cache
	Size       int64 // manifests, configs and layers
}

// Assemble builds every image of the recipe into s and tags it.
func Assemble(ctx context.Context, s *store.Store, r *Recipe, opts Options) ([]Result, error) {
	if opts.ModTime.IsZero() {
		t, err := layer.SourceDateEpoch()
		if err != nil {
			return nil, err
		}
		opts.ModTime = t
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	release, err := s.Use(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var out []Result
	for _, img := range r.Images {
		start := time.Now()
		res, err := assembleImage(ctx, s, r, img, opts)
		if err != nil {
			name := img.Ref
			if ref, xerr := expand(img.Ref, r.vars(opts.Vars, nil)); xerr == nil {
				name = ref
			}
			return out, fmt.Errorf("assemble %s: %w", name, err)
		}
		fmt.Fprintf(opts.Log, "assembled %s %s (%s; %d layers, %d cached, %.1f MB) in %s\n", res.Ref, res.Descriptor.Digest,
			strings.Join(res.Platforms, ","), res.Layers, res.Cached, float64(res.Size)/1e6, time.Since(start).Round(time.Millisecond))
		out = append(out, res)
	}
	return out, nil
}

func assembleImage(ctx context.Context, s *store.Store, r *Recipe, img Image, opts Options) (Result, error) {
	docker := img.Format == "docker"
	platforms, err := selectPlatforms(img.Platforms, opts.Platforms)
	if err != nil {
		return Result{}, err
	}
	ref, err := expand(img.Ref, r.vars(opts.Vars, nil))
	if err != nil {
		return Result{}, err
	}
	res := Result{Ref: ref}
	var manifests []ocispec.Descriptor
	for _, p := range platforms {
		desc, st, err := assemblePlatform(ctx, s, r, img, p, docker, opts)
		if err != nil {
			return res, fmt.Errorf("%s: %w", oci.PlatformString(p), err)
		}
		res.Platforms = append(res.Platforms, oci.PlatformString(p))
		res.Layers += st.layers
		res.Cached += st.cached
		res.Size += st.size
		pp := p
		desc.Platform = &pp
		manifests = append(manifests, desc)
	}
	top := manifests[0]
	if len(manifests) > 1 {
		mt := ocispec.MediaTypeImageIndex
		if docker {
			mt = dockerManifestList
		}
		b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt, Manifests: manifests})
		if err != nil {
			return res, err
		}
		if top, err = s.PushBytes(ctx, mt, b); err != nil {
			return res, err
		}
		res.Size += top.Size
	} else {
		top.Platform = nil
	}
	if err := s.Tag(ctx, top, ref); err != nil {
		return res, err
	}
	res.Descriptor = top
	return res, nil
}

type platformStats struct {
	layers, cached int
	size           int64
}

func assemblePlatform(ctx context.Context, s *store.Store, r *Recipe, img Image, p ocispec.Platform, docker bool, opts Options) (ocispec.Descriptor, platformStats, error) {
	var st platformStats
	vars := r.vars(opts.Vars, map[string]string{
		"OS": p.OS, "ARCH": p.Architecture, "VARIANT": p.Variant, "PLATFORM": oci.PlatformString(p),
	})
	layerType, configType, manifestType := ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if docker {
		layerType, configType, manifestType = dockerLayer, dockerConfig, dockerManifest
	}
	cfg := ocispec.Image{
		Created:  &opts.ModTime,
		Platform: p,
		Config: ocispec.ImageConfig{
			User: img.User, WorkingDir: img.WorkingDir, Labels: img.Labels,
		},
		RootFS: ocispec.RootFS{Type: "layers"},
	}
	var err error
	if cfg.Config.Entrypoint, err = expandAll(img.Entrypoint, vars); err != nil {
		return ocispec.Descriptor{}, st, err
	}
	if cfg.Config.Cmd, err = expandAll(img.Cmd, vars); err != nil {
		return ocispec.Descriptor{}, st, err
	}
	if cfg.Config.Env, err = expandAll(img.Env, vars); err != nil {
		return ocispec.Descriptor{}, st, err
	}
	if !hasPath(cfg.Config.Env) {
		cfg.Config.Env = append([]string{defaultPath}, cfg.Config.Env...)
	}
	comment := img.Comment
	if comment == "" {
		comment = "assembled by cnstack"
	}
	var layers []ocispec.Descriptor
	for i, l := range img.Layers {
		entries, err := layerEntries(r.Dir, l, vars)
		if err != nil {
			return ocispec.Descriptor{}, st, fmt.Errorf("layers[%d]: %w", i, err)
		}
		if len(entries) == 0 {
			continue // every file optional and absent: no layer
		}
		desc, diffID, cached, err := writeLayer(ctx, s, entries, layerType, opts)
		if err != nil {
			return ocispec.Descriptor{}, st, fmt.Errorf("layers[%d]: %w", i, err)
		}
		st.layers++
		if cached {
			st.cached++
		}
		st.size += desc.Size
		layers = append(layers, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &opts.ModTime, CreatedBy: fmt.Sprintf("cnstack assemble: layer %d of %d", i+1, len(img.Layers)), Comment: comment})
	}
	if len(layers) == 0 {
		return ocispec.Descriptor{}, st, errors.New("no layer: every file is optional and absent")
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return ocispec.Descriptor{}, st, err
	}
	cd, err := s.PushBytes(ctx, configType, cb)
	if err != nil {
		return ocispec.Descriptor{}, st, err
	}
	mb, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: manifestType, Config: cd, Layers: layers})
	if err != nil {
		return ocispec.Descriptor{}, st, err
	}
	md, err := s.PushBytes(ctx, manifestType, mb)
	if err != nil {
		return ocispec.Descriptor{}, st, err
	}
	st.size += cd.Size + md.Size
	return md, st, nil
}

func expandAll(list []string, vars map[string]string) ([]string, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		e, err := expand(s, vars)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// layerEntries lists what one layer adds, with variables expanded.
func layerEntries(dir string, l Layer, vars map[string]string) ([]layer.Entry, error) {
	var entries []layer.Entry
	for _, f := range l.Files {
		dst, err := expand(f.Dst, vars)
		if err != nil {
			return nil, err
		}
		var mode fs.FileMode
		if f.Mode != "" {
			mode, _ = parseMode(f.Mode) // validated by Parse
		}
		if f.Src == "" {
			content, err := expand(f.Content, vars)
			if err != nil {
				return nil, err
			}
			b := []byte(content)
			if mode == 0 {
				mode = 0o644
			}
			entries = append(entries, layer.Entry{Name: dst, Mode: mode, Size: int64(len(b)),
				Open:   func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
				Digest: digest.FromBytes(b)})
			continue
		}
		src, err := expand(f.Src, vars)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, filepath.FromSlash(src))
		}
		fi, err := os.Stat(src)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if f.Optional {
					continue
				}
				return nil, fmt.Errorf("src %s does not exist (%s)", src, f.Src)
			}
			return nil, fmt.Errorf("src %s: %w", src, err)
		}
		es, err := hostEntries(src, dst, fi)
		if err != nil {
			return nil, err
		}
		if mode != 0 && fi.Mode().IsRegular() {
			for i := range es {
				if es[i].Mode.IsRegular() {
					es[i].Mode = mode
				}
			}
		}
		entries = append(entries, es...)
	}
	return entries, nil
}

// hostEntries lists what copying the host path src to dst adds. A file goes
// to dst (into it when dst ends in "/"); a directory's contents go under dst
// verbatim: symlinks stay symlinks, absolute ones included, because they
// resolve inside the container's root (a Debian tree links
// /lib64/ld-linux-x86-64.so.2 to /lib/x86_64-linux-gnu/...). This is not a
// build context's COPY (pkg/buildcontext), whose images sealer copies onto
// hosts and which therefore never carry links.
func hostEntries(src, dst string, fi fs.FileInfo) ([]layer.Entry, error) {
	intoDir := strings.HasSuffix(dst, "/")
	dst = strings.TrimPrefix(path.Clean("/"+dst), "/")
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("src %s is not a regular file or directory", src)
		}
		name := dst
		if name == "" || intoDir {
			name = path.Join(dst, filepath.Base(src))
		}
		return []layer.Entry{{Name: name, Mode: fi.Mode(), Size: fi.Size(), Source: src}}, nil
	}
	var out []layer.Entry
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		name := path.Join(dst, filepath.ToSlash(rel))
		switch t := d.Type(); {
		case d.IsDir():
			out = append(out, layer.Entry{Name: name, Mode: fs.ModeDir | 0o755})
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, layer.Entry{Name: name, Mode: fs.ModeSymlink | 0o777, Linkname: filepath.ToSlash(target)})
		case t.IsRegular():
			i, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, layer.Entry{Name: name, Mode: i.Mode(), Size: i.Size(), Source: p})
		default:
			return fmt.Errorf("%s is a %s: only files, directories and symlinks go into an image", p, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("src %s: %w", src, err)
	}
	return out, nil
}

// cachedLayer is a layer cache record.
type cachedLayer struct {
	Descriptor ocispec.Descriptor `json:"descriptor"`
	DiffID     digest.Digest      `json:"diffID"`
}

// writeLayer writes one layer into the store, or finds it in the cache.
func writeLayer(ctx context.Context, s *store.Store, entries []layer.Entry, mediaType string, opts Options) (ocispec.Descriptor, digest.Digest, bool, error) {
	var key string
	if opts.CacheDir != "" {
		k, err := cacheKey(entries, mediaType, opts.ModTime)
		if err != nil {
			return ocispec.Descriptor{}, "", false, err
		}
		key = k
		if b, err := os.ReadFile(filepath.Join(opts.CacheDir, key+".json")); err == nil {
			var c cachedLayer
			if json.Unmarshal(b, &c) == nil && c.Descriptor.MediaType == mediaType {
				if ok, _ := s.Exists(ctx, c.Descriptor); ok {
					return c.Descriptor, c.DiffID, true, nil
				}
			}
		}
	}
	w, err := s.Create()
	if err != nil {
		return ocispec.Descriptor{}, "", false, err
	}
	defer w.Close()
	res, err := layer.Write(ctx, w, entries, layer.Options{ModTime: opts.ModTime})
	if err != nil {
		return ocispec.Descriptor{}, "", false, err
	}
	desc, err := w.CommitDescriptor(mediaType)
	if err != nil {
		return ocispec.Descriptor{}, "", false, err
	}
	if key != "" {
		b, _ := json.Marshal(cachedLayer{Descriptor: desc, DiffID: res.DiffID})
		if err := os.MkdirAll(opts.CacheDir, 0o755); err == nil {
			_ = atomicfile.WriteFile(filepath.Join(opts.CacheDir, key+".json"), b, 0o644)
		}
	}
	return desc, res.DiffID, false, nil
}

// cacheKey digests what decides a layer's bytes: each entry's name, mode and
// link, the content digest of inline files and the identity of host files
// (size, mtime, ctime, inode, device: a changed file changes its ctime).
func cacheKey(entries []layer.Entry, mediaType string, modTime time.Time) (string, error) {
	norm, err := layer.Normalize(entries)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "cnstack-assemble-layer/v1\n%s\n%d\n", mediaType, modTime.Unix())
	for _, e := range norm {
		fmt.Fprintf(h, "%q %o %q %d ", e.Name, uint32(e.Mode), e.Linkname, e.Size)
		switch {
		case e.Digest != "":
			fmt.Fprintf(h, "digest %s", e.Digest)
		case e.Source != "":
			fi, err := os.Stat(e.Source)
			if err != nil {
				return "", err
			}
			sys, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return "", fmt.Errorf("%s: no file identity on this system", e.Source)
			}
			fmt.Fprintf(h, "file %q %d %d %d %d %d", e.Source, fi.Size(), fi.ModTime().UnixNano(), sys.Ctim.Nano(), sys.Ino, sys.Dev)
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func selectPlatforms(listed []string, want []ocispec.Platform) ([]ocispec.Platform, error) {
	all, err := oci.ParsePlatforms(listed)
	if err != nil {
		return nil, err
	}
	var out []ocispec.Platform
	for _, p := range all {
		if len(want) == 0 || oci.MatchAnyPlatform(p, want) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("none of its platforms %v is selected", listed)
	}
	return out, nil
}
