package collect

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
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

	dirs map[string]bool // every directory of the image so far
}

// Env is the image env.
func (v *View) Env() map[string]string { return v.Extension.Env }

// ViewOptions are the inputs of a view besides the Kubefile.
type ViewOptions struct {
	Platform  kubefile.Platform
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
// parent (nil for FROM scratch or a base outside the stack).
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
	if opts.Platform.IsZero() {
		opts.Platform = kubefile.Platform{OS: "linux", Architecture: "amd64"}
	}
	eo := kubefile.EvalOptions{Platform: opts.Platform, BuildArgs: opts.BuildArgs, Context: bc.FS()}
	if parent != nil {
		eo.BaseApps = parent.Extension.AppNames()
	}
	img, diags := kubefile.Evaluate(f, eo)
	if err := diags.Err(); err != nil {
		return nil, err
	}
	v := &View{Name: name, Dir: dst, dirs: map[string]bool{}}
	if parent != nil {
		v.Parent = parent.Name
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	var baseExt *clusterimage.Extension
	if parent != nil {
		if err := linkTree(parent.Dir, dst); err != nil {
			return nil, fmt.Errorf("view of %s: %w", name, err)
		}
		for d := range parent.dirs {
			v.dirs[d] = true
		}
		baseExt = parent.Extension
	} else if !img.From.IsScratch() {
		v.Notes = append(v.Notes, fmt.Sprintf("the files of FROM %s are not scanned (it is not a layer of this stack); the images it carries stay in it", img.From.Ref))
	}
	for i := range img.Steps {
		s := &img.Steps[i]
		if s.Kind != kubefile.StepCopy {
			continue
		}
		if err := v.copyStep(ctx, s, bc, opts); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
		}
	}
	ext := clusterimage.Inherit(baseExt, opts.Type)
	for _, a := range img.Apps {
		ext.SetApp(clusterimage.Application{Name: a.Name, Type: a.Type, Files: a.Files, Env: a.Env})
	}
	for _, u := range img.AppUpdates {
		if a := ext.App(u.Name); a != nil {
			for k, val := range u.Env {
				if a.Env == nil {
					a.Env = map[string]string{}
				}
				a.Env[k] = val
			}
		}
	}
	if len(img.Env) > 0 {
		ext.Env = img.Env
	}
	v.Extension = ext
	return v, nil
}

func (v *View) copyStep(ctx context.Context, s *kubefile.Step, bc *buildcontext.Context, opts ViewOptions) error {
	dest := strings.TrimSuffix(s.Dest, "/")
	if dest == "" {
		dest = "."
	}
	destIsDir := strings.HasSuffix(s.Dest, "/") || dest == "." || len(s.Sources) > 1 || v.dirs[path.Clean(dest)]
	for _, src := range s.Sources {
		if src.IsRemote() {
			v.Sources = append(v.Sources, src)
			if opts.Download == nil {
				v.Notes = append(v.Notes, fmt.Sprintf("%s: remote source %s is not scanned", src.Pos, src.URL))
				continue
			}
			p, err := opts.Download(ctx, src)
			if err != nil {
				return err
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
				return err
			}
			if err := v.add([]layer.Entry{{Name: target, Mode: 0o644, Size: fi.Size(), Source: p}}); err != nil {
				return err
			}
			continue
		}
		es, cleanup, err := bc.Source(ctx, src, dest, destIsDir, s.Unpack)
		if err != nil {
			return fmt.Errorf("%s: %w", src.Pos, err)
		}
		err = v.add(es)
		cleanup()
		if err != nil {
			return err
		}
	}
	return nil
}

// add records entries' directories and copies the scan-relevant files.
func (v *View) add(entries []layer.Entry) error {
	for _, e := range entries {
		name := strings.TrimPrefix(path.Clean("/"+e.Name), "/")
		if name == "" {
			continue
		}
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			v.dirs[d] = true
		}
		if e.Mode.IsDir() {
			v.dirs[name] = true
			if viewRelevant(name) {
				if err := os.MkdirAll(filepath.Join(v.Dir, filepath.FromSlash(name)), 0o755); err != nil {
					return err
				}
			}
			continue
		}
		if !viewRelevant(name) || e.Mode&fs.ModeSymlink != 0 {
			continue
		}
		dst := filepath.Join(v.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		os.RemoveAll(dst) // a later COPY replaces the file (and never writes through a link)
		if err := copyEntry(dst, e); err != nil {
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
func StackViews(ctx context.Context, s *stack.Stack, dir string, platform kubefile.Platform, download func(context.Context, kubefile.Source) (string, error)) ([]*View, error) {
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

// Downloader returns a ViewOptions.Download that shares the build's
// download cache (cacheDir, files named by checksum) and its pin checks.
func Downloader(cacheDir string, client *http.Client) func(context.Context, kubefile.Source) (string, error) {
	return func(ctx context.Context, src kubefile.Source) (string, error) {
		return download.Fetch(ctx, client, cacheDir, src)
	}
}
