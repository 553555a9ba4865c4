package vmimage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MirrorEnv overrides the Debian mirror that images are bootstrapped from.
const MirrorEnv = "CNSTACK_DEBIAN_MIRROR"

// MirrorFromAPT returns the first enabled "deb" source of the machine's apt
// configuration under root ("/" on a real system) that serves suite, so an image
// is built from the same mirror the machine already trusts and reaches. It reads
// sources.list and sources.list.d/*.list (one-line style) and *.sources (deb822).
func MirrorFromAPT(root, suite string) (string, error) {
	dir := filepath.Join(root, "etc", "apt")
	files := []string{filepath.Join(dir, "sources.list")}
	more, err := filepath.Glob(filepath.Join(dir, "sources.list.d", "*"))
	if err != nil {
		return "", fmt.Errorf("find apt sources: %w", err)
	}
	sort.Strings(more)
	files = append(files, more...)
	for _, f := range files {
		var parse func([]byte, string) string
		switch {
		case strings.HasSuffix(f, ".sources"):
			parse = mirrorFromDeb822
		case strings.HasSuffix(f, ".list"):
			parse = mirrorFromOneLine
		default:
			continue // *.disabled, *.save, editor backups
		}
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read apt sources: %w", err)
		}
		if m := parse(data, suite); m != "" {
			return strings.TrimRight(m, "/"), nil
		}
	}
	return "", fmt.Errorf("no apt source under %s serves suite %q; set %s or pass a mirror", dir, suite, MirrorEnv)
}

func mirrorFromOneLine(data []byte, suite string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options: [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite {
			return f[0]
		}
	}
	return ""
}

func mirrorFromDeb822(data []byte, suite string) string {
	for _, para := range bytes.Split(data, []byte("\n\n")) {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(string(para), "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if strings.EqualFold(fields["enabled"], "no") || !contains(strings.Fields(fields["types"]), "deb") {
			continue
		}
		if !contains(strings.Fields(fields["suites"]), suite) {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return uris[0]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
