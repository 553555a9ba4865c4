package kubefile

import (
	"io/fs"
	"path"
	"strings"
)

// App type detection follows sealer v0.11 (build/kubefile/parser/utils.go)
// rule for rule, reading the build context through an fs.FS:
//
//   - helm: a directory source holding Chart.yaml, values.yaml and templates
//     at its top; or, across all sources, file names ending in Chart.yaml,
//     values.yaml and templates (plain files of directory sources count).
//   - otherwise every file (directories walked recursively; remote sources by
//     their URL's file name) must end in .sh for shell or .yaml/.yml for
//     kube; any other file, or a mix, gives "".

func detectAppType(ctx fs.FS, name string, srcs []appSource) (string, []string, error) {
	helm, err := isHelm(ctx, srcs)
	if err != nil {
		return "", nil, err
	}
	if helm {
		return AppTypeHelm, []string{name}, nil
	}
	var shell, kube bool
	visit := func(fileName string) bool {
		switch fileType(fileName) {
		case AppTypeShell:
			shell = true
		case AppTypeKube:
			kube = true
		default:
			return false
		}
		return true
	}
	for _, s := range srcs {
		if s.IsRemote() {
			if !visit(s.fileName) {
				return AppTypeUnknown, nil, nil
			}
			continue
		}
		st, err := fs.Stat(ctx, s.Path)
		if err != nil {
			return "", nil, err
		}
		if !st.IsDir() {
			if !visit(path.Base(s.Path)) {
				return AppTypeUnknown, nil, nil
			}
			continue
		}
		unknown := false
		err = fs.WalkDir(ctx, s.Path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !visit(d.Name()) {
				unknown = true
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			return "", nil, err
		}
		if unknown {
			return AppTypeUnknown, nil, nil
		}
	}
	var typ string
	switch {
	case shell && !kube:
		typ = AppTypeShell
	case kube && !shell:
		typ = AppTypeKube
	default:
		return AppTypeUnknown, nil, nil
	}
	files, err := appFiles(ctx, typ, srcs)
	return typ, files, err
}

func fileType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".sh":
		return AppTypeShell
	case ".yaml", ".yml":
		return AppTypeKube
	}
	return AppTypeUnknown
}

func isHelm(ctx fs.FS, srcs []appSource) (bool, error) {
	mask := 0
	note := func(name string) {
		switch {
		case strings.HasSuffix(name, "Chart.yaml"):
			mask |= 1
		case strings.HasSuffix(name, "values.yaml"):
			mask |= 2
		case strings.HasSuffix(name, "templates"):
			mask |= 4
		}
	}
	for _, s := range srcs {
		if s.IsRemote() {
			note(s.fileName)
			continue
		}
		st, err := fs.Stat(ctx, s.Path)
		if err != nil {
			return false, err
		}
		if !st.IsDir() {
			note(s.Path)
			continue
		}
		if chartAt(ctx, s.Path) {
			return true, nil
		}
		entries, err := fs.ReadDir(ctx, s.Path)
		if err != nil {
			return false, err
		}
		for _, ent := range entries {
			if !ent.IsDir() {
				note(ent.Name())
			}
		}
	}
	return mask == 7, nil
}

func chartAt(ctx fs.FS, dir string) bool {
	for _, f := range []string{"Chart.yaml", "values.yaml", "templates"} {
		if _, err := fs.Stat(ctx, path.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// appFiles lists launch files as sealer does: a file source by its base name;
// a directory's files by their path with the source's prefix trimmed (which
// keeps a leading "/" unless the source was written with a trailing "/").
// A shell app lists only its first source.
func appFiles(ctx fs.FS, typ string, srcs []appSource) ([]string, error) {
	var files []string
	for _, s := range srcs {
		if s.IsRemote() {
			files = append(files, s.fileName)
		} else {
			st, err := fs.Stat(ctx, s.Path)
			if err != nil {
				return nil, err
			}
			if !st.IsDir() {
				files = append(files, path.Base(s.Path))
			} else {
				prefix := s.Path
				if strings.HasSuffix(s.written, "/") && prefix != "." {
					prefix += "/"
				}
				err := fs.WalkDir(ctx, s.Path, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					if s.Path == "." {
						files = append(files, p)
					} else {
						files = append(files, strings.TrimPrefix(p, prefix))
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
			}
		}
		if typ == AppTypeShell {
			break
		}
	}
	return files, nil
}

// templatesWarning spots a chart split into separate sources: a directory
// source is copied by its contents, so "templates" would lose its name.
func templatesWarning(ctx fs.FS, srcs []appSource) string {
	if ctx == nil || len(srcs) < 2 {
		return ""
	}
	for _, s := range srcs {
		if s.IsRemote() || path.Base(s.Path) != "templates" {
			continue
		}
		if st, err := fs.Stat(ctx, s.Path); err == nil && st.IsDir() {
			return "the directory source " + quote(s.Path) + " is copied by its contents, so the chart's templates/ directory would not exist in the app; declare the chart's directory as the single source"
		}
	}
	return ""
}
