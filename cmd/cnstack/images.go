package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"

	"github.com/cnstack/cnstack/internal/progress"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:        "images",
		Usage:       "list the images in the local store (images why: where a container image comes from)",
		Subcommands: []*cli.Command{imagesWhyCommand()},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print references only"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include untagged roots (signatures, attestations)"},
		},
		Action: func(c *cli.Context) error {
			s, err := openStore(c)
			if err != nil {
				return err
			}
			entries, err := s.List(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("quiet") {
				for _, e := range entries {
					if e.Ref != "" {
						fmt.Fprintln(c.App.Writer, e.Ref)
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tTAG\tDIGEST\tTYPE\tPLATFORMS\tSIZE")
			for _, e := range entries {
				if e.Ref == "" && !c.Bool("all") {
					continue
				}
				name, tag := "<none>", "<none>"
				if r, err := reference.Parse(e.Ref); err == nil {
					name, tag = r.Name(), r.Tag
				}
				info := describe(c, s, e.Descriptor)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, tag, e.Descriptor.Digest.Encoded()[:12], info.typ, info.platforms, progress.Bytes(info.size))
			}
			return tw.Flush()
		},
	}
}

type imageInfo struct {
	typ, platforms string
	size           int64
}

// describe summarises a stored image: its sealer type, platforms and the
// size of its blobs.
func describe(c *cli.Context, s *store.Store, d ocispec.Descriptor) imageInfo {
	info := imageInfo{typ: "-", platforms: "-"}
	var manifests []ocispec.Descriptor
	if store.IsIndex(d.MediaType) {
		children, err := s.Children(c.Context, d)
		if err != nil {
			return info
		}
		manifests = children
	} else {
		manifests = []ocispec.Descriptor{d}
	}
	var plats []string
	for _, m := range manifests {
		b, err := s.ReadBlob(c.Context, m.Digest)
		if err != nil {
			continue
		}
		var man ocispec.Manifest
		if json.Unmarshal(b, &man) != nil {
			continue
		}
		if ext, err := clusterimage.ParseExtension(man.Annotations[clusterimage.AnnotationExtension]); err == nil {
			info.typ = ext.Type
		} else if man.ArtifactType != "" {
			info.typ = man.ArtifactType
		}
		for _, l := range man.Layers {
			info.size += l.Size
		}
		if cb, err := s.ReadBlob(c.Context, man.Config.Digest); err == nil {
			var cfg ocispec.Image
			if json.Unmarshal(cb, &cfg) == nil && cfg.OS != "" {
				plats = append(plats, clusterimage.PlatformString(cfg.Platform))
			}
		}
	}
	if len(plats) > 0 {
		info.platforms = strings.Join(plats, ",")
	}
	return info
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a cluster image as `sealer inspect` does (store image, or registry image if not in the store)",
		ArgsUsage: "REF",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "json", Usage: "json (sealer inspect's shape) or table"},
			&cli.StringFlag{Name: "platform", Value: "linux/amd64", Usage: "platform to show when REF is an index"},
		}, registryFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("inspect takes one image reference")
			}
			ref := c.Args().First()
			p, err := kubefile.ParsePlatform(c.String("platform"))
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			src, desc, err := locate(c, ref)
			if err != nil {
				return err
			}
			desc, err = build.SelectPlatform(c.Context, src, desc, ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
			if err != nil {
				return fmt.Errorf("inspect %s: %w", ref, err)
			}
			mb, err := content.FetchAll(c.Context, src, desc)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", ref, err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(mb, &m); err != nil {
				return fmt.Errorf("inspect %s: %w", ref, err)
			}
			cb, err := content.FetchAll(c.Context, src, m.Config)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", ref, err)
			}
			spec, err := clusterimage.Inspect(ref, mb, cb)
			if err != nil {
				return err
			}
			if c.String("output") == "table" {
				return printInspectTable(c.App.Writer, spec)
			}
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "    ")
			enc.SetEscapeHTML(false)
			return enc.Encode(spec)
		},
	}
}

// locate finds REF in the store, or else in its registry (read only).
func locate(c *cli.Context, ref string) (content.Fetcher, ocispec.Descriptor, error) {
	s, err := openStore(c)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	desc, err := s.Resolve(c.Context, ref)
	if err == nil {
		return s, desc, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, ocispec.Descriptor{}, err
	}
	r, perr := reference.Parse(ref)
	if perr != nil {
		return nil, ocispec.Descriptor{}, err
	}
	rc, rerr := remoteClient(c)
	if rerr != nil {
		return nil, ocispec.Descriptor{}, rerr
	}
	repo, rerr := rc.Repository(c.Context, r)
	if rerr != nil {
		return nil, ocispec.Descriptor{}, rerr
	}
	desc, rerr = repo.Resolve(c.Context, r.Identifier())
	if rerr != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%w; and not found at %s: %v", err, rc.Endpoint(r.Registry), rerr)
	}
	return repo, desc, nil
}

func printInspectTable(w io.Writer, spec *clusterimage.ImageSpec) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ext := spec.ImageExtension
	fmt.Fprintf(tw, "Name:\t%s\n", spec.Name)
	fmt.Fprintf(tw, "Digest:\t%s\n", spec.Digest)
	fmt.Fprintf(tw, "ID:\t%s\n", spec.ID)
	fmt.Fprintf(tw, "Type:\t%s\n", ext.Type)
	fmt.Fprintf(tw, "Platform:\t%s\n", clusterimage.PlatformString(spec.OCIv1.Platform))
	fmt.Fprintf(tw, "Layers:\t%d\n", len(spec.ManifestV1.Layers))
	for k, v := range ext.Labels {
		fmt.Fprintf(tw, "Label:\t%s=%s\n", k, v)
	}
	for k, v := range ext.Env {
		fmt.Fprintf(tw, "Env:\t%s=%s\n", k, v)
	}
	for _, a := range ext.Applications {
		fmt.Fprintf(tw, "App:\t%s (%s) files=%v cmds=%v\n", a.Name, orDash(a.Type), a.Files, a.Cmds)
	}
	if len(ext.Launch.AppNames) > 0 {
		fmt.Fprintf(tw, "Launch:\t%s\n", strings.Join(ext.Launch.AppNames, ", "))
	}
	for _, cmd := range ext.Launch.Cmds {
		fmt.Fprintf(tw, "Cmds:\t%s\n", cmd)
	}
	for _, ci := range spec.ContainerImageList {
		fmt.Fprintf(tw, "Image:\t%s\n", ci.Image)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "remove image tags from the local store (blobs go with `cnstack prune`)",
		ArgsUsage: "REF...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "prune", Usage: "prune unreferenced blobs afterwards"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("rmi needs at least one image reference")
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range c.Args().Slice() {
				if err := s.Untag(c.Context, ref); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.App.Writer, "untagged", ref)
			}
			if c.Bool("prune") && len(errs) == 0 {
				return runPrune(c, s)
			}
			return errors.Join(errs...)
		},
	}
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete blobs no tagged image uses, and abandoned partial downloads",
		Action: func(c *cli.Context) error {
			s, err := openStore(c)
			if err != nil {
				return err
			}
			return runPrune(c, s)
		},
	}
}

func runPrune(c *cli.Context, s *store.Store) error {
	res, err := s.Prune(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "pruned %d blobs (%s), %d partial downloads\n", res.Blobs, progress.Bytes(res.Bytes), res.Partial)
	return nil
}
