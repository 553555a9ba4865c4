package contents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/buildcontext"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/kubefile"
)

// resolve evaluates kf in a context holding files and resolves it.
func resolve(t *testing.T, kf string, files map[string]string, opts Options) (*Contents, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc, err := buildcontext.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	f, diags := kubefile.Parse("Kubefile", []byte(kf))
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	eo := kubefile.EvalOptions{Context: bc.FS()}
	if opts.BaseExtension != nil {
		eo.BaseApps = opts.BaseExtension.AppNames()
	}
	img, diags := kubefile.Evaluate(f, eo)
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	opts.Context = bc
	c, err := Resolve(t.Context(), img, opts)
	if c != nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

// names lists each copy's entry names and modes, one copy per string.
func names(c *Contents) []string {
	var out []string
	for _, cp := range c.Copies {
		var es []string
		for _, e := range cp.Entries {
			es = append(es, fmt.Sprintf("%s:%o", e.Name, e.Mode.Perm()))
		}
		sort.Strings(es)
		out = append(out, strings.Join(es, " "))
	}
	return out
}

// Where files go: Docker's rules, with the image's directories (the
// base's, and those earlier steps added) making a bare destination a
// directory to copy into.
func TestDestinations(t *testing.T) {
	files := map[string]string{"a.yaml": "a", "b.yaml": "b", "d/c.yaml": "c"}
	baseDirs := func(name string) bool { return name == "etc/app" }
	for _, tt := range []struct {
		name, kf string
		want     []string
	}{
		{"file to a new name", "FROM scratch\nCOPY a.yaml etc/x.yaml\n", []string{"etc/x.yaml:644"}},
		{"trailing slash", "FROM scratch\nCOPY a.yaml etc/\n", []string{"etc/a.yaml:644"}},
		{"the root", "FROM scratch\nCOPY a.yaml .\n", []string{"a.yaml:644"}},
		{"a directory of the base", "FROM scratch\nCOPY a.yaml etc/app\n", []string{"etc/app/a.yaml:644"}},
		{"a directory /-rooted", "FROM scratch\nCOPY a.yaml /etc/app\n", []string{"etc/app/a.yaml:644"}},
		{"a directory an earlier step made", "FROM scratch\nCOPY d opt/d\nCOPY a.yaml opt/d\n", []string{"opt/d/c.yaml:644 opt/d:755", "opt/d/a.yaml:644"}},
		{"several sources", "FROM scratch\nADD a.yaml b.yaml opt/\n", []string{"opt/a.yaml:644 opt/b.yaml:644"}},
		{"a glob of several files", "FROM scratch\nCOPY *.yaml opt\n", []string{"opt/a.yaml:644 opt/b.yaml:644"}},
		{"an app", "FROM scratch\nAPP x local://a.yaml\n", []string{"application/apps/x/a.yaml:644"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := resolve(t, tt.kf, files, Options{BaseIsDir: baseDirs})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(c); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A remote source is downloaded (named after the URL, mode DownloadMode)
// or, with no Download, left out and named in Skipped; Remote lists it
// either way.
func TestRemoteSources(t *testing.T) {
	const sum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	kf := "FROM scratch\nADD --checksum=" + sum + " http://127.0.0.1:1/x/tool.sh?v=1 opt/\nCOPY a.yaml opt/\n"
	files := map[string]string{"a.yaml": "a"}
	dl := filepath.Join(t.TempDir(), "dl")
	os.WriteFile(dl, []byte("#!/bin/sh\n"), 0o700)
	var asked []string
	c, err := resolve(t, kf, files, Options{Download: func(_ context.Context, src kubefile.Source) (string, error) {
		asked = append(asked, src.URL+" "+src.Checksum)
		return dl, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(c), "|"); got != "opt/tool.sh:644|opt/a.yaml:644" {
		t.Errorf("entries %s", got)
	}
	if len(asked) != 1 || asked[0] != "http://127.0.0.1:1/x/tool.sh?v=1 "+sum || len(c.Remote) != 1 {
		t.Errorf("downloads %q, remote %v", asked, c.Remote)
	}
	if e := c.Copies[0].Entries[0]; e.Source != dl || e.Size != 10 {
		t.Errorf("download entry %+v", e)
	}

	c, err = resolve(t, kf, files, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Copies[0].Entries) != 0 || len(c.Copies[0].Skipped) != 1 || len(c.Remote) != 1 {
		t.Errorf("without Download: %+v, remote %v", c.Copies[0], c.Remote)
	}
}

// The extension is sealer's: inherited apps, this file's apps (version
// v1, commands, env), APPCMDS and APPENV on inherited apps, LAUNCH and the
// image env; launch and env are not inherited.
func TestExtension(t *testing.T) {
	base := clusterimage.Inherit(nil, clusterimage.KubeInstaller)
	base.SetApp(clusterimage.Application{Name: "calico", Type: "kube", Files: []string{"calico.yaml"}, Version: "v1", Cmds: []string{"old"}})
	base.Launch.AppNames = []string{"calico"}
	base.Env = map[string]string{"OLD": "1"}
	files := map[string]string{"web.yaml": "w", "run.sh": "r"}
	kf := "FROM base\nENV REGION=eu\nAPP web local://web.yaml\nAPPCMDS web [\"kubectl apply -f web.yaml\"]\nAPPENV web TIER=front\n" +
		"APPCMDS calico [\"kubectl apply -f calico.yaml\"]\nAPPENV calico MTU=1400\nLAUNCH [\"calico\", \"web\"]\n"
	c, err := resolve(t, kf, files, Options{BaseExtension: base, Type: clusterimage.KubeInstaller})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.Extension.Marshal()
	for _, want := range []string{
		`"name":"calico","type":"kube","files":["calico.yaml"],"version":"v1","env":{"MTU":"1400"},"cmds":["kubectl apply -f calico.yaml"]`,
		`"name":"web","type":"kube","files":["web.yaml"],"version":"v1","env":{"TIER":"front"},"cmds":["kubectl apply -f web.yaml"]`,
		`"env":{"REGION":"eu"}`, `"app_names":["calico","web"]`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("extension lacks %s:\n%s", want, got)
		}
	}
	if base.App("calico").Cmds[0] != "old" {
		t.Error("the base's extension was changed")
	}

	// APPCMDS for an app the base does not have: refused when the base is
	// known, left out when it is not (a stack parent not built yet).
	kf = "FROM base\nAPPCMDS ghost [\"x\"]\n"
	if _, err := resolve(t, kf, files, Options{BaseUnknown: true}); err != nil {
		t.Errorf("unknown base: %v", err)
	}
	bare := clusterimage.Inherit(nil, "")
	bare.SetApp(clusterimage.Application{Name: "ghost"})
	c, err = resolve(t, kf, files, Options{BaseExtension: bare})
	if err != nil || c.Extension.App("ghost") == nil {
		t.Fatalf("known base: %v", err)
	}
	bare.Applications = nil
	bare.SetApp(clusterimage.Application{Name: "other"})
	f, _ := kubefile.Parse("Kubefile", []byte(kf))
	img, _ := kubefile.Evaluate(f, kubefile.EvalOptions{})
	if _, err := Resolve(t.Context(), img, Options{BaseExtension: bare}); err == nil || !strings.Contains(err.Error(), "app ghost is not in the base image") {
		t.Errorf("missing app of a known base: %v", err)
	}
}

// A source that cannot be read fails with the step's position and text
// (here one that vanished between evaluation and resolution).
func TestErrorsNameTheStep(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a"), 0o644)
	bc, err := buildcontext.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	f, _ := kubefile.Parse("Kubefile", []byte("FROM scratch\nCOPY a.yaml x/\nCOPY missing.yaml x/\n"))
	img, _ := kubefile.Evaluate(f, kubefile.EvalOptions{})
	_, err = Resolve(t.Context(), img, Options{Context: bc})
	if err == nil || !strings.Contains(err.Error(), "Kubefile:3") || !strings.Contains(err.Error(), "COPY missing.yaml x/") {
		t.Fatalf("err = %v", err)
	}
}
