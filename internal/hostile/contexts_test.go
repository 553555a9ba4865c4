package hostile

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/store"
)

const contextsDir = "../../testdata/hostile/contexts"

// buildAndView builds dir (as given: relative or absolute) in lite mode and
// lays out its lock view; a stuck call is an error after a minute.
func buildAndView(t *testing.T, dir string) (s *store.Store, berr, verr error) {
	t.Helper()
	home := t.TempDir()
	s, _ = store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, berr = (&build.Builder{Store: s, Cache: c}).Build(context.Background(), build.Request{Context: dir, Tags: []string{"hostile.test/ctx:v1"}, Mode: build.ModeLite})
		_, verr = collect.ContextView(context.Background(), ".", filepath.Join(dir, "Kubefile"), dir, nil, filepath.Join(home, "view"), collect.ViewOptions{})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("build or view hangs")
	}
	return s, berr, verr
}

// The hostile contexts of testdata/hostile/contexts and the ones that
// cannot live in git (FIFOs), built as a user types it (relative, from
// inside the context) and with an absolute path. Each fails with a clear
// error (the build and the lock view alike) or, for the in-context links,
// succeeds with real files; nothing is tagged on failure.
func TestHostileContexts(t *testing.T) {
	fifoKubefile := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifoKubefile, "Kubefile"), 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	fifoSource := t.TempDir()
	os.WriteFile(filepath.Join(fifoSource, "Kubefile"), []byte("FROM scratch\nCOPY manifests manifests\n"), 0o644)
	os.MkdirAll(filepath.Join(fifoSource, "manifests"), 0o755)
	syscall.Mkfifo(filepath.Join(fifoSource, "manifests", "pipe.yaml"), 0o644)

	abs := func(name string) string { p, _ := filepath.Abs(filepath.Join(contextsDir, name)); return p }
	tests := []struct {
		name, dir string
		want      string // "" for success
		defect    string
	}{
		{"symlinked-dir", abs("symlinked-dir"), "", "§1.1, §1.4"},
		{"link-out", abs("link-out"), "outside the build context", "§1.1, §1.3"},
		{"dangling-link", abs("dangling-link"), "does not exist", "§1.4"},
		{"control-bytes", abs("control-bytes"), "unknown instruction", "§1.10"},
		{"fifo-kubefile", fifoKubefile, "not a regular file", "§1.10"},
		{"fifo-source", fifoSource, "FIFO", "§1.10"},
	}
	for _, tt := range tests {
		for _, how := range []string{"relative", "absolute"} {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				dir := tt.dir
				if how == "relative" {
					t.Chdir(tt.dir)
					dir = "."
				}
				s, berr, verr := buildAndView(t, dir)
				for what, err := range map[string]error{"build": berr, "view": verr} {
					switch {
					case tt.want == "" && err != nil:
						t.Errorf("%s (%s): %v", what, tt.defect, err)
					case tt.want != "" && err == nil:
						t.Errorf("%s (%s) accepted it", what, tt.defect)
					case tt.want != "":
						if cerr := clear(err.Error(), tt.want); cerr != nil {
							t.Errorf("%s error %v: %.300q", what, cerr, err)
						}
					}
				}
				if l, _ := s.List(context.Background()); tt.want != "" && len(l) != 0 {
					t.Errorf("a failed build tagged %v", l)
				}
				if tt.want == "" {
					root, err := s.Resolve(context.Background(), "hostile.test/ctx:v1")
					if err != nil {
						t.Fatal(err)
					}
					if err := s.Complete(context.Background(), root); err != nil {
						t.Fatal(err)
					}
				}
				if berr != nil {
					t.Logf("build: %.300s", berr)
				}
			})
		}
	}
}
