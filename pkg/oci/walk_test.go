package oci

import (
	"archive/tar"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

// merged walks layers (lowest first) and lists the merged filesystem as
// sorted "path=body", "path/" (directory), "path->target" (symlink) and
// "path=>target" (hard link) strings.
func merged(t *testing.T, c Compression, layers ...[]entry) ([]string, error) {
	t.Helper()
	s := memory.New()
	var descs []ocispec.Descriptor
	for _, l := range layers {
		blob, mt := compress(t, c, tarOf(t, l...))
		descs = append(descs, push(t, s, mt, blob))
	}
	var out []string
	err := Walk(t.Context(), s, descs, func(h *tar.Header, r io.Reader) error {
		switch h.Typeflag {
		case tar.TypeDir:
			out = append(out, h.Name+"/")
		case tar.TypeSymlink:
			out = append(out, h.Name+"->"+h.Linkname)
		case tar.TypeLink:
			out = append(out, h.Name+"=>"+h.Linkname)
		default:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			out = append(out, h.Name+"="+string(b))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]entry
		want   string
	}{
		{"one layer, names cleaned",
			[][]entry{{{name: "./bin/"}, {name: "./bin/kubectl", body: "k"}, {name: "etc//x", body: "x"}}},
			"bin/ bin/kubectl=k etc/x=x"},
		{"an upper file replaces a lower one",
			[][]entry{{{name: "bin/helm", body: "v3.11"}, {name: "bin/kubectl", body: "k"}}, {{name: "bin/helm", body: "v3.12"}}},
			"bin/helm=v3.12 bin/kubectl=k"},
		{"a whiteout deletes a lower file",
			[][]entry{{{name: "bin/a", body: "a"}, {name: "bin/b", body: "b"}}, {{name: "bin/.wh.a"}}},
			"bin/b=b"},
		{"a whiteout deletes a lower directory and all under it",
			[][]entry{{{name: "charts/x/"}, {name: "charts/x/Chart.yaml", body: "x"}, {name: "charts/y", body: "y"}}, {{name: "charts/.wh.x"}}},
			"charts/y=y"},
		{"a whiteout reaches every layer below, not the layers above",
			[][]entry{{{name: "a", body: "1"}}, {{name: "b", body: "2"}}, {{name: ".wh.a"}}, {{name: "a", body: "4"}}},
			"a=4 b=2"},
		{"a whiteout does not delete what its own layer adds",
			[][]entry{{{name: "a", body: "old"}}, {{name: "a", body: "new"}, {name: ".wh.a"}}},
			"a=new"},
		{"an opaque directory hides lower contents, keeps its own layer's",
			[][]entry{{{name: "bin/a", body: "a"}, {name: "bin/sub/b", body: "b"}}, {{name: "bin/sub/c", body: "c"}, {name: "bin/sub/.wh..wh..opq"}}},
			"bin/a=a bin/sub/c=c"},
		{"a file replaces a lower directory",
			[][]entry{{{name: "x/"}, {name: "x/y", body: "y"}}, {{name: "x", body: "file"}}},
			"x=file"},
		{"a symlink replaces a lower directory: nothing is written through it",
			[][]entry{{{name: "etc/"}, {name: "etc/passwd", body: "root"}}, {{name: "etc", symlink: "/tmp"}}},
			"etc->/tmp"},
		{"a directory replaces a lower symlink",
			[][]entry{{{name: "lib", symlink: "usr/lib"}}, {{name: "lib/x", body: "x"}}},
			"lib/x=x"},
		{"a lower directory entry under an upper file is still a directory",
			[][]entry{{{name: "opt/"}}, {{name: "opt/a", body: "a"}}},
			"opt/ opt/a=a"},
		{"hard links come after their targets, even across layers",
			[][]entry{{{name: "bin/kubectl", body: "k"}}, {{name: "bin/k", hardlink: "bin/kubectl"}}, {{name: "bin/kk", hardlink: "./bin/kubectl"}}},
			"bin/k=>bin/kubectl bin/kk=>bin/kubectl bin/kubectl=k"},
		{"a duplicate within one layer: the later entry wins",
			[][]entry{{{name: "a", body: "first"}, {name: "a", body: "second"}}},
			"a=first a=second"},
	} {
		for _, c := range []Compression{Gzip, Zstd, Uncompressed} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				got, err := merged(t, c, tc.layers...)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(got, " ") != tc.want {
					t.Errorf("merged filesystem\n got %s\nwant %s", strings.Join(got, " "), tc.want)
				}
			})
		}
	}
}

func TestWalkRefusesEscapingNames(t *testing.T) {
	for _, e := range []entry{
		{name: "../etc/passwd", body: "x"},
		{name: "/etc/passwd", body: "x"},
		{name: "a/../../b", body: "x"},
		{name: "bin/x", hardlink: "../../etc/shadow"},
	} {
		_, err := merged(t, Gzip, []entry{e})
		if !errors.Is(err, ErrUnsafeEntry) {
			t.Errorf("walk of %+v: %v, want ErrUnsafeEntry", e, err)
		}
	}
}

// Layers of different compressions stack like any others.
func TestWalkMixedCompressions(t *testing.T) {
	s := memory.New()
	var descs []ocispec.Descriptor
	for i, c := range []Compression{Gzip, Zstd, Uncompressed} {
		blob, mt := compress(t, c, tarOf(t, entry{name: "layer", body: c.String()}, entry{name: "only-" + c.String(), body: string(rune('0' + i))}))
		descs = append(descs, push(t, s, mt, blob))
	}
	var got []string
	err := Walk(t.Context(), s, descs, func(h *tar.Header, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got = append(got, h.Name+"="+string(b))
		return nil
	})
	sort.Strings(got)
	if err != nil || strings.Join(got, " ") != "layer=uncompressed only-gzip=0 only-uncompressed=2 only-zstd=1" {
		t.Fatalf("Walk = %v, %v", got, err)
	}
}

func TestWalkStopsOnCallbackError(t *testing.T) {
	boom := errors.New("boom")
	s := memory.New()
	blob, mt := compress(t, Gzip, tarOf(t, entry{name: "a", body: "a"}, entry{name: "b", body: "b"}))
	desc := push(t, s, mt, blob)
	n := 0
	err := Walk(t.Context(), s, []ocispec.Descriptor{desc}, func(*tar.Header, io.Reader) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("Walk = %v after %d calls, want boom naming the layer after 1", err, n)
	}
}
