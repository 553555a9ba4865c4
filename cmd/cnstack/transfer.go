package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/transfer"

	"github.com/cnstack/cnstack/internal/progress"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a store image, every platform, with its signatures and attestations, to a registry",
		ArgsUsage: "REF [DEST]",
		Description: `Pushes REF from the local store to DEST (default: REF's own registry). Only blobs the
registry lacks are sent (HEAD first; blobs of other repositories of the same registry are
mounted, not uploaded), in parallel, with retries; rerun an interrupted push to finish it.
Cosign signatures and attestations made with "cnstack sign" travel along.`,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 8, Usage: "blobs in flight"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageError(c, "takes REF and an optional DEST, got %d arguments", c.NArg())
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			src, err := reference.Parse(c.Args().Get(0))
			if err != nil {
				return err
			}
			dst := src
			if c.NArg() == 2 {
				if dst, err = reference.Parse(c.Args().Get(1)); err != nil {
					return err
				}
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			rep, err := transfer.Push(ctx, s, rc, src, dst, transfer.Options{Concurrency: c.Int("jobs"), Progress: c.ErrWriter})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "pushed %s@%s (%s; %s)\n", dst, rep.Root.Digest, rep.Summary, companions(len(rep.Companions)))
			return nil
		},
	}
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image, every platform, with its signatures and attestations, into the local store",
		ArgsUsage: "REF",
		Description: `Copies REF (NAME:TAG or NAME@DIGEST) from its registry (or --registry-mirror) into the
local store with every platform of an index (--platform: only those) and the cosign
signatures and attestations stored beside it. Only blobs the store lacks are fetched, in
parallel, verified against their digests; rerun an interrupted pull to finish it. A pull
by digest is tagged NAME:sha256-<hex> in the store.`,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 8, Usage: "blobs in flight"},
			&cli.StringSliceFlag{Name: "platform", Usage: "pull only these platforms of an index"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			ref, err := reference.Parse(c.Args().First())
			if err != nil {
				return err
			}
			plats, err := oci.ParsePlatforms(c.StringSlice("platform"))
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			storeRef, rep, err := transfer.Pull(ctx, rc, ref, s, transfer.Options{Concurrency: c.Int("jobs"), Progress: c.ErrWriter, Platforms: plats})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "pulled %s@%s (%s; %s)\n", storeRef, rep.Root.Digest, rep.Summary, companions(len(rep.Companions)))
			return nil
		},
	}
}

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "write store images to an offline bundle (OCI layout tar with signatures and checksums)",
		ArgsUsage: "REF...",
		Description: `Writes the images, their cosign signatures and attestations, and a SHA256SUMS list into an
OCI image layout tar. The same images give the same bytes. With --split the bundle is cut into
FILE.000, FILE.001, … and FILE.sha256 lists each part's sha256. With --since OLD (a store image
or an earlier bundle) only what OLD lacks is written: load it where OLD was loaded.
--format sealer writes exactly what "sealer load -i" accepts (one image; no signatures).
With -o - the bundle goes to standard output (spooled through $CNSTACK_HOME/tmp first,
as a bundle is written atomically) and the summary to standard error:
  cnstack save -o - REF | ssh host cnstack load -i -`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "bundle `FILE`, or - for standard output"},
			&cli.StringFlag{Name: "format", Value: bundle.FormatOCI, Usage: "oci or sealer"},
			&cli.StringFlag{Name: "compress", Usage: "zstd to compress the bundle"},
			&cli.StringFlag{Name: "split", Usage: "cut into parts of `SIZE` (e.g. 4G, 700M)"},
			&cli.StringSliceFlag{Name: "since", Usage: "make a delta against `OLD`: store images or an earlier bundle file"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() == 0 {
				return usageError(c, "needs at least one image reference")
			}
			split, err := bundle.ParseSize(c.String("split"))
			if err != nil {
				return usageError(c, "--split: %v", err)
			}
			output, toStdout := c.String("output"), c.String("output") == "-"
			summary := c.Writer
			if toStdout {
				if split > 0 {
					return usageError(c, "-o - writes one stream: --split needs a file name")
				}
				if stdoutIsTerminal(c) {
					return usageError(c, "-o -: standard output is a terminal; redirect it to a file or a pipe")
				}
				dir, cleanup, err := newSpool(c)
				if err != nil {
					return err
				}
				defer cleanup()
				output, summary = filepath.Join(dir, "bundle.tar"), c.ErrWriter
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			opts := bundle.SaveOptions{Output: output, Refs: c.Args().Slice(), Format: c.String("format"),
				Compress: c.String("compress"), Split: split, Progress: c.ErrWriter}
			if since := c.StringSlice("since"); len(since) > 0 {
				opts.SinceName = strings.Join(since, ",")
				if opts.Since, err = bundle.BlobsOfSince(ctx, s, since); err != nil {
					return err
				}
			}
			rep, err := bundle.Save(ctx, s, opts)
			if err != nil {
				return err
			}
			files := strings.Join(rep.Files, ", ")
			if toStdout {
				if err := copyFileTo(c.Writer, output); err != nil {
					return fmt.Errorf("write the bundle to stdout: %w", err)
				}
				files = "standard output"
			}
			delta := ""
			if rep.Omitted > 0 || len(opts.Since) > 0 {
				delta = fmt.Sprintf(" (%d left out for the delta)", rep.Omitted)
			}
			fmt.Fprintf(summary, "saved %s, %s%s into %s (%s)\n",
				plural(len(opts.Refs), "image", "images"), plural(rep.Blobs, "blob", "blobs"), delta, files, progress.Bytes(rep.Bytes))
			return nil
		},
	}
}

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load an offline bundle into the local store, or relocate it into a private registry",
		Description: `Reads a bundle written by "cnstack save" (or "sealer save"), verifying every blob against its
digest as it streams; nothing is tagged until every image is complete, and an interrupted load
resumes where it stopped. With --to REGISTRY/PREFIX the images (with signatures and
attestations, which still verify) are pushed under the new prefix:
  docker.io/cnstack/base:v1 --to 10.0.0.5:5000/mirror  →  10.0.0.5:5000/mirror/cnstack/base:v1
With -i - the bundle is read from standard input (spooled through $CNSTACK_HOME/tmp).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "bundle `FILE` (or FILE of FILE.000, FILE.001, …), or - for standard input"},
			&cli.StringFlag{Name: "to", Usage: "relocate into `REGISTRY/PREFIX` instead of only loading into the store"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 8, Usage: "blobs in flight when relocating"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := noArgs(c); err != nil {
				return err
			}
			input := c.String("input")
			if input == "-" {
				dir, cleanup, err := newSpool(c)
				if err != nil {
					return err
				}
				defer cleanup()
				if input, err = spoolStdin(c, dir); err != nil {
					return err
				}
			}
			s, err := openStore(c)
			if err != nil {
				return err
			}
			to := c.String("to")
			rep, err := bundle.Load(ctx, s, bundle.LoadOptions{Input: input, Progress: c.ErrWriter, NoTag: false})
			if err != nil {
				if input != c.String("input") {
					// Name the bundle as the user did, not by its spool file.
					return errors.New(strings.ReplaceAll(err.Error(), input, "stdin"))
				}
				return err
			}
			fmt.Fprintf(c.ErrWriter, "read %s (%d already in the store)\n", plural(rep.Blobs, "new blob", "new blobs"), rep.Present)
			if to == "" {
				for _, im := range rep.Images {
					if !im.Companion {
						fmt.Fprintf(c.Writer, "loaded %s@%s\n", im.Ref, im.Descriptor.Digest)
					}
				}
				return nil
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			done, err := bundle.Relocate(ctx, s, rc, rep.Images, to, transfer.Options{Concurrency: c.Int("jobs"), Progress: c.ErrWriter})
			for _, r := range done {
				fmt.Fprintf(c.Writer, "relocated %s -> %s@%s (%s)\n", r.Source, r.Destination, r.Report.Root.Digest, companions(len(r.Report.Companions)))
			}
			return err
		},
	}
}

// companions counts cosign signatures and attestations for a summary line.
func companions(n int) string {
	return plural(n, "signature or attestation", "signatures and attestations")
}

// copyFileTo streams the file at path to w.
func copyFileTo(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
