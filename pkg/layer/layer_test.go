package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func writeTree(t *testing.T, root string, perm fs.FileMode, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		mode := perm
		if strings.HasSuffix(name, ".sh") {
			mode |= 0o100
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		// Different mtimes per copy must not matter.
		os.Chtimes(p, time.Now(), time.Now().Add(-time.Duration(len(content))*time.Hour))
	}
}

// treeEntries lists dir's files under dest as entries (symlinks kept as
// links: the layer writer supports them, whatever a source resolver does).
func treeEntries(t testing.TB, dir, dest string) []Entry {
	t.Helper()
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := path.Join(dest, filepath.ToSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out = append(out, Entry{Name: name, Mode: fs.ModeDir | 0o755})
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, Entry{Name: name, Mode: fs.ModeSymlink | 0o777, Linkname: target})
		default:
			out = append(out, Entry{Name: name, Mode: fi.Mode(), Size: fi.Size(), Source: p})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func build(t *testing.T, entries []Entry) (Result, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, entries, Options{ModTime: Epoch})
	if err != nil {
		t.Fatal(err)
	}
	return res, buf.Bytes()
}

// Two copies of one tree, in different directories, with different
// permissions (umask 022 vs 002) and mtimes, give the same layer bytes.
func TestDeterministicAcrossCopies(t *testing.T) {
	files := map[string]string{"a/b/c.txt": "c", "a/run.sh": "#!/bin/sh", "z": strings.Repeat("z", 3<<20), "m/n": "n"}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	d1, d2 := t.TempDir(), filepath.Join(t.TempDir(), "elsewhere", "deeper")
	writeTree(t, d1, 0o644, files)
	writeTree(t, d2, 0o664, files)
	e1 := treeEntries(t, d1, "rootfs")
	e2 := treeEntries(t, d2, "rootfs")
	// Reverse the order of the second list: input order must not matter.
	for i, j := 0, len(e2)-1; i < j; i, j = i+1, j-1 {
		e2[i], e2[j] = e2[j], e2[i]
	}
	r1, b1 := build(t, e1)
	prev := runtime.GOMAXPROCS(1)
	r2, b2 := build(t, e2)
	runtime.GOMAXPROCS(prev)
	if r1 != r2 || !bytes.Equal(b1, b2) {
		t.Fatalf("layers differ:\n%+v\n%+v", r1, r2)
	}
	if r1.Digest == r1.DiffID || r1.Size != int64(len(b1)) {
		t.Fatalf("bad result %+v (len %d)", r1, len(b1))
	}
}

func TestTarContents(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, 0o600, map[string]string{"bin/tool.sh": "x", "etc/conf": "y"})
	os.Symlink("tool.sh", filepath.Join(dir, "bin", "link"))
	entries := treeEntries(t, dir, ".")
	file := filepath.Join(dir, "etc", "conf")
	entries = append(entries, Entry{Name: "manifests/conf", Mode: 0o600, Size: 1, Source: file})
	mtime := time.Unix(1700000000, 0).UTC()
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, entries, Options{ModTime: mtime})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q / time %v", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(mtime) {
			t.Errorf("%s: owner %d:%d %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
		got = append(got, h.Name+" "+fs.FileMode(h.Mode).String()+" "+h.Linkname)
	}
	want := []string{
		"bin/ -rwxr-xr-x ", "bin/link -rwxrwxrwx tool.sh", "bin/tool.sh -rwxr-xr-x ",
		"etc/ -rwxr-xr-x ", "etc/conf -rw-r--r-- ",
		"manifests/ -rwxr-xr-x ", "manifests/conf -rw-r--r-- ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Files != len(want) {
		t.Errorf("Files = %d", res.Files)
	}
}

func TestNormalizeConflicts(t *testing.T) {
	_, err := Normalize([]Entry{{Name: "a", Mode: 0o644}, {Name: "a/b", Mode: 0o644}})
	if err == nil || !strings.Contains(err.Error(), "needs it to be a directory") {
		t.Fatalf("file/dir conflict: %v", err)
	}
	out, err := Normalize([]Entry{{Name: "x", Mode: 0o644, Source: "1"}, {Name: "./x", Mode: 0o755, Source: "2"}})
	if err != nil || len(out) != 1 || out[0].Source != "2" || out[0].Mode != 0o755 {
		t.Fatalf("later entry must win: %+v %v", out, err)
	}
	if _, err := Normalize([]Entry{{Name: "/", Mode: fs.ModeDir}}); err == nil {
		t.Error("root entry accepted")
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, _ := SourceDateEpoch(); !got.Equal(Epoch) {
		t.Errorf("default = %v", got)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if got, _ := SourceDateEpoch(); got.Unix() != 1700000000 {
		t.Errorf("got %v", got)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := SourceDateEpoch(); err == nil {
		t.Error("bad SOURCE_DATE_EPOCH accepted")
	}
}

func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 64<<20)
	rand.Read(data[:len(data)/2]) // half random, half zeros: compressible like real binaries
	os.WriteFile(filepath.Join(dir, "blob"), data, 0o644)
	entries := treeEntries(b, dir, ".")
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := Write(b.Context(), io.Discard, entries, Options{ModTime: Epoch}); err != nil {
			b.Fatal(err)
		}
	}
}

// A file that changes between the digest the cache key used and the read
// into the layer fails the write with ErrChanged (nothing is written that
// the key does not describe).
func TestVerifyChangedContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("hello"), 0o644)
	good := Entry{Name: "f", Mode: 0o644, Size: 5, Source: p, Digest: digestOf("hello"), Verify: true}
	if _, err := Write(t.Context(), io.Discard, []Entry{good}, Options{}); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	for name, content := range map[string]string{"same size": "HELLO", "grown": "hello world", "shrunk": "hel"} {
		os.WriteFile(p, []byte(content), 0o644)
		_, err := Write(t.Context(), io.Discard, []Entry{good}, Options{})
		if !errors.Is(err, ErrChanged) {
			t.Errorf("%s: err = %v, want ErrChanged", name, err)
		}
	}
}

func digestOf(s string) digest.Digest { return digest.FromString(s) }
