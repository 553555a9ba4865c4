package tooltest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and stops
// the calling goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a recorder and returns what it passed to Fatalf ("" if nothing).
func fatalMessage(t *testing.T, fn func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.msg
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBin, dir)
	if err := os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		wantPath string
		wantMsg  string // substring of the Fatalf message; "" means no failure
	}{
		{name: "tool", wantPath: filepath.Join(dir, "tool")},
		{name: "missing", wantMsg: "run `make tools` (or `tools/install.sh missing`)"},
		{name: "noexec", wantMsg: "is not an executable file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			msg := fatalMessage(t, func(tb testing.TB) { got = Path(tb, tc.name) })
			if tc.wantMsg == "" {
				if msg != "" || got != tc.wantPath {
					t.Fatalf("Path = %q, fatal %q; want %q", got, msg, tc.wantPath)
				}
				return
			}
			if !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("Path(%q) fatal message %q, want it to contain %q", tc.name, msg, tc.wantMsg)
			}
		})
	}
}

func TestBinDirDefault(t *testing.T) {
	t.Setenv(EnvBin, "")
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "install.sh")); err != nil {
		t.Errorf("RepoRoot() = %s, which has no tools/install.sh: %v", root, err)
	}
	if want := filepath.Join(root, ".cache", "tools", "bin"); dir != want {
		t.Errorf("BinDir() = %s, want %s", dir, want)
	}
}

func TestRunErrorNamesCommandAndOutput(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBin, dir)
	script := "#!/bin/sh\necho out-line\necho err-line >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "failing"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, err := Run(t, context.Background(), "failing", "a b", "c")
	if err == nil {
		t.Fatal("Run of a tool that exits 3 returned no error")
	}
	if stdout != "out-line\n" {
		t.Errorf("stdout = %q, want only the stdout line", stdout)
	}
	for _, want := range []string{"failing 'a b' c", "exit status 3", "out-line", "err-line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCosignEnv(t *testing.T) {
	t.Setenv("SIGSTORE_ROOT_FILE", "/nonexistent")
	t.Setenv("COSIGN_EXPERIMENTAL", "1")
	env := CosignEnv(t)
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := vars[k]; dup {
			t.Errorf("%s set twice", k)
		}
		vars[k] = v
	}
	for _, k := range []string{"SIGSTORE_ROOT_FILE", "COSIGN_EXPERIMENTAL"} {
		if _, ok := vars[k]; ok {
			t.Errorf("inherited %s not removed", k)
		}
	}
	pem, err := os.ReadFile(vars["SIGSTORE_REKOR_PUBLIC_KEY"])
	if err != nil || !strings.HasPrefix(string(pem), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("SIGSTORE_REKOR_PUBLIC_KEY: %v, %.40q", err, pem)
	}
	for _, k := range []string{"HOME", "TUF_ROOT", "DOCKER_CONFIG"} {
		if fi, err := os.Stat(vars[k]); err != nil || !fi.IsDir() {
			t.Errorf("%s=%q is not a directory: %v", k, vars[k], err)
		}
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"x"}, "cosign x"},
		{[]string{"--key", "/tmp/a b/k"}, "cosign --key '/tmp/a b/k'"},
		{[]string{""}, "cosign ''"},
		{[]string{"it's"}, `cosign 'it'\''s'`},
	}
	for _, tc := range tests {
		if got := commandLine("cosign", tc.args); got != tc.want {
			t.Errorf("commandLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}
