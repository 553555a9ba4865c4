package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/transfer"
)

// home is cnstack's data directory.
func home(c *cli.Command) (string, error) {
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

func openStore(c *cli.Command) (*store.Store, error) {
	h, err := home(c)
	if err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(h, "store"))
}

func openCache(c *cli.Command) (*build.Cache, error) {
	h, err := home(c)
	if err != nil {
		return nil, err
	}
	return build.OpenCache(filepath.Join(h, "cache"))
}

// registryFlags are the flags of every command that talks to registries.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "insecure-registry", Sources: cli.EnvVars("CNSTACK_INSECURE_REGISTRIES"), Usage: "registry `HOST[:PORT]` reached over plain HTTP or unverified TLS (loopback registries always are)"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM `FILE` of extra certificate authorities for registries"},
		&cli.StringSliceFlag{Name: "registry-mirror", Sources: cli.EnvVars("CNSTACK_REGISTRY_MIRRORS"), Usage: "fetch `REGISTRY=HOST[:PORT]` from a mirror, e.g. docker.io=127.0.0.1:5000"},
		&cli.StringFlag{Name: "docker-config", Usage: "docker config.json `PATH` for credentials (default $DOCKER_CONFIG or ~/.docker/config.json)"},
	}
}

func remoteClient(c *cli.Command) (*regclient.Client, error) {
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
	return regclient.New(regclient.Options{
		Insecure: insecure, CAFile: c.String("ca-file"), Mirrors: mirrors,
		DockerConfig: c.String("docker-config"), UserAgent: "cnstack/" + version(),
		// The root's --offline too: stack plan has its own --offline, which
		// shadows the global one (and CNSTACK_OFFLINE) in c.
		Offline: c.Bool("offline") || c.Root().Bool("offline"),
	})
}

// places are where transfer.Locate looks: the store of --home, and
// registries as the registry flags say.
func places(c *cli.Command) transfer.Places {
	return transfer.Places{
		Store:    func() (*store.Store, error) { return openStore(c) },
		Registry: func() (*regclient.Client, error) { return remoteClient(c) },
	}
}

// lookup is where a command with a --remote flag finds REF: only in its
// registry with --remote, else in the store, and then in the registry when
// fallback is allowed.
func lookup(c *cli.Command, fallback bool) transfer.Lookup {
	switch {
	case c.Bool("remote"):
		return transfer.InRegistry
	case fallback:
		return transfer.InStoreThenRegistry
	}
	return transfer.InStore
}

// locate finds REF (see transfer.Locate); a command that has --remote says
// so when REF is not in the store.
func locate(ctx context.Context, c *cli.Command, ref string, how transfer.Lookup) (*transfer.Located, error) {
	loc, err := transfer.Locate(ctx, places(c), ref, how)
	var missing *transfer.NotInStoreError
	if errors.As(err, &missing) && hasFlag(c, "remote") {
		return nil, fmt.Errorf("%w (pull it, or pass --remote to read it from its registry)", err)
	}
	return loc, err
}

// hasFlag reports whether c defines the flag name.
func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// buildInfo is what the Go toolchain stamped into this binary.
type buildInfo struct {
	Version   string `json:"version"`             // module version, "(devel)" for a plain go build
	Revision  string `json:"revision,omitempty"`  // VCS commit
	Time      string `json:"time,omitempty"`      // VCS commit time
	Modified  bool   `json:"modified,omitempty"`  // built from a work tree with uncommitted changes
	GoVersion string `json:"goVersion,omitempty"` // toolchain
}

func readBuildInfo() buildInfo {
	info := buildInfo{Version: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.GoVersion = bi.GoVersion
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// version is the short version string of this binary.
func version() string { return readBuildInfo().String() }

// String is the module version, else "dev", with the commit when the
// version does not name it, and "+dirty" for a modified work tree.
func (info buildInfo) String() string {
	v := info.Version
	if v == "(devel)" || v == "" {
		v = "dev"
	}
	// Go stamps a pseudo-version (v0.0.0-<time>-<commit>) when it sees the
	// repository; otherwise name the commit if one was recorded.
	if rev := info.Revision[:min(12, len(info.Revision))]; rev != "" && !strings.Contains(v, rev) {
		v += "+" + rev
	}
	if info.Modified && !strings.HasSuffix(v, "+dirty") {
		v += "+dirty"
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print cnstack's version, commit and the sealer format it writes",
		Description: `Prints the module version, the VCS commit and time the binary was built from (with
"modified" when the work tree had uncommitted changes), the Go toolchain, and the image
format versions. -o json prints the same as JSON.`,
		Flags: []cli.Flag{outputFlag("text", "text or json")},
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := noArgs(c); err != nil {
				return err
			}
			info := readBuildInfo()
			switch c.String("output") {
			case "json":
				return writeJSON(c.Writer, struct {
					buildInfo
					BuildFormat  string `json:"buildFormat"`
					SealerFormat string `json:"sealerFormat"`
				}{info, build.FormatVersion, "v0.11.0"})
			case "text":
			default:
				return badOutput(c, "text", "json")
			}
			fmt.Fprintf(c.Writer, "cnstack %s\n", version())
			fmt.Fprintf(c.Writer, "  version:  %s\n", info.Version)
			if info.Revision != "" {
				mod := ""
				if info.Modified {
					mod = " (modified)"
				}
				fmt.Fprintf(c.Writer, "  commit:   %s%s\n", info.Revision, mod)
			}
			if info.Time != "" {
				fmt.Fprintf(c.Writer, "  built:    %s\n", info.Time)
			}
			if info.GoVersion != "" {
				fmt.Fprintf(c.Writer, "  go:       %s\n", info.GoVersion)
			}
			fmt.Fprintf(c.Writer, "  format:   build format %s, sealer image format v0.9–v0.11 (written as %s)\n", build.FormatVersion, "v0.11.0")
			return nil
		},
	}
}

// outputFlag is -o/--output with the given default and help.
func outputFlag(def, usage string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: def, Usage: "output `FORMAT`: " + usage}
}

func badOutput(c *cli.Command, formats ...string) error {
	return usageError(c, "-o %q: want %s", c.String("output"), orList(formats))
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// noArgs fails a command that takes no arguments but got some.
func noArgs(c *cli.Command) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments, got %q", c.Args().Slice())
	}
	return nil
}

// usageError is an error about how a command was called, exiting 2. It
// names the command ("check: …"; run prints the "cnstack: " before it) and
// where its help is.
func usageError(c *cli.Command, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if c.Root() != c {
		msg = strings.TrimPrefix(c.FullName(), c.Root().Name+" ") + ": " + msg
	}
	return cli.Exit(fmt.Sprintf("%s (see '%s --help')", msg, c.FullName()), 2)
}

// plural is "1 image", "2 images".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// orList is "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
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
