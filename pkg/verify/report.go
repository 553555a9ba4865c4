package verify

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cnstack/cnstack/pkg/install"
)

// Assertion statuses.
const (
	Passed  = "passed"
	Failed  = "failed"
	NotRun  = "not-run" // applies, but cnstack cannot check it here yet
	Skipped = "skipped" // does not apply to this image
)

// PredicateType is the in-toto predicate type of a boot verification
// attestation: the Report's JSON, signed and attached to the image's root
// ("cnstack sign --predicate report.json --type" this), so that a pipeline
// recognises a digest already verified ("cnstack verify --attestations
// --root-only --type" this, or cosign verify-attestation --type this).
const PredicateType = "https://cnstack.dev/attestations/boot/v1"

// Assertion is one checked promise, with its evidence.
type Assertion struct {
	Name     string        `json:"name"`
	Node     string        `json:"node,omitempty"`
	Status   string        `json:"status"`
	Evidence string        `json:"evidence"`
	Duration time.Duration `json:"duration"`
}

// Phase is one span of the timeline.
type Phase struct {
	Name     string        `json:"name"`
	Node     string        `json:"node,omitempty"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
}

// Report is the verdict of a boot.
type Report struct {
	Image      string              `json:"image"`
	Digest     string              `json:"digest"`
	Platform   string              `json:"platform"`
	VMImage    string              `json:"vmImage"`
	Installer  string              `json:"installer"`
	Base       string              `json:"base,omitempty"` // the cluster an app-installer went onto
	Accel      string              `json:"accel"`
	Nodes      int                 `json:"nodes"`
	Started    time.Time           `json:"started"`
	Duration   time.Duration       `json:"duration"`
	Phases     []Phase             `json:"phases"`
	Assertions []Assertion         `json:"assertions"`
	Installs   []*install.Result   `json:"installs,omitempty"`
	Logs       map[string]string   `json:"logs"` // name -> file in the report directory
	Figures    map[string]string   `json:"figures"`
	Passed     bool                `json:"passed"`
	Error      string              `json:"error,omitempty"`
	logText    map[string][]byte   `json:"-"`
	extra      map[string]struct{} `json:"-"`
}

func (r *Report) add(a Assertion) {
	r.Assertions = append(r.Assertions, a)
}

// Counts returns how many assertions have each status.
func (r *Report) Counts() map[string]int {
	out := map[string]int{}
	for _, a := range r.Assertions {
		out[a.Status]++
	}
	return out
}

func (r *Report) finish() {
	r.Passed = r.Error == "" && len(r.Assertions) > 0
	for _, a := range r.Assertions {
		if a.Status == Failed {
			r.Passed = false
		}
	}
	for _, ins := range r.Installs {
		if ins != nil && !ins.OK {
			r.Passed = false
		}
	}
}

// Write puts report.json, junit.xml, report.html and the logs into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if r.Logs == nil {
		r.Logs = map[string]string{}
	}
	for name, b := range r.logText {
		file := name + ".log"
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			return err
		}
		r.Logs[name] = file
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "junit.xml"))
	if err != nil {
		return err
	}
	if err := r.WriteJUnit(f); err != nil {
		f.Close()
		return err
	}
	f.Close()
	h, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	defer h.Close()
	return r.WriteHTML(h)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
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
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the assertions as a JUnit XML test suite.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "cnstack boot " + r.Image, Time: secs(r.Duration)}
	for _, a := range r.Assertions {
		c := junitCase{Name: a.Name, Classname: "boot." + orDefault(a.Node, "host"), Time: secs(a.Duration), SystemOut: a.Evidence}
		switch a.Status {
		case Failed:
			c.Failure = &junitMessage{Message: firstLine(a.Evidence), Text: a.Evidence}
			s.Failures++
		case NotRun, Skipped:
			c.Skipped = &junitMessage{Message: a.Status + ": " + firstLine(a.Evidence)}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	if r.Error != "" {
		s.Cases = append(s.Cases, junitCase{Name: "boot", Classname: "boot.host", Failure: &junitMessage{Message: firstLine(r.Error), Text: r.Error}})
		s.Failures++
	}
	s.Tests = len(s.Cases)
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	return enc.Encode(junitSuites{Suites: []junitSuite{s}})
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(d, total time.Duration) string {
		if total <= 0 {
			return "0"
		}
		return fmt.Sprintf("%.2f", 100*d.Seconds()/total.Seconds())
	},
	"offset": func(start, origin time.Time, total time.Duration) string {
		if total <= 0 {
			return "0"
		}
		return fmt.Sprintf("%.2f", 100*start.Sub(origin).Seconds()/total.Seconds())
	},
	"round": func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>cnstack boot {{.R.Image}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em} .ok{color:#1a7f37} .bad{color:#cf222e} .muted{color:#777}
table{border-collapse:collapse;width:100%;margin:1em 0} td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.tl{position:relative;height:18px;background:#f3f3f3} .bar{position:absolute;height:18px;background:#4a90d9;min-width:2px}
pre{background:#f6f8fa;padding:1em;overflow:auto;max-height:30em;font-size:12px}
.passed{color:#1a7f37}.failed{color:#cf222e;font-weight:bold}.not-run,.skipped{color:#9a6700}
</style></head><body>
<h1>cnstack boot: <span class="{{if .R.Passed}}ok{{else}}bad{{end}}">{{if .R.Passed}}PASSED{{else}}FAILED{{end}}</span></h1>
<p>{{.R.Image}} <span class="muted">{{.R.Digest}} ({{.R.Platform}})</span><br>
{{.R.Nodes}} node(s), VM image {{.R.VMImage}}, accelerator {{.R.Accel}}, {{round .R.Duration}} in all, started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}</p>
{{if .R.Error}}<p class="bad">{{.R.Error}}</p>{{end}}
<h2>Timeline</h2>
<table><tr><th>phase</th><th>node</th><th>duration</th><th style="width:50%"></th></tr>
{{range .R.Phases}}<tr><td>{{.Name}}</td><td>{{.Node}}</td><td>{{round .Duration}}</td>
<td><div class="tl"><div class="bar" style="left:{{offset .Start $.R.Started $.R.Duration}}%;width:{{pct .Duration $.R.Duration}}%"></div></div></td></tr>{{end}}
</table>
<h2>Assertions</h2>
<table><tr><th>status</th><th>assertion</th><th>node</th><th>evidence</th></tr>
{{range .R.Assertions}}<tr><td class="{{.Status}}">{{.Status}}</td><td>{{.Name}}</td><td>{{.Node}}</td><td><pre>{{.Evidence}}</pre></td></tr>{{end}}
</table>
{{if .R.Figures}}<h2>Figures</h2><table>{{range $k, $v := .R.Figures}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{end}}
<h2>Logs</h2>
{{range .Logs}}<details><summary>{{.Name}}</summary><pre>{{.Text}}</pre></details>{{end}}
</body></html>
`))

// WriteHTML writes a one-page report: verdict, timeline, assertions, logs.
func (r *Report) WriteHTML(w io.Writer) error {
	type logView struct{ Name, Text string }
	var logs []logView
	names := make([]string, 0, len(r.logText))
	for n := range r.logText {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		logs = append(logs, logView{Name: n, Text: string(r.logText[n])})
	}
	return htmlTmpl.Execute(w, struct {
		R    *Report
		Logs []logView
	}{r, logs})
}
