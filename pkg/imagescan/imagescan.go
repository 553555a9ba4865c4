package imagescan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/cnstack/cnstack/pkg/reference"
)

// Provenance file names for references that do not come from the rootfs.
const (
	SourceImageListFlag   = "--image-list"
	SourceIgnoredListFlag = "--ignored-image-list"
)

// Options tunes a scan. The zero value scans with default chart values and an
// empty env.
type Options struct {
	// ImageEnv is the image/cluster env used to render *.tmpl files.
	ImageEnv map[string]string
	// AppEnv is the per-app env (APPENV) for application/apps/<name>/**/*.tmpl;
	// it wins over ImageEnv for the keys it sets, as in sealer.
	AppEnv map[string]map[string]string
	// ChartValues are extra values per chart, keyed by the chart's
	// rootfs-relative directory (or .tgz file), merged over its defaults.
	ChartValues map[string]map[string]any
	// ChartReleases name the release a chart is installed as (and its
	// namespace), keyed like ChartValues; a chart without one renders as
	// release "dryrun" in namespace "default", as sealer's build does.
	ChartReleases map[string]Release
	// ValuesFiles are rootfs-relative files that are chart values (read
	// by a helm install), not manifests: they are not scanned for images,
	// which they name only in the chart's own terms.
	ValuesFiles []string
	// ExtraImages are the lines of the --image-list file, as read (see
	// ReadListFile): they are parsed as manifests/imageList is (comments,
	// blank lines, quotes), and their provenance is SourceImageListFlag
	// with the file's line number.
	ExtraImages []string
	// Ignored are the lines of the --ignored-image-list file, parsed alike;
	// images equal to one of them after normalization are moved to
	// Result.Ignored.
	Ignored []string
	// KubeVersion is .Capabilities.KubeVersion for charts (e.g. "v1.28.2");
	// empty means Helm's default. When set, a chart whose Chart.yaml
	// kubeVersion excludes it is an error, as `helm install` refuses it.
	KubeVersion string
}

// Release is how a chart is installed: its release name and namespace.
type Release struct {
	Name      string
	Namespace string
}

// Source is one place an image reference was found.
type Source struct {
	// File is rootfs-relative: the manifest, the *.tmpl that was rendered, the
	// image list, or the top-level chart's directory or .tgz for chart output.
	// SourceImageListFlag for Options.ExtraImages.
	File string `json:"file"`
	// Document is the 0-based index of the YAML document in File (or in the
	// template's rendered output), counting documents with content only.
	Document int `json:"document"`
	// Path is the YAML path of the field, e.g. spec.template.spec.containers[0].image.
	Path string `json:"path,omitempty"`
	// Chart and ChartVersion name the (sub)chart whose template produced the reference.
	Chart        string `json:"chart,omitempty"`
	ChartVersion string `json:"chartVersion,omitempty"`
	// Template is Helm's name for the template, e.g. web/charts/cache/templates/sts.yaml.
	Template string `json:"template,omitempty"`
	// App is set for everything under application/apps/<App>/.
	App string `json:"app,omitempty"`
	// Line is 1-based: in File for plain files and image lists, in the rendered
	// output for *.tmpl files and chart templates.
	Line int `json:"line,omitempty"`
}

// String formats a source for humans, e.g. for `cnstack images why`.
func (s Source) String() string {
	var b strings.Builder
	b.WriteString(s.File)
	if s.Line > 0 && s.Template == "" && !strings.HasSuffix(s.File, tmplSuffix) {
		b.WriteString(":" + strconv.Itoa(s.Line))
	}
	var attrs []string
	if s.App != "" {
		attrs = append(attrs, "app "+s.App)
	}
	if s.Chart != "" {
		attrs = append(attrs, "chart "+s.Chart+" "+s.ChartVersion)
	}
	if s.Template != "" {
		attrs = append(attrs, "template "+s.Template)
	}
	if s.Path != "" {
		attrs = append(attrs, "document "+strconv.Itoa(s.Document))
		attrs = append(attrs, s.Path)
		if s.Line > 0 && (s.Template != "" || strings.HasSuffix(s.File, tmplSuffix)) {
			attrs = append(attrs, "rendered line "+strconv.Itoa(s.Line))
		}
	}
	if len(attrs) > 0 {
		b.WriteString(" (" + strings.Join(attrs, ", ") + ")")
	}
	return b.String()
}

// Image is one normalized reference with every place it was found.
type Image struct {
	Ref string `json:"ref"`
	// AppName is set when every source is under the same application/apps/<name>.
	AppName string   `json:"appName,omitempty"`
	Sources []Source `json:"sources"`
}

// Warning is a reference (or a file) that could not be used, with where it was.
type Warning struct {
	Source  Source `json:"source"`
	Ref     string `json:"ref,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	if w.Ref != "" {
		return fmt.Sprintf("%s: %q: %s", w.Source, w.Ref, w.Message)
	}
	return fmt.Sprintf("%s: %s", w.Source, w.Message)
}

// Chart is a Helm chart found in the rootfs, or one of its subcharts.
type Chart struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion,omitempty"`
	// Alias is the dependency alias the parent chart gives this subchart.
	Alias string `json:"alias,omitempty"`
	// Dir is the rootfs-relative directory (or .tgz) of the top-level chart.
	Dir string `json:"dir"`
	// Path is Helm's path of the chart in the tree, e.g. web/charts/cache.
	Path string `json:"path"`
	App  string `json:"app,omitempty"`
	// Enabled is false for subcharts switched off by a condition or tags.
	Enabled bool `json:"enabled"`
}

// Result is what a scan found.
type Result struct {
	Images []Image `json:"images"` // sorted by Ref
	// Ignored are images removed by Options.Ignored, with their sources.
	Ignored  []Image   `json:"ignored,omitempty"`
	Warnings []Warning `json:"warnings,omitempty"`
	Charts   []Chart   `json:"charts,omitempty"` // sorted by Dir, then Path
}

// ErrNotFound is returned by Result.Lookup for a reference the scan did not find.
var ErrNotFound = errors.New("image not found")

// Lookup finds ref (normalized first) among the images, then among the
// ignored ones; ignored reports which.
func (r *Result) Lookup(ref string) (img Image, ignored bool, err error) {
	norm, err := reference.Normalize(ref)
	if err != nil {
		return Image{}, false, err
	}
	for _, list := range []struct {
		images  []Image
		ignored bool
	}{{r.Images, false}, {r.Ignored, true}} {
		if i, ok := slices.BinarySearchFunc(list.images, norm, func(im Image, ref string) int { return strings.Compare(im.Ref, ref) }); ok {
			return list.images[i], list.ignored, nil
		}
	}
	return Image{}, false, fmt.Errorf("%s: %w", norm, ErrNotFound)
}

// SameRepository lists the images found whose repository is ref's (any
// tag or digest): what a miss of Lookup may have meant.
func (r *Result) SameRepository(ref string) []string {
	repo := ref
	if i := strings.LastIndexAny(ref, ":@"); i > strings.LastIndex(ref, "/") {
		repo = ref[:i]
	}
	var out []string
	for _, im := range r.Images {
		if strings.HasPrefix(im.Ref, repo+":") || strings.HasPrefix(im.Ref, repo+"@") {
			out = append(out, im.Ref)
		}
	}
	return out
}

// Refs returns the normalized references of the images, sorted.
func (r *Result) Refs() []string {
	refs := make([]string, len(r.Images))
	for i, im := range r.Images {
		refs[i] = im.Ref
	}
	return refs
}

// Scan finds the images a cluster image's rootfs refers to. root is the
// merged image root (the directory that holds manifests/, charts/, …).
// Unusable references become warnings; a chart or *.tmpl that fails to
// render, an unreadable file, or a bad --image-list/--ignored-image-list
// entry is an error.
func Scan(ctx context.Context, root fs.FS, opts Options) (*Result, error) {
	s := &scanner{
		ctx:          ctx,
		fsys:         root,
		opts:         opts,
		images:       map[string]*Image{},
		usedValues:   map[string]bool{},
		usedReleases: map[string]bool{},
		valuesFiles:  map[string]bool{},
		usedApps:     map[string]bool{},
	}
	for _, f := range opts.ValuesFiles {
		s.valuesFiles[cleanKey(f)] = true
	}
	if opts.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(opts.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", opts.KubeVersion, err)
		}
		s.kubeVersion = kv
	}
	for _, step := range []func() error{s.scanImageList, s.scanManifests, s.scanCharts, s.scanApps, s.addExtraImages} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, fmt.Errorf("scan for container images: %w", err)
		}
	}
	res, err := s.result()
	if err != nil {
		return nil, fmt.Errorf("scan for container images: %w", err)
	}
	return res, nil
}

// scanner holds the state of one Scan.
type scanner struct {
	ctx         context.Context
	fsys        fs.FS
	opts        Options
	kubeVersion *chartutil.KubeVersion

	images       map[string]*Image
	warnings     []Warning
	charts       []Chart
	usedValues   map[string]bool // ChartValues keys that matched a chart
	usedReleases map[string]bool // ChartReleases keys that matched a chart
	valuesFiles  map[string]bool // Options.ValuesFiles, cleaned
	usedApps     map[string]bool // AppEnv keys that matched an app
}

func (s *scanner) warn(src Source, ref, msg string) {
	s.warnings = append(s.warnings, Warning{Source: src, Ref: ref, Message: msg})
}

// injectedPlaceholder is the image Istio's gateway chart writes for its
// proxy, which istiod's sidecar injector replaces when the pod is created:
// no registry serves it, so it is no reference to collect.
const injectedPlaceholder = "auto"

// add records raw (as found) at src, or a warning if it is not a reference.
func (s *scanner) add(raw string, src Source) {
	if raw == injectedPlaceholder {
		s.warn(src, raw, `"image: auto" is filled in by a mutating webhook (Istio's sidecar injector) when the pod is created; list the image it injects (istio/proxyv2) in the app's files or manifests/imageList`)
		return
	}
	ref, err := normalizeFound(raw)
	if err != nil {
		s.warn(src, raw, err.Error()+missingEnvHint(raw))
		return
	}
	img := s.images[ref]
	if img == nil {
		img = &Image{Ref: ref}
		s.images[ref] = img
	}
	img.Sources = append(img.Sources, src)
}

func (s *scanner) addHit(h hit, src Source) {
	src.Path, src.Line = h.path, h.line
	if h.problem != "" {
		s.warn(src, h.ref, h.problem+missingEnvHint(h.ref))
		return
	}
	s.add(h.ref, src)
}

func (s *scanner) addExtraImages() error {
	for i, line := range s.opts.ExtraImages {
		raw := imageListLine(line)
		if raw == "" {
			continue
		}
		src := Source{File: SourceImageListFlag, Line: i + 1}
		if _, err := normalizeFound(raw); err != nil {
			return fmt.Errorf("%s line %d: %w", SourceImageListFlag, i+1, err)
		}
		s.add(raw, src)
	}
	return nil
}

// result applies the ignore list and sorts everything.
func (s *scanner) result() (*Result, error) {
	ignored := map[string]int{} // normalized -> line number
	var ignoredOrder []string
	for i, line := range s.opts.Ignored {
		raw := imageListLine(line)
		if raw == "" {
			continue
		}
		ref, err := normalizeFound(raw)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", SourceIgnoredListFlag, i+1, err)
		}
		if _, dup := ignored[ref]; !dup {
			ignored[ref] = i + 1
			ignoredOrder = append(ignoredOrder, ref)
		}
	}

	res := &Result{Images: []Image{}}
	refs := make([]string, 0, len(s.images))
	for ref := range s.images {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		img := s.images[ref]
		img.Sources = sortSources(img.Sources)
		img.AppName = commonApp(img.Sources)
		if _, ok := ignored[ref]; ok {
			res.Ignored = append(res.Ignored, *img)
			continue
		}
		res.Images = append(res.Images, *img)
	}
	for _, ref := range ignoredOrder {
		if _, found := s.images[ref]; !found {
			s.warn(Source{File: SourceIgnoredListFlag, Line: ignored[ref]}, ref, "ignored image matches no image found")
		}
	}
	for _, key := range sortedKeys(s.opts.ChartValues) {
		if !s.usedValues[cleanKey(key)] {
			s.warn(Source{File: key}, "", "chart values given for a path that holds no chart")
		}
	}
	for _, key := range sortedKeys(s.opts.ChartReleases) {
		if !s.usedReleases[cleanKey(key)] {
			s.warn(Source{File: key}, "", "a chart release given for a path that holds no chart")
		}
	}
	for _, app := range sortedKeys(s.opts.AppEnv) {
		if !s.usedApps[app] {
			s.warn(Source{File: appsDir + "/" + app}, "", "app env given for an app that does not exist")
		}
	}
	res.Warnings = s.warnings
	res.Charts = s.charts
	slices.SortStableFunc(res.Charts, func(a, b Chart) int {
		return cmp.Or(strings.Compare(a.Dir, b.Dir), strings.Compare(a.Path, b.Path))
	})
	return res, nil
}

// sortSources orders sources by file, template, document, line and path, and
// drops exact duplicates (YAML merge keys can reach a field twice).
func sortSources(srcs []Source) []Source {
	slices.SortFunc(srcs, func(a, b Source) int {
		return cmp.Or(
			strings.Compare(a.File, b.File),
			strings.Compare(a.Template, b.Template),
			cmp.Compare(a.Document, b.Document),
			cmp.Compare(a.Line, b.Line),
			strings.Compare(a.Path, b.Path),
			strings.Compare(a.Chart, b.Chart),
			strings.Compare(a.ChartVersion, b.ChartVersion),
			strings.Compare(a.App, b.App),
		)
	})
	return slices.Compact(srcs)
}

func commonApp(srcs []Source) string {
	if len(srcs) == 0 {
		return ""
	}
	app := srcs[0].App
	for _, s := range srcs[1:] {
		if s.App != app {
			return ""
		}
	}
	return app
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
