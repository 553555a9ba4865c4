// Package tooltest finds and runs the pinned third-party tools (sealer, cosign,
// registry, crane) that tools/install.sh builds, so tests can check cnstack's
// output against the real programs.
//
// The tools live in $CNSTACK_TOOLS_BIN, or in <repo>/.cache/tools/bin by
// default. A missing tool fails the test with the command that builds it: a
// compatibility test that silently skips would prove nothing.
//
// The cluster-image payload (Kubernetes, etcd, containerd, runc, CNI, ... for
// linux/amd64 and linux/arm64) that `tools/install.sh payload` builds is found
// with PayloadDir and PayloadPath, and its pins with PinnedVersion.
package tooltest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBin names the directory that holds the tool binaries.
const EnvBin = "CNSTACK_TOOLS_BIN"

// Tools that tools/install.sh knows how to build.
const (
	Sealer   = "sealer"
	Cosign   = "cosign"
	Registry = "registry"
	Crane    = "crane"
	// Actionlint lints GitHub Actions workflows.
	Actionlint = "actionlint"
)

// BinDir returns the directory the tools are installed in: $CNSTACK_TOOLS_BIN,
// or .cache/tools/bin under the repository root.
func BinDir() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "tools", "bin"), nil
}

// RepoRoot returns the directory of the main module's go.mod. It walks up
// from the working directory (a test runs in its package directory) and falls
// back to `go env GOMOD`.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find repository root: no go.mod above %s and `go env GOMOD` failed: %w", wd, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("find repository root: no go.mod above %s", wd)
	}
	return filepath.Dir(gomod), nil
}

// Path returns the absolute path of the named tool binary. If the tool is not
// installed it fails the test, naming the command that installs it.
func Path(t testing.TB, name string) string {
	t.Helper()
	dir, err := BinDir()
	if err != nil {
		t.Fatalf("tooltest: %v", err)
	}
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		t.Fatalf("tooltest: %s is not installed (%v); run `make tools` (or `tools/install.sh %s`), or set %s", name, err, name, EnvBin)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		t.Fatalf("tooltest: %s is not an executable file; rerun `make tools`", p)
	}
	return p
}

// Run runs the named tool with args and the test process's environment. It
// returns the tool's stdout; a failure's error holds the command line and the
// combined stdout and stderr.
func Run(t testing.TB, ctx context.Context, name string, args ...string) (string, error) {
	t.Helper()
	return RunEnv(t, ctx, nil, name, args...)
}

// RunEnv is Run with the environment env (nil means the test process's).
func RunEnv(t testing.TB, ctx context.Context, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, Path(t, name), args...)
	cmd.Env = env
	// Bound the wait for output pipes held open by a killed tool's children.
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	combined := &lockedBuffer{}
	cmd.Stdout = io.MultiWriter(&stdout, combined)
	cmd.Stderr = combined

	line := commandLine(name, args)
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s  (%s)", line, time.Since(start).Round(time.Millisecond))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = errors.Join(err, ctxErr)
		}
		return stdout.String(), fmt.Errorf("%s: %w\n%s", line, err, combined.String())
	}
	return stdout.String(), nil
}

// CosignEnv returns an environment in which the cosign CLI works offline with
// keys: SIGSTORE_REKOR_PUBLIC_KEY names a throwaway PEM key (cosign v2 verify
// otherwise fetches its TUF root even with --insecure-ignore-tlog), HOME,
// TUF_ROOT and DOCKER_CONFIG point into a temporary directory, and every
// non-loopback HTTP(S) request goes to a closed local port so that a lookup
// fails at once instead of leaving the machine. Inherited SIGSTORE_*, COSIGN_*,
// TUF_ROOT and proxy settings are dropped.
func CosignEnv(t testing.TB) []string {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tooltest: generate throwaway rekor key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("tooltest: marshal throwaway rekor key: %v", err)
	}
	rekorPEM := filepath.Join(dir, "rekor.pub")
	if err := os.WriteFile(rekorPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatalf("tooltest: %v", err)
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(home, ".sigstore", "root"), filepath.Join(home, ".docker")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("tooltest: %v", err)
		}
	}
	env := withoutVars(os.Environ(), "SIGSTORE_", "COSIGN_", "TUF_ROOT=", "HOME=", "DOCKER_CONFIG=",
		"HTTP_PROXY=", "HTTPS_PROXY=", "NO_PROXY=", "http_proxy=", "https_proxy=", "no_proxy=")
	// Go never proxies loopback hosts, so the local registry still answers.
	const deadProxy = "http://127.0.0.1:9"
	return append(env,
		"SIGSTORE_REKOR_PUBLIC_KEY="+rekorPEM,
		"HOME="+home,
		"TUF_ROOT="+filepath.Join(home, ".sigstore", "root"),
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"HTTP_PROXY="+deadProxy, "HTTPS_PROXY="+deadProxy,
		"NO_PROXY=127.0.0.1,localhost,::1",
	)
}

// withoutVars returns env without the entries that start with any prefix.
func withoutVars(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// commandLine renders name and args for a log or error, quoting where a shell
// would need it.
func commandLine(name string, args []string) string {
	parts := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// lockedBuffer collects stdout and stderr, which exec writes from two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SealerEnv isolates sealer's image store: containers/storage honours
// CONTAINERS_STORAGE_CONF, so graphroot and runroot live under dir;
// CONTAINERS_REGISTRIES_CONF and HOME (auth.json, .sealer.json, the signature
// policy) point there too. What sealer v0.11 still writes outside dir, for
// lack of any knob: /etc/containers/{policy.json,registries.conf,storage.conf}
// when absent, empty overlay probe dirs under /var/lib/containers/storage and
// /run/containers/storage, and containers/image's blob-info cache
// /var/lib/containers/cache/blob-info-cache-v1.boltdb.
func SealerEnv(t *testing.T, dir string) []string {
	t.Helper()
	graph, run := filepath.Join(dir, "graph"), filepath.Join(dir, "run")
	conf := "[storage]\n" +
		"driver = \"overlay\"\n" +
		"graphroot = " + quoteTOML(graph) + "\n" +
		"runroot = " + quoteTOML(run) + "\n" +
		"[storage.options.overlay]\n" +
		// The default bind-mounts graphroot/overlay onto itself and leaves the
		// mount behind, which would pin the temp dir.
		"skip_mount_home = \"true\"\n"
	confPath := filepath.Join(dir, "storage.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// containers/image prefers $HOME/.config/containers/policy.json to the
	// host's /etc/containers/policy.json, so a strict host policy cannot interfere.
	policyDir := filepath.Join(dir, ".config", "containers")
	if err := os.MkdirAll(policyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	policy := `{"default":[{"type":"insecureAcceptAnything"}]}`
	if err := os.WriteFile(filepath.Join(policyDir, "policy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte("unqualified-search-registries = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "CONTAINERS_") && !strings.HasPrefix(kv, "REGISTRY_AUTH_FILE=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+dir, "CONTAINERS_STORAGE_CONF="+confPath, "CONTAINERS_REGISTRIES_CONF="+regConf)
}

func quoteTOML(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a valid TOML basic string for paths
	return string(b)
}

// MountsUnder lists mount points at or below dir.
func MountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			found = append(found, f[4])
		}
	}
	return found
}
