package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/remote"
	"github.com/cnstack/cnstack/pkg/store"
)

// home is cnstack's data directory.
func home(c *cli.Context) (string, error) {
	if h := c.String("home"); h != "" {
		return filepath.Abs(h)
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "cnstack"), nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home directory; set CNSTACK_HOME: %w", err)
	}
	return filepath.Join(u, ".local", "share", "cnstack"), nil
}

func openStore(c *cli.Context) (*store.Store, error) {
	h, err := home(c)
	if err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(h, "store"))
}

func openCache(c *cli.Context) (*build.Cache, error) {
	h, err := home(c)
	if err != nil {
		return nil, err
	}
	return build.OpenCache(filepath.Join(h, "cache"))
}

// registryFlags are the flags of every command that talks to registries.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "insecure-registry", EnvVars: []string{"CNSTACK_INSECURE_REGISTRIES"}, Usage: "registry `HOST[:PORT]` reached over plain HTTP or unverified TLS (loopback registries always are)"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM `FILE` of extra certificate authorities for registries"},
		&cli.StringSliceFlag{Name: "registry-mirror", EnvVars: []string{"CNSTACK_REGISTRY_MIRRORS"}, Usage: "fetch `REGISTRY=HOST[:PORT]` from a mirror, e.g. docker.io=127.0.0.1:5000"},
		&cli.StringFlag{Name: "docker-config", Usage: "docker config.json `PATH` for credentials (default $DOCKER_CONFIG or ~/.docker/config.json)"},
	}
}

func remoteClient(c *cli.Context) (*remote.Client, error) {
	mirrors := map[string]string{}
	for _, m := range c.StringSlice("registry-mirror") {
		for _, one := range strings.Split(m, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(one), "=")
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("--registry-mirror %q: want REGISTRY=HOST[:PORT]", one)
			}
			mirrors[k] = v
		}
	}
	var insecure []string
	for _, h := range c.StringSlice("insecure-registry") {
		insecure = append(insecure, strings.Split(h, ",")...)
	}
	return remote.New(remote.Options{
		Insecure: insecure, CAFile: c.String("ca-file"), Mirrors: mirrors,
		DockerConfig: c.String("docker-config"), UserAgent: "cnstack/" + version(),
	})
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print cnstack's version and the sealer format it writes",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "cnstack %s\nbuild format %s, sealer image format v0.9–v0.11 (written as %s)\n", version(), build.FormatVersion, "v0.11.0")
			return nil
		},
	}
}

// parseKV turns k=v flags into a map.
func parseKV(flag string, vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, v)
		}
		m[k] = val
	}
	return m, nil
}
