package collect

import (
	"context"
	"io/fs"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/imagescan"
)

// DiscoverOptions are the inputs of Discover besides the image root.
type DiscoverOptions struct {
	// Env is the image env (ENV), for rendering *.tmpl files.
	Env map[string]string
	// Extension supplies each app's env (APPENV) for its *.tmpl files.
	Extension *clusterimage.Extension
	// ImageList and Ignored are the lines of --image-list and
	// --ignored-image-list.
	ImageList, Ignored []string
}

// Discover finds the container images an image root refers to, with where
// each was found, the way Collect does.
func Discover(ctx context.Context, root fs.FS, o DiscoverOptions) (*imagescan.Result, error) {
	opts := imagescan.Options{ImageEnv: o.Env, ExtraImages: o.ImageList, Ignored: o.Ignored}
	if o.Extension != nil {
		for _, a := range o.Extension.Applications {
			if len(a.Env) == 0 {
				continue
			}
			if _, err := fs.Stat(root, clusterimage.AppRoot+"/"+a.Name); err != nil {
				continue // an app whose files this root lacks has nothing to render
			}
			if opts.AppEnv == nil {
				opts.AppEnv = map[string]map[string]string{}
			}
			opts.AppEnv[a.Name] = a.Env
		}
	}
	return imagescan.Scan(ctx, root, opts)
}
