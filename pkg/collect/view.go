package collect

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/contents"
	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

// A View is the part of an image root that container images are found in
// (manifests/, charts/, application/), laid out on disk the way a build
// would lay it out, without building: `cnstack lock` and `cnstack images
// why` scan views.
//
// Limits, compared with the built image: the files of a FROM image that is
// not a layer of the same stack are not in the view (its own images are
// carried by it anyway); remote sources are only in the view when
// ViewOptions.Download is set. Local sources resolve exactly as in a build
// (buildcontext: links inside the context followed, links out refused).
type View struct {
	Name string // layer name ("." for a lone build context)
	// Parent is the view this one builds on ("" for none).
	Parent string
	// Dir holds the files (manifests/, charts/, application/).
	Dir string
	// Extension carries the image env and every app's env, for *.tmpl files.
	Extension *clusterimage.Extension
	// Sources are the remote ADD/APP sources of this layer (not its parents').
	Sources []kubefile.Source
	// Notes say what the view could not include.
	Notes []string
	// Labels are the config labels the layers of the view set (a FROM
	// image outside the stack contributes none).
	Labels map[string]string

	isDir func(name string) bool // a directory of the image so far
	// appsPartial says the extension lacks the apps of a FROM image
	// outside the stack, at the root of this view's chain.
	appsPartial bool
}

// Env is the image env.
func (v *View) Env() map[string]string { return v.Extension.Env }

// KubeVersion is the Kubernetes the image installs, from its
// cluster-runtime-version label ("" when no layer of the view sets it).
func (v *View) KubeVersion() string { return v.Labels[clusterimage.LabelClusterRuntimeVersion] }

// ViewOptions are the inputs of a view besides the Kubefile.
type ViewOptions struct {
	Platform  ocispec.Platform
	BuildArgs map[string]string
	Type      string // kube-installer (default) or app-installer
	// Download fetches a checksum-pinned remote source and returns a host
	// path holding it; nil leaves remote sources out of the view.
	Download func(ctx context.Context, src kubefile.Source) (string, error)
}

func viewRelevant(name string) bool {
	for _, p := range []string{"manifests", "charts", "application"} {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

// ContextView lays out, in dst (created), what the Kubefile adds over
// parent (nil for FROM scratch or a base outside the stack): the files and
// extension pkg/contents says it puts into the image, exactly as a build
// writes them.
func ContextView(ctx context.Context, name, kubefilePath, contextDir string, parent *View, dst string, opts ViewOptions) (*View, error) {
	src, err := kubefile.ReadFile(kubefilePath)
	if err != nil {
		return nil, err
	}
	bc, err := buildcontext.Open(contextDir)
	if err != nil {
		return nil, err
	}
	defer bc.Close()
	f, diags := kubefile.Parse(kubefilePath, src)
	if err := diags.Err(); err != nil {
		return nil, err
	}
	if oci.IsZeroPlatform(opts.Platform) {
		opts.Platform = oci.DefaultPlatform
	}
	eo := kubefile.EvalOptions{Platform: opts.Platform, BuildArgs: opts.BuildArgs, Context: bc.FS()}
	if parent != nil && !parent.appsPartial {
		// Otherwise unknown (nil): LAUNCH and APPCMDS may name apps of the
		// external base at the root of the chain, which no view reads.
		eo.BaseApps = parent.Extension.AppNames()
	}
	img, diags := kubefile.Evaluate(f, eo)
	if err := diags.Err(); err != nil {
		return nil, err
	}
	v := &View{Name: name, Dir: dst, Labels: map[string]string{}}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	co := contents.Options{Context: bc, Download: opts.Download, Type: opts.Type}
	if parent != nil {
		v.Parent = parent.Name
		if err := linkTree(parent.Dir, dst); err != nil {
			return nil, fmt.Errorf("view of %s: %w", name, err)
		}
		co.BaseExtension, co.BaseIsDir = parent.Extension, parent.isDir
		co.BaseUnknown, v.appsPartial = parent.appsPartial, parent.appsPartial
		maps.Copy(v.Labels, parent.Labels)
	} else if !img.From.IsScratch() {
		co.BaseUnknown, v.appsPartial = true, true
		v.Notes = append(v.Notes, fmt.Sprintf("the files of FROM %s are not scanned (it is not a layer of this stack); the images it carries stay in it", img.From.Ref))
	}
	c, err := contents.Resolve(ctx, img, co)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, cp := range c.Copies {
		for _, src := range cp.Skipped {
			v.Notes = append(v.Notes, fmt.Sprintf("%s: remote source %s is not scanned", src.Pos, src.URL))
		}
		if err := v.add(ctx, cp.Entries); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", cp.Step.Pos, cp.Step.Text, err)
		}
	}
	maps.Copy(v.Labels, img.Labels)
	v.Sources, v.Extension, v.isDir = c.Remote, c.Extension, c.IsDir
	return v, nil
}

// add copies the scan-relevant files of one step's entries into the view,
// with the names and modes the layer holds (pkg/layer normalises both).
func (v *View) add(ctx context.Context, entries []layer.Entry) error {
	norm, err := layer.Normalize(entries)
	if err != nil {
		return err
	}
	for _, e := range norm {
		if !viewRelevant(e.Name) {
			continue
		}
		dst := filepath.Join(v.Dir, filepath.FromSlash(e.Name))
		if e.Mode.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if e.Mode&fs.ModeSymlink != 0 {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		os.RemoveAll(dst) // a later COPY replaces the file (and never writes through a link)
		if err := copyEntry(ctx, dst, e, e.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// linkTree hard-links (or copies) every file of src into dst.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		return copyFile(p, target)
	})
}

// StackViews lays out every layer of s for platform under dir, parents first.
func StackViews(ctx context.Context, s *stack.Stack, dir string, platform ocispec.Platform, download func(context.Context, kubefile.Source) (string, error)) ([]*View, error) {
	var out []*View
	byName := map[string]*View{}
	for _, l := range s.Layers {
		var parent *View
		if l.Parent != "" {
			parent = byName[l.Parent]
		}
		v, err := ContextView(ctx, l.Name, l.Kubefile, l.Dir, parent, filepath.Join(dir, l.Name), ViewOptions{
			Platform: platform, BuildArgs: l.BuildArgs, Type: l.Type, Download: download,
		})
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		byName[l.Name] = v
		out = append(out, v)
	}
	return out, nil
}

// Views are the views of every Kubefile of a target, per platform, laid
// out under a temporary directory that Close removes.
type Views struct {
	Platforms []PlatformViews
	dir       string
}

// Close removes the files of the views.
func (v *Views) Close() error { return os.RemoveAll(v.dir) }

// TargetViews lays out every Kubefile of t for each platform: a stack's
// layers parents first (StackViews), or the lone build context as the view
// ".". download fetches remote sources (nil leaves them out).
func TargetViews(ctx context.Context, t *stack.Target, platforms []ocispec.Platform, download func(context.Context, kubefile.Source) (string, error)) (*Views, error) {
	tmp, err := os.MkdirTemp("", "cnstack-views-")
	if err != nil {
		return nil, err
	}
	out := &Views{dir: tmp}
	for i, p := range platforms {
		dir := filepath.Join(tmp, fmt.Sprint(i))
		var views []*View
		switch {
		case t.Stack != nil:
			views, err = StackViews(ctx, t.Stack, dir, p, download)
		case len(t.Kubefiles) == 1:
			k := t.Kubefiles[0]
			var v *View
			v, err = ContextView(ctx, ".", k.Path, k.Context, nil, filepath.Join(dir, "view"), ViewOptions{Platform: p, BuildArgs: k.BuildArgs, Download: download})
			views = []*View{v}
		default:
			err = fmt.Errorf("%s is neither a stack nor a build context", t.Dir)
		}
		if err != nil {
			out.Close()
			return nil, err
		}
		out.Platforms = append(out.Platforms, PlatformViews{Platform: p, Views: views})
	}
	return out, nil
}

// Downloader returns a ViewOptions.Download that shares the build's
// download cache (cacheDir, files named by checksum) and its pin checks.
func Downloader(cacheDir string, client *http.Client) func(context.Context, kubefile.Source) (string, error) {
	return func(ctx context.Context, src kubefile.Source) (string, error) {
		return download.Fetch(ctx, client, cacheDir, src)
	}
}
