package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/bundle"

	"github.com/cnstack/cnstack/internal/progress"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "verify an offline bundle with no network access: every blob, the checksums, and signatures",
		ArgsUsage: "FILE",
		Description: `Hashes every blob of the bundle (in parallel, as it streams), checks SHA256SUMS and the
part checksums of a split bundle, that every image is complete, and with --key the cosign
signatures and attestations of every image and platform. Names each bad blob or image and
exits non-zero if anything is wrong. Never opens a network connection.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "cosign public key `FILE` to verify signatures and attestations with"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one bundle file, got %d arguments", c.NArg())
			}
			opts := bundle.CheckOptions{Input: c.Args().First(), Progress: c.ErrWriter}
			if k := c.String("key"); k != "" {
				v, err := bundleVerifier(k)
				if err != nil {
					return err
				}
				opts.Verify = v
			}
			rep, err := bundle.Check(ctx, opts)
			if rep != nil {
				for _, im := range rep.Images {
					status := "ok"
					if !im.OK {
						status = "FAILED"
					}
					fmt.Fprintf(c.Writer, "%-6s %s@%s\n", status, im.Ref, im.Digest)
					for _, l := range im.Lines {
						fmt.Fprintf(c.Writer, "         %s\n", l)
					}
				}
				rate := float64(rep.Bytes) / rep.Duration.Seconds() / (1 << 20)
				fmt.Fprintf(c.Writer, "%s, %s hashed in %s (%.0f MiB/s)", plural(rep.Blobs, "blob", "blobs"), progress.Bytes(rep.Bytes), rep.Duration.Round(1e6), rate)
				if rep.Omitted > 0 {
					fmt.Fprintf(c.Writer, "; delta: %s expected from its base", plural(rep.Omitted, "blob", "blobs"))
				}
				if !rep.Verified {
					fmt.Fprint(c.Writer, "; signatures not checked (no --key)")
				}
				fmt.Fprintln(c.Writer)
				for _, p := range rep.Problems {
					fmt.Fprintln(c.Writer, "problem:", p)
				}
			}
			switch {
			case err != nil && rep == nil:
				// The bundle could not be read at all (missing file, not a bundle).
				return err
			case err != nil && len(rep.Problems) == 0:
				return fmt.Errorf("check %s: %w", c.Args().First(), err)
			case err != nil:
				return cli.Exit(fmt.Sprintf("check %s: %s", c.Args().First(), plural(len(rep.Problems), "problem", "problems")), 1)
			}
			return nil
		},
	}
}
