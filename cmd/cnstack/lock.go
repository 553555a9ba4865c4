package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/chartrepo"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/oci"
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

// scanViews reads the scan flags, opens the target in dir ("": the default
// directory) and lays out its views for every platform. Charts are
// fetched by the pins of the target's cnstack.lock, or with fresh
// resolved afresh; opts.Charts lists the pins the views were laid out with.
func scanViews(ctx context.Context, c *cli.Command, dir string, fresh bool) (*stack.Target, *collect.Views, collect.LockOptions, error) {
	var opts collect.LockOptions
	if dir == "" {
		dir = stack.DefaultDir()
	}
	args, err := parseKV("build-arg", c.StringSlice("build-arg"))
	if err != nil {
		return nil, nil, opts, err
	}
	if opts.ImageList, opts.Ignored, err = imageLists(c); err != nil {
		return nil, nil, opts, err
	}
	platforms, err := oci.ParsePlatforms(c.StringSlice("platform"))
	if err != nil {
		return nil, nil, opts, fmt.Errorf("--platform: %w", err)
	}
	t, err := stack.OpenTarget(dir, args)
	if err != nil {
		return nil, nil, opts, err
	}
	if len(platforms) == 0 && t.Stack != nil {
		platforms = t.Stack.Platforms
	}
	if len(platforms) == 0 {
		platforms = []ocispec.Platform{oci.DefaultPlatform}
	}
	cache, err := openCache(c)
	if err != nil {
		return nil, nil, opts, err
	}
	rc, err := remoteClient(c)
	if err != nil {
		return nil, nil, opts, err
	}
	// Chart sources go by cnstack.lock's pins, unless fresh (lock
	// resolves them afresh, as it does images); anything else by checksum.
	sources := &chartrepo.Sources{HTTP: rc.HTTPClient(), Charts: &chartrepo.Fetcher{
		HTTP: rc.HTTPClient(), CacheDir: cache.DownloadDir(), OpenOCI: chartrepo.OpenRegistry(rc),
	}}
	if p := lockfile.Find(t.Dir); p != "" && !fresh {
		if sources.Lock, err = lockfile.Read(p); err != nil {
			return nil, nil, opts, err
		}
	}
	views, err := collect.TargetViews(ctx, t, platforms, sources.Fetch)
	if err != nil {
		return nil, nil, opts, err
	}
	// Every chart is fetched once the views are laid out.
	opts.Charts = sources.Pinned()
	return t, views, opts, nil
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
			if c.NArg() > 1 {
				return usageError(c, "takes one directory, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
			}
			t, views, opts, err := scanViews(ctx, c, c.Args().First(), true) // charts resolved afresh, as images are
			if err != nil {
				return err
			}
			defer views.Close()
			for _, pv := range views.Platforms {
				for _, v := range pv.Views {
					for _, n := range v.Notes {
						fmt.Fprintf(c.ErrWriter, "note: layer %s (%s): %s\n", v.Name, oci.PlatformString(pv.Platform), n)
					}
				}
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			opts.MaxProcs = c.Int("max-pull-procs")
			lf, err := (&collect.Collector{Store: s, Remote: rc}).Lock(ctx, views.Platforms, opts)
			if err != nil {
				return err
			}
			path := filepath.Join(t.Dir, lockfile.FileName)
			summary := fmt.Sprintf("%s (%d multi-arch), %s", plural(len(lf.Images), "container image", "container images"), lf.MultiArch(), plural(len(lf.Sources), "remote source", "remote sources"))
			state, changes, err := lockfile.Compare(path, lf)
			switch {
			case err != nil:
				return err
			case state == lockfile.UpToDate && c.Bool("check"):
				fmt.Fprintf(c.Writer, "%s is up to date: %s\n", path, summary)
				return nil
			case state == lockfile.UpToDate:
				fmt.Fprintf(c.Writer, "%s unchanged: %s\n", path, summary)
				return nil
			case state == lockfile.OutOfDate && c.Bool("check") && coveredBy(path, lf):
				var ps []ocispec.Platform
				for _, pv := range views.Platforms {
					ps = append(ps, pv.Platform)
				}
				fmt.Fprintf(c.Writer, "%s is up to date for %s (it pins other platforms too): %s\n", path, oci.PlatformsString(ps), summary)
				return nil
			case state == lockfile.Missing && c.Bool("check"):
				return cli.Exit(fmt.Sprintf("%s is missing; run `cnstack lock`", path), 1)
			case c.Bool("check"):
				return cli.Exit(fmt.Sprintf("%s is out of date; run `cnstack lock`:\n%s", path, strings.Join(changes, "\n")), 1)
			}
			if err := lockfile.Write(path, lf); err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "wrote %s: %s\n", path, summary)
			return nil
		},
	}
}

// coveredBy reports whether the lock file at path pins everything fresh
// does (lockfile.Covers): it was written for more platforms than checked.
func coveredBy(path string, fresh *lockfile.File) bool {
	prev, err := lockfile.Read(path)
	return err == nil && prev.Covers(fresh)
}
