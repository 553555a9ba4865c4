package collect

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/helmcmd"
	"github.com/cnstack/cnstack/pkg/imagescan"
)

// DiscoverOptions are the inputs of Discover besides the image root.
type DiscoverOptions struct {
	// Env is the image env (ENV), for rendering *.tmpl files.
	Env map[string]string
	// Extension supplies each app's env (APPENV) for its *.tmpl files, and
	// its APPCMDS: a chart an app installs with helm is rendered with that
	// command's release, namespace and values.
	Extension *clusterimage.Extension
	// ImageList and Ignored are the lines of --image-list and
	// --ignored-image-list.
	ImageList, Ignored []string
	// KubeVersion is the Kubernetes the image installs ("" when unknown).
	KubeVersion string
}

// Discover finds the container images an image root refers to, with where
// each was found, the way Collect does.
func Discover(ctx context.Context, root fs.FS, o DiscoverOptions) (*imagescan.Result, error) {
	opts := imagescan.Options{ImageEnv: o.Env, ExtraImages: o.ImageList, Ignored: o.Ignored, KubeVersion: o.KubeVersion}
	var notes []imagescan.Warning
	if o.Extension != nil {
		for _, a := range o.Extension.Applications {
			dir := clusterimage.AppRoot + "/" + a.Name
			if _, err := fs.Stat(root, dir); err != nil {
				continue // an app whose files this root lacks has nothing to render
			}
			if len(a.Env) > 0 {
				if opts.AppEnv == nil {
					opts.AppEnv = map[string]map[string]string{}
				}
				opts.AppEnv[a.Name] = a.Env
			}
			w, err := chartInstalls(root, dir, a, &opts)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", a.Name, err)
			}
			notes = append(notes, w...)
		}
	}
	res, err := imagescan.Scan(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, notes...)
	return res, nil
}

// chartInstalls reads the helm installs of an app's APPCMDS and gives each
// chart it installs from the app directory its release, namespace and
// values; the values files are then not scanned as manifests.
func chartInstalls(root fs.FS, dir string, a clusterimage.Application, opts *imagescan.Options) ([]imagescan.Warning, error) {
	if len(a.Cmds) == 0 {
		return nil, nil
	}
	installs, err := helmcmd.Parse(strings.Join(a.Cmds, " "))
	if err != nil {
		// The Kubefile linter refuses this for a chart app; for another app
		// its charts (if any) render with their defaults.
		return []imagescan.Warning{{Source: imagescan.Source{File: dir, App: a.Name}, Message: "APPCMDS not read, charts render with their default values: " + err.Error()}}, nil
	}
	for _, in := range installs {
		rel := in.ChartPath()
		if rel == "" {
			continue
		}
		chart := path.Join(dir, rel)
		if _, err := fs.Stat(root, chart); err != nil {
			continue // installed from somewhere else
		}
		vals, err := in.Values(root, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.Command, err)
		}
		if opts.ChartValues == nil {
			opts.ChartValues = map[string]map[string]any{}
			opts.ChartReleases = map[string]imagescan.Release{}
		}
		opts.ChartValues[chart] = vals
		opts.ChartReleases[chart] = imagescan.Release{Name: in.Release, Namespace: in.Namespace}
		for _, f := range in.Files() {
			opts.ValuesFiles = append(opts.ValuesFiles, path.Join(dir, f))
		}
	}
	return nil, nil
}
