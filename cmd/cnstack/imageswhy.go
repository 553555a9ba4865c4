package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/reference"
)

// imagesWhyCommand is `cnstack images why REF [DIR]`, a subcommand of
// `images`.
func imagesWhyCommand() *cli.Command {
	return &cli.Command{
		Name:      "why",
		Usage:     "show where a container image is referenced in a stack or build context (file, document, YAML path, chart, app)",
		ArgsUsage: "REF [DIR]",
		Description: `Scans the stack in DIR (or the build context DIR; default "." or "Kubefiles") the way a
build and "cnstack lock" do, without building, and prints every place REF comes from: the
file, the YAML document and path, the chart and template that rendered it, and the app.
It also names the layer that brings the image in and the layers that carry it after.
REF is normalized first ("redis" is docker.io/library/redis:latest).
With -o json the image's record from the scan is printed as JSON.`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
		}, scanFlags()...), registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageError(c, "takes REF and an optional DIR, got %d arguments", c.NArg())
			}
			want, err := reference.Normalize(c.Args().Get(0))
			if err != nil {
				return err
			}
			t, views, opts, err := scanViews(ctx, c, c.Args().Get(1), false)
			if err != nil {
				return err
			}
			defer views.Close()
			res, err := collect.Why(ctx, views.Platforms, want, opts)
			if err != nil {
				return err
			}
			if len(res.Hits) == 0 {
				msg := fmt.Sprintf("%s is not referenced in %s", want, t.Dir)
				if len(res.Similar) > 0 {
					msg += "; similar: " + strings.Join(res.Similar, ", ")
				}
				return cli.Exit(msg, 1)
			}
			if c.String("output") == "json" {
				enc := json.NewEncoder(c.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res.Hits)
			}
			fmt.Fprintln(c.Writer, want)
			for _, h := range res.Hits {
				where := "layer " + h.Layer
				if t.Stack == nil {
					where = "build context " + t.Dir
				}
				fmt.Fprintf(c.Writer, "  %s (%s) brings it in", where, h.Platform)
				if len(h.Carried) > 1 {
					fmt.Fprintf(c.Writer, "; carried by %s", strings.Join(h.Carried, ", "))
				}
				if h.Ignored {
					fmt.Fprint(c.Writer, "; left out by --ignored-image-list")
				}
				fmt.Fprintln(c.Writer)
				if h.Image.AppName != "" {
					fmt.Fprintf(c.Writer, "    app: %s\n", h.Image.AppName)
				}
				for _, s := range h.Image.Sources {
					fmt.Fprintf(c.Writer, "    %s\n", s)
				}
			}
			return nil
		},
	}
}
