// Command cnstack compiles layered Kubefiles into signed, sealer-compatible
// OCI cluster images, ships them to registries and air-gapped sites, and
// verifies them on ephemeral VMs. This package is flags and wiring only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/vm"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and turns its error into an exit code; the error is
// printed once, here.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Any VM still running when cnstack returns, fails or is interrupted is torn down.
	defer vm.CloseAll()
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.Run(ctx, args)
	if err == nil {
		return 0
	}
	if msg := userMessage(err); msg != "" {
		fmt.Fprintln(stderr, "cnstack:", msg)
	}
	var ee cli.ExitCoder
	if errors.As(err, &ee) && ee.ExitCode() != 0 {
		return ee.ExitCode()
	}
	return 1
}

// userMessage is the error as a user should read it.
func userMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, regclient.ErrOffline) {
		msg += " (--offline or CNSTACK_OFFLINE is set)"
	}
	return msg
}

// logLevels are the values --log-level accepts, as its help says.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func newApp() *cli.Command {
	app := &cli.Command{
		Name:  "cnstack",
		Usage: "build, ship and verify sealer-compatible cluster images",
		Description: `cnstack compiles Kubefiles (sealer's build language) into reproducible OCI cluster
images in a local store ($CNSTACK_HOME/store), builds layered stacks in dependency order,
and moves the images to registries and offline bundles. Images run with "sealer run".

Flags may come before or after arguments ("cnstack boot REF --report DIR"); "--" ends
the flags, so "cnstack rmi -- -odd-name" treats -odd-name as an argument.`,
		Version:               version(),
		EnableShellCompletion: true,
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script: completion bash|zsh|fish|pwsh"
		},
		Suggest: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", Sources: cli.EnvVars("CNSTACK_HOME"), Usage: "cnstack's data `DIR` (store, cache, VM images); default $XDG_DATA_HOME/cnstack or ~/.local/share/cnstack"},
			&cli.StringFlag{Name: "log-level", Value: "info", Sources: cli.EnvVars("CNSTACK_LOG_LEVEL"), Usage: "log `LEVEL`: debug, info, warn or error"},
			&cli.BoolFlag{Name: "offline", Sources: cli.EnvVars("CNSTACK_OFFLINE"), Usage: "never connect to a non-loopback address: registry and download requests fail at once instead of timing out (for air-gapped sites)"},
		},
		Before: func(ctx context.Context, c *cli.Command) (context.Context, error) {
			level, ok := logLevels[c.String("log-level")]
			if !ok {
				return ctx, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(c.Root().ErrWriter, &slog.HandlerOptions{Level: level})))
			return ctx, nil
		},
		// run prints the error once; cli must neither print it nor exit.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands: []*cli.Command{
			buildCommand(),
			assembleCommand(),
			stackCommand(),
			imagesCommand(),
			inspectCommand(),
			historyCommand(),
			tagCommand(),
			mergeCommand(),
			rmiCommand(),
			pruneCommand(),
			lintCommand(),
			registryCommand(),
			loginCommand(),
			logoutCommand(),
			pushCommand(),
			pullCommand(),
			saveCommand(),
			loadCommand(),
			checkCommand(),
			lockCommand(),
			devCommand(),
			bootCommand(),
			reportCommand(),
			ciCommand(),
			vmCommand(),
			installCommand(),
			generateKeyPairCommand(),
			signCommand(),
			verifyCommand(),
			sbomCommand(),
			versionCommand(),
		},
	}
	setUsageErrors(app)
	return app
}

// setUsageErrors makes every command report a usage error (unknown flag,
// missing value, missing required flag) in one line that names the command
// and where its help is, instead of the error followed by the whole help.
func setUsageErrors(c *cli.Command) {
	c.OnUsageError = func(_ context.Context, cmd *cli.Command, err error, _ bool) error {
		msg := err.Error()
		// cli names an unknown flag without its dashes ("-" + name).
		if f, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag -" + f
			if len(f) > 1 {
				msg = "unknown flag --" + f
			}
		}
		return usageError(cmd, "%s", msg)
	}
	if len(c.Commands) > 0 && c.Action == nil {
		// A command group: its first argument names a subcommand, and
		// everything after it is the subcommand's to parse, so "cnstack
		// biuld -t x ." reports the unknown command, not the flag.
		first := 1
		c.StopOnNthArg = &first
		c.Action = groupAction
	}
	for _, sub := range c.Commands {
		setUsageErrors(sub)
	}
}

// groupAction runs for a command group given no subcommand, or one it
// does not have.
func groupAction(_ context.Context, c *cli.Command) error {
	if c.NArg() == 0 {
		if c.Root() == c {
			return cli.ShowRootCommandHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	name := c.Args().First()
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cli.SuggestCommand(c.Commands, name); s != "" && s != "help" && s != "h" && s[0] == name[0] {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return usageError(c, "%s", msg)
}
