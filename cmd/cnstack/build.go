package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/imagescan"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
)

func buildFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringSliceFlag{Name: "platform", Usage: "target `OS/ARCH[/VARIANT]` platforms, comma-separated; several give an OCI index (default linux/amd64)"},
		&cli.StringSliceFlag{Name: "build-arg", Usage: "`KEY=VALUE` for an ARG of the Kubefile (repeatable)"},
		&cli.StringFlag{Name: "build-mode", Value: build.ModeAll, Usage: "all: collect container images into registry/; lite: skip them (as sealer v0.11)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "rebuild every layer instead of reusing cached ones"},
		&cli.StringFlag{Name: "image-list", Usage: "`FILE` of extra container images to carry, one per line"},
		&cli.StringFlag{Name: "ignored-image-list", Usage: "`FILE` of container images to leave out, one per line"},
		&cli.IntFlag{Name: "max-pull-procs", Value: 8, Usage: "container images pulled in parallel"},
		&cli.BoolFlag{Name: "locked", Usage: "refuse container images the lock file does not pin, and pull by digest only"},
		&cli.StringSliceFlag{Name: "label", Usage: "extra config `KEY=VALUE` label (repeatable)"},
		&cli.StringSliceFlag{Name: "annotation", Usage: "extra manifest `KEY=VALUE` annotation (repeatable)"},
	}, registryFlags()...)
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a cluster image from a Kubefile into the local store",
		ArgsUsage: "[CONTEXT]",
		Description: `Builds CONTEXT (default ".") with its Kubefile into the local store, tagged with every -t.
The same Kubefile and context give the same image digest on any machine
(set SOURCE_DATE_EPOCH to stamp a creation time; the default is 1970-01-01).
Unchanged instructions reuse cached layers; each step prints "cached" or "built".

Examples:
  cnstack build -t registry.example.com/cnstack/base:v0.1.0 .
  cnstack build -t my-app:v1 --type app-installer -f Kubefile.app ./app
  cnstack build -t base:v1 --platform linux/amd64,linux/arm64 --build-arg VERSION=1.28 .`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "`NAME:TAG` of the image (repeatable)", Required: true},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "Kubefile `PATH` (default CONTEXT/Kubefile)"},
			&cli.StringFlag{Name: "type", Value: clusterimage.KubeInstaller, Usage: "kube-installer (a cluster sealer run installs) or app-installer (an app for an existing cluster)"},
		}, buildFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() > 1 {
				return usageError(c, "takes one build context, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
			}
			ctxDir := c.Args().First()
			if ctxDir == "" {
				ctxDir = "."
			}
			// Every check that needs no work comes first: the tags, the flags, the Kubefile.
			tags := c.StringSlice("tag")
			for _, t := range tags {
				if _, err := reference.ParseTag(t); err != nil {
					return usageError(c, "-t %q: %v", t, err)
				}
			}
			req, err := buildRequest(c)
			if err != nil {
				return err
			}
			req.Context = ctxDir
			req.Collect.LockFile = lockfile.Find(ctxDir)
			req.Tags = tags
			req.Type = c.String("type")
			req.Kubefile = c.String("file")
			if req.Kubefile == "" {
				req.Kubefile = filepath.Join(ctxDir, "Kubefile")
			}
			if err := lintBeforeBuild(c, req); err != nil {
				return err
			}
			b, err := newBuilder(c)
			if err != nil {
				return err
			}
			res, err := b.Build(ctx, req)
			if err != nil {
				return err
			}
			status := "built"
			if res.Cached {
				status = "cached"
			}
			for _, t := range req.Tags {
				fmt.Fprintf(c.Writer, "%s %s@%s (%s, %s)\n", status, t, res.Descriptor.Digest, platformsOf(res), res.Duration.Round(1e6))
			}
			return nil
		},
	}
}

// lintBeforeBuild checks the Kubefile as "cnstack lint" does and, when it
// has errors, prints every finding and stops before any work: a build
// would stop at the first one.
func lintBeforeBuild(c *cli.Command, req build.Request) error {
	ds, err := buildcontext.Lint(displayName(req.Kubefile), req.Kubefile, req.Context, req.BuildArgs, req.Platforms...)
	if err != nil {
		return err
	}
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil // warnings: the build logs them
	}
	for _, d := range ds {
		fmt.Fprintln(c.ErrWriter, d.Pos.String()+": "+d.Severity.String()+": "+d.Msg)
	}
	return cli.Exit(fmt.Sprintf("%s has %s; nothing was built", displayName(req.Kubefile), plural(len(errs), "error", "errors")), 1)
}

func platformsOf(r *build.Result) string {
	var out []string
	for _, p := range r.Platforms {
		out = append(out, oci.PlatformString(p.Platform))
	}
	return strings.Join(out, ",")
}

func newBuilder(c *cli.Command) (*build.Builder, error) {
	s, err := openStore(c)
	if err != nil {
		return nil, err
	}
	cache, err := openCache(c)
	if err != nil {
		return nil, err
	}
	rc, err := remoteClient(c)
	if err != nil {
		return nil, err
	}
	b := &build.Builder{Store: s, Cache: cache, Remote: rc, HTTP: rc.HTTPClient(), Out: c.ErrWriter}
	b.Collector = newCollector(c, b)
	return b, nil
}

// buildRequest reads the flags shared by build and stack build.
func buildRequest(c *cli.Command) (build.Request, error) {
	var req build.Request
	var err error
	if req.Platforms, err = oci.ParsePlatforms(c.StringSlice("platform")); err != nil {
		return req, fmt.Errorf("--platform: %w", err)
	}
	if req.BuildArgs, err = parseKV("build-arg", c.StringSlice("build-arg")); err != nil {
		return req, err
	}
	if req.Labels, err = parseKV("label", c.StringSlice("label")); err != nil {
		return req, err
	}
	if req.Annotations, err = parseKV("annotation", c.StringSlice("annotation")); err != nil {
		return req, err
	}
	req.Mode = c.String("build-mode")
	req.NoCache = c.Bool("no-cache")
	req.Collect = collector.Options{MaxProcs: c.Int("max-pull-procs"), Locked: c.Bool("locked")}
	req.Collect.ImageList, req.Collect.Ignored, err = imageLists(c)
	return req, err
}

// imageLists reads the files --image-list and --ignored-image-list name.
func imageLists(c *cli.Command) (list, ignored []string, err error) {
	if f := c.String("image-list"); f != "" && f != "filepath" { // sealer's default value is the literal "filepath"
		if list, err = imagescan.ReadListFile(f); err != nil {
			return nil, nil, fmt.Errorf("--image-list: %w", err)
		}
	}
	if f := c.String("ignored-image-list"); f != "" {
		if ignored, err = imagescan.ReadListFile(f); err != nil {
			return nil, nil, fmt.Errorf("--ignored-image-list: %w", err)
		}
	}
	return list, ignored, nil
}
