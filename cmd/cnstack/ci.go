package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/ci"
	"github.com/cnstack/cnstack/pkg/stack"
)

func ciCommand() *cli.Command {
	return &cli.Command{
		Name:  "ci",
		Usage: "what CI engines run for a stack: the job matrix and the GitHub Actions workflow",
		Commands: []*cli.Command{{
			Name:      "matrix",
			Usage:     "print the stack's jobs (one per layer and platform, parents first) as a GitHub Actions matrix",
			ArgsUsage: "[DIR]",
			Description: `Prints {"include": [...]}: one entry per layer and platform in dependency order, with the
layer's parent (the job to wait for), its wave (depth in the DAG: engines without per-job
dependencies run wave by wave), the runner label and whether the job boot-verifies.
-o github prints "matrix=<json>" for $GITHUB_OUTPUT.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "json", Usage: "json or github"},
			},
			Action: func(ctx context.Context, c *cli.Command) error {
				format := c.String("output")
				if format != "json" && format != "github" {
					return badOutput(c, "json", "github")
				}
				s, err := ciStack(c)
				if err != nil {
					return err
				}
				m, err := ci.Matrix(s, nil)
				if err != nil {
					return err
				}
				out := struct {
					Include []ci.Entry `json:"include"`
				}{m}
				if format == "github" {
					b, err := json.Marshal(out)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.Writer, "matrix=%s\n", b)
					return nil
				}
				enc := json.NewEncoder(c.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			},
		}, {
			Name:      "workflow",
			Usage:     "print (or --check) the GitHub Actions workflow of the stack's nightly pipeline",
			ArgsUsage: "[DIR]",
			Description: `Prints the workflow that runs ci/nightly.sh as one job per layer (needing its parent's job)
with a platform matrix, then merges the jobs' reports. DIR is the stack, given relative to
the repository root as the workflow will name it. --check FILE exits 1 when FILE differs.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "check", Usage: "compare with the workflow `FILE` instead of printing"},
				&cli.StringFlag{Name: "cron", Usage: "schedule (default 17 2 * * *)"},
			},
			Action: func(ctx context.Context, c *cli.Command) error {
				s, err := ciStack(c)
				if err != nil {
					return err
				}
				dir := filepath.ToSlash(filepath.Clean(c.Args().First()))
				if c.Args().First() == "" {
					dir = filepath.ToSlash(stack.DefaultDir())
				}
				wf, err := ci.Workflow(s, ci.WorkflowOptions{StackDir: dir, Cron: c.String("cron"), Command: "cnstack ci workflow " + dir})
				if err != nil {
					return err
				}
				if f := c.String("check"); f != "" {
					have, err := os.ReadFile(f)
					if err != nil {
						return err
					}
					if string(have) != string(wf) {
						return cli.Exit(fmt.Sprintf("%s is not what the stack %s gives: run cnstack ci workflow %s > %s", f, dir, dir, f), 1)
					}
					fmt.Fprintf(c.Writer, "%s matches the stack %s\n", f, dir)
					return nil
				}
				_, err = c.Writer.Write(wf)
				return err
			},
		}},
	}
}

func ciStack(c *cli.Command) (*stack.Stack, error) {
	if c.NArg() > 1 {
		return nil, usageError(c, "takes one stack directory, got %d arguments", c.NArg())
	}
	dir := c.Args().First()
	if dir == "" {
		dir = stack.DefaultDir()
	}
	return stack.Load(dir, nil)
}
