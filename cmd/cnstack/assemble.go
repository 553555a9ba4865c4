package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/assemble"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/transfer"
)

func assembleCommand() *cli.Command {
	return &cli.Command{
		Name:      "assemble",
		Usage:     "build container images from files (binaries, directory trees) without a container engine",
		ArgsUsage: "-f RECIPE",
		Description: `Assembles the container images a recipe (YAML) lists, FROM scratch: each layer copies host
files or directory trees (symlinks kept) or inline text to paths in the image; the config
sets entrypoint, cmd, env and labels. The same files give the same digests on any machine.
Images go into the local store under their references; several platforms give an index.

In a recipe, ${NAME} expands from its vars:, then --var NAME=VALUE, then per platform OS,
ARCH, VARIANT and PLATFORM. PAYLOAD defaults to the binaries tools/install.sh builds:
${CNSTACK_TOOLS_DIR:-~/.cache/cnstack/tools}/payload/${OS}-${ARCH}.

With --push HOST[:PORT] every image is also copied to that registry under its name without
the registry domain (registry.k8s.io/pause:3.10.1 -> HOST/pause:3.10.1), the layout
sealer's embedded registry and --registry-mirror use.

  cnstack assemble -f Kubefiles/kubernetes/images.yaml --push 127.0.0.1:5000`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "recipe `FILE` (YAML)", Required: true},
			&cli.StringSliceFlag{Name: "var", Usage: "set a recipe variable `NAME=VALUE` (repeatable)"},
			&cli.StringSliceFlag{Name: "platform", Usage: "only these of each image's platforms, `OS/ARCH[,...]`"},
			&cli.StringFlag{Name: "push", Usage: "also copy every image to registry `HOST[:PORT]` under its stripped name"},
			&cli.BoolFlag{Name: "no-cache", Usage: "read and compress every file again"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 0 {
				return usageError(c, "takes no arguments (the recipe is -f FILE), got %d", c.NArg())
			}
			r, err := assemble.Load(c.String("file"))
			if err != nil {
				return err
			}
			vars, err := parseKV("var", c.StringSlice("var"))
			if err != nil {
				return err
			}
			var plats []string
			for _, p := range c.StringSlice("platform") {
				plats = append(plats, strings.Split(p, ",")...)
			}
			platforms, err := oci.ParsePlatforms(plats)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			opts := assemble.Options{Vars: vars, Platforms: platforms, Log: c.ErrWriter}
			if !c.Bool("no-cache") {
				h, err := home(c)
				if err != nil {
					return err
				}
				opts.CacheDir = filepath.Join(h, "cache", "assemble")
			}
			results, err := assemble.Assemble(ctx, s, r, opts)
			if err != nil {
				return err
			}
			for _, res := range results {
				fmt.Fprintf(c.Writer, "%s@%s\n", res.Ref, res.Descriptor.Digest)
			}
			if c.String("push") == "" {
				return nil
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			for _, res := range results {
				src, err := reference.Parse(res.Ref)
				if err != nil {
					return err
				}
				dst, err := src.Relocate(c.String("push"))
				if err != nil {
					return fmt.Errorf("--push: %w", err)
				}
				rep, err := transfer.Push(ctx, s, rc, src, dst, transfer.Options{Progress: c.ErrWriter})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.ErrWriter, "pushed %s (%s)\n", dst, rep.Summary)
			}
			return nil
		},
	}
}
