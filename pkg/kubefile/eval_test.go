package kubefile

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
)

func evaluate(t *testing.T, src string, opts EvalOptions) *Image {
	t.Helper()
	f, ds := Parse("Kubefile", []byte(src))
	if err := ds.Err(); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	img, ds := Evaluate(f, opts)
	if err := ds.Err(); err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return img
}

func stepTexts(img *Image) []string {
	var out []string
	for _, s := range img.Steps {
		out = append(out, s.Text)
	}
	return out
}

// TestEvaluateForms has one entry per instruction (valid forms): the
// canonical step texts and the image fields each one sets.
func TestEvaluateForms(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		opts  EvalOptions
		steps []string
		check func(t *testing.T, img *Image)
	}{
		{name: "FROM scratch", src: "FROM scratch", check: func(t *testing.T, img *Image) {
			if !img.From.IsScratch() || img.From.Platform != nil || len(img.Steps) != 0 {
				t.Errorf("From = %+v, steps %v", img.From, img.Steps)
			}
		}},
		{name: "FROM image with platform", src: "FROM --platform=linux/arm64 docker.io/sealerio/kubernetes:v1.22.15", check: func(t *testing.T, img *Image) {
			if img.From.Ref != "docker.io/sealerio/kubernetes:v1.22.15" || img.From.Platform == nil || oci.PlatformString(*img.From.Platform) != "linux/arm64" {
				t.Errorf("From = %+v", img.From)
			}
		}},
		{name: "FROM --platform from built-in", src: "FROM --platform=$TARGETPLATFORM base:v1", opts: EvalOptions{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}, check: func(t *testing.T, img *Image) {
			if img.From.Platform == nil || !oci.EqualPlatform(*img.From.Platform, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}) {
				t.Errorf("From.Platform = %+v", img.From.Platform)
			}
		}},
		{name: "COPY", src: "FROM scratch\nCOPY rootfs .\nCOPY ./imageList /manifests/\nCOPY [\"bin/tool\", \"usr/bin/tool\"]", steps: []string{
			"COPY rootfs .", "COPY imageList manifests/", "COPY bin/tool usr/bin/tool"}, check: func(t *testing.T, img *Image) {
			s := img.Steps[1]
			if s.Kind != StepCopy || s.Dest != "manifests/" || s.Sources[0].Path != "imageList" || s.Unpack {
				t.Errorf("step = %+v", s)
			}
		}},
		{name: "COPY ARCH", src: "FROM scratch\nCOPY ${ARCH}/bin ./bin\nCOPY $ARCH .", opts: EvalOptions{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64"}}, steps: []string{
			"COPY arm64/bin bin", "COPY arm64 ."}},
		{name: "COPY glob", src: "FROM scratch\nCOPY manifests/*.yaml m/", steps: []string{"COPY manifests/*.yaml m/"}, check: func(t *testing.T, img *Image) {
			if !img.Steps[0].Sources[0].Glob {
				t.Errorf("Glob not set")
			}
		}},
		{name: "COPY dest clamps to the root", src: "FROM scratch\nCOPY rootfs ../../x", steps: []string{"COPY rootfs x"}},
		{name: "COPY quoted", src: "FROM scratch\nCOPY \"rootfs\" 'a'\nCOPY [\"rootfs\", \"a b\"]", steps: []string{`COPY rootfs a`, `COPY rootfs "a b"`}},
		{name: "ADD local", src: "FROM scratch\nADD app.tar.gz /opt/", steps: []string{"ADD app.tar.gz opt/"}, check: func(t *testing.T, img *Image) {
			if !img.Steps[0].Unpack {
				t.Errorf("Unpack not set")
			}
		}},
		{name: "ADD several", src: "FROM scratch\nADD app.tar.gz README.md /opt/", steps: []string{"ADD app.tar.gz README.md opt/"}},
		{name: "ADD remote", src: "FROM scratch\nADD --checksum=sha256:" + strings.ToUpper(sha) + " https://example.com/x.tgz /opt/x.tgz", steps: []string{
			"ADD --checksum=sha256:" + sha + " https://example.com/x.tgz opt/x.tgz"}, check: func(t *testing.T, img *Image) {
			s := img.Steps[0].Sources[0]
			if s.URL != "https://example.com/x.tgz" || s.Checksum != "sha256:"+sha || !s.IsRemote() {
				t.Errorf("source = %+v", s)
			}
		}},
		{name: "ARG", src: "FROM scratch\nARG A\nARG B=1 C=\"x y\"", steps: []string{"ARG A", `ARG B=1 C="x y"`}, check: func(t *testing.T, img *Image) {
			s := img.Steps[0]
			if s.Kind != StepArg || !s.Pairs[0].Unset {
				t.Errorf("step = %+v", s)
			}
		}},
		{name: "LABEL", src: "FROM scratch\nLABEL \"cluster.alpha.sealer.io/cluster-runtime-type\"=\"kubernetes\" b=\"two words\"\nLABEL legacy some text", steps: []string{
			`LABEL cluster.alpha.sealer.io/cluster-runtime-type=kubernetes b="two words"`, `LABEL legacy="some text"`}, check: func(t *testing.T, img *Image) {
			want := map[string]string{"cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes", "b": "two words", "legacy": "some text"}
			if !reflect.DeepEqual(img.Labels, want) {
				t.Errorf("Labels = %v", img.Labels)
			}
			if s := img.Steps[0]; s.Kind != StepLabel || s.Key != "cluster.alpha.sealer.io/cluster-runtime-type" || s.Value != "kubernetes" || len(s.Pairs) != 2 {
				t.Errorf("step = %+v", s)
			}
		}},
		{name: "MAINTAINER", src: "FROM scratch\nMAINTAINER Jane <j@example.com>", steps: []string{"MAINTAINER Jane <j@example.com>"}, check: func(t *testing.T, img *Image) {
			if img.Author != "Jane <j@example.com>" || img.Steps[0].Kind != StepMaintainer || img.Steps[0].Value != img.Author {
				t.Errorf("Author %q step %+v", img.Author, img.Steps[0])
			}
		}},
		{name: "ENV", src: "FROM scratch\nENV globalKey=globalValue b=\"x y\"\nENV legacy a b", steps: []string{
			"ENV globalKey=globalValue b=\"x y\"", "ENV legacy=\"a b\""}, check: func(t *testing.T, img *Image) {
			want := map[string]string{"globalKey": "globalValue", "b": "x y", "legacy": "a b"}
			if !reflect.DeepEqual(img.Env, want) || img.Steps[0].Kind != StepEnv {
				t.Errorf("Env = %v", img.Env)
			}
		}},
		{name: "APP kube", src: "FROM scratch\nAPP nginx local://nginx.yaml", steps: []string{"APP nginx local://nginx.yaml"}, check: func(t *testing.T, img *Image) {
			s := img.Steps[0]
			if s.Kind != StepCopy || s.Dest != "application/apps/nginx/" || s.App != "nginx" {
				t.Errorf("step = %+v", s)
			}
			want := App{Name: "nginx", Type: "kube", Files: []string{"nginx.yaml"}, Kind: "APP", Sources: s.Sources, Pos: s.Pos, TypeKnown: true}
			if !reflect.DeepEqual(img.Apps, []App{want}) {
				t.Errorf("Apps = %+v", img.Apps)
			}
		}},
		{name: "APP remote", src: "FROM scratch\nAPP x https://example.com/dl/x.yaml?v=1#sha256=" + sha, opts: EvalOptions{Context: nil}, steps: []string{
			"APP x https://example.com/dl/x.yaml?v=1#sha256=" + sha}, check: func(t *testing.T, img *Image) {
			a := img.Apps[0]
			if a.Type != "kube" || !reflect.DeepEqual(a.Files, []string{"x.yaml"}) || a.Sources[0].URL != "https://example.com/dl/x.yaml?v=1" || a.Sources[0].Checksum != "sha256:"+sha {
				t.Errorf("app = %+v", a)
			}
		}},
		{name: "APP with variable source", src: "FROM scratch\nARG M=manifests\nAPP m local://${M}/", steps: []string{"ARG M=manifests", "APP m local://manifests"}},
		{name: "CNI", src: "FROM scratch\nCNI calico local://calico.sh", steps: []string{"CNI calico local://calico.sh", "LABEL cluster.alpha.sealer.io/kube-cni-calico=true"}, check: func(t *testing.T, img *Image) {
			if img.Labels[LabelKubeCNIPrefix+"calico"] != "true" || img.Apps[0].Kind != "CNI" || img.Apps[0].Type != "shell" || img.Steps[1].Kind != StepLabel {
				t.Errorf("labels %v apps %+v", img.Labels, img.Apps)
			}
		}},
		{name: "CSI", src: "FROM scratch\nCSI openebs local://chart", steps: []string{"CSI openebs local://chart", "LABEL cluster.alpha.sealer.io/kube-csi-openebs=true"}, check: func(t *testing.T, img *Image) {
			if img.Labels[LabelKubeCSIPrefix+"openebs"] != "true" || img.Apps[0].Type != "helm" {
				t.Errorf("labels %v apps %+v", img.Labels, img.Apps)
			}
		}},
		{name: "APPCMDS", src: "FROM scratch\nAPP m local://mixed\nAPPCMDS m [\"bash a.sh && kubectl apply -f b.yaml\"]", steps: []string{
			"APP m local://mixed", `APPCMDS m ["bash a.sh && kubectl apply -f b.yaml"]`}, check: func(t *testing.T, img *Image) {
			if a := img.Apps[0]; a.Type != "" || !reflect.DeepEqual(a.Cmds, []string{"bash a.sh && kubectl apply -f b.yaml"}) || img.Steps[1].Kind != StepMeta || img.Steps[1].App != "m" {
				t.Errorf("app %+v", a)
			}
		}},
		{name: "APPCMDS not expanded", src: "FROM scratch\nAPP m local://mixed\nAPPCMDS m [\"echo $HOME ${ARCH}\"]", steps: []string{"APP m local://mixed", `APPCMDS m ["echo $HOME ${ARCH}"]`}},
		{name: "APPENV", src: "FROM scratch\nARG R=2\nAPP nginx local://nginx.yaml\nAPPENV nginx replicas=$R a=b=c\nAPPENV nginx more=1", steps: []string{
			"ARG R=2", "APP nginx local://nginx.yaml", "APPENV nginx replicas=2 a=b=c", "APPENV nginx more=1"}, check: func(t *testing.T, img *Image) {
			want := map[string]string{"replicas": "2", "a": "b=c", "more": "1"}
			if !reflect.DeepEqual(img.Apps[0].Env, want) {
				t.Errorf("Env = %v", img.Apps[0].Env)
			}
		}},
		{name: "KUBEVERSION", src: "FROM scratch\nKUBEVERSION >=1.20.0 <1.30.0", steps: []string{`LABEL app.alpha.sealer.io/supported-kube-version=">=1.20.0 <1.30.0"`}, check: func(t *testing.T, img *Image) {
			if img.Labels[LabelSupportedKubeVersion] != ">=1.20.0 <1.30.0" || img.Steps[0].Kind != StepLabel {
				t.Errorf("labels %v", img.Labels)
			}
		}},
		{name: "LAUNCH", src: "FROM scratch\nAPP a local://nginx.yaml\nCNI b local://calico.sh\nLAUNCH a b", steps: []string{
			"APP a local://nginx.yaml", "CNI b local://calico.sh", "LABEL cluster.alpha.sealer.io/kube-cni-b=true", `LAUNCH ["a","b"]`}, check: func(t *testing.T, img *Image) {
			if img.Launch == nil || !reflect.DeepEqual(img.Launch.AppNames, []string{"a", "b"}) || img.Launch.Cmds != nil || img.Launch.Pos.Line != 4 {
				t.Errorf("Launch = %+v", img.Launch)
			}
		}},
		{name: "CMDS", src: "FROM scratch\nCMDS [\"kubectl apply -f $X\", \"echo done\"]", steps: []string{`CMDS ["kubectl apply -f $X","echo done"]`}, check: func(t *testing.T, img *Image) {
			if img.Launch == nil || !reflect.DeepEqual(img.Launch.Cmds, []string{"kubectl apply -f $X", "echo done"}) {
				t.Errorf("Launch = %+v", img.Launch)
			}
		}},
		{name: "CMD and CMDS accumulate", src: "FROM scratch\nCMD echo one   two\nCMD echo three\nCMDS [\"echo four\"]", steps: []string{
			"CMD echo one   two", "CMD echo three", `CMDS ["echo four"]`}, check: func(t *testing.T, img *Image) {
			if !reflect.DeepEqual(img.Launch.Cmds, []string{"echo one   two", "echo three", "echo four"}) || img.Launch.Pos.Line != 2 {
				t.Errorf("Launch = %+v", img.Launch)
			}
		}},
		{name: "inherited app updates", src: "FROM base:v1\nAPPENV calico mtu=1440\nAPPCMDS calico [\"bash calico.sh\"]\nAPPENV calico x=y\nAPPCMDS other []\nLAUNCH [\"calico\"]", opts: EvalOptions{BaseApps: []string{"calico", "other"}}, check: func(t *testing.T, img *Image) {
			want := []AppUpdate{
				{Name: "calico", Cmds: []string{"bash calico.sh"}, CmdsSet: true, Env: map[string]string{"mtu": "1440", "x": "y"}, Pos: Pos{"Kubefile", 3, 1}},
				{Name: "other", Cmds: []string{}, CmdsSet: true, Pos: Pos{"Kubefile", 5, 1}},
			}
			if !reflect.DeepEqual(img.AppUpdates, want) || len(img.Apps) != 0 {
				t.Errorf("AppUpdates = %+v", img.AppUpdates)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.Context == nil && !strings.Contains(tt.name, "remote") {
				opts.Context = testContext()
			}
			img := evaluate(t, tt.src, opts)
			if tt.steps != nil && !reflect.DeepEqual(stepTexts(img), tt.steps) {
				t.Errorf("steps:\n got %q\nwant %q", stepTexts(img), tt.steps)
			}
			for _, s := range img.Steps {
				if s.Instr == nil || s.Pos != s.Instr.Pos {
					t.Errorf("step %q: Instr/Pos not set", s.Text)
				}
			}
			if tt.check != nil {
				tt.check(t, img)
			}
		})
	}
}

// TestArgs covers ARG, --build-arg and ENV scoping, Dockerfile-style.
func TestArgs(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		args   map[string]string
		plat   ocispec.Platform
		labels map[string]string
		from   string
		used   []string
	}{
		{name: "ARG before FROM feeds FROM", src: "ARG BASE=base:v1\nFROM ${BASE}", from: "base:v1"},
		{name: "build arg overrides the default", src: "ARG BASE=base:v1\nFROM ${BASE}", args: map[string]string{"BASE": "other:v2"}, from: "other:v2", used: []string{"BASE"}},
		{name: "build arg for an ARG without default", src: "FROM scratch\nARG V\nLABEL v=$V", args: map[string]string{"V": "1"}, labels: map[string]string{"v": "1"}, used: []string{"V"}},
		{name: "redeclared ARG inherits the global value", src: "ARG V=1\nFROM scratch\nARG V\nLABEL v=$V", labels: map[string]string{"v": "1"}},
		{name: "redeclared ARG inherits the global build arg", src: "ARG V=1\nFROM scratch\nARG V\nLABEL v=$V", args: map[string]string{"V": "2"}, labels: map[string]string{"v": "2"}, used: []string{"V"}},
		{name: "ARG default containing =", src: "FROM scratch\nARG OPTS=a=b,c=d\nLABEL o=$OPTS", labels: map[string]string{"o": "a=b,c=d"}},
		{name: "build arg containing =", src: "FROM scratch\nARG OPTS\nLABEL o=$OPTS", args: map[string]string{"OPTS": "k=v=w"}, labels: map[string]string{"o": "k=v=w"}, used: []string{"OPTS"}},
		{name: "build arg is not expanded", src: "FROM scratch\nARG V\nLABEL v=$V", args: map[string]string{"V": "$HOME"}, labels: map[string]string{"v": "$HOME"}, used: []string{"V"}},
		{name: "ARG default uses an earlier ARG", src: "FROM scratch\nARG A=x\nARG B=${A}y\nLABEL b=$B", labels: map[string]string{"b": "xy"}},
		{name: "ENV overrides ARG", src: "FROM scratch\nARG A=1\nENV A=2\nLABEL a=$A", labels: map[string]string{"a": "2"}},
		{name: "ENV values see the previous values", src: "FROM scratch\nENV A=1\nENV A=2 B=$A\nLABEL a=$A b=$B", labels: map[string]string{"a": "2", "b": "1"}},
		{name: "LABEL values see the previous values", src: "FROM scratch\nENV A=1\nLABEL a=$A", labels: map[string]string{"a": "1"}},
		{name: "unused build arg", src: "FROM scratch", args: map[string]string{"NOPE": "1"}},
		{name: "build args used before and after FROM", src: "ARG A\nFROM scratch\nARG B", args: map[string]string{"A": "1", "B": "2", "C": "3"}, used: []string{"A", "B"}},
		{name: "built-ins", src: "FROM scratch\nLABEL a=$ARCH t=$TARGETARCH o=$TARGETOS v=$TARGETVARIANT p=$TARGETPLATFORM", plat: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
			labels: map[string]string{"a": "arm64", "t": "arm64", "o": "linux", "v": "v8", "p": "linux/arm64/v8"}},
		{name: "built-ins default to linux/amd64", src: "FROM scratch\nLABEL p=$TARGETPLATFORM", labels: map[string]string{"p": "linux/amd64"}},
		{name: "built-in declared as ARG", src: "FROM scratch\nARG TARGETARCH\nLABEL a=$TARGETARCH", plat: ocispec.Platform{OS: "linux", Architecture: "arm64"}, labels: map[string]string{"a": "arm64"}},
		{name: "built-ins in FROM", src: "FROM base-${ARCH}:v1", plat: ocispec.Platform{OS: "linux", Architecture: "arm64"}, from: "base-arm64:v1"},
		{name: "escaped dollar stays", src: "FROM scratch\nLABEL price=\\$5 q='$ARCH'", labels: map[string]string{"price": "$5", "q": "$ARCH"}},
		{name: "backtick escape", src: "# escape=`\nFROM scratch\nLABEL p=C:\\x`$ARCH", labels: map[string]string{"p": `C:\x$ARCH`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := evaluate(t, tt.src, EvalOptions{BuildArgs: tt.args, Platform: tt.plat, Context: testContext()})
			if tt.labels == nil {
				tt.labels = map[string]string{}
			}
			if !reflect.DeepEqual(img.Labels, tt.labels) {
				t.Errorf("Labels = %v, want %v", img.Labels, tt.labels)
			}
			if tt.from != "" && img.From.Ref != tt.from {
				t.Errorf("From = %q, want %q", img.From.Ref, tt.from)
			}
			if !reflect.DeepEqual(img.UsedArgs, tt.used) {
				t.Errorf("UsedArgs = %v, want %v", img.UsedArgs, tt.used)
			}
		})
	}
}

// TestAppTypes follows sealer's detection rules (build/kubefile/parser/utils.go).
func TestAppTypes(t *testing.T) {
	ctx := testContext()
	ctx["kube/x.yaml"] = fileA
	ctx["kube/deep/y.YML"] = fileA
	ctx["shell/run.sh"] = fileA
	ctx["shell/lib/util.sh"] = fileA
	ctx["empty"] = &fstest.MapFile{Mode: 0o755 | 1<<31} // fs.ModeDir
	ctx["flat/Chart.yaml"] = fileA
	ctx["flat/values.yaml"] = fileA
	ctx["flat/templates"] = fileA // a file named templates still counts, as in sealer
	ctx[".hidden.yaml"] = fileA
	tests := []struct {
		sources string
		typ     string
		files   []string
	}{
		{"local://chart", "helm", []string{"app"}},
		{"local://chart/", "helm", []string{"app"}},
		{"local://flat", "helm", []string{"app"}},
		{"local://chart/Chart.yaml local://chart/values.yaml local://flat/templates", "helm", []string{"app"}},
		{"local://nginx.yaml", "kube", []string{"nginx.yaml"}},
		{"local://manifests", "kube", []string{"/a.yaml", "/sub/b.yml"}},
		{"local://manifests/", "kube", []string{"a.yaml", "sub/b.yml"}},
		{"local://./manifests", "kube", []string{"/a.yaml", "/sub/b.yml"}},
		{"local://nginx.yaml local://kube", "kube", []string{"nginx.yaml", "/deep/y.YML", "/x.yaml"}},
		{"local://.hidden.yaml", "kube", []string{".hidden.yaml"}},
		{"local://calico.sh", "shell", []string{"calico.sh"}},
		{"local://scripts", "shell", []string{"/a.sh", "/b.sh"}},
		{"local://scripts/ local://calico.sh", "shell", []string{"a.sh", "b.sh"}},
		{"local://calico.sh local://scripts", "shell", []string{"calico.sh"}},
		{"local://shell", "shell", []string{"/lib/util.sh", "/run.sh"}},
		{"local://mixed", "", nil},
		{"local://calico.sh local://nginx.yaml", "", nil},
		{"local://README.md", "", nil},
		{"local://nginx.yaml local://README.md", "", nil},
		{"local://empty", "", nil},
		{"https://e.com/a/install.sh#sha256=" + sha, "shell", []string{"install.sh"}},
		{"https://e.com/a/x.yml#sha256=" + sha + " local://nginx.yaml", "kube", []string{"nginx.yaml", "x.yml"}}, // locals first, as sealer copies them
		{"https://e.com/chart.tgz#sha256=" + sha, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.sources, func(t *testing.T) {
			f, ds := Parse("Kubefile", []byte("FROM scratch\nAPP app "+tt.sources+"\nAPPCMDS app [\"x\"]"))
			if err := ds.Err(); err != nil {
				t.Fatal(err)
			}
			img, ds := Evaluate(f, EvalOptions{Context: ctx})
			if err := ds.Err(); err != nil {
				t.Fatal(err)
			}
			a := img.Apps[0]
			if a.Type != tt.typ || !reflect.DeepEqual(a.Files, tt.files) {
				t.Errorf("type %q files %q, want %q %q", a.Type, a.Files, tt.typ, tt.files)
			}
		})
	}
}

func TestNoContext(t *testing.T) {
	// Without a build context nothing is checked against files and local
	// apps keep an unknown type without requiring APPCMDS.
	img := evaluate(t, "FROM scratch\nCOPY nope .\nAPP m local://whatever\nLAUNCH [\"m\"]", EvalOptions{})
	if img.Apps[0].TypeKnown || img.Apps[0].Type != "" {
		t.Errorf("app = %+v", img.Apps[0])
	}
}

func TestRedeclaredAppKeepsFirstPosition(t *testing.T) {
	img := evaluate(t, "FROM scratch\nAPP a local://mixed\nAPP b local://nginx.yaml\nAPPCMDS a [\"x\"]\nAPP a local://calico.sh", EvalOptions{Context: testContext()})
	if len(img.Apps) != 2 || img.Apps[0].Name != "a" || img.Apps[0].Type != "shell" || img.Apps[0].Pos.Line != 5 || !reflect.DeepEqual(img.Apps[0].Cmds, []string{"x"}) {
		t.Errorf("Apps = %+v", img.Apps)
	}
}

// TestHandBuiltFile makes sure Evaluate copes with Files not made by Parse
// (no positions, missing arguments) without panicking.
func TestHandBuiltFile(t *testing.T) {
	var ins []Instruction
	for _, kw := range append(append([]string{}, Supported...), KwRun, "EXPOSE") {
		ins = append(ins, Instruction{Keyword: kw})
		ins = append(ins, Instruction{Keyword: kw, Args: []string{"a=b", "local://x", "c"}, Legacy: kw == KwLabel})
		ins = append(ins, Instruction{Keyword: kw, Args: []string{"x"}, Flags: []Flag{{Name: "platform"}, {Name: "checksum", Value: "$X"}}})
	}
	f := &File{Name: "Kubefile", Instructions: ins}
	for _, opts := range []EvalOptions{{}, {Context: testContext(), BaseApps: []string{}}} {
		img, ds := Evaluate(f, opts)
		if img == nil || !ds.HasErrors() {
			t.Errorf("Evaluate = %v, %v", img, ds)
		}
	}
}
