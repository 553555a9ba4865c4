package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

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
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("check takes one bundle file")
			}
			opts := bundle.CheckOptions{Input: c.Args().First(), Progress: c.App.ErrWriter}
			if k := c.String("key"); k != "" {
				v, err := bundleVerifier(k)
				if err != nil {
					return err
				}
				opts.Verify = v
			}
			rep, err := bundle.Check(c.Context, opts)
			if rep != nil {
				for _, im := range rep.Images {
					status := "ok"
					if !im.OK {
						status = "FAILED"
					}
					fmt.Fprintf(c.App.Writer, "%-6s %s@%s\n", status, im.Ref, im.Digest)
					for _, l := range im.Lines {
						fmt.Fprintf(c.App.Writer, "         %s\n", l)
					}
				}
				rate := float64(rep.Bytes) / rep.Duration.Seconds() / (1 << 20)
				fmt.Fprintf(c.App.Writer, "%d blobs, %s hashed in %s (%.0f MiB/s)", rep.Blobs, progress.Bytes(rep.Bytes), rep.Duration.Round(1e6), rate)
				if rep.Omitted > 0 {
					fmt.Fprintf(c.App.Writer, "; delta: %d blobs expected from its base", rep.Omitted)
				}
				if !rep.Verified {
					fmt.Fprint(c.App.Writer, "; signatures not checked (no --key)")
				}
				fmt.Fprintln(c.App.Writer)
				for _, p := range rep.Problems {
					fmt.Fprintln(c.App.Writer, "problem:", p)
				}
			}
			if err != nil {
				return cli.Exit(fmt.Sprintf("check %s: %d problems", c.Args().First(), len(rep.Problems)), 1)
			}
			return nil
		},
	}
}
