package imagescan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/ignore"
)

// Release settings for rendering, as sealer's build renders charts (release
// name "dryrun") but with the namespace `helm install` defaults to.
const (
	releaseName      = "dryrun"
	releaseNamespace = "default"
)

// ChartError is a chart that cannot be loaded or rendered.
type ChartError struct {
	Dir      string // rootfs-relative chart directory or archive
	Chart    string // chart name, if known
	Template string // Helm's template name, if the error names one
	Err      error
}

func (e *ChartError) Error() string {
	s := "chart"
	if e.Chart != "" {
		s += " " + e.Chart
	}
	s += " at " + e.Dir
	if e.Template != "" {
		s += ", template " + e.Template
	}
	return s + ": " + e.Err.Error()
}

func (e *ChartError) Unwrap() error { return e.Err }

// helmTemplateName finds the first template name in a Helm engine error, such
// as "execution error at (web/templates/job.yaml:12:4): ...".
var helmTemplateName = regexp.MustCompile(`[A-Za-z0-9_.\-]+(?:/charts/[A-Za-z0-9_.\-]+)*/templates/[^\s:()"']+`)

// scanChartDir loads a chart directory as Helm's directory loader does, after
// rendering its *.tmpl files with env as `sealer run` does, then renders it.
func (s *scanner) scanChartDir(dir, app string, env map[string]string) error {
	ch, err := loadChartDir(s.fsys, dir, env)
	if err != nil {
		return &ChartError{Dir: dir, Err: fmt.Errorf("load: %w", err)}
	}
	return s.renderChart(ch, dir, app)
}

// scanChartArchive renders a packaged chart (.tgz) that is not a subchart.
// A .tgz that is not a chart at all is a warning, not an error.
func (s *scanner) scanChartArchive(file, app string) error {
	f, err := s.fsys.Open(file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer f.Close()
	ch, err := loader.LoadArchive(f)
	if err != nil {
		s.warn(Source{File: file, App: app}, "", "not scanned: not a loadable Helm chart archive: "+err.Error())
		return nil
	}
	return s.renderChart(ch, file, app)
}

// loadChartDir reads the chart under dir into memory (charts are small;
// Helm needs all of a chart to render it), honouring .helmignore.
func loadChartDir(fsys fs.FS, dir string, env map[string]string) (*chart.Chart, error) {
	rules := ignore.Empty()
	data, err := fs.ReadFile(fsys, dir+"/"+ignore.HelmIgnore)
	switch {
	case err == nil:
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%s: %w", ignore.HelmIgnore, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", ignore.HelmIgnore, err)
	}
	rules.AddDefaults()

	files := map[string][]byte{}
	rendered := map[string][]byte{} // `sealer run` writes these over files of the same name
	err = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		n := strings.TrimPrefix(p, dir+"/")
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// Helm's loader follows links; so do we, for files.
			if info, err = fs.Stat(fsys, p); err != nil {
				return err
			}
		}
		if info.IsDir() {
			if rules.Ignore(n, info) {
				return fs.SkipDir
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: symbolic link to a directory is not supported", n)
			}
			return nil
		}
		isTmpl := strings.HasSuffix(n, tmplSuffix)
		if !isTmpl && rules.Ignore(n, info) {
			return nil
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s", n)
		}
		if info.Size() > loader.MaxDecompressedFileSize {
			return fmt.Errorf("chart file %q is larger than the maximum file size %d", n, loader.MaxDecompressedFileSize)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		if isTmpl {
			// sealer renders the file on disk whatever .helmignore says; Helm
			// then applies .helmignore to both the template and its output.
			out, err := renderEnvTemplate(path.Base(p), data, env)
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			if target := strings.TrimSuffix(n, tmplSuffix); !rules.Ignore(target, info) {
				rendered[target] = out
			}
			if rules.Ignore(n, info) {
				return nil
			}
		}
		files[n] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	for n, data := range rendered {
		files[n] = data
	}
	names := sortedKeys(files)
	buffered := make([]*loader.BufferedFile, len(names))
	for i, n := range names {
		buffered[i] = &loader.BufferedFile{Name: n, Data: files[n]}
	}
	return loader.LoadFiles(buffered)
}

// chartInfo is what the scan reports of one chart in a tree.
type chartInfo struct {
	name, version, appVersion string
}

// renderChart renders ch as `helm install dryrun <where>` would (conditions,
// tags and import-values processed, hooks included) and scans each template's
// output.
func (s *scanner) renderChart(ch *chart.Chart, where, app string) error {
	chartErr := func(tpl string, err error) error {
		if tpl == "" {
			tpl = helmTemplateName.FindString(err.Error())
		}
		return &ChartError{Dir: where, Chart: ch.Name(), Template: tpl, Err: err}
	}
	if err := ch.Validate(); err != nil {
		return chartErr("", fmt.Errorf("invalid chart: %w", err))
	}
	if missing := missingDependencies(ch); len(missing) > 0 {
		// helm install refuses such a chart.
		return chartErr("", fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s", strings.Join(missing, ", ")))
	}

	// Record every chart in the tree before Helm drops disabled subcharts.
	all := map[string]chartInfo{}
	realCharts(ch, ch.Name(), all, func(parent, dep string) {
		s.warn(Source{File: where, Chart: parent, App: app}, "", "subchart dependency "+dep+" is declared but not vendored; its images cannot be found")
	})

	if s.kubeVersion != nil && ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, s.kubeVersion.String()) {
		// helm install refuses it: the pin is wrong for this Kubernetes.
		return chartErr("", fmt.Errorf("chart %s %s requires Kubernetes %s, but the image's Kubernetes is %s; pin a version of the chart that supports it", ch.Name(), ch.Metadata.Version, ch.Metadata.KubeVersion, s.kubeVersion.String()))
	}
	vals := s.chartValues(where)
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return chartErr("", fmt.Errorf("process dependencies: %w", err))
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if s.kubeVersion != nil {
		caps.KubeVersion = *s.kubeVersion
	}
	rel := s.chartRelease(where)
	renderVals, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  1,
		IsInstall: true,
	}, caps)
	if err != nil {
		return chartErr("", fmt.Errorf("values: %w", err))
	}
	out, err := engine.Render(ch, renderVals)
	if err != nil {
		return chartErr("", err)
	}

	// Index the enabled charts by their path in Helm's template names.
	owners := map[string]*chart.Chart{}
	var index func(c *chart.Chart)
	index = func(c *chart.Chart) {
		owners[c.ChartFullPath()] = c
		for _, d := range c.Dependencies() {
			index(d)
		}
	}
	index(ch)
	for _, p := range sortedKeys(owners) {
		c := owners[p]
		info, known := all[p]
		if !known {
			info = chartInfo{name: c.Name(), version: c.Metadata.Version, appVersion: c.Metadata.AppVersion}
		}
		delete(all, p)
		entry := Chart{Name: info.name, Version: info.version, AppVersion: info.appVersion, Dir: where, Path: p, App: app, Enabled: true}
		if c.Name() != info.name {
			entry.Alias = c.Name()
		}
		s.charts = append(s.charts, entry)
	}
	for _, p := range sortedKeys(all) {
		info := all[p]
		s.charts = append(s.charts, Chart{Name: info.name, Version: info.version, AppVersion: info.appVersion, Dir: where, Path: p, App: app})
	}

	for _, tpl := range sortedKeys(out) {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		// NOTES.txt is shown to the user, never applied.
		if path.Base(tpl) == "NOTES.txt" || strings.TrimSpace(out[tpl]) == "" {
			continue
		}
		owner := ownerOf(owners, tpl)
		base := Source{File: where, Template: tpl, App: app}
		if owner != nil {
			base.Chart, base.ChartVersion = owner.Name(), owner.Metadata.Version
		}
		if err := scanStream(strings.NewReader(out[tpl]), func(doc int, h hit) {
			src := base
			src.Document = doc
			s.addHit(h, src)
		}); err != nil {
			return chartErr(tpl, err)
		}
	}
	return nil
}

// chartRelease is the release the chart at where is installed as.
func (s *scanner) chartRelease(where string) Release {
	rel := Release{Name: releaseName, Namespace: releaseNamespace}
	for k, r := range s.opts.ChartReleases {
		if cleanKey(k) == where {
			s.usedReleases[where] = true
			if r.Name != "" {
				rel.Name = r.Name
			}
			if r.Namespace != "" {
				rel.Namespace = r.Namespace
			}
		}
	}
	return rel
}

// chartValues returns a private copy of the caller's values for the chart at
// where (Helm may write into the map), and marks the key used.
func (s *scanner) chartValues(where string) map[string]any {
	for k, v := range s.opts.ChartValues {
		if cleanKey(k) == where {
			s.usedValues[where] = true
			return deepCopyValues(v)
		}
	}
	return map[string]any{}
}

func deepCopyValues(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopyValues(t)
	case chartutil.Values:
		return deepCopyValues(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopyValue(e)
		}
		return out
	default:
		return v
	}
}

// missingDependencies lists the top-level dependencies declared in Chart.yaml
// but not vendored, as `helm install` checks them.
func missingDependencies(ch *chart.Chart) []string {
	var missing []string
	for _, req := range ch.Metadata.Dependencies {
		if req == nil {
			continue
		}
		if !slices.ContainsFunc(ch.Dependencies(), func(d *chart.Chart) bool { return d.Name() == req.Name }) {
			missing = append(missing, req.Name)
		}
	}
	return missing
}

// realCharts records every chart in the tree under the path Helm will give
// it once aliases are applied, with its real (unaliased) name.
// missing is called for each nested dependency that is declared but absent.
func realCharts(c *chart.Chart, p string, out map[string]chartInfo, missing func(parent, dep string)) {
	out[p] = chartInfo{name: c.Name(), version: c.Metadata.Version, appVersion: c.Metadata.AppVersion}
	declared := map[*chart.Chart]bool{}
	for _, req := range c.Metadata.Dependencies {
		if req == nil {
			continue
		}
		i := slices.IndexFunc(c.Dependencies(), func(d *chart.Chart) bool { return d.Name() == req.Name })
		if i < 0 {
			if !c.IsRoot() {
				missing(p, req.Name)
			}
			continue
		}
		child := c.Dependencies()[i]
		declared[child] = true
		name := req.Name
		if req.Alias != "" {
			name = req.Alias
		}
		realCharts(child, p+"/charts/"+name, out, missing)
	}
	for _, child := range c.Dependencies() {
		if !declared[child] {
			realCharts(child, p+"/charts/"+child.Name(), out, missing)
		}
	}
}

// ownerOf returns the chart whose templates directory holds template tpl.
func ownerOf(owners map[string]*chart.Chart, tpl string) *chart.Chart {
	var best *chart.Chart
	bestLen := -1
	for p, c := range owners {
		if strings.HasPrefix(tpl, p+"/templates/") && len(p) > bestLen {
			best, bestLen = c, len(p)
		}
	}
	return best
}
