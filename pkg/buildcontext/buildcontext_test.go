package buildcontext

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/layer"
)

// tree writes files (content) and symlinks ("->target") under a new dir.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		case content == "<dir>":
			err = os.MkdirAll(p, 0o755)
		case content == "<fifo>":
			err = syscall.Mkfifo(p, 0o644)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listing renders entries as "name" (dirs with "/") and "name=content".
func listing(t *testing.T, entries []layer.Entry) []string {
	t.Helper()
	var out []string
	for _, e := range entries {
		switch {
		case e.Mode.IsDir():
			out = append(out, e.Name+"/")
		case e.Mode&fs.ModeSymlink != 0:
			out = append(out, e.Name+"->"+e.Linkname)
		default:
			rc, err := layer.OpenEntry(t.Context(), e)
			if err != nil {
				t.Fatalf("open %s: %v", e.Name, err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			out = append(out, e.Name+"="+string(b))
		}
	}
	sort.Strings(out)
	return out
}

func TestEntries(t *testing.T) {
	outside := tree(t, map[string]string{"secret": "s", "dir/x": "x"})
	dir := tree(t, map[string]string{
		"manifests/a.yaml":      "a",
		"real/sub/b.yaml":       "b",
		"charts":                "->real",       // in-context directory link (defect 4)
		"real/link.yaml":        "->sub/b.yaml", // in-context file link inside a copied dir
		"file.txt":              "f",
		"filelink":              "->file.txt", // top-level file link
		"out/secret":            "->" + outside + "/secret",
		"outdir":                "->" + outside + "/dir",
		"rel-out":               "->../../etc",
		"dangling":              "->nope",
		"loop/sub/self":         "->..",
		"abs-in":                "->/placeholder", // replaced below
		"fifo":                  "<fifo>",
		"withfifo/ok":           "ok",
		"withfifo/pipe":         "<fifo>",
		"empty/<dir>":           "<dir>",
		"deep/x/y/z.txt":        "z",
		"deep/x/link-to-parent": "->../../deep2",
		"deep2/w":               "w",
	})
	os.Remove(filepath.Join(dir, "abs-in"))
	os.Symlink(filepath.Join(dir, "file.txt"), filepath.Join(dir, "abs-in"))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tests := []struct {
		src, dest string
		destIsDir bool
		want      []string
		err       string
	}{
		{src: "manifests", dest: "manifests", want: []string{"manifests/", "manifests/a.yaml=a"}},
		// A symlinked directory is copied as the files it names, never as an empty dir.
		{src: "charts", dest: "charts", want: []string{"charts/", "charts/link.yaml=b", "charts/sub/", "charts/sub/b.yaml=b"}},
		{src: "charts/sub", dest: "x/", want: []string{"x/", "x/b.yaml=b"}},
		{src: "filelink", dest: ".", destIsDir: true, want: []string{"filelink=f"}},
		{src: "file.txt", dest: "etc/f.conf", want: []string{"etc/f.conf=f"}},
		{src: "deep", dest: "d", want: []string{"d/", "d/x/", "d/x/link-to-parent/", "d/x/link-to-parent/w=w", "d/x/y/", "d/x/y/z.txt=z"}},
		{src: "out/secret", dest: ".", destIsDir: true, err: "outside the build context"},
		{src: "out", dest: "o", err: "outside the build context"},
		{src: "outdir", dest: "o", err: "outside the build context"},
		{src: "rel-out", dest: "o", err: "outside the build context"},
		{src: "dangling", dest: "o", err: "does not exist"},
		{src: "loop", dest: "o", err: "cycle"},
		{src: "abs-in", dest: "o", err: "make it relative"},
		{src: "fifo", dest: "o", err: "FIFO"},
		{src: "withfifo", dest: "o", err: "FIFO"},
		{src: "missing", dest: "o", err: "does not exist in the build context"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			done := make(chan struct{})
			var got []layer.Entry
			var err error
			go func() { got, err = c.Entries(tt.src, tt.dest, tt.destIsDir); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Entries hung (a FIFO opened for reading?)")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := listing(t, got); strings.Join(g, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A relative context works like an absolute one (defect 1: "build -t X ."
// failed every COPY because the context root was never made absolute).
func TestRelativeContext(t *testing.T) {
	dir := tree(t, map[string]string{"manifests/a.yaml": "a", "sub/Kubefile": "FROM scratch"})
	t.Chdir(dir)
	for _, ctxDir := range []string{".", "./", "sub/..", filepath.Join("..", filepath.Base(dir))} {
		c, err := Open(ctxDir)
		if err != nil {
			t.Fatalf("%s: %v", ctxDir, err)
		}
		es, err := c.Entries("manifests", "manifests", false)
		c.Close()
		if err != nil || len(es) != 2 {
			t.Fatalf("%s: %v %v", ctxDir, es, err)
		}
		if !filepath.IsAbs(es[1].Source) {
			t.Errorf("%s: Source %s is not absolute", ctxDir, es[1].Source)
		}
	}
}

// A context reached through a symlinked directory is read as named.
func TestSymlinkedContextDir(t *testing.T) {
	dir := tree(t, map[string]string{"a/manifests/x.yaml": "x"})
	link := filepath.Join(t.TempDir(), "ctx")
	os.Symlink(filepath.Join(dir, "a"), link)
	c, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	es, err := c.Entries("manifests", "m", false)
	if err != nil || len(es) != 2 {
		t.Fatalf("%v %v", es, err)
	}
}

// A symlink swapped in after the sources were listed is not followed out
// of the context when the content is read (defect 3).
func TestSwappedSymlinkIsNotFollowedOut(t *testing.T) {
	outside := tree(t, map[string]string{"secret": "TOP SECRET"})
	dir := tree(t, map[string]string{"data/f": "harmless!!"})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	es, err := c.Entries("data", "data", false)
	if err != nil {
		t.Fatal(err)
	}
	// Swap data/f for a link to the secret, then data for a link to outside.
	os.Remove(filepath.Join(dir, "data", "f"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "data", "f"))
	for _, e := range es {
		if e.Mode.IsRegular() {
			if rc, err := layer.OpenEntry(t.Context(), e); err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("read %q through a swapped-in symlink", b)
			}
		}
	}
	os.RemoveAll(filepath.Join(dir, "data"))
	os.Symlink(outside, filepath.Join(dir, "data"))
	for _, e := range es {
		if e.Mode.IsRegular() {
			if _, err := layer.OpenEntry(t.Context(), e); err == nil {
				t.Fatal("opened a file through a swapped-in directory symlink")
			}
		}
	}
}

func TestSourceGlobAndUnpack(t *testing.T) {
	dir := tree(t, map[string]string{"m/a.yaml": "a", "m/b.yaml": "b", "m/c.txt": "c"})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	es, cleanup, err := c.Source(t.Context(), kubefile.Source{Path: "m/*.yaml", Glob: true}, "manifests", false, false)
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(listing(t, es), " "); g != "manifests/a.yaml=a manifests/b.yaml=b" {
		t.Fatalf("glob: %s", g)
	}
	_, _, err = c.Source(t.Context(), kubefile.Source{Path: "none*", Glob: true}, ".", true, false)
	if err == nil || !strings.Contains(err.Error(), "matches") {
		t.Fatalf("empty glob: %v", err)
	}
}

func TestFSExplainsEscapes(t *testing.T) {
	outside := t.TempDir()
	dir := tree(t, map[string]string{"link": "->" + outside, "fifo": "<fifo>", "ok": "x"})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fs.Stat(c.FS(), "link"); err == nil || !strings.Contains(err.Error(), "outside the build context") {
		t.Errorf("stat link: %v", err)
	}
	if _, err := fs.Stat(c.FS(), "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v is not ErrNotExist", err)
	}
	if _, err := c.FS().Open("fifo"); err == nil {
		t.Error("opened a FIFO")
	}
	if b, err := fs.ReadFile(c.FS(), "ok"); err != nil || string(b) != "x" {
		t.Errorf("read ok: %q %v", b, err)
	}
}
