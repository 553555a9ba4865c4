package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/report"
	"github.com/cnstack/cnstack/pkg/sign"
	"github.com/cnstack/cnstack/pkg/stack"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "render a pipeline run (run.json) as one self-contained HTML page, JSON and JUnit",
		ArgsUsage: "RUN.json",
		Description: `Writes report.html (inline SVG: the layer DAG, stacked size bars, boot timelines, the
trend; no script, works offline), run.json and junit.xml into --output. The trend and each
layer's growth come from earlier runs: every --history DIR/<id>/run.json (default: the
parent of --output). "report collect" makes the run.json from the store and a step log.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR` (required)"},
			&cli.StringFlag{Name: "history", Usage: "`DIR` of earlier report directories (default: the parent of --output)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one run JSON file, got %d arguments", c.NArg())
			}
			if c.String("output") == "" {
				return usageError(c, "--output DIR is required")
			}
			run, err := report.Read(c.Args().First())
			if err != nil {
				return err
			}
			return writeReport(c, run)
		},
		Commands: []*cli.Command{{
			Name:      "merge",
			Usage:     "merge the runs of one pipeline spread over CI jobs (one per layer and platform) into one report",
			ArgsUsage: "RUN.json...",
			Description: `Each layer comes from the run that worked on it (its steps, digests, boot report); the
stages are concatenated and the run spans the first job's start to the last job's end.
Boot directories are linked as each job wrote them: copy the jobs' boot/<layer>/ directories
next to the merged report.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "report `DIR`"},
				&cli.StringFlag{Name: "history", Usage: "`DIR` of earlier report directories (default: the parent of --output)"},
			},
			Action: func(ctx context.Context, c *cli.Command) error {
				if c.NArg() == 0 {
					return usageError(c, "name the run JSON files to merge")
				}
				var runs []*report.Run
				for _, p := range c.Args().Slice() {
					r, err := report.Read(p)
					if err != nil {
						return err
					}
					runs = append(runs, r)
				}
				run, err := report.Merge(runs)
				if err != nil {
					return err
				}
				return writeReport(c, run)
			},
		}, {
			Name:      "collect",
			Usage:     "collect a run from the store and a pipeline step log, then write its report",
			ArgsUsage: "[STACK_DIR]",
			Description: `Reads the stack in STACK_DIR (its layers and DAG), --steps (one line per step:
LAYER<TAB>STEP<TAB>STATUS<TAB>SECONDS<TAB>DETAIL; LAYER "-" for a stage of the whole run), the
layer images in the local store (digests, sizes, container images, signatures, attestations
and SBOM, checked with --key) and the boot reports under --output/boot/<layer>/, and writes
the report (as "cnstack report") into --output.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "report `DIR`"},
				&cli.StringFlag{Name: "history", Usage: "`DIR` of earlier report directories (default: the parent of --output)"},
				&cli.StringFlag{Name: "steps", Required: true, Usage: "step log `FILE`"},
				&cli.StringFlag{Name: "key", Usage: "cosign public key `FILE` to check signatures, attestations and the SBOM with"},
				&cli.StringFlag{Name: "id", Usage: "run `ID` (default: the report directory's name)"},
				&cli.TimestampFlag{Name: "started", Config: cli.TimestampConfig{Layouts: []string{time.RFC3339}}, Usage: "when the run started (RFC 3339)"},
				&cli.DurationFlag{Name: "duration", Usage: "how long the run took"},
				&cli.StringFlag{Name: "staging", Usage: "where the run pushed images (`REGISTRY/PREFIX`)"},
				&cli.StringFlag{Name: "promote-tag", Usage: "the `TAG` verified images were promoted to"},
			},
			Action: func(ctx context.Context, c *cli.Command) error {
				if c.NArg() > 1 {
					return usageError(c, "takes one stack directory, got %d arguments", c.NArg())
				}
				dir := c.Args().First()
				if dir == "" {
					dir = stack.DefaultDir()
				}
				s, err := stack.Load(dir, nil)
				if err != nil {
					return err
				}
				f, err := os.Open(c.String("steps"))
				if err != nil {
					return err
				}
				steps, err := report.ReadSteps(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", c.String("steps"), err)
				}
				var key sign.Verifier
				if k := c.String("key"); k != "" {
					if key, err = sign.LoadPublicKey(k); err != nil {
						return err
					}
				}
				st, err := openStore(c)
				if err != nil {
					return err
				}
				release, err := st.Use(ctx)
				if err != nil {
					return err
				}
				defer release()
				out := c.String("output")
				id := c.String("id")
				if id == "" {
					id = filepath.Base(filepath.Clean(out))
				}
				run, err := report.Collect(ctx, report.CollectOptions{ID: id, Started: c.Timestamp("started"), Duration: c.Duration("duration"),
					Staging: c.String("staging"), PromoteTag: c.String("promote-tag"), Stack: s, Source: st, Key: key, Steps: steps, Dir: out})
				if err != nil {
					return err
				}
				return writeReport(c, run)
			},
		}},
	}
}

func writeReport(c *cli.Command, run *report.Run) error {
	out := c.String("output")
	hist := c.String("history")
	if hist == "" {
		hist = filepath.Dir(filepath.Clean(out))
	}
	runs, err := report.History(hist, filepath.Base(filepath.Clean(out)))
	if err != nil {
		return err
	}
	if err := (report.Page{Run: run, History: runs}).Write(out); err != nil {
		return err
	}
	verdict := "passed"
	if !run.Passed {
		verdict = "failed"
	}
	fmt.Fprintf(c.Writer, "report: %s (%s; %d layers, %d earlier runs)\n", filepath.Join(out, "report.html"), verdict, len(run.Layers), len(runs))
	return nil
}
