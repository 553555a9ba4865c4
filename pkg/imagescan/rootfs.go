package imagescan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Rootfs paths sealer gives meaning to (sealer-format.md §2.5, §3.1).
const (
	manifestsDir  = "manifests"
	imageListFile = "manifests/imageList"
	chartsDir     = "charts"
	appsDir       = "application/apps"
)

// treeMode says what a walk of a rootfs directory collects.
type treeMode struct {
	manifests bool // scan *.yaml, *.yml, *.json and rendered *.tmpl files
	charts    bool // render chart directories and chart archives
}

func (s *scanner) scanImageList() error {
	f, err := s.fsys.Open(imageListFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", imageListFile, err)
	}
	defer f.Close()
	entries, err := readImageList(f)
	if err != nil {
		return fmt.Errorf("%s: %w", imageListFile, err)
	}
	for _, e := range entries {
		s.add(e.ref, Source{File: imageListFile, Line: e.line})
	}
	return nil
}

func (s *scanner) scanManifests() error {
	return s.walkTree(manifestsDir, "", s.opts.ImageEnv, treeMode{manifests: true})
}

func (s *scanner) scanCharts() error {
	return s.walkTree(chartsDir, "", s.opts.ImageEnv, treeMode{charts: true})
}

// scanApps scans each application/apps/<name>/: a chart directory is rendered
// as a chart (sealer's helm app); otherwise its manifests are scanned, and any
// chart inside it is rendered too (an app launched with APPCMDS may
// `helm install` it).
func (s *scanner) scanApps() error {
	entries, err := fs.ReadDir(s.fsys, appsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", appsDir, err)
	}
	for _, e := range entries {
		dir := appsDir + "/" + e.Name()
		info, err := s.stat(dir, e)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			continue
		}
		app := e.Name()
		s.usedApps[app] = true
		env := appEnv(s.opts.AppEnv[app], s.opts.ImageEnv)
		if err := s.walkTree(dir, app, env, treeMode{manifests: true, charts: true}); err != nil {
			return err
		}
	}
	return nil
}

// walkTree walks dir in lexical order. Chart directories are rendered whole
// and not descended into, so their raw templates are never parsed as YAML.
func (s *scanner) walkTree(dir, app string, env map[string]string, mode treeMode) error {
	return fs.WalkDir(s.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if err := s.ctx.Err(); err != nil {
			return err
		}
		info, err := s.stat(p, d)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if d.Type()&fs.ModeSymlink != 0 {
				s.warn(Source{File: p, App: app}, "", "symbolic link to a directory not followed")
				return nil
			}
			if mode.charts && s.isChartDir(p) {
				if err := s.scanChartDir(p, app, env); err != nil {
					return err
				}
				return fs.SkipDir
			}
			return nil
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		name := d.Name()
		switch {
		case mode.charts && isChartArchive(name):
			return s.scanChartArchive(p, app)
		case s.valuesFiles[p] || s.valuesFiles[strings.TrimSuffix(p, tmplSuffix)]:
			// Chart values name images in the chart's terms; the chart's
			// rendering with them is what counts.
			return nil
		case !mode.manifests || p == imageListFile:
			return nil
		case strings.HasSuffix(name, tmplSuffix):
			if p == imageListFile+tmplSuffix {
				// Rendered at run time, after the build read manifests/imageList.
				return nil
			}
			return s.scanTemplateFile(p, app, env)
		case isManifestName(name):
			if s.exists(p + tmplSuffix) {
				// `sealer run` overwrites this file with the rendered template.
				return nil
			}
			return s.scanManifestFile(p, app)
		}
		return nil
	})
}

func isManifestName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func isChartArchive(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".tar.gz")
}

func (s *scanner) isChartDir(dir string) bool {
	info, err := fs.Stat(s.fsys, dir+"/Chart.yaml")
	return err == nil && info.Mode().IsRegular()
}

func (s *scanner) exists(p string) bool {
	_, err := fs.Stat(s.fsys, p)
	return err == nil
}

// stat returns the FileInfo of p, following a symbolic link.
func (s *scanner) stat(p string, d fs.DirEntry) (fs.FileInfo, error) {
	if d.Type()&fs.ModeSymlink != 0 {
		info, err := fs.Stat(s.fsys, p)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", p, err)
		}
		return info, nil
	}
	info, err := d.Info()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	return info, nil
}

// scanManifestFile streams one YAML/JSON file, a document at a time.
func (s *scanner) scanManifestFile(p, app string) error {
	f, err := s.fsys.Open(p)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	base := Source{File: p, App: app}
	if err := scanStream(f, func(doc int, h hit) {
		src := base
		src.Document = doc
		s.addHit(h, src)
	}); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// scanTemplateFile renders a *.tmpl file as `sealer run` would and scans the result.
func (s *scanner) scanTemplateFile(p, app string, env map[string]string) error {
	text, err := fs.ReadFile(s.fsys, p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	out, err := renderEnvTemplate(path.Base(p), text, env)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	base := Source{File: p, App: app}
	return scanStream(bytes.NewReader(out), func(doc int, h hit) {
		src := base
		src.Document = doc
		s.addHit(h, src)
	})
}

// cleanKey makes a caller-supplied rootfs path comparable with walk paths.
func cleanKey(p string) string {
	p = path.Clean(strings.TrimPrefix(p, "/"))
	return strings.TrimPrefix(p, "./")
}
