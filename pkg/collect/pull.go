package collect

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/regclient"
)

// pullBlob brings one blob into the store through the one pull path:
// pkg/regclient's resumable reader into the store's verifying writer (which
// resumes a partial blob an earlier run left, and refuses content that
// does not match desc with store.ErrDigestMismatch). onBytes hears of every
// byte that crosses the network.
func (c *Collector) pullBlob(ctx context.Context, repo *regclient.Repository, desc ocispec.Descriptor, onBytes func(int64)) error {
	rc := repo.OpenBlob(ctx, desc)
	defer rc.Close()
	return c.Store.Push(ctx, desc, &countingReader{ReadSeeker: rc, onBytes: onBytes})
}

// countingReader reports the bytes read and keeps Seek, so the store can
// resume a partial blob with a Range request.
type countingReader struct {
	io.ReadSeeker
	onBytes func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	if n > 0 {
		r.onBytes(int64(n))
	}
	return n, err
}
