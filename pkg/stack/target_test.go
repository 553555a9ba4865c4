package stack

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenTarget(t *testing.T) {
	stackDir := writeStack(t, header, map[string]string{
		"base": "FROM scratch\n",
		"app":  "FROM base\n",
	})
	tgt, err := OpenTarget(stackDir, map[string]string{"A": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Stack == nil || len(tgt.Kubefiles) != 2 || tgt.Dir != stackDir {
		t.Fatalf("stack: %+v", tgt)
	}
	if k := tgt.Kubefiles[0]; filepath.Base(k.Context) != "base" || k.Path != filepath.Join(k.Context, "Kubefile") {
		t.Errorf("stack layers come parents first, each its own context: %+v", tgt.Kubefiles)
	}

	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Kubefile"), []byte("FROM scratch\n"), 0o644)
	for _, p := range []string{ctxDir, filepath.Join(ctxDir, "Kubefile")} {
		tgt, err := OpenTarget(p, map[string]string{"A": "1"})
		if err != nil {
			t.Fatal(err)
		}
		if tgt.Stack != nil || tgt.Dir != ctxDir || len(tgt.Kubefiles) != 1 || tgt.Kubefiles[0].Context != ctxDir || tgt.Kubefiles[0].BuildArgs["A"] != "1" {
			t.Errorf("OpenTarget(%s) = %+v, want the build context", p, tgt)
		}
	}

	if _, err := OpenTarget(t.TempDir(), nil); err == nil {
		t.Error("an empty directory opened")
	}
	// A stack that does not load still gives its Kubefiles, for lint.
	broken := writeStack(t, "name: s\n", map[string]string{"x": "FROM scratch\n"})
	tgt, err = OpenTarget(broken, nil)
	if err == nil || tgt == nil || len(tgt.Kubefiles) != 1 {
		t.Errorf("broken stack: target %+v, err %v; want its Kubefile and the error", tgt, err)
	}
}

func TestDefaultDir(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout []string
		want   string
	}{
		{"stack here", []string{FileName, "Kubefiles/"}, "."},
		{"Kubefile here", []string{"Kubefile", "Kubefiles/"}, "."},
		{"repository layout", []string{"Kubefiles/"}, "Kubefiles"},
		{"nothing", nil, "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range tc.layout {
				if p[len(p)-1] == '/' {
					os.Mkdir(filepath.Join(dir, p), 0o755)
				} else {
					os.WriteFile(filepath.Join(dir, p), nil, 0o644)
				}
			}
			t.Chdir(dir)
			if got := DefaultDir(); got != tc.want {
				t.Errorf("DefaultDir() = %q, want %q", got, tc.want)
			}
		})
	}
}
