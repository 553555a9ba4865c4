// Package helmcmd reads the helm command lines an app's APPCMDS run. Sealer
// joins an app's APPCMDS with spaces and runs the line with bash in the app
// directory on master0; a chart app (an APP whose sources include a chart,
// pkg/chartref) installs its chart there with `helm install` or
// `helm upgrade --install`.
//
// Parse finds each such install: the release, the chart (a path in the app
// directory), the namespace and the values (-f files, --set and friends).
// Image discovery renders the chart with exactly those values and that
// namespace, so the images it finds are the ones the install will ask for;
// the Kubefile linter checks that a chart app installs the chart it carries.
//
// The shell is read as far as an APPCMDS line needs: words with '…', "…"
// and \ quoting, and the operators &&, ||, ;, | and newlines between
// commands. Variables and substitutions are not expanded: a helm command
// whose chart or values depend on one cannot be read, and says so.
package helmcmd

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// Install is one `helm install` or `helm upgrade --install` of a command line.
type Install struct {
	// Command is the helm command as written (words joined by spaces).
	Command string
	// Release is the release name ("" with --generate-name).
	Release string
	// Chart is the chart argument as written ("istiod.tgz", "./istiod").
	Chart     string
	Namespace string // -n/--namespace; "" means helm's default ("default")
	// ValuesFiles are the -f/--values files in order, as written.
	ValuesFiles []string
	// Set, SetString, SetJSON, SetFile and SetLiteral are the --set…
	// arguments in order.
	Set, SetString, SetJSON, SetFile, SetLiteral []string
	// KubeVersion is --kube-version (helm template only; "" otherwise).
	KubeVersion string
}

// ChartPath is the chart argument as a clean path relative to the app
// directory ("./istiod.tgz" → "istiod.tgz"), or "" when it is not one (an
// absolute path, a path out of the directory, a repo/chart name or a URL).
func (in Install) ChartPath() string {
	c := in.Chart
	if c == "" || strings.HasPrefix(c, "/") || strings.Contains(c, "://") || strings.Contains(c, "$") {
		return ""
	}
	p := path.Clean(c)
	if p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return ""
	}
	return p
}

// flags of helm install/upgrade/template that take a value (the global
// flags included). A flag not listed here and not in boolFlags is refused:
// whether it consumes the next word decides which word is the chart.
var valueFlags = map[string]bool{
	"-n": true, "--namespace": true, "-f": true, "--values": true,
	"--set": true, "--set-string": true, "--set-file": true, "--set-json": true, "--set-literal": true,
	"--timeout": true, "--version": true, "--description": true, "--post-renderer": true,
	"--post-renderer-args": true, "--repo": true, "--username": true, "--password": true,
	"--ca-file": true, "--cert-file": true, "--key-file": true, "--keyring": true, "--labels": true,
	"-l": true, "-o": true, "--output": true, "--history-max": true, "--kube-context": true,
	"--kubeconfig": true, "--registry-config": true, "--repository-cache": true,
	"--repository-config": true, "--burst-limit": true, "--qps": true, "--kube-apiserver": true,
	"--kube-as-user": true, "--kube-as-group": true, "--kube-ca-file": true, "--kube-token": true,
	"--kube-tls-server-name": true, "--name-template": true, "--kube-version": true,
	"-a": true, "--api-versions": true, "-s": true, "--show-only": true, "--output-dir": true,
	"--release-name": true,
}

var boolFlags = map[string]bool{
	"-i": true, "--install": true, "--create-namespace": true, "--wait": true, "--wait-for-jobs": true,
	"--atomic": true, "--debug": true, "--dry-run": true, "--devel": true, "--force": true,
	"--no-hooks": true, "--render-subchart-notes": true, "--replace": true, "--reset-values": true,
	"--reuse-values": true, "--reset-then-reuse-values": true, "--skip-crds": true,
	"--dependency-update": true, "--disable-openapi-validation": true, "--enable-dns": true,
	"--insecure-skip-tls-verify": true, "--plain-http": true, "--pass-credentials": true,
	"--verify": true, "--cleanup-on-fail": true, "--generate-name": true, "-g": true,
	"--take-ownership": true, "--hide-notes": true, "--skip-schema-validation": true,
	"--rollback-on-failure": true, "--include-crds": true, "--is-upgrade": true, "--validate": true,
	"--skip-tests": true, "--hide-secret": true, "--force-replace": true, "--force-conflicts": true,
	"--server-side": true,
}

// Parse returns every helm install of line (APPCMDS joined by spaces).
// Other commands are skipped; a helm install it cannot read is an error
// that says why.
func Parse(line string) ([]Install, error) {
	cmds, err := split(line)
	if err != nil {
		return nil, err
	}
	var out []Install
	for _, words := range cmds {
		for len(words) > 0 && isAssignment(words[0]) {
			words = words[1:]
		}
		if len(words) < 2 || path.Base(words[0]) != "helm" {
			continue
		}
		in, ok, err := parseHelm(words)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(words, " "), err)
		}
		if ok {
			out = append(out, in)
		}
	}
	return out, nil
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	if !ok || k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseHelm reads one helm command; ok is false for subcommands that
// install nothing (helm repo add, helm upgrade without --install, …).
func parseHelm(words []string) (Install, bool, error) {
	in := Install{Command: strings.Join(words, " ")}
	var sub string
	var pos []string
	upgradeInstall, generate := false, false
	args := words[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if sub == "" {
				sub = a
			} else {
				pos = append(pos, a)
			}
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") && len(name) > 2 && !hasValue {
			// -nfoo: a short flag with its value attached.
			name, value, hasValue = name[:2], name[2:], true
		}
		switch {
		case valueFlags[name]:
			if !hasValue {
				if i+1 >= len(args) {
					return in, false, fmt.Errorf("flag %s needs a value", name)
				}
				i++
				value = args[i]
			}
		case boolFlags[name]:
			if name == "-i" || name == "--install" {
				upgradeInstall = value != "false"
			}
			if name == "-g" || name == "--generate-name" {
				generate = value != "false"
			}
			continue
		default:
			if hasValue {
				continue // --unknown=value consumes nothing else
			}
			return in, false, fmt.Errorf("cnstack does not know whether helm's flag %s takes a value; write it as %s=VALUE (or %s=true)", name, name, name)
		}
		switch name {
		case "-n", "--namespace":
			in.Namespace = value
		case "-f", "--values":
			in.ValuesFiles = append(in.ValuesFiles, strings.Split(value, ",")...)
		case "--set":
			in.Set = append(in.Set, value)
		case "--set-string":
			in.SetString = append(in.SetString, value)
		case "--set-json":
			in.SetJSON = append(in.SetJSON, value)
		case "--set-file":
			in.SetFile = append(in.SetFile, value)
		case "--set-literal":
			in.SetLiteral = append(in.SetLiteral, value)
		case "--kube-version":
			in.KubeVersion = value
		}
	}
	switch {
	case sub == "install" || sub == "template" || (sub == "upgrade" && upgradeInstall):
	default:
		return in, false, nil
	}
	switch {
	case generate && len(pos) == 1:
		in.Chart = pos[0]
	case len(pos) == 2:
		in.Release, in.Chart = pos[0], pos[1]
	default:
		return in, false, fmt.Errorf("helm %s takes a release name and a chart, but has the arguments %q", sub, pos)
	}
	return in, true, nil
}

// Values merges the install's values as helm does: the -f files in order
// (read from fsys relative to dir, the app directory), then --set-json,
// --set, --set-string, --set-file and --set-literal.
func (in Install) Values(fsys fs.FS, dir string) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range in.ValuesFiles {
		b, err := readIn(fsys, dir, f)
		if err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		cur := map[string]any{}
		if err := yaml.Unmarshal(b, &cur); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		base = mergeMaps(base, cur)
	}
	for _, v := range in.SetJSON {
		if err := strvals.ParseJSON(v, base); err != nil {
			return nil, fmt.Errorf("--set-json %s: %w", v, err)
		}
	}
	for _, v := range in.Set {
		if err := strvals.ParseInto(v, base); err != nil {
			return nil, fmt.Errorf("--set %s: %w", v, err)
		}
	}
	for _, v := range in.SetString {
		if err := strvals.ParseIntoString(v, base); err != nil {
			return nil, fmt.Errorf("--set-string %s: %w", v, err)
		}
	}
	for _, v := range in.SetFile {
		reader := func(rs []rune) (any, error) {
			b, err := readIn(fsys, dir, string(rs))
			return string(b), err
		}
		if err := strvals.ParseIntoFile(v, base, reader); err != nil {
			return nil, fmt.Errorf("--set-file %s: %w", v, err)
		}
	}
	for _, v := range in.SetLiteral {
		if err := strvals.ParseLiteralInto(v, base); err != nil {
			return nil, fmt.Errorf("--set-literal %s: %w", v, err)
		}
	}
	return base, nil
}

// Files are the files of the app directory the install reads: its values
// files and --set-file files, as clean paths relative to it.
func (in Install) Files() []string {
	var out []string
	for _, f := range in.ValuesFiles {
		if p := relPath(f); p != "" {
			out = append(out, p)
		}
	}
	for _, v := range in.SetFile {
		if _, f, ok := strings.Cut(v, "="); ok {
			if p := relPath(f); p != "" {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func relPath(f string) string {
	if f == "" || strings.HasPrefix(f, "/") || strings.Contains(f, "://") || strings.Contains(f, "$") {
		return ""
	}
	p := path.Clean(f)
	if p == ".." || strings.HasPrefix(p, "../") {
		return ""
	}
	return p
}

func readIn(fsys fs.FS, dir, f string) ([]byte, error) {
	p := relPath(f)
	if p == "" {
		return nil, fmt.Errorf("%q is not a file of the app directory (cnstack reads values only from files the app carries)", f)
	}
	return fs.ReadFile(fsys, path.Join(dir, p))
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]any); ok {
			if bv, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bv, v)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// errUnquoted is returned for a command line with an open quote.
var errUnquoted = errors.New("unterminated quote")

// split cuts line into simple commands of words, at &&, ||, ;, |, & and
// newlines outside quotes.
func split(line string) ([][]string, error) {
	var (
		cmds  [][]string
		words []string
		cur   strings.Builder
		have  bool // cur holds a word (possibly empty: '')
	)
	flushWord := func() {
		if have {
			words = append(words, cur.String())
		}
		cur.Reset()
		have = false
	}
	flushCmd := func() {
		flushWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch c {
		case ' ', '\t':
			flushWord()
		case '\n', ';', '&', '|':
			flushCmd()
		case '\\':
			if i+1 < len(line) {
				i++
				if line[i] != '\n' {
					cur.WriteByte(line[i])
					have = true
				}
			}
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errUnquoted
			}
			cur.WriteString(line[i+1 : i+1+j])
			have = true
			i += j + 1
		case '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\\\"$`\n", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errUnquoted
			}
			have = true
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flushCmd()
	return cmds, nil
}
