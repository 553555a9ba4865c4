package report

import (
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cnstack/cnstack/pkg/verify"
)

// Page is what one HTML page shows: the run and the runs before it.
type Page struct {
	Run *Run
	// History is the earlier runs, oldest first (see History).
	History []*Run
}

func (p Page) previous() *Run {
	if len(p.History) == 0 {
		return nil
	}
	return p.History[len(p.History)-1]
}

// Write puts run.json, report.html and junit.xml into dir.
func (p Page) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := p.Run.Marshal()
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, RunFile), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "junit.xml"), p.Run.WriteJUnit); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "report.html"), p.WriteHTML)
}

func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

type layerRow struct {
	*Layer
	P        Platform
	First    bool
	Rows     int
	Growth   string
	Build    Step
	Verify   Step
	Promote  Step
	Push     Step
	Sign     Step
	SBOMText string
}

type bootView struct {
	Layer, Platform string
	R               *verify.Report
	Dir             string
	Gantt           template.HTML
	Counts          map[string]int
	Logs            []logLink
}

type logLink struct{ Name, Href string }

func stepOf(l *Layer, name string) Step {
	if s := l.Step(name); s != nil {
		return *s
	}
	return Step{Name: name, Status: "-"}
}

func (p Page) rows() []layerRow {
	prev := p.previous()
	var out []layerRow
	for i := range p.Run.Layers {
		l := &p.Run.Layers[i]
		base := layerRow{Layer: l, Build: stepOf(l, "build"), Verify: stepOf(l, "verify"), Promote: stepOf(l, "promote"),
			Push: stepOf(l, "push"), Sign: stepOf(l, "sign")}
		plats := l.Platforms
		if len(plats) == 0 {
			plats = []Platform{{Platform: "-"}}
		}
		for j, pl := range plats {
			row := base
			row.P, row.First, row.Rows = pl, j == 0, len(plats)
			if pl.Size > 0 {
				row.Growth = growth(prev, l.Name, pl.Platform, pl.Size)
			}
			if s := pl.SBOM; s != nil {
				var kinds []string
				for k, n := range s.ByKind {
					kinds = append(kinds, fmt.Sprintf("%d %s", n, strings.ToLower(k)))
				}
				sort.Strings(kinds)
				row.SBOMText = fmt.Sprintf("%d packages, %d files", s.Packages, s.Files)
				if len(kinds) > 0 {
					row.SBOMText += " (" + strings.Join(kinds, ", ") + ")"
				}
				if !s.Verified {
					row.SBOMText += ", unverified"
				}
			}
			out = append(out, row)
		}
	}
	return out
}

func (p Page) boots() []bootView {
	var out []bootView
	for i := range p.Run.Layers {
		l := &p.Run.Layers[i]
		for _, pl := range l.Platforms {
			if pl.Boot == nil {
				continue
			}
			v := bootView{Layer: l.Name, Platform: pl.Platform, R: pl.Boot, Dir: pl.BootDir, Gantt: ganttSVG(pl.Boot), Counts: pl.Boot.Counts()}
			names := make([]string, 0, len(pl.Boot.Logs))
			for n := range pl.Boot.Logs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				v.Logs = append(v.Logs, logLink{Name: n, Href: pl.BootDir + "/" + pl.Boot.Logs[n]})
			}
			if pl.BootDir != "" {
				v.Logs = append(v.Logs, logLink{Name: "boot report", Href: pl.BootDir + "/report.html"})
			}
			out = append(out, v)
		}
	}
	return out
}

// WriteHTML writes the page: one self-contained file, inline CSS and SVG,
// no script.
func (p Page) WriteHTML(w io.Writer) error {
	platforms := p.Run.Platforms
	var sizes []struct {
		Platform string
		SVG      template.HTML
	}
	for _, pl := range platforms {
		sizes = append(sizes, struct {
			Platform string
			SVG      template.HTML
		}{pl, sizeBarsSVG(p.Run, p.previous(), pl)})
	}
	return pageTmpl.Execute(w, map[string]any{
		"R":      p.Run,
		"Prev":   p.previous(),
		"DAG":    dagSVG(p.Run),
		"Sizes":  sizes,
		"Rows":   p.rows(),
		"Boots":  p.boots(),
		"Trend":  trendSVG(append(append([]*Run(nil), p.History...), p.Run)),
		"Counts": p.Run.Counts(),
	})
}

var pageTmpl = template.Must(template.New("run").Funcs(template.FuncMap{
	"short": func(d string) string {
		if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
			return d[:i+13]
		}
		return d
	},
	"size": HumanSize,
	"dur":  func(d time.Duration) string { return roundDur(d).String() },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnstack nightly {{.R.Stack}} {{.R.Version}} {{.R.ID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1f2328;background:#fff}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.ok,.passed,.promoted,.verified,.verified-earlier{color:#1a7f37} .bad,.failed{color:#cf222e;font-weight:bold}
.not-run,.skipped{color:#9a6700} .muted,.cached,.present{color:#57606a} .built,.pushed,.signed{color:#0969da}
table{border-collapse:collapse;margin:.6em 0;font-size:13px} td,th{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} code{font-size:12px} .why{display:block;font-size:11px;color:#57606a;max-width:24em;overflow-wrap:anywhere}
.legend span{display:inline-block;margin-right:1em;font-size:12px} .legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
svg{max-width:100%;height:auto;font-family:system-ui,sans-serif} .card{border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em;margin:.8em 0}
</style></head><body>
<h1>cnstack nightly: {{.R.Stack}} {{.R.Version}} <span class="{{if not .R.Passed}}bad{{else if index .Counts "verify:not-run"}}not-run{{else}}ok{{end}}">{{if not .R.Passed}}FAILED{{else}}PASSED{{end}}</span>{{with index .Counts "verify:not-run"}} <span class="not-run">· {{.}} layer(s) not verified, so not promoted</span>{{end}}</h1>
<p class="muted">run {{.R.ID}}, started {{when .R.Started}}, {{dur .R.Duration}} in all; platforms {{range $i, $p := .R.Platforms}}{{if $i}}, {{end}}{{$p}}{{end}}{{if .R.Staging}}; staging {{.R.Staging}}{{end}}{{if .R.PromoteTag}}; promotes to :{{.R.PromoteTag}}{{end}}{{if .Prev}}; compared with run {{.Prev.ID}}{{end}}</p>
<p>{{index .Counts "build:built"}} built, {{index .Counts "build:cached"}} cached, {{index .Counts "build:failed"}} failed, {{index .Counts "build:skipped"}} skipped ·
{{index .Counts "push:pushed"}} pushed, {{index .Counts "push:present"}} already in the registry ·
{{index .Counts "verify:passed"}} verified, {{index .Counts "verify:verified-earlier"}} verified earlier, {{index .Counts "verify:failed"}} failed verification, {{index .Counts "verify:not-run"}} not verified ·
{{index .Counts "promote:promoted"}} promoted</p>
{{if .R.Stages}}<table><tr><th>stage</th><th>status</th><th>time</th></tr>{{range .R.Stages}}<tr><td>{{.Name}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{dur .Duration}}</td></tr>{{end}}</table>{{end}}

<h2>Layers</h2>
<div class="legend"><span><i style="background:#4a90d9"></i>built</span><span><i style="background:#8c959f"></i>cached</span><span><i style="background:#cf222e"></i>failed</span><span><i style="background:#d0d7de"></i>skipped</span></div>
{{.DAG}}

<h2>Sizes</h2>
{{range .Sizes}}<div class="card"><b>{{.Platform}}</b><br>{{.SVG}}</div>{{end}}

<h2>Per layer and platform</h2>
<table><tr><th>layer</th><th>platform</th><th>digest</th><th>size</th><th>images</th><th>build</th><th>signature / attestations</th><th>SBOM</th><th>push</th><th>verification</th><th>promotion</th></tr>
{{range .Rows}}<tr>{{if .First}}<td rowspan="{{.Rows}}"><b>{{.Name}}</b><br><span class="muted">{{.Type}}</span>{{if .Parent}}<br><span class="muted">FROM {{.Parent}}</span>{{end}}</td>{{end}}
<td>{{.P.Platform}}</td><td><code title="{{.P.Digest}}">{{short .P.Digest}}</code></td>
<td>{{if .P.Size}}{{size .P.Size}} <span class="muted">{{.Growth}}</span>{{end}}</td><td>{{if .P.Digest}}{{.P.Images}}{{end}}</td>
{{if .First}}<td rowspan="{{.Rows}}" class="{{.Build.Status}}">{{.Build.Status}} <span class="muted">{{dur .Build.Duration}}</span><span class="why">{{.Build.Detail}}</span></td>{{end}}
{{if .First}}<td rowspan="{{.Rows}}"><span class="{{.Signature}}">{{if .Signature}}{{.Signature}}{{else}}-{{end}}</span> / <span class="{{.Attestations}}">{{if .Attestations}}{{.Attestations}}{{else}}-{{end}}</span></td>{{end}}
<td>{{.SBOMText}}</td>
{{if .First}}<td rowspan="{{.Rows}}" class="{{.Push.Status}}">{{.Push.Status}}<span class="why">{{.Push.Detail}}</span></td>
<td rowspan="{{.Rows}}" class="{{.Verify.Status}}">{{.Verify.Status}} <span class="muted">{{dur .Verify.Duration}}</span><span class="why">{{.Verify.Detail}}</span></td>
<td rowspan="{{.Rows}}" class="{{.Promote.Status}}">{{.Promote.Status}}<span class="why">{{.Promote.Detail}}</span></td>{{end}}</tr>
{{end}}</table>

<h2>Boot verification</h2>
{{range .Boots}}<div class="card"><b>{{.Layer}}</b> {{.Platform}}: <span class="{{if .R.Passed}}ok{{else}}bad{{end}}">{{if .R.Passed}}passed{{else}}failed{{end}}</span>
<span class="muted">{{.R.Nodes}} node(s), {{.R.Accel}}, VM image {{.R.VMImage}}, {{dur .R.Duration}}; {{index .Counts "passed"}} passed, {{index .Counts "failed"}} failed, {{index .Counts "not-run"}} not run, {{index .Counts "skipped"}} skipped</span>
{{if .R.Error}}<p class="bad">{{.R.Error}}</p>{{end}}
{{.Gantt}}
{{if .R.Assertions}}<details><summary>assertions</summary><table><tr><th>status</th><th>assertion</th><th>node</th><th>time</th></tr>{{range .R.Assertions}}<tr><td class="{{.Status}}">{{.Status}}</td><td>{{.Name}}</td><td>{{.Node}}</td><td>{{dur .Duration}}</td></tr>{{end}}</table></details>{{end}}
{{if .Logs}}<p>logs: {{range $i, $l := .Logs}}{{if $i}} · {{end}}<a href="{{$l.Href}}">{{$l.Name}}</a>{{end}}</p>{{end}}
</div>{{else}}<p class="muted">No image was booted in this run (verified earlier, not run, or nothing to verify): see the verification column.</p>{{end}}

<h2>Trend</h2>
{{if .Trend}}{{.Trend}}<p class="muted">run duration (green passed, red failed), total image size and layers built per run</p>{{else}}<p class="muted">The first run: later runs draw the trend from this run's JSON.</p>{{end}}
</body></html>
`))

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	Time      string    `xml:"time,attr"`
	Failure   *junitMsg `xml:"failure,omitempty"`
	Skipped   *junitMsg `xml:"skipped,omitempty"`
	SystemOut string    `xml:"system-out,omitempty"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one test suite per layer, one test case per step; a
// failed step is a failure, a skipped or not-run one is skipped.
func (r *Run) WriteJUnit(w io.Writer) error {
	all := junitSuites{Name: "cnstack nightly " + r.Stack + " " + r.ID, Time: secs(r.Duration)}
	for i := range r.Layers {
		l := &r.Layers[i]
		s := junitSuite{Name: "layer " + l.Name}
		var total time.Duration
		for _, st := range l.Steps {
			c := junitCase{Name: st.Name, Classname: "nightly." + l.Name, Time: secs(st.Duration), SystemOut: strings.TrimSpace(st.Status + " " + st.Detail)}
			switch st.Status {
			case Failed:
				c.Failure = &junitMsg{Message: firstLine(st.Detail), Text: st.Detail}
				s.Failures++
			case Skipped, verify.NotRun:
				c.Skipped = &junitMsg{Message: st.Status + ": " + firstLine(st.Detail)}
				s.Skipped++
			}
			total += st.Duration
			s.Cases = append(s.Cases, c)
		}
		s.Tests, s.Time = len(s.Cases), secs(total)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
