package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/imagescan"
	"github.com/cnstack/cnstack/pkg/oci"
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
			t, err := scanTargetAt(c, c.Args().Get(1))
			if err != nil {
				return err
			}
			type hit struct {
				Layer    string          `json:"layer"`
				Platform string          `json:"platform"`
				Image    imagescan.Image `json:"image"`
				Ignored  bool            `json:"ignored,omitempty"`
				Carried  []string        `json:"carriedBy"`
			}
			var hits []hit
			var near []string
			for _, p := range t.platforms {
				views, cleanup, err := t.views(ctx, c, p)
				if err != nil {
					return err
				}
				defer cleanup()
				var cur *hit
				for _, v := range views {
					res, err := collect.Discover(ctx, os.DirFS(v.Dir), collect.DiscoverOptions{Env: v.Env(), Extension: v.Extension, ImageList: t.imageList, Ignored: t.ignored, KubeVersion: v.KubeVersion()})
					if err != nil {
						return fmt.Errorf("layer %s (%s): %w", v.Name, p, err)
					}
					img, ignored, err := res.Lookup(want)
					if err != nil {
						near = append(near, similar(res, want)...)
						continue
					}
					if cur != nil && v.Parent != "" && contains(cur.Carried, v.Parent) {
						cur.Carried = append(cur.Carried, v.Name)
						continue
					}
					hits = append(hits, hit{Layer: v.Name, Platform: oci.PlatformString(p), Image: img, Ignored: ignored, Carried: []string{v.Name}})
					cur = &hits[len(hits)-1]
				}
			}
			if len(hits) == 0 {
				msg := fmt.Sprintf("%s is not referenced in %s", want, t.dir)
				if len(near) > 0 {
					msg += "; similar: " + strings.Join(uniq(near), ", ")
				}
				return cli.Exit(msg, 1)
			}
			if c.String("output") == "json" {
				enc := json.NewEncoder(c.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(hits)
			}
			fmt.Fprintln(c.Writer, want)
			for _, h := range hits {
				where := "layer " + h.Layer
				if t.stack == nil {
					where = "build context " + t.dir
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

// similar lists found images of the same repository, for a helpful miss.
func similar(res *imagescan.Result, want string) []string {
	repo := want
	if i := strings.LastIndexAny(want, ":@"); i > strings.LastIndex(want, "/") {
		repo = want[:i]
	}
	var out []string
	for _, im := range res.Images {
		if strings.HasPrefix(im.Ref, repo+":") || strings.HasPrefix(im.Ref, repo+"@") {
			out = append(out, im.Ref)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
