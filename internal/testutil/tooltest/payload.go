package tooltest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EnvToolsDir names the directory under which tools/install.sh keeps the
// cluster-image payload (payload/<os>-<arch>/<binary>).
const EnvToolsDir = "CNSTACK_TOOLS_DIR"

// PayloadPlatforms are the platforms `tools/install.sh payload` builds.
var PayloadPlatforms = []string{"linux/amd64", "linux/arm64"}

// PayloadDir returns the directory that holds the payload binaries for
// platform ("linux/arm64"): $CNSTACK_TOOLS_DIR/payload/linux-arm64, by default
// under ~/.cache/cnstack/tools, outside any clone so that CI runs and tests on
// one machine share a single build.
func PayloadDir(platform string) (string, error) {
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
		return "", fmt.Errorf("payload platform %q: want OS/ARCH, e.g. linux/arm64", platform)
	}
	root := os.Getenv(EnvToolsDir)
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("payload dir: %w", err)
		}
		root = filepath.Join(home, ".cache", "cnstack", "tools")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("payload dir: %w", err)
	}
	return filepath.Join(root, "payload", osName+"-"+arch), nil
}

// PayloadPath returns the absolute path of the payload binary name for
// platform. If it has not been built it fails the test, naming the command
// that builds it.
func PayloadPath(t testing.TB, platform, name string) string {
	t.Helper()
	dir, err := PayloadDir(platform)
	if err != nil {
		t.Fatalf("tooltest: %v", err)
	}
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		t.Fatalf("tooltest: payload binary %s for %s is not built (%v); run `tools/install.sh --platform %s` (or `tools/install.sh payload`), or set %s",
			name, platform, err, platform, EnvToolsDir)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		t.Fatalf("tooltest: %s is not an executable file; rerun `tools/install.sh payload`", p)
	}
	return p
}

// PinnedVersion returns the version of module that tools/<toolModule>/go.mod
// pins: the replacement's version when the module is replaced by another
// module, else the required version. tools/install.sh stamps binaries with the
// same value, so a test can check what a binary reports against the pin.
func PinnedVersion(toolModule, module string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "tools", toolModule, "go.mod")
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pinned version of %s: %w", module, err)
	}
	defer f.Close()
	var required, replaced string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "require "), "replace "))
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != module {
			continue
		}
		if arrow := strings.Index(line, "=>"); arrow >= 0 {
			if target := strings.Fields(line[arrow+2:]); len(target) == 2 {
				replaced = target[1]
			}
			continue
		}
		if strings.HasPrefix(fields[1], "v") {
			required = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	switch {
	case replaced != "":
		return replaced, nil
	case required != "":
		return required, nil
	}
	return "", fmt.Errorf("%s pins no version of %s", path, module)
}
