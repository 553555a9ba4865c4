package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/cnstack/cnstack/internal/spool"
)

// newSpool makes a private directory under $CNSTACK_HOME/tmp for a bundle
// on its way from stdin or to stdout (see internal/spool).
func newSpool(c *cli.Command) (dir string, cleanup func(), err error) {
	h, err := home(c)
	if err != nil {
		return "", nil, err
	}
	return spool.New(filepath.Join(h, "tmp"))
}

// spoolStdin copies standard input into a spool file and returns its path.
func spoolStdin(c *cli.Command, dir string) (string, error) {
	if f, ok := c.Root().Reader.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "", usageError(c, "-i -: standard input is a terminal, not a bundle (pipe one in: cnstack load -i - < bundle.tar)")
	}
	path, err := spool.Copy(dir, "stdin.tar", c.Root().Reader)
	if err != nil {
		return "", fmt.Errorf("read the bundle from stdin: %w", err)
	}
	return path, nil
}

// stdoutIsTerminal reports whether the command writes to a terminal.
func stdoutIsTerminal(c *cli.Command) bool {
	f, ok := c.Writer.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
