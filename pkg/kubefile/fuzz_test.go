package kubefile

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
)

// physicalLines splits src the way the lexer does, for position checks.
func physicalLines(src []byte) []string {
	text := string(bytes.TrimPrefix(src, utf8BOM))
	lines := strings.Split(text, "\n")
	if strings.HasSuffix(text, "\n") {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// checkPos fails unless p points into src (or just past the end of a line).
func checkPos(t *testing.T, what string, p Pos, lines []string) {
	t.Helper()
	if p.File != "Kubefile" {
		t.Fatalf("%s: file %q", what, p.File)
	}
	if len(lines) == 0 {
		if p.Line != 1 || p.Col != 1 {
			t.Fatalf("%s: position %s in empty input", what, p)
		}
		return
	}
	if p.Line < 1 || p.Line > len(lines) {
		t.Fatalf("%s: line %d outside 1..%d", what, p.Line, len(lines))
	}
	if p.Col < 1 || p.Col > len(lines[p.Line-1])+1 {
		t.Fatalf("%s: column %d outside 1..%d of line %d %q", what, p.Col, len(lines[p.Line-1])+1, p.Line, lines[p.Line-1])
	}
}

func seedKubefiles(f *testing.F) {
	paths, _ := filepath.Glob("testdata/golden/*/Kubefile")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParse(f *testing.F) {
	seedKubefiles(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		file, ds := Parse("Kubefile", src)
		lines := physicalLines(src)
		for _, d := range ds {
			checkPos(t, "diagnostic "+d.Msg, d.Pos, lines)
			if d.Msg == "" {
				t.Fatalf("empty message at %s", d.Pos)
			}
		}
		for _, in := range file.Instructions {
			checkPos(t, "instruction "+in.Keyword, in.Pos, lines)
			if in.EndLine < in.Pos.Line || in.EndLine > len(lines) {
				t.Fatalf("EndLine %d for instruction at %s (%d lines)", in.EndLine, in.Pos, len(lines))
			}
			if len(in.ArgPos) != len(in.Args) {
				t.Fatalf("%d args, %d positions", len(in.Args), len(in.ArgPos))
			}
			for _, p := range in.ArgPos {
				checkPos(t, "argument", p, lines)
			}
			for _, fl := range in.Flags {
				checkPos(t, "flag", fl.Pos, lines)
			}
			if in.Keyword != strings.ToUpper(in.Keyword) || in.Keyword == "" {
				t.Fatalf("keyword %q", in.Keyword)
			}
		}
		file2, ds2 := Parse("Kubefile", src)
		if !reflect.DeepEqual(file, file2) || !reflect.DeepEqual(ds, ds2) {
			t.Fatalf("Parse is not deterministic")
		}
	})
}

func fuzzContext() fstest.MapFS {
	ctx := testContext()
	ctx["a b/c.yaml"] = fileA
	ctx["x*y"] = fileA
	return ctx
}

func FuzzEvaluate(f *testing.F) {
	paths, _ := filepath.Glob("testdata/golden/*/Kubefile")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(0), "v1")
		}
	}
	f.Add([]byte("ARG A\nFROM scratch\nCOPY ${A:-rootfs} ${B:-.}\nAPP a local://${A:-mixed}\nAPPCMDS a [\"x\"]\nLAUNCH a"), uint8(1), "x=y")
	platforms := []ocispec.Platform{oci.DefaultPlatform, {OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "windows", Architecture: "amd64"}}
	ctx := fuzzContext()
	f.Fuzz(func(t *testing.T, src []byte, plat uint8, arg string) {
		file, _ := Parse("Kubefile", src)
		opts := EvalOptions{
			Platform:  platforms[int(plat)%len(platforms)],
			BuildArgs: map[string]string{"A": arg, "BASE": arg, "VERSION": arg},
			Context:   ctx,
		}
		if plat&4 != 0 {
			opts.BaseApps = []string{"calico", arg}
		}
		img, ds := Evaluate(file, opts)
		lines := physicalLines(src)
		for _, d := range ds {
			checkPos(t, "diagnostic "+d.Msg, d.Pos, lines)
		}
		for _, s := range img.Steps {
			checkPos(t, "step", s.Pos, lines)
			if s.Text == "" || s.Instr == nil {
				t.Fatalf("step without text or instruction: %+v", s)
			}
			for _, src := range s.Sources {
				checkPos(t, "source", src.Pos, lines)
				if !src.IsRemote() && (strings.HasPrefix(src.Path, "/") || src.Path == ".." || strings.HasPrefix(src.Path, "../")) {
					t.Fatalf("source %q escapes the context", src.Path)
				}
			}
			if s.Kind == StepCopy && (strings.HasPrefix(s.Dest, "/") || strings.HasPrefix(s.Dest, "../") || s.Dest == "") {
				t.Fatalf("destination %q escapes the image root", s.Dest)
			}
		}
		for _, a := range img.Apps {
			if appNameProblem(a.Name) != "" {
				t.Fatalf("app with invalid name %q", a.Name)
			}
		}
		img2, ds2 := Evaluate(file, opts)
		if !reflect.DeepEqual(img, img2) || !reflect.DeepEqual(ds, ds2) {
			t.Fatalf("Evaluate is not deterministic")
		}
	})
}
