// Package contents says what an evaluated Kubefile puts into an image: the
// files each COPY, ADD, APP, CNI and CSI step adds and where they go (local
// sources read through pkg/buildcontext, remote ones fetched through
// pkg/download), and the sealer extension that results (the apps with
// their files, commands, env and version; LAUNCH; the image env).
//
// The builder writes exactly these files and this extension, and the views
// `cnstack lock` and `cnstack images why` scan are laid out from them, so
// a scan sees what a build would write: the same destinations, the same
// modes, the same links followed or refused, the same app commands.
package contents

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
)

// AppVersion is the version sealer records for every app a Kubefile declares.
const AppVersion = "v1"

// DownloadMode is the mode of a downloaded file in the image: a URL
// carries no mode of its own.
const DownloadMode = 0o644

// Options are the inputs of Resolve besides the evaluated Kubefile.
type Options struct {
	// Context is the open build context local sources are read from.
	Context *buildcontext.Context
	// Download returns a host path holding a verified remote source: by
	// its checksum (pkg/download), or a chart's archive by its lock file
	// pin (pkg/chartrepo.Sources). Nil leaves remote sources out: each Copy
	// names them in Skipped.
	Download func(ctx context.Context, src kubefile.Source) (string, error)
	// BaseIsDir reports whether a path ("etc/app") is a directory of the
	// FROM image, so "COPY f etc/app" copies into it; nil knows none.
	BaseIsDir func(name string) bool
	// BaseExtension is the FROM image's extension: its apps are inherited.
	// Nil for scratch, or when the FROM image is not known (BaseUnknown).
	BaseExtension *clusterimage.Extension
	// BaseUnknown says the FROM image is not known (a stack parent not yet
	// built, an image outside the stack a view does not read): APPCMDS and
	// APPENV of apps it would carry are then left out instead of refused.
	BaseUnknown bool
	// Type is the image type: kube-installer (default) or app-installer.
	Type string
}

// Copy is one COPY, ADD, APP, CNI or CSI step and the files it adds.
type Copy struct {
	Step *kubefile.Step
	// Entries are the files, directories and their sources; a context
	// file's Source is its host path, read back when the layer is written.
	Entries []layer.Entry
	// Skipped are the step's remote sources left out (Options.Download nil).
	Skipped []kubefile.Source
}

// Contents is what an image's Kubefile puts into it. Close it once the
// entries' content has been read: unpacked archives are removed then.
type Contents struct {
	// Copies are the COPY-like steps in order, one layer each.
	Copies []Copy
	// Extension is the image's sealer extension: the base's apps, then
	// this Kubefile's APP/CNI/CSI, APPCMDS, APPENV, LAUNCH and ENV.
	Extension *clusterimage.Extension
	// Remote lists every remote source of the Kubefile (charts included), in order.
	Remote []kubefile.Source

	dirs     map[string]bool // directories the steps add
	base     func(string) bool
	cleanups []func()
}

// Resolve says what img puts where, and what extension results. It reads
// every local source (following links inside the context, refusing links
// out of it, FIFOs and devices, naming the path) and fetches every remote
// one when opts.Download is set. Errors name the step's position.
func Resolve(ctx context.Context, img *kubefile.Image, opts Options) (*Contents, error) {
	c := &Contents{dirs: map[string]bool{}, base: opts.BaseIsDir}
	for i := range img.Steps {
		s := &img.Steps[i]
		if s.Kind != kubefile.StepCopy {
			continue
		}
		cp, err := c.copyStep(ctx, s, opts)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %s: %w", s.Pos, s.Text, err)
		}
		c.Copies = append(c.Copies, cp)
	}
	ext, err := extension(img, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Extension = ext
	return c, nil
}

// Close removes what resolving unpacked.
func (c *Contents) Close() {
	for _, f := range c.cleanups {
		f()
	}
	c.cleanups = nil
}

// IsDir reports whether name is a directory of the image: of the base, or
// added by a step.
func (c *Contents) IsDir(name string) bool {
	name = cleanName(name)
	if c.dirs[name] {
		return true
	}
	return c.base != nil && c.base(name)
}

func cleanName(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// copyStep resolves one step with Docker's rules: several sources, a
// destination ending in "/", the root, or a directory already in the
// image make the destination a directory the sources go into.
func (c *Contents) copyStep(ctx context.Context, s *kubefile.Step, opts Options) (Copy, error) {
	cp := Copy{Step: s}
	dest := strings.TrimSuffix(s.Dest, "/")
	if dest == "" {
		dest = "."
	}
	destIsDir := strings.HasSuffix(s.Dest, "/") || dest == "." || len(s.Sources) > 1 || c.IsDir(dest)
	for _, src := range s.Sources {
		if src.IsChart() {
			c.Remote = append(c.Remote, src)
			if opts.Download == nil {
				cp.Skipped = append(cp.Skipped, src)
				continue
			}
			e, err := chartEntry(ctx, src, dest, opts.Download)
			if err != nil {
				return cp, err
			}
			cp.Entries = append(cp.Entries, e)
			continue
		}
		if src.IsRemote() {
			c.Remote = append(c.Remote, src)
			if opts.Download == nil {
				cp.Skipped = append(cp.Skipped, src)
				continue
			}
			e, err := downloadEntry(ctx, src, dest, destIsDir, opts.Download)
			if err != nil {
				return cp, err
			}
			cp.Entries = append(cp.Entries, e)
			continue
		}
		es, cleanup, err := opts.Context.Source(ctx, src, dest, destIsDir, s.Unpack)
		if cleanup != nil {
			c.cleanups = append(c.cleanups, cleanup)
		}
		if err != nil {
			return cp, err
		}
		cp.Entries = append(cp.Entries, es...)
	}
	for _, e := range cp.Entries {
		name := cleanName(e.Name)
		if e.Mode.IsDir() {
			c.dirs[name] = true
		}
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			c.dirs[d] = true
		}
	}
	return cp, nil
}

// downloadEntry is a remote source in the image: named after the URL's
// last path element, into dest or as dest.
func downloadEntry(ctx context.Context, src kubefile.Source, dest string, destIsDir bool, download func(context.Context, kubefile.Source) (string, error)) (layer.Entry, error) {
	p, err := download(ctx, src)
	if err != nil {
		return layer.Entry{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return layer.Entry{}, err
	}
	name := path.Base(strings.SplitN(src.URL, "?", 2)[0])
	if name == "" || name == "/" || name == "." {
		name = "download"
	}
	target := dest
	if destIsDir {
		target = path.Join(dest, name)
	}
	return layer.Entry{Name: target, Mode: DownloadMode, Size: fi.Size(), Source: p}, nil
}

// chartEntry is a chart source in the image: its archive as
// <app dir>/<chart>.tgz (pkg/chartref).
func chartEntry(ctx context.Context, src kubefile.Source, dest string, fetch func(context.Context, kubefile.Source) (string, error)) (layer.Entry, error) {
	p, err := fetch(ctx, src)
	if err != nil {
		return layer.Entry{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return layer.Entry{}, err
	}
	return layer.Entry{Name: path.Join(dest, src.Chart.FileName()), Mode: DownloadMode, Size: fi.Size(), Source: p}, nil
}

// extension is the image's sealer extension, as sealer builds it: the
// base's apps (launch, env and type are not inherited), this Kubefile's
// apps added or replacing theirs in place, APPCMDS and APPENV applied to
// inherited apps, then LAUNCH and ENV.
func extension(img *kubefile.Image, opts Options) (*clusterimage.Extension, error) {
	ext := clusterimage.Inherit(opts.BaseExtension, opts.Type)
	for _, a := range img.Apps {
		ext.SetApp(clusterimage.Application{Name: a.Name, Type: a.Type, Files: a.Files, Version: AppVersion, Env: a.Env, Cmds: a.Cmds})
	}
	for _, u := range img.AppUpdates {
		a := ext.App(u.Name)
		if a == nil {
			if opts.BaseUnknown {
				continue // the base's apps are not known here
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
	return ext, nil
}
