package bundle

import (
	"context"
	"errors"
	"fmt"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/transfer"
)

// Relocated is one image Relocate pushed.
type Relocated struct {
	Source, Destination reference.Reference
	Report              *transfer.Report
}

// Relocate pushes the loaded images (not their companions: each image's
// signatures and attestations travel with it) from the store into a private
// registry under prefix ("10.0.0.5:5000/mirror": docker.io/team/app:v1
// becomes 10.0.0.5:5000/mirror/team/app:v1). It tries every image and
// returns those pushed, with every failure joined.
func Relocate(ctx context.Context, s *store.Store, rc *regclient.Client, images []LoadedImage, prefix string, opts transfer.Options) ([]Relocated, error) {
	var done []Relocated
	var errs []error
	for _, im := range images {
		if im.Companion || im.Ref == "" {
			continue
		}
		src, err := reference.Parse(im.Ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dst, err := src.Relocate(prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep, err := transfer.Push(ctx, s, rc, src, dst, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("relocate %s to %s: %w", src, dst, err))
			continue
		}
		done = append(done, Relocated{Source: src, Destination: dst, Report: rep})
	}
	return done, errors.Join(errs...)
}
