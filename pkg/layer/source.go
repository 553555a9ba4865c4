package layer

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CopyEntries lists the entries "COPY src dest" adds, with Docker's rules:
// a directory's contents (not the directory itself) go under dest; a file
// goes to dest, or into it when destIsDir (dest ends in "/", is the root, or
// is a directory in the image already). A top-level symlink source is
// followed; symlinks inside a directory are kept as symlinks.
func CopyEntries(src, dest string, destIsDir bool) ([]Entry, error) {
	fi, err := os.Stat(src) // follows a top-level symlink
	if err != nil {
		return nil, fmt.Errorf("COPY source %s: %w", src, err)
	}
	dest = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(dest)), "/")
	if fi.IsDir() {
		var out []Entry
		if dest != "" {
			out = append(out, Entry{Name: dest, Mode: fs.ModeDir | 0o755})
		}
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == src {
				return nil
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			e, err := entryFor(p, path.Join(dest, filepath.ToSlash(rel)), d)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("COPY source %s: %w", src, err)
		}
		return out, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("COPY source %s: not a regular file or directory (%s)", src, fi.Mode().Type())
	}
	name := dest
	if destIsDir || dest == "" {
		name = path.Join(dest, filepath.Base(src))
	}
	return []Entry{{Name: name, Mode: fi.Mode(), Size: fi.Size(), Source: src}}, nil
}

func entryFor(hostPath, name string, d fs.DirEntry) (Entry, error) {
	switch {
	case d.IsDir():
		return Entry{Name: name, Mode: fs.ModeDir | 0o755}, nil
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(hostPath)
		if err != nil {
			return Entry{}, err
		}
		return Entry{Name: name, Mode: fs.ModeSymlink | 0o777, Linkname: filepath.ToSlash(target)}, nil
	case d.Type().IsRegular():
		fi, err := d.Info()
		if err != nil {
			return Entry{}, err
		}
		return Entry{Name: name, Mode: fi.Mode(), Size: fi.Size(), Source: hostPath}, nil
	default:
		return Entry{}, fmt.Errorf("%s: cannot copy a %s into an image", hostPath, d.Type())
	}
}
