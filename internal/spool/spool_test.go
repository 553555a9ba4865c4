package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRemovesOnlyStaleSpools(t *testing.T) {
	root := filepath.Join(t.TempDir(), "tmp")
	stale, _, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	live, _, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, "not-a-spool")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * MaxAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, old, old); err != nil {
		t.Fatal(err)
	}
	dir, cleanup, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, live: true, other: true, dir: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", fi.Mode().Perm())
	}
	cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s", dir)
	}
}

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	p, err := Copy(dir, "stdin.tar", strings.NewReader("bundle"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "bundle" {
		t.Errorf("spooled %q", b)
	}
	if _, err := Copy(dir, "stdin.tar", strings.NewReader("again")); err == nil {
		t.Error("Copy replaced an existing spool file")
	}
}
