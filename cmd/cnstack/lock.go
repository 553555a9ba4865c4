package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/chartrepo"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/imagescan"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/stack"
)

// newCollector is the container image collector of a builder (newBuilder
// sets b.Collector to it).
func newCollector(_ *cli.Command, b *build.Builder) collector.Collector {
	return &collect.Collector{Store: b.Store, Remote: b.Remote, Out: b.Out}
}

// scanFlags are the flags of commands that discover container images
// without building (lock, images why).
func scanFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "platform", Usage: "`OS/ARCH[/VARIANT]` platforms, comma-separated (default: the stack's platforms, or linux/amd64)"},
		&cli.StringSliceFlag{Name: "build-arg", Usage: "`KEY=VALUE` for an ARG of the Kubefiles (repeatable)"},
		&cli.StringFlag{Name: "image-list", Usage: "`FILE` of extra container images, one per line"},
		&cli.StringFlag{Name: "ignored-image-list", Usage: "`FILE` of container images to leave out, one per line"},
	}
}

// scanTarget is what lock and images why look at: a stack, or one build context.
type scanTarget struct {
	dir       string // where cnstack.lock lives
	stack     *stack.Stack
	context   string // a lone build context
	platforms []ocispec.Platform
	buildArgs map[string]string
	imageList []string
	ignored   []string
	// sources fetches the views' remote sources; with fresh set, charts
	// are resolved afresh instead of by the lock file's pins.
	sources *chartrepo.Sources
	fresh   bool
}

// loadScanTarget reads DIR: a stack directory (stack.yaml) or a build
// context (Kubefile). The default is ".", or "Kubefiles" when "." holds neither.
func loadScanTarget(c *cli.Command) (*scanTarget, error) {
	if c.NArg() > 1 {
		return nil, usageError(c, "takes one directory, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	return scanTargetAt(c, c.Args().First())
}

func scanTargetAt(c *cli.Command, dir string) (*scanTarget, error) {
	if dir == "" {
		dir = defaultDir()
	}
	t := &scanTarget{dir: dir}
	var err error
	if t.buildArgs, err = parseKV("build-arg", c.StringSlice("build-arg")); err != nil {
		return nil, err
	}
	if f := c.String("image-list"); f != "" && f != "filepath" {
		if t.imageList, err = imagescan.ReadListFile(f); err != nil {
			return nil, fmt.Errorf("--image-list: %w", err)
		}
	}
	if f := c.String("ignored-image-list"); f != "" {
		if t.ignored, err = imagescan.ReadListFile(f); err != nil {
			return nil, fmt.Errorf("--ignored-image-list: %w", err)
		}
	}
	if t.platforms, err = oci.ParsePlatforms(c.StringSlice("platform")); err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	switch {
	case exists(filepath.Join(dir, stack.FileName)):
		if t.stack, err = stack.Load(dir, t.buildArgs); err != nil {
			return nil, err
		}
		if len(t.platforms) == 0 {
			t.platforms = t.stack.Platforms
		}
	case exists(filepath.Join(dir, "Kubefile")):
		t.context = dir
	default:
		return nil, fmt.Errorf("%s holds neither %s nor a Kubefile", dir, stack.FileName)
	}
	if len(t.platforms) == 0 {
		t.platforms = []ocispec.Platform{oci.DefaultPlatform}
	}
	return t, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// views lays out every layer of the target for platform under a temp dir;
// remote sources are fetched (checksum-verified) into the build's download cache.
func (t *scanTarget) views(ctx context.Context, c *cli.Command, p ocispec.Platform) ([]*collect.View, func(), error) {
	tmp, err := os.MkdirTemp("", "cnstack-views-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	cache, err := openCache(c)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	rc, err := remoteClient(c)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if t.sources == nil {
		t.sources = &chartrepo.Sources{HTTP: rc.HTTPClient(), Charts: &chartrepo.Fetcher{
			HTTP: rc.HTTPClient(), CacheDir: cache.DownloadDir(),
			OpenOCI: func(ctx context.Context, r reference.Reference) (chartrepo.Repository, error) {
				repo, err := rc.Repository(ctx, r)
				if err != nil {
					return nil, err // not a typed nil in the interface
				}
				return repo, nil
			},
		}}
		if p := lockfile.Find(t.dir); p != "" && !t.fresh {
			if t.sources.Lock, err = lockfile.Read(p); err != nil {
				cleanup()
				return nil, nil, err
			}
		}
	}
	dl := t.sources.Fetch
	var views []*collect.View
	if t.stack != nil {
		views, err = collect.StackViews(ctx, t.stack, tmp, p, dl)
	} else {
		var v *collect.View
		v, err = collect.ContextView(ctx, ".", filepath.Join(t.context, "Kubefile"), t.context, nil, filepath.Join(tmp, "view"),
			collect.ViewOptions{Platform: p, BuildArgs: t.buildArgs, Download: dl})
		views = []*collect.View{v}
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return views, cleanup, nil
}

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "pin every container image of a stack (or build context) by digest in cnstack.lock",
		ArgsUsage: "[DIR]",
		Description: `Discovers the container images of every layer of the stack in DIR (or of the build context
DIR) without building: each layer's files are laid out the way its image root will hold them
(COPY/APP destinations, on top of its parent layer's), then scanned as a build scans them
(manifests/imageList, manifests/, charts/, application/apps/; charts rendered with Helm).
Each image is resolved on its registry (or --registry-mirror) to a digest, per platform for
multi-arch images, and written to DIR/cnstack.lock with the remote ADD/APP sources the
Kubefiles pin. The file is sorted and stable.

Builds read cnstack.lock when it is there: a pinned image is pulled by digest. With
--locked, a build refuses images the lock does not pin, or pins for another platform.

Not scanned: the files of a FROM image outside the stack (the images it carries stay in it).`,
		Flags: append(append([]cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "write nothing; exit 1 if cnstack.lock is missing or out of date"},
			&cli.IntFlag{Name: "max-pull-procs", Value: collect.DefaultMaxProcs, Usage: "registry requests in parallel"},
		}, scanFlags()...), registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			t, err := loadScanTarget(c)
			if err != nil {
				return err
			}
			t.fresh = true // charts are resolved afresh, as images are
			s, err := openStore(c)
			if err != nil {
				return err
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			col := &collect.Collector{Store: s, Remote: rc}
			var pvs []collect.PlatformViews
			for _, p := range t.platforms {
				views, cleanup, err := t.views(ctx, c, p)
				if err != nil {
					return err
				}
				defer cleanup()
				for _, v := range views {
					for _, n := range v.Notes {
						fmt.Fprintf(c.ErrWriter, "note: layer %s (%s): %s\n", v.Name, p, n)
					}
				}
				pvs = append(pvs, collect.PlatformViews{Platform: p, Views: views})
			}
			lf, err := col.Lock(ctx, pvs, collect.LockOptions{ImageList: t.imageList, Ignored: t.ignored, MaxProcs: c.Int("max-pull-procs"), Charts: t.sources.Pinned()})
			if err != nil {
				return err
			}
			path := filepath.Join(t.dir, lockfile.FileName)
			return writeLock(c, path, lf)
		},
	}
}

func writeLock(c *cli.Command, path string, lf *lockfile.File) error {
	b, err := lf.Marshal()
	if err != nil {
		return err
	}
	old, _ := os.ReadFile(path)
	multi := 0
	for _, im := range lf.Images {
		if len(im.Platforms) > 0 {
			multi++
		}
	}
	summary := fmt.Sprintf("%s (%d multi-arch), %s", plural(len(lf.Images), "container image", "container images"), multi, plural(len(lf.Sources), "remote source", "remote sources"))
	if c.Bool("check") {
		if bytes.Equal(old, b) {
			fmt.Fprintf(c.Writer, "%s is up to date: %s\n", path, summary)
			return nil
		}
		if old == nil {
			return cli.Exit(fmt.Sprintf("%s is missing; run `cnstack lock`", path), 1)
		}
		prev, err := lockfile.Parse(old)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", path, err), 1)
		}
		return cli.Exit(fmt.Sprintf("%s is out of date; run `cnstack lock`:\n%s", path, strings.Join(lockDiff(prev, lf), "\n")), 1)
	}
	if bytes.Equal(old, b) {
		fmt.Fprintf(c.Writer, "%s unchanged: %s\n", path, summary)
		return nil
	}
	if err := lockfile.Write(path, lf); err != nil {
		return err
	}
	fmt.Fprintf(c.Writer, "wrote %s: %s\n", path, summary)
	return nil
}

// lockDiff names the images added, removed or re-pinned between two lock files.
func lockDiff(old, cur *lockfile.File) []string {
	var out []string
	for _, im := range cur.Images {
		prev, ok := old.Lookup(im.Image)
		switch {
		case !ok:
			out = append(out, "  + "+im.Image+" "+im.Digest)
		case prev.Digest != im.Digest || fmt.Sprint(prev.Platforms) != fmt.Sprint(im.Platforms):
			out = append(out, "  ~ "+im.Image+" "+prev.Digest+" -> "+im.Digest)
		}
	}
	for _, im := range old.Images {
		if _, ok := cur.Lookup(im.Image); !ok {
			out = append(out, "  - "+im.Image)
		}
	}
	if len(out) == 0 {
		out = append(out, "  (remote sources or layers changed)")
	}
	return out
}
