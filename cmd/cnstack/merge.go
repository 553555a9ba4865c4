package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/transfer"
)

// mergeCommand joins single-platform images into one multi-platform image.
func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "join single-platform images into one multi-platform image: merge TARGET SOURCE...",
		ArgsUsage: "TARGET SOURCE...",
		Description: `Points TARGET (NAME:TAG) at an index over the platform images the SOURCEs name, in
their order: the image a build of every platform on one machine writes, digest for digest,
when the SOURCEs are the per-platform builds of the same inputs (a CI matrix with one job
per platform: "cnstack stack build --platform linux/arm64" on each runner). Each SOURCE's
platform and build time are read from its config, never from what a tag or an index
claims; two SOURCEs of one platform, or built at different SOURCE_DATE_EPOCHs, are errors.
Only the index is written: nothing is copied, and SOURCEs that are themselves indexes
give all their images.

Images come from the local store, or with --remote from a registry, where every SOURCE
must be in TARGET's repository. Sign TARGET afterwards (cnstack sign): an index is a new
digest, and the SOURCEs' signatures sign only their platform images.

  cnstack merge --remote reg.example/cnstack/base:v0.1.0 \
    reg.example/cnstack/base:v0.1.0-linux-amd64 reg.example/cnstack/base:v0.1.0-linux-arm64`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "remote", Usage: "TARGET and SOURCEs are images of one registry repository"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() < 2 {
				return usageError(c, "takes TARGET and at least one SOURCE, got %d arguments", c.NArg())
			}
			dst, err := reference.ParseTag(c.Args().First())
			if err != nil {
				return fmt.Errorf("target %s: %w", c.Args().First(), err)
			}
			srcs := c.Args().Tail()
			desc, err := transfer.MergePlatforms(ctx, places(c), lookup(c, false), dst, srcs)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "merged %s as %s@%s\n", strings.Join(srcs, ", "), dst, desc.Digest)
			return nil
		},
	}
}
