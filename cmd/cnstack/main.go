// Command cnstack compiles layered Kubefiles into signed, sealer-compatible
// OCI cluster images, ships them to registries and air-gapped sites, and
// verifies them on ephemeral VMs. This package is flags and wiring only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/cnstack/cnstack/pkg/vm"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Any VM still running when cnstack returns, fails or is interrupted is torn down.
	defer vm.CloseAll()
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		var ee cli.ExitCoder
		if errors.As(err, &ee) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "cnstack:", msg)
			}
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "cnstack:", err)
		return 1
	}
	return 0
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "cnstack",
		Usage: "build, ship and verify sealer-compatible cluster images",
		Description: `cnstack compiles Kubefiles (sealer's build language) into reproducible OCI cluster
images in a local store ($CNSTACK_HOME/store), builds layered stacks in dependency order,
and moves the images to registries and offline bundles. Images run with "sealer run".`,
		Version:              version(),
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", EnvVars: []string{"CNSTACK_HOME"}, Usage: "cnstack's data directory (store, cache); default ~/.local/share/cnstack"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"CNSTACK_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
		},
		Before: func(c *cli.Context) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
		Commands: []*cli.Command{
			buildCommand(),
			stackCommand(),
			imagesCommand(),
			inspectCommand(),
			rmiCommand(),
			pruneCommand(),
			lintCommand(),
			registryCommand(),
			pushCommand(),
			pullCommand(),
			saveCommand(),
			loadCommand(),
			checkCommand(),
			lockCommand(),
			devCommand(),
			bootCommand(),
			vmCommand(),
			installCommand(),
			generateKeyPairCommand(),
			signCommand(),
			verifyCommand(),
			sbomCommand(),
			versionCommand(),
		},
	}
}
