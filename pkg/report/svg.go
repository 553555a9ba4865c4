package report

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/cnstack/cnstack/pkg/verify"
)

// The pictures are inline SVG written here: no script, no external file,
// the page works offline. Every text is escaped; coordinates are rounded
// so the bytes are deterministic.

// statusColor is the fill of a layer box or bar by its build status and verdict.
func statusColor(l *Layer) string {
	switch {
	case l.Failed():
		return "#cf222e"
	case l.Step("build") != nil && l.Step("build").Status == Skipped:
		return "#d0d7de"
	case l.Step("build") != nil && l.Step("build").Status == Built:
		return "#4a90d9"
	default:
		return "#8c959f"
	}
}

// palette colours the layers in size bars, by position in the stack.
var palette = []string{"#4a90d9", "#e3a008", "#2da44e", "#a475f9", "#fb8500", "#0a9396", "#d62828", "#6a994e", "#bc6c25", "#3a86ff"}

func esc(s string) string { return html.EscapeString(s) }

// dagSVG draws the layer DAG: one row per depth (a layer below the one it
// builds on), edges from parent to child, each box coloured by what
// happened to the layer.
func dagSVG(r *Run) template.HTML {
	depth := map[string]int{}
	col := map[string]int{}
	perRow := map[int]int{}
	maxDepth, maxCols := 0, 0
	for i := range r.Layers {
		l := &r.Layers[i]
		d := 0
		if pd, ok := depth[l.Parent]; ok {
			d = pd + 1
		}
		depth[l.Name] = d
		col[l.Name] = perRow[d]
		perRow[d]++
		maxDepth = max(maxDepth, d)
		maxCols = max(maxCols, perRow[d])
	}
	const bw, bh, gx, gy = 170, 40, 30, 26
	w := maxCols*(bw+gx) + gx
	h := (maxDepth+1)*(bh+gy) + gy
	pos := func(name string) (int, int) {
		return gx + col[name]*(bw+gx), gy + depth[name]*(bh+gy)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="layer DAG">`, w, h, w, h)
	for i := range r.Layers {
		l := &r.Layers[i]
		if _, ok := depth[l.Parent]; !ok || l.Parent == "" {
			continue
		}
		px, py := pos(l.Parent)
		cx, cy := pos(l.Name)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#57606a" stroke-width="1.5"/>`, px+bw/2, py+bh, cx+bw/2, cy)
		fmt.Fprintf(&b, `<polygon points="%d,%d %d,%d %d,%d" fill="#57606a"/>`, cx+bw/2, cy, cx+bw/2-4, cy-7, cx+bw/2+4, cy-7)
	}
	for i := range r.Layers {
		l := &r.Layers[i]
		x, y := pos(l.Name)
		status := "?"
		if s := l.Step("build"); s != nil {
			status = s.Status
		}
		if v := l.Verdict(); v != "" {
			status += " · " + v
		}
		fmt.Fprintf(&b, `<g><title>%s: %s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s"/>`,
			esc(l.Name), esc(status), x, y, bw, bh, statusColor(l))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#fff" font-size="13" font-weight="bold">%s</text>`, x+bw/2, y+17, esc(l.Name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#fff" font-size="10">%s</text></g>`, x+bw/2, y+32, esc(status))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sizeBarsSVG draws, per layer, its platform image's size as a bar stacked
// from the parts each layer of its FROM chain adds (own sizes), with the
// growth against the previous run.
func sizeBarsSVG(r *Run, prev *Run, platform string) template.HTML {
	own := map[string]int64{}
	color := map[string]string{}
	parent := map[string]string{}
	var maxSize int64 = 1
	for i := range r.Layers {
		l := &r.Layers[i]
		color[l.Name] = palette[i%len(palette)]
		parent[l.Name] = l.Parent
		if p := r.platform(l.Name, platform); p != nil {
			own[l.Name] = p.OwnSize
			maxSize = max(maxSize, p.Size)
		}
	}
	const label, barW, rowH, right = 130, 460, 24, 200
	w := label + barW + right
	h := len(r.Layers)*rowH + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="sizes" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="image sizes (%s)">`, w, h, w, h, esc(platform))
	for i := range r.Layers {
		l := &r.Layers[i]
		y := 10 + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="12">%s</text>`, label-8, y+14, esc(l.Name))
		p := r.platform(l.Name, platform)
		if p == nil {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#777">no image</text>`, label, y+14)
			continue
		}
		var chain []string
		for n := l.Name; n != ""; n = parent[n] {
			chain = append([]string{n}, chain...)
			if len(chain) > len(r.Layers) {
				break
			}
		}
		x := float64(label)
		for _, n := range chain {
			seg := float64(own[n]) / float64(maxSize) * barW
			if seg <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s adds %s</title></rect>`,
				x, y, seg, rowH-6, color[n], esc(n), esc(HumanSize(own[n])))
			x += seg
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s %s</text>`, x+6, y+14, esc(HumanSize(p.Size)), esc(growth(prev, l.Name, platform, p.Size)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#777">each bar: the layers of its FROM chain, coloured as their own rows</text>`, label, h-4)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// growth describes size against the same layer and platform in prev.
func growth(prev *Run, layer, platform string, size int64) string {
	p := prev.platform(layer, platform)
	switch {
	case prev == nil:
		return ""
	case p == nil:
		return "(new)"
	case p.Size == size:
		return "(±0)"
	case size > p.Size:
		return "(+" + HumanSize(size-p.Size) + ")"
	default:
		return "(−" + HumanSize(p.Size-size) + ")"
	}
}

// ganttSVG draws a boot's phases on a time axis, one row per phase (and node).
func ganttSVG(br *verify.Report) template.HTML {
	if br == nil || len(br.Phases) == 0 {
		return ""
	}
	total := br.Duration
	origin := br.Started
	for _, p := range br.Phases {
		if end := p.Start.Add(p.Duration).Sub(origin); end > total {
			total = end
		}
	}
	if total <= 0 {
		total = time.Second
	}
	const label, barW, rowH = 200, 520, 20
	w := label + barW + 90
	h := len(br.Phases)*rowH + 34
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="boot timeline">`, w, h, w, h)
	for t := 0; t <= 4; t++ {
		x := label + t*barW/4
		fmt.Fprintf(&b, `<line x1="%d" y1="4" x2="%d" y2="%d" stroke="#eee"/>`, x, x, h-18)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#777" text-anchor="middle">%s</text>`, x, h-6, esc(roundDur(total*time.Duration(t)/4).String()))
	}
	for i, p := range br.Phases {
		y := 6 + i*rowH
		name := p.Name
		if p.Node != "" {
			name += " (" + p.Node + ")"
		}
		x := float64(label) + p.Start.Sub(origin).Seconds()/total.Seconds()*barW
		bw := max(p.Duration.Seconds()/total.Seconds()*barW, 1.5)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="11">%s</text>`, label-6, y+12, esc(name))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#4a90d9"><title>%s: %s</title></rect>`, x, y, bw, rowH-6, esc(name), esc(roundDur(p.Duration).String()))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#444">%s</text>`, x+bw+4, y+12, esc(roundDur(p.Duration).String()))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// trendSVG draws the runs (earlier ones and this one) as columns: the
// run's duration as height, red when it failed, with the total image size
// and the number of layers built below.
func trendSVG(runs []*Run) template.HTML {
	if len(runs) < 2 {
		return ""
	}
	if len(runs) > 30 {
		runs = runs[len(runs)-30:]
	}
	var maxDur time.Duration = 1
	for _, r := range runs {
		maxDur = max(maxDur, r.Duration)
	}
	const colW, chartH, top = 56, 120, 16
	w := len(runs)*colW + 20
	h := chartH + top + 56
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="trend over runs">`, w, h, w, h)
	for i, r := range runs {
		x := 10 + i*colW
		bh := max(float64(r.Duration)/float64(maxDur)*chartH, 2)
		fill := "#2da44e"
		if !r.Passed {
			fill = "#cf222e"
		}
		y := float64(top+chartH) - bh
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s: %s, %s</title></rect>`,
			x+8, y, colW-16, bh, fill, esc(r.ID), esc(roundDur(r.Duration).String()), passText(r.Passed))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="middle">%s</text>`, x+colW/2, y-3, esc(roundDur(r.Duration).String()))
		c := r.Counts()
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" text-anchor="middle">%s</text>`, x+colW/2, top+chartH+12, esc(shortID(r.ID)))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" text-anchor="middle" fill="#555">%s</text>`, x+colW/2, top+chartH+24, esc(HumanSize(r.TotalSize())))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" text-anchor="middle" fill="#555">%d built</text>`, x+colW/2, top+chartH+36, c["build:"+Built])
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func passText(ok bool) string {
	if ok {
		return "passed"
	}
	return "failed"
}

func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// HumanSize prints bytes in binary units ("1.5 MiB").
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
