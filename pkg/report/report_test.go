package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/pkg/stack"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/report -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./pkg/report -update rewrites it); got:\n%s", name, got)
	}
}

func samplePage(t *testing.T) Page {
	t.Helper()
	run, err := Read("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	hist, err := History("testdata/history", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].ID != "20261206T020000Z" {
		t.Fatalf("history: want the one readable earlier run, got %d", len(hist))
	}
	return Page{Run: run, History: hist}
}

func TestHTMLGolden(t *testing.T) {
	p := samplePage(t)
	var b bytes.Buffer
	if err := p.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`class="dag"`, `class="sizes"`, `class="gantt"`, `class="trend"`, // the four pictures
		"(+189.8 KiB)",                        // base grew against the previous run
		"(new)",                               // mesh was not in it
		"base layer base rebuilds",            // why mesh rebuilt
		"mesh-0 CrashLoopBackOff",             // why mesh was not promoted
		`href="boot/base/serial-node0.log"`,   // log links
		"--no-boot: no VM on this runner",     // not-run says why
		"1 other, 2 application, 5 container", // SBOM summary
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
			t.Errorf("report.html contains %q: it must be self-contained", banned)
		}
	}
	golden(t, "report.html.golden", b.Bytes())
}

func TestJUnitGolden(t *testing.T) {
	p := samplePage(t)
	var b bytes.Buffer
	if err := p.Run.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var parsed junitSuites
	if err := xml.Unmarshal(b.Bytes(), &parsed); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if parsed.Failures != 2 || parsed.Tests != 20 {
		t.Errorf("junit: %d tests, %d failures; want 20 and 2 (mesh verify, observability build)", parsed.Tests, parsed.Failures)
	}
	golden(t, "junit.xml.golden", b.Bytes())
}

func TestWriteRoundTrip(t *testing.T) {
	p := samplePage(t)
	dir := t.TempDir()
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Read(filepath.Join(dir, RunFile))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Run.Marshal()
	b, _ := back.Marshal()
	if !bytes.Equal(a, b) {
		t.Error("run.json does not read back to the same run")
	}
	for _, f := range []string{"report.html", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestReadSteps(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
		err      string
	}{
		{"ok", "base\tbuild\tbuilt\t1.5\tinputs changed\n-\tlock\tpassed\t0.2\n\n# comment\n", 2, ""},
		{"detail with tabs", "base\tverify\tfailed\t3\twhy\tmore\n", 1, ""},
		{"short", "base\tbuild\n", 0, "line 1"},
		{"bad seconds", "base\tbuild\tbuilt\tsoon\n", 0, "seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSteps(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error with %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d records, %v", len(got), err)
			}
		})
	}
}

// TestCollectSteps collects a run from the step log and a boot report
// alone (no store: the layers keep no digests), against the sample stack.
func TestCollectSteps(t *testing.T) {
	s, err := stack.Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot", "base"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "base", "report.json"), []byte(`{"image":"x","platform":"linux/amd64","passed":false,"error":"boom","phases":[],"assertions":[]}`), 0o644)
	steps, err := ReadSteps(strings.NewReader("base\tbuild\tbuilt\t1\tinputs changed\nbase\tverify\tfailed\t2\tboom\n-\tlock\tpassed\t0.1\nbase\tverify\tfailed\t3\tboom again\n"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := Collect(context.Background(), CollectOptions{ID: "x", Started: time.Unix(0, 0), Stack: s, Steps: steps, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if run.Passed || len(run.Layers) != 8 || len(run.Stages) != 1 {
		t.Fatalf("run: passed %v, %d layers, %d stages", run.Passed, len(run.Layers), len(run.Stages))
	}
	var base *Layer
	for i := range run.Layers {
		if run.Layers[i].Name == "base" {
			base = &run.Layers[i]
		}
	}
	if v := base.Step("verify"); v == nil || v.Detail != "boom again" || len(base.Steps) != 2 {
		t.Errorf("base steps: %+v (a later record replaces an earlier one)", base.Steps)
	}
	if len(base.Platforms) != 1 || base.Platforms[0].Boot == nil || base.Platforms[0].BootDir != "boot/base" {
		t.Errorf("base boot report not attached: %+v", base.Platforms)
	}
	if _, err := Collect(context.Background(), CollectOptions{Stack: s, Steps: []StepRecord{{Layer: "nope", Step: Step{Name: "build"}}}}); err == nil {
		t.Error("a step log naming a layer the stack lacks was accepted")
	}
}

func TestMerge(t *testing.T) {
	p := samplePage(t)
	a, b := *p.Run, *p.Run
	a.Layers = append([]Layer(nil), p.Run.Layers...)
	b.Layers = append([]Layer(nil), p.Run.Layers...)
	b.ID, b.Started = "job2", p.Run.Started.Add(time.Hour)
	for i := range a.Layers {
		if a.Layers[i].Name == "mesh" {
			a.Layers[i].Steps = nil // job 1 did not work on mesh
		} else {
			b.Layers[i].Steps = nil
		}
	}
	m, err := Merge([]*Run{&a, &b})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != a.ID || m.Duration != time.Hour+p.Run.Duration || len(m.Stages) != 4 {
		t.Errorf("merged: id %s, duration %s, %d stages", m.ID, m.Duration, len(m.Stages))
	}
	m.Stages, m.Duration = p.Run.Stages, p.Run.Duration
	got, _ := m.Marshal()
	want, _ := p.Run.Marshal()
	if !bytes.Equal(got, want) {
		t.Errorf("merging the two halves does not give the run back:\n%s", got)
	}
	other := *p.Run
	other.Stack = "other"
	if _, err := Merge([]*Run{&a, &other}); err == nil {
		t.Error("runs of different stacks merged")
	}
}
