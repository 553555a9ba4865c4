package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/transfer"
)

// retagRemote is tag --remote: transfer.Retag in the registry of src and dst.
func retagRemote(ctx context.Context, c *cli.Command, src, dst reference.Reference) error {
	rc, err := remoteClient(c)
	if err != nil {
		return err
	}
	desc, rep, err := transfer.Retag(ctx, rc, src, dst, transfer.Options{Progress: c.ErrWriter})
	if err != nil {
		return fmt.Errorf("tag --remote: %w", err)
	}
	if rep == nil {
		fmt.Fprintf(c.Writer, "tagged %s@%s as %s\n", src.Name(), desc.Digest, dst)
		return nil
	}
	fmt.Fprintf(c.Writer, "tagged %s@%s as %s (%s; %s)\n", src.Name(), desc.Digest, dst, rep.Summary, companions(len(rep.Companions)))
	return nil
}
