package build

import (
	"context"
	"encoding/json"

	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/kubefile"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// download fetches a remote source into the build cache.
func (b *Builder) download(ctx context.Context, src kubefile.Source) (string, error) {
	return download.Fetch(ctx, b.HTTP, b.Cache.DownloadDir(), src)
}
