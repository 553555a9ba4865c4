package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/regserver"

	"github.com/cnstack/cnstack/internal/atomicfile"
)

func registryCommand() *cli.Command {
	return &cli.Command{
		Name:  "registry",
		Usage: "run a local OCI registry",
		Commands: []*cli.Command{
			registryServeCommand(),
		},
	}
}

func registryServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve an OCI distribution registry from a directory until interrupted",
		Description: `Serves the OCI distribution API (push, pull, tags, catalog, delete, and the
referrers API) from a distribution filesystem storage tree that persists across restarts.

With --read-only it serves an existing tree, such as the registry/ directory of a sealer
cluster image (or the image root holding it), for pulls only: pushes and deletes get
405 UNSUPPORTED and nothing under --root is written.

The registry has no authentication and no TLS, so it listens on loopback only unless
--allow-remote is given. SIGINT or SIGTERM stops it after requests in flight finish.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: regserver.DefaultAddr, Sources: cli.EnvVars("CNSTACK_REGISTRY_ADDR"), Usage: "listen `HOST:PORT`; port 0 picks a free port"},
			&cli.StringFlag{Name: "root", Sources: cli.EnvVars("CNSTACK_REGISTRY_ROOT"), Usage: "storage `DIR` (holds docker/registry/v2); default $CNSTACK_HOME/registry"},
			&cli.BoolFlag{Name: "read-only", Usage: "serve pulls only and never write to --root"},
			&cli.BoolFlag{Name: "allow-remote", Usage: "allow a listen address other machines can reach (no auth, no TLS)"},
			&cli.StringFlag{Name: "addr-file", Usage: "write the bound HOST:PORT to `FILE` once listening (for scripts using port 0)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("registry serve takes no arguments, got %q", c.Args().Slice()), 2)
			}
			root := c.String("root")
			if root == "" {
				h, err := home(c)
				if err != nil {
					return err
				}
				root = filepath.Join(h, "registry")
			}
			srv, err := regserver.New(regserver.Options{
				Addr:        c.String("addr"),
				Root:        root,
				ReadOnly:    c.Bool("read-only"),
				AllowRemote: c.Bool("allow-remote"),
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			if f := c.String("addr-file"); f != "" {
				if err := atomicfile.WriteFile(f, []byte(srv.Addr()+"\n"), 0o644); err != nil {
					return fmt.Errorf("--addr-file: %w", err)
				}
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(c.Writer, "serving registry on %s (root %s)\n", srv.Addr(), srv.Root())
			return srv.Serve(ctx)
		},
	}
}
