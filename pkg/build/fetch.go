package build

import (
	"encoding/json"
	"errors"
	"io/fs"

	"github.com/cnstack/cnstack/pkg/chartrepo"
	"github.com/cnstack/cnstack/pkg/lockfile"
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
		f.OpenOCI = chartrepo.OpenRegistry(b.Remote)
	}
	return &chartrepo.Sources{Charts: f, HTTP: b.HTTP, Lock: lf, Locked: req.Collect.Locked}, nil
}
