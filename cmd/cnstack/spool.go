package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"
)

// spoolMaxAge is how old a spool directory left by a killed cnstack must
// be before the next spool removes it.
const spoolMaxAge = time.Hour

// newSpool makes a private directory under $CNSTACK_HOME/tmp for a bundle
// on its way from stdin or to stdout: bundles are written atomically and
// read by name, so a pipe is spooled through a file. Spools abandoned by
// killed runs are removed here, so they never pile up.
func newSpool(c *cli.Command) (dir string, cleanup func(), err error) {
	h, err := home(c)
	if err != nil {
		return "", nil, err
	}
	root := filepath.Join(h, "tmp")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", nil, err
	}
	removeStaleSpools(root)
	dir, err = os.MkdirTemp(root, "spool-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

func removeStaleSpools(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "spool-") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		newest := time.Time{}
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil {
				if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
					newest = fi.ModTime()
				}
			}
			return nil
		})
		if time.Since(newest) > spoolMaxAge {
			os.RemoveAll(dir)
		}
	}
}

// spoolStdin copies standard input into a spool file and returns its path.
func spoolStdin(c *cli.Command, dir string) (string, error) {
	if f, ok := c.Root().Reader.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "", usageError(c, "-i -: standard input is a terminal, not a bundle (pipe one in: cnstack load -i - < bundle.tar)")
	}
	path := filepath.Join(dir, "stdin.tar")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, c.Root().Reader); err != nil {
		f.Close()
		return "", fmt.Errorf("read the bundle from stdin: %w", err)
	}
	return path, f.Close()
}

// stdoutIsTerminal reports whether the command writes to a terminal.
func stdoutIsTerminal(c *cli.Command) bool {
	f, ok := c.Writer.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
