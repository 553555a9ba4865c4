package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

func lintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "check Kubefiles and stacks without building; exits non-zero on errors",
		ArgsUsage: "[PATH...]",
		Description: `PATH is a Kubefile, a build context holding one, or a stack directory (with stack.yaml);
default "." when it holds a Kubefile or stack.yaml, else "Kubefiles" (as stack, lock and
images why). Findings print as file:line:col.
Checks: instruction syntax and order (LAUNCH/CMDS last), RUN and unsupported keywords,
unknown apps in LAUNCH/APPCMDS/APPENV, app types, missing sources, unpinned remote sources,
and for stacks: duplicate layers, missing layers and FROM cycles.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "platform", Value: []string{"linux/amd64"}, Usage: "`OS/ARCH[/VARIANT]` platforms to evaluate for (repeatable)"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "`KEY=VALUE` for ARGs"},
			&cli.BoolFlag{Name: "strict", Usage: "treat warnings as errors"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			paths := c.Args().Slice()
			if len(paths) == 0 {
				paths = []string{stack.DefaultDir()}
			}
			args, err := parseKV("build-arg", c.StringSlice("build-arg"))
			if err != nil {
				return err
			}
			plats, err := oci.ParsePlatforms(c.StringSlice("platform"))
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			errs, warns := 0, 0
			report := func(ds kubefile.Diagnostics) {
				for _, d := range ds {
					fmt.Fprintln(c.Writer, d.Pos.String()+": "+d.Severity.String()+": "+d.Msg)
				}
				errs += len(ds.Errors())
				warns += len(ds.Warnings())
			}
			for _, p := range paths {
				t, err := stack.OpenTarget(p, args)
				if err != nil {
					fmt.Fprintf(c.Writer, "%s: error: %v\n", p, err)
					errs++
				}
				if t == nil {
					continue
				}
				for _, k := range t.Kubefiles {
					ds, err := buildcontext.Lint(displayName(k.Path), k.Path, k.Context, k.BuildArgs, plats...)
					if err != nil {
						fmt.Fprintf(c.Writer, "%s: error: %v\n", k.Path, err)
						errs++
						continue
					}
					report(ds)
				}
			}
			fmt.Fprintf(c.ErrWriter, "%s, %s\n", plural(errs, "error", "errors"), plural(warns, "warning", "warnings"))
			if errs > 0 || (c.Bool("strict") && warns > 0) {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// displayName is how findings name a Kubefile: relative to the working
// directory when that is shorter.
func displayName(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && len(rel) < len(p) {
			return rel
		}
	}
	return p
}
