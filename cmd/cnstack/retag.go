package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/transfer"
)

// retagRemote points TARGET at the image SOURCE names in a registry: in
// the same repository a manifest PUT under the new tag; in another
// repository of the same registry a copy whose blobs are mounted, not
// uploaded. Nothing is rebuilt and the digest stays: this is how a nightly
// promotes a verified digest. Cosign signatures and attestations go along.
func retagRemote(ctx context.Context, c *cli.Command, src, dst reference.Reference) error {
	if src.Registry != dst.Registry {
		return fmt.Errorf("tag --remote: %s and %s are in different registries; push or copy across registries", src, dst)
	}
	rc, err := remoteClient(c)
	if err != nil {
		return err
	}
	srcRepo, err := rc.Repository(ctx, src)
	if err != nil {
		return err
	}
	desc, err := srcRepo.Resolve(ctx, src.Identifier())
	if err != nil {
		return fmt.Errorf("resolve %s in %s: %w", src, rc.Endpoint(src.Registry), err)
	}
	if src.Repository == dst.Repository {
		if err := srcRepo.Tag(ctx, desc, dst.Tag); err != nil {
			return fmt.Errorf("tag %s as %s in %s: %w", src, dst.Tag, rc.Endpoint(src.Registry), err)
		}
		fmt.Fprintf(c.Writer, "tagged %s@%s as %s\n", src.Name(), desc.Digest, dst)
		return nil
	}
	dstRepo, err := rc.Repository(ctx, dst)
	if err != nil {
		return err
	}
	rep, err := transfer.Copy(ctx, transfer.Remote(srcRepo, src), transfer.Remote(dstRepo, dst),
		transfer.Options{MountFrom: []string{src.Repository}, Progress: c.ErrWriter})
	if err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	fmt.Fprintf(c.Writer, "tagged %s@%s as %s (%s; %s)\n", src.Name(), desc.Digest, dst, rep.Summary, companions(len(rep.Companions)))
	return nil
}
