package safearchive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type ent struct {
	name, link string
	typ        byte
	body       string
	size       int64
}

func archive(t *testing.T, ents ...ent) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.size != 0 {
			h.Size = e.size
		}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.size == 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return tar.NewReader(bytes.NewReader(buf.Bytes()))
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name string
		ents []ent
	}{
		{"dotdot", []ent{{name: "../evil", body: "x"}}},
		{"nested dotdot", []ent{{name: "a/../../evil", body: "x"}}},
		{"absolute", []ent{{name: "/etc/evil", body: "x"}}},
		{"absolute symlink", []ent{{name: "l", typ: tar.TypeSymlink, link: "/etc"}}},
		{"escaping symlink", []ent{{name: "a/l", typ: tar.TypeSymlink, link: "../../etc"}}},
		{"write through symlink", []ent{{name: "l", typ: tar.TypeSymlink, link: "."}, {name: "l/x", body: "x"}}},
		{"escaping hard link", []ent{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}},
		{"hard link to missing", []ent{{name: "h", typ: tar.TypeLink, link: "nope"}}},
		{"device", []ent{{name: "dev", typ: tar.TypeChar}}},
		{"absurd size", []ent{{name: "big", size: 1 << 40}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "target")
			os.Mkdir(dir, 0o755)
			err := Extract(t.Context(), archive(t, tt.ents...), dir, Limits{MaxFileSize: 1 << 20})
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("err = %v, want ErrUnsafe", err)
			}
			// Nothing outside the target.
			ents, _ := os.ReadDir(outer)
			if len(ents) != 1 {
				t.Fatalf("wrote outside the target: %v", ents)
			}
		})
	}
}

func TestExtractGood(t *testing.T) {
	dir := t.TempDir()
	err := Extract(t.Context(), archive(t,
		ent{name: "a/", typ: tar.TypeDir},
		ent{name: "a/f", body: "hello"},
		ent{name: "a/l", typ: tar.TypeSymlink, link: "f"},
		ent{name: "a/h", typ: tar.TypeLink, link: "a/f"},
		ent{name: "./b/c", body: "c"},
	), dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/f", "a/l", "a/h", "b/c"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if p != "b/c" && string(b) != "hello" {
			t.Errorf("%s = %q", p, b)
		}
	}
	if err := Extract(t.Context(), archive(t, ent{name: "x", body: "1"}, ent{name: "y", body: "2"}), t.TempDir(), Limits{MaxEntries: 1}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("entry limit: %v", err)
	}
	if err := Extract(t.Context(), archive(t, ent{name: "x", body: "12"}, ent{name: "y", body: "34"}), t.TempDir(), Limits{MaxTotalSize: 3}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("total limit: %v", err)
	}
}
