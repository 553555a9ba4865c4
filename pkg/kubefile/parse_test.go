package kubefile

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseForms has one entry per instruction form: the last instruction of
// src must parse to want (Pos.File, EndLine, Raw and Original are not compared
// unless set in want).
func TestParseForms(t *testing.T) {
	type want struct {
		kw     string
		args   []string
		flags  []Flag
		json   bool
		legacy bool
		pos    string // "line:col" of the keyword, optional
		argPos []string
	}
	tests := []struct {
		name string
		src  string
		want want
	}{
		{"FROM scratch", "FROM scratch", want{kw: "FROM", args: []string{"scratch"}}},
		{"FROM image", "FROM docker.io/sealerio/kubernetes:v1.22.15", want{kw: "FROM", args: []string{"docker.io/sealerio/kubernetes:v1.22.15"}}},
		{"FROM --platform", "FROM --platform=linux/arm64 base:v1", want{kw: "FROM", args: []string{"base:v1"}, flags: []Flag{{Name: "platform", Value: "linux/arm64"}}}},
		{"FROM --platform quoted", `FROM --platform="linux/arm64" base:v1`, want{kw: "FROM", args: []string{"base:v1"}, flags: []Flag{{Name: "platform", Value: "linux/arm64"}}}},
		{"FROM ARG", "ARG BASE=scratch\nFROM ${BASE}", want{kw: "FROM", args: []string{"${BASE}"}}},
		{"lower-case keyword", "FROM scratch\ncopy a b", want{kw: "COPY", args: []string{"a", "b"}}},
		{"COPY", "FROM scratch\nCOPY rootfs .", want{kw: "COPY", args: []string{"rootfs", "."}, pos: "2:1", argPos: []string{"2:6", "2:13"}}},
		{"COPY JSON", "FROM scratch\nCOPY [\"my dir\", \"dest/\"]", want{kw: "COPY", args: []string{"my dir", "dest/"}, json: true, argPos: []string{"2:7", "2:17"}}},
		{"COPY ARCH", "FROM scratch\nCOPY ${ARCH}/bin ./bin", want{kw: "COPY", args: []string{"${ARCH}/bin", "./bin"}}},
		{"COPY indented and tabbed", "FROM scratch\n  COPY\ta\t\tb  ", want{kw: "COPY", args: []string{"a", "b"}, pos: "2:3", argPos: []string{"2:8", "2:11"}}},
		{"COPY not JSON falls back to words", "FROM scratch\nCOPY [ab]*.yaml dir/", want{kw: "COPY", args: []string{"[ab]*.yaml", "dir/"}}},
		{"ADD local", "FROM scratch\nADD app.tar.gz /opt/", want{kw: "ADD", args: []string{"app.tar.gz", "/opt/"}}},
		{"ADD remote pinned", "FROM scratch\nADD --checksum=sha256:" + strings.Repeat("a", 64) + " https://example.com/x.tgz x.tgz", want{kw: "ADD", args: []string{"https://example.com/x.tgz", "x.tgz"}, flags: []Flag{{Name: "checksum", Value: "sha256:" + strings.Repeat("a", 64)}}}},
		{"ADD several sources", "FROM scratch\nADD a b dir/", want{kw: "ADD", args: []string{"a", "b", "dir/"}}},
		{"ARG name", "ARG VERSION", want{kw: "ARG", args: []string{"VERSION"}}},
		{"ARG default", "ARG VERSION=v1.0", want{kw: "ARG", args: []string{"VERSION=v1.0"}}},
		{"ARG default with =", "ARG OPTS=a=b,c=d", want{kw: "ARG", args: []string{"OPTS=a=b,c=d"}}},
		{"ARG quoted", `ARG MSG="hello world" B='x y'`, want{kw: "ARG", args: []string{`MSG="hello world"`, `B='x y'`}, argPos: []string{"1:5", "1:23"}}},
		{"ARG escaped blank", `ARG A=a\ b`, want{kw: "ARG", args: []string{`A=a\ b`}}},
		{"LABEL pairs", `FROM scratch` + "\n" + `LABEL "cluster.alpha.sealer.io/cluster-runtime-type"="kubernetes" b=c`, want{kw: "LABEL", args: []string{`"cluster.alpha.sealer.io/cluster-runtime-type"="kubernetes"`, "b=c"}}},
		{"LABEL legacy", "FROM scratch\nLABEL maintainer  some one  <a@b>", want{kw: "LABEL", args: []string{"maintainer", "some one  <a@b>"}, legacy: true, argPos: []string{"2:7", "2:19"}}},
		{"MAINTAINER", "FROM scratch\nMAINTAINER Jane Doe <jane@example.com>", want{kw: "MAINTAINER", args: []string{"Jane Doe <jane@example.com>"}}},
		{"ENV pairs", "FROM scratch\nENV a=1 b=\"two words\"", want{kw: "ENV", args: []string{"a=1", `b="two words"`}}},
		{"ENV legacy", "FROM scratch\nENV a one two", want{kw: "ENV", args: []string{"a", "one two"}, legacy: true}},
		{"APP local", "FROM scratch\nAPP nginx local://nginx.yaml", want{kw: "APP", args: []string{"nginx", "local://nginx.yaml"}}},
		{"APP several", "FROM scratch\nAPP c local://Chart.yaml local://values.yaml local://templates", want{kw: "APP", args: []string{"c", "local://Chart.yaml", "local://values.yaml", "local://templates"}}},
		{"APP remote", "FROM scratch\nAPP x https://example.com/x.yaml#sha256=" + strings.Repeat("0", 64), want{kw: "APP", args: []string{"x", "https://example.com/x.yaml#sha256=" + strings.Repeat("0", 64)}}},
		{"APP JSON", "FROM scratch\nAPP [\"nginx\", \"local://nginx.yaml\"]", want{kw: "APP", args: []string{"nginx", "local://nginx.yaml"}, json: true}},
		{"APPCMDS", "FROM scratch\nAPPCMDS nginx [\"kubectl apply -f nginx.yaml -n web\"]", want{kw: "APPCMDS", args: []string{"nginx", "kubectl apply -f nginx.yaml -n web"}, json: true, argPos: []string{"2:9", "2:16"}}},
		{"APPCMDS several", "FROM scratch\nAPPCMDS nginx [\"a\", \"b c\"]", want{kw: "APPCMDS", args: []string{"nginx", "a", "b c"}, json: true}},
		{"APPCMDS empty", "FROM scratch\nAPPCMDS nginx []", want{kw: "APPCMDS", args: []string{"nginx"}, json: true}},
		{"APPENV", "FROM scratch\nAPPENV nginx replicas=2 image=nginx:1.25", want{kw: "APPENV", args: []string{"nginx", "replicas=2", "image=nginx:1.25"}}},
		{"CNI", "FROM scratch\nCNI calico local://calico.sh", want{kw: "CNI", args: []string{"calico", "local://calico.sh"}}},
		{"CSI", "FROM scratch\nCSI openebs local://openebs", want{kw: "CSI", args: []string{"openebs", "local://openebs"}}},
		{"KUBEVERSION", "FROM scratch\nKUBEVERSION >=1.20.0 <1.30.0", want{kw: "KUBEVERSION", args: []string{">=1.20.0 <1.30.0"}}},
		{"LAUNCH JSON", "FROM scratch\nLAUNCH [\"a\", \"b\"]", want{kw: "LAUNCH", args: []string{"a", "b"}, json: true}},
		{"LAUNCH words", "FROM scratch\nLAUNCH a b", want{kw: "LAUNCH", args: []string{"a", "b"}}},
		{"CMDS JSON", "FROM scratch\nCMDS [\"kubectl apply -f x.yaml\", \"echo done\"]", want{kw: "CMDS", args: []string{"kubectl apply -f x.yaml", "echo done"}, json: true}},
		{"CMDS one word", "FROM scratch\nCMDS ./install.sh", want{kw: "CMDS", args: []string{"./install.sh"}}},
		{"CMD shell", "FROM scratch\nCMD kubectl apply -f x.yaml --dry-run", want{kw: "CMD", args: []string{"kubectl apply -f x.yaml --dry-run"}}},
		{"CMD keeps leading dashes", "FROM scratch\nCMD --help", want{kw: "CMD", args: []string{"--help"}}},
		{"RUN parses", "FROM scratch\nRUN echo hi", want{kw: "RUN", args: []string{"echo", "hi"}}},
		{"unknown parses", "FROM scratch\nEXPOSE 80", want{kw: "EXPOSE", args: []string{"80"}}},
		{"continuation", "FROM scratch\nCOPY \\\n  rootfs \\\n  .", want{kw: "COPY", args: []string{"rootfs", "."}, argPos: []string{"3:3", "4:3"}}},
		{"continuation with trailing blanks", "FROM scratch\nCOPY a \\  \t\n b", want{kw: "COPY", args: []string{"a", "b"}, argPos: []string{"2:6", "3:2"}}},
		{"continuation skips comments and blank lines", "FROM scratch\nLAUNCH [\"a\", \\\n# a comment\n   # another\n\n \"b\"]", want{kw: "LAUNCH", args: []string{"a", "b"}, json: true, argPos: []string{"2:9", "6:2"}}},
		{"inline # is not a comment", "FROM scratch\nLABEL a=b#c", want{kw: "LABEL", args: []string{"a=b#c"}}},
		{"escape directive backtick", "# escape=`\nFROM scratch\nCOPY a `\n b", want{kw: "COPY", args: []string{"a", "b"}}},
		{"escape directive keeps backslash", "# escape=`\nFROM scratch\nCOPY a\\ b", want{kw: "COPY", args: []string{`a\`, "b"}}},
		{"BOM", "\ufeffFROM scratch", want{kw: "FROM", args: []string{"scratch"}, pos: "1:1"}},
		{"CRLF", "FROM scratch\r\nCOPY a b\r\n", want{kw: "COPY", args: []string{"a", "b"}}},
		{"flag end marker", "FROM scratch\nCOPY -- --weird dest", want{kw: "COPY", args: []string{"--weird", "dest"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := Parse("Kubefile", []byte(tt.src))
			if len(f.Instructions) == 0 {
				t.Fatalf("no instructions")
			}
			in := f.Instructions[len(f.Instructions)-1]
			if in.Keyword != tt.want.kw {
				t.Errorf("Keyword = %q, want %q", in.Keyword, tt.want.kw)
			}
			if !reflect.DeepEqual(in.Args, tt.want.args) && !(len(in.Args) == 0 && len(tt.want.args) == 0) {
				t.Errorf("Args = %q, want %q", in.Args, tt.want.args)
			}
			var flags []Flag
			for _, fl := range in.Flags {
				flags = append(flags, Flag{Name: fl.Name, Value: fl.Value})
			}
			if !reflect.DeepEqual(flags, tt.want.flags) {
				t.Errorf("Flags = %+v, want %+v", flags, tt.want.flags)
			}
			if in.JSON != tt.want.json {
				t.Errorf("JSON = %v, want %v", in.JSON, tt.want.json)
			}
			if in.Legacy != tt.want.legacy {
				t.Errorf("Legacy = %v, want %v", in.Legacy, tt.want.legacy)
			}
			if tt.want.pos != "" && lineCol(in.Pos) != tt.want.pos {
				t.Errorf("Pos = %s, want %s", lineCol(in.Pos), tt.want.pos)
			}
			if tt.want.argPos != nil {
				var got []string
				for _, p := range in.ArgPos {
					got = append(got, lineCol(p))
				}
				if !reflect.DeepEqual(got, tt.want.argPos) {
					t.Errorf("ArgPos = %v, want %v", got, tt.want.argPos)
				}
			}
			if len(in.ArgPos) != len(in.Args) {
				t.Errorf("len(ArgPos) = %d, len(Args) = %d", len(in.ArgPos), len(in.Args))
			}
		})
	}
}

func lineCol(p Pos) string {
	return strings.TrimPrefix(p.String(), p.File+":")
}

func TestParseFileShape(t *testing.T) {
	src := "\ufeff# escape=`\n\n# comment\nFROM scratch\nCOPY a `\n   b\nLAUNCH [\"x\"]\n"
	f, ds := Parse("dir/Kubefile", []byte(src))
	if f.Name != "dir/Kubefile" || f.Escape != '`' {
		t.Errorf("Name, Escape = %q, %q", f.Name, f.Escape)
	}
	if len(f.Instructions) != 3 {
		t.Fatalf("got %d instructions", len(f.Instructions))
	}
	cp := f.Instructions[1]
	if cp.Pos.String() != "dir/Kubefile:5:1" || cp.EndLine != 6 {
		t.Errorf("COPY at %s..%d, want dir/Kubefile:5:1..6", cp.Pos, cp.EndLine)
	}
	if cp.Raw != "a    b" || cp.Original != "COPY a    b" {
		t.Errorf("Raw %q Original %q", cp.Raw, cp.Original)
	}
	// LAUNCH x is an unknown app (scratch has none).
	if len(ds.Errors()) != 0 {
		t.Errorf("Parse reported %v", ds)
	}
}

func TestDirectivesOnlyAtTheTop(t *testing.T) {
	for _, tt := range []struct {
		src    string
		escape rune
	}{
		{"# escape=`\nFROM scratch", '`'},
		{"#ESCAPE = `  trailing ignored\nFROM scratch", '`'},
		{"\n# escape=`\nFROM scratch", '\\'},            // a blank line ends the directives
		{"# a comment\n# escape=`\nFROM scratch", '\\'}, // so does a comment
		{"FROM scratch\n# escape=`", '\\'},
	} {
		f, ds := Parse("Kubefile", []byte(tt.src))
		if f.Escape != tt.escape || ds.HasErrors() {
			t.Errorf("%q: Escape = %q, diagnostics %v", tt.src, f.Escape, ds)
		}
	}
}
