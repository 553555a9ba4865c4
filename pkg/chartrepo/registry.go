package chartrepo

import (
	"context"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
)

// OpenRegistry is a Fetcher.OpenOCI that reads OCI charts through rc: its
// credentials, mirrors, retries and offline guard.
func OpenRegistry(rc *regclient.Client) func(context.Context, reference.Reference) (Repository, error) {
	return func(ctx context.Context, r reference.Reference) (Repository, error) {
		repo, err := rc.Repository(ctx, r)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return repo, nil
	}
}
