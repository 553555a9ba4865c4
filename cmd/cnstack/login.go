package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/cnstack/cnstack/pkg/regclient"
)

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "log in to a registry: check the credentials and store them in the docker config",
		ArgsUsage: "REGISTRY",
		Description: `Checks USERNAME and the password against REGISTRY (HOST[:PORT]; docker.io for Docker Hub)
and stores them where docker login does: a configured credential helper, else the docker
config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json; --docker-config PATH).
Every cnstack command that talks to registries reads them from there.

The password comes from --password-stdin (recommended: echo "$TOKEN" | cnstack login -u me
--password-stdin REGISTRY), --password, or a prompt on a terminal.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "`USER` name"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "`PASSWORD` (visible to other users of this machine: prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input"},
		}, registryFlags()...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one registry, got %d arguments", c.NArg())
			}
			user := c.String("username")
			if user == "" {
				return usageError(c, "--username is required")
			}
			pass, err := loginPassword(c)
			if err != nil {
				return err
			}
			rc, err := remoteClient(c)
			if err != nil {
				return err
			}
			registry := c.Args().First()
			if err := rc.Login(ctx, registry, auth.Credential{Username: user, Password: pass}); err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "logged in to %s (credentials in %s)\n", regclient.RegistryHost(registry), rc.ConfigPath())
			return nil
		},
	}
}

// loginPassword reads the password from --password-stdin, --password or a
// terminal prompt.
func loginPassword(c *cli.Command) (string, error) {
	switch {
	case c.Bool("password-stdin") && c.IsSet("password"):
		return "", usageError(c, "--password and --password-stdin are exclusive")
	case c.Bool("password-stdin"):
		b, err := io.ReadAll(io.LimitReader(c.Root().Reader, 1<<20))
		if err != nil {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case c.IsSet("password"):
		fmt.Fprintln(c.ErrWriter, "warning: --password is visible to other users of this machine; prefer --password-stdin")
		return c.String("password"), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", errors.New("no password: pass --password-stdin (and the password on standard input) or --password")
	}
	fmt.Fprint(c.ErrWriter, "Password: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(c.ErrWriter)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return string(b), nil
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove a registry's stored credentials from the docker config",
		ArgsUsage: "REGISTRY",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "docker-config", Usage: "docker config.json `PATH` (default $DOCKER_CONFIG or ~/.docker/config.json)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one registry, got %d arguments", c.NArg())
			}
			rc, err := regclient.New(regclient.Options{DockerConfig: c.String("docker-config"), Offline: true})
			if err != nil {
				return err
			}
			registry := c.Args().First()
			if err := rc.Logout(ctx, registry); err != nil {
				return err
			}
			fmt.Fprintf(c.Writer, "removed the credentials of %s from %s\n", regclient.RegistryHost(registry), rc.ConfigPath())
			return nil
		},
	}
}
