package build

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"

	"github.com/cnstack/cnstack/pkg/chartrepo"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/reference"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// sources fetches the remote sources of req into the build cache: charts
// by the pins of its lock file (refused unpinned with --locked; resolved
// afresh otherwise), anything else by its checksum.
func (b *Builder) sources(req *Request) (*chartrepo.Sources, error) {
	var lf *lockfile.File
	if p := req.Collect.LockFile; p != "" {
		var err error
		if lf, err = lockfile.Read(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	f := &chartrepo.Fetcher{HTTP: b.HTTP, CacheDir: b.Cache.DownloadDir()}
	if b.Remote != nil {
		f.OpenOCI = func(ctx context.Context, r reference.Reference) (chartrepo.Repository, error) {
			repo, err := b.Remote.Repository(ctx, r)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return repo, nil
		}
	}
	return &chartrepo.Sources{Charts: f, HTTP: b.HTTP, Lock: lf, Locked: req.Collect.Locked}, nil
}
