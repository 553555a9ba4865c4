package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/transfer"

	"github.com/cnstack/cnstack/internal/progress"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "list the images in the local store (images why: where a container image comes from)",
		Description: `Lists the tagged images of the local store with their type, platforms and size.
Cosign signatures, attestations and SBOMs ("sha256-<hex>.sig", ".att", ".sbom" tags, written
by "cnstack sign") and untagged roots are hidden unless --all. -q prints references only
(one per line, for scripts); -o json prints every field as a JSON array.`,
		Commands: []*cli.Command{imagesWhyCommand()},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print references only", Local: true},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include signatures, attestations, SBOMs and untagged roots", Local: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output `FORMAT`: table or json", Local: true},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := noArgs(c); err != nil {
				return err
			}
			format := c.String("output")
			if format != "table" && format != "json" {
				return badOutput(c, "table", "json")
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			entries, err := s.List(ctx)
			if err != nil {
				return err
			}
			var shown []store.Entry
			for _, e := range entries {
				if c.Bool("all") || e.IsImage() {
					shown = append(shown, e)
				}
			}
			if c.Bool("quiet") {
				for _, e := range shown {
					if e.Ref != "" {
						fmt.Fprintln(c.Writer, e.Ref)
					}
				}
				return nil
			}
			type imageJSON struct {
				Ref       string   `json:"ref,omitempty"`
				Name      string   `json:"name,omitempty"`
				Tag       string   `json:"tag,omitempty"`
				Digest    string   `json:"digest"`
				MediaType string   `json:"mediaType"`
				Type      string   `json:"type,omitempty"`
				Platforms []string `json:"platforms,omitempty"`
				Size      int64    `json:"size"`
			}
			list := []imageJSON{}
			for _, e := range shown {
				images, _ := oci.FetchImages(ctx, s, e.Descriptor) // an image missing platforms shows those it has
				sum := clusterimage.Summarize(images)
				im := imageJSON{Ref: e.Ref, Digest: e.Descriptor.Digest.String(), MediaType: e.Descriptor.MediaType, Type: sum.Type, Platforms: sum.Platforms, Size: sum.Size}
				if r, err := reference.Parse(e.Ref); err == nil && e.Ref != "" {
					im.Name, im.Tag = r.Name(), r.Tag
				}
				list = append(list, im)
			}
			if format == "json" {
				return writeJSON(c.Writer, list)
			}
			tw := tabwriter.NewWriter(c.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tTAG\tDIGEST\tTYPE\tPLATFORMS\tSIZE")
			for _, im := range list {
				name, tag := orNone(im.Name), orNone(im.Tag)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, tag, strings.TrimPrefix(im.Digest, "sha256:")[:12], orDash(im.Type), orDash(strings.Join(im.Platforms, ",")), progress.Bytes(im.Size))
			}
			return tw.Flush()
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a cluster image as `sealer inspect` does (from the local store; --remote: from its registry)",
		ArgsUsage: "REF",
		Description: `Prints REF's manifest, config and sealer image extension in the JSON shape of
"sealer inspect" (-o table: a summary). REF is looked up in the local store only, as
sealer and docker do; with --remote it is read from its registry instead (nothing is
stored). For an index, --platform picks the manifest shown.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "json", Usage: "output `FORMAT`: json (sealer inspect's shape) or table"},
			&cli.StringFlag{Name: "platform", Value: "linux/amd64", Usage: "`OS/ARCH[/VARIANT]` to show when REF is an index"},
			&cli.BoolFlag{Name: "remote", Usage: "read REF from its registry instead of the local store"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			format := c.String("output")
			if format != "json" && format != "table" {
				return badOutput(c, "json", "table")
			}
			ref := c.Args().First()
			im, err := readImage(ctx, c, ref)
			if err != nil {
				return err
			}
			spec, err := clusterimage.Inspect(ref, im.ManifestBytes, im.ConfigBytes)
			if err != nil {
				return err
			}
			if format == "table" {
				return printInspectTable(c.Writer, spec)
			}
			enc := json.NewEncoder(c.Writer)
			enc.SetIndent("", "    ")
			enc.SetEscapeHTML(false)
			return enc.Encode(spec)
		},
	}
}

// readImage reads REF's image for --platform from the store, or with
// --remote from its registry.
func readImage(ctx context.Context, c *cli.Command, ref string) (*oci.Image, error) {
	p, err := oci.ParsePlatform(c.String("platform"))
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	loc, err := locate(ctx, c, ref, lookup(c, false))
	if err != nil {
		return nil, err
	}
	defer loc.Close()
	im, err := oci.FetchImage(ctx, loc.Target, loc.Descriptor, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return im, nil
}

// historyCommand prints the build steps recorded in an image's config.
func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show the Kubefile instruction behind each layer of an image, like `docker history`",
		ArgsUsage: "REF",
		Description: `Prints the history of REF's config, newest step first: the instruction that made
each step, the size of the layer it added (steps that only change metadata add none),
and its comment. REF is read from the local store, or with --remote from its registry.
For an index, --platform picks the manifest.`,
		Flags: append([]cli.Flag{
			outputFlag("table", "table or json"),
			&cli.StringFlag{Name: "platform", Value: "linux/amd64", Usage: "`OS/ARCH[/VARIANT]` to show when REF is an index"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not shorten long instructions"},
			&cli.BoolFlag{Name: "remote", Usage: "read REF from its registry instead of the local store"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			format := c.String("output")
			if format != "json" && format != "table" {
				return badOutput(c, "table", "json")
			}
			ref := c.Args().First()
			im, err := readImage(ctx, c, ref)
			if err != nil {
				return err
			}
			type step struct {
				CreatedBy  string `json:"createdBy"`
				Created    string `json:"created,omitempty"`
				Comment    string `json:"comment,omitempty"`
				EmptyLayer bool   `json:"emptyLayer,omitempty"`
				Layer      string `json:"layer,omitempty"`
				Size       int64  `json:"size"`
			}
			steps := []step{}
			for _, h := range slices.Backward(im.History()) { // newest first, as docker history prints
				st := step{CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
				if h.Created != nil && !h.Created.IsZero() && h.Created.Unix() != 0 {
					st.Created = h.Created.UTC().Format("2006-01-02T15:04:05Z")
				}
				if h.Layer != nil {
					st.Layer, st.Size = h.Layer.Digest.String(), h.Layer.Size
				}
				steps = append(steps, st)
			}
			if format == "json" {
				return writeJSON(c.Writer, steps)
			}
			tw := tabwriter.NewWriter(c.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LAYER\tCREATED BY\tSIZE\tCOMMENT")
			for _, st := range steps {
				id := "<none>"
				if st.Layer != "" {
					id = strings.TrimPrefix(st.Layer, "sha256:")[:12]
				}
				by := strings.Join(strings.Fields(st.CreatedBy), " ")
				if !c.Bool("no-trunc") && len(by) > 60 {
					by = by[:59] + "…"
				}
				size := progress.Bytes(0)
				if st.Layer != "" {
					size = progress.Bytes(st.Size)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, by, size, st.Comment)
			}
			return tw.Flush()
		},
	}
}

// tagCommand points a new tag at a store image.
func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give a store image another name: tag SOURCE TARGET",
		ArgsUsage: "SOURCE TARGET",
		Description: `Points TARGET (NAME:TAG) at the image SOURCE names in the local store (a tag, NAME@DIGEST
or a digest). Nothing is copied; TARGET is replaced if it existed. Signatures stay with the
image's digest: push TARGET and they travel along.

With --remote both are registry images of one registry: TARGET gets the manifest SOURCE
names (a tag in the same repository; in another repository a copy whose blobs are mounted),
with its signatures and attestations. The digest stays: nothing is rebuilt or re-sent.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "remote", Usage: "SOURCE and TARGET are registry images (retag in the registry)"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 2 {
				return usageError(c, "takes SOURCE and TARGET, got %d arguments", c.NArg())
			}
			src, dst := c.Args().Get(0), c.Args().Get(1)
			r, err := reference.ParseTag(dst)
			if err != nil {
				return fmt.Errorf("target %s: %w", dst, err)
			}
			if c.Bool("remote") {
				sr, err := reference.Parse(src)
				if err != nil {
					return fmt.Errorf("source %s: %w", src, err)
				}
				return retagRemote(ctx, c, sr, r)
			}
			// Not locate: tag's --remote retags in a registry, it does not
			// read SOURCE from one, so a store miss gets no hint about it.
			loc, err := transfer.Locate(ctx, places(c), src, transfer.InStore)
			if err != nil {
				return err
			}
			defer loc.Close()
			if err := loc.Target.Tag(ctx, loc.Descriptor, r.String()); err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "tagged %s@%s as %s\n", src, loc.Descriptor.Digest, r)
			return nil
		},
	}
}

func printInspectTable(w io.Writer, spec *clusterimage.ImageSpec) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ext := spec.ImageExtension
	fmt.Fprintf(tw, "Name:\t%s\n", spec.Name)
	fmt.Fprintf(tw, "Digest:\t%s\n", spec.Digest)
	fmt.Fprintf(tw, "ID:\t%s\n", spec.ID)
	fmt.Fprintf(tw, "Type:\t%s\n", ext.Type)
	fmt.Fprintf(tw, "Platform:\t%s\n", oci.PlatformString(spec.OCIv1.Platform))
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
		Usage:     "remove image tags from the local store (blobs go with `cnstack prune` or --prune)",
		ArgsUsage: "REF...",
		Description: `Removes each REF's tag from the local store. The image's blobs stay until "cnstack prune"
(or --prune) deletes what no tag uses. A REF that is not in the store is an error, unless
-f is given (as "rm -f"), which also removes the cosign signatures, attestations and SBOMs
of the untagged image when no other tag names it.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "no error for images not in the store; also remove their signatures and attestations"},
			&cli.BoolFlag{Name: "prune", Usage: "prune unreferenced blobs afterwards"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() == 0 {
				return usageError(c, "needs at least one image reference")
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			force := c.Bool("force")
			var errs []error
			for _, ref := range c.Args().Slice() {
				removed, err := s.Remove(ctx, ref, force)
				for _, t := range removed {
					fmt.Fprintln(c.Writer, "untagged", t)
				}
				switch {
				case err == nil:
				case len(removed) == 0 && errors.Is(err, store.ErrNotFound) && force:
				case len(removed) == 0 && errors.Is(err, store.ErrNotFound):
					errs = append(errs, fmt.Errorf("image %s is not in the local store", ref))
				default:
					errs = append(errs, err)
				}
			}
			if c.Bool("prune") && len(errs) == 0 {
				return runPrune(ctx, c, s)
			}
			return errors.Join(errs...)
		},
	}
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete blobs no tagged image uses, and abandoned partial downloads",
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			return runPrune(ctx, c, s)
		},
	}
}

func runPrune(ctx context.Context, c *cli.Command, s *store.Store) error {
	res, err := s.Prune(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Writer, "pruned %s (%s), %s\n", plural(res.Blobs, "blob", "blobs"), progress.Bytes(res.Bytes), plural(res.Partial, "partial download", "partial downloads"))
	return nil
}
