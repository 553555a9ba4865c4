package collect

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	units "github.com/cnstack/cnstack/internal/progress"
)

// progress prints one line per finished image; on a terminal it also keeps
// a bar on the last line (images done, bytes, throughput).
type progress struct {
	out   io.Writer
	tty   bool
	plat  string
	total int64
	n     int

	mu       sync.Mutex
	done     int
	bytes    atomic.Int64
	start    time.Time
	lastDraw time.Time
	drawn    bool
}

func newProgress(out io.Writer, plat string, images int, total int64) *progress {
	p := &progress{out: out, plat: plat, n: images, total: total, start: time.Now()}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) addBytes(n int64) {
	p.bytes.Add(n)
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.lastDraw) > 100*time.Millisecond {
		p.draw()
	}
}

func (p *progress) imageDone(line string) {
	if p.out == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
	fmt.Fprintln(p.out, line)
	if p.tty {
		p.draw()
	}
}

// draw renders the bar; the caller holds mu.
func (p *progress) draw() {
	if p.out == nil || !p.tty || p.done >= p.n {
		return
	}
	p.lastDraw = time.Now()
	got := min(p.bytes.Load(), p.total)
	const width = 30
	fill := width
	if p.total > 0 {
		fill = int(int64(width) * got / p.total)
	}
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	if fill > 0 && fill < width {
		bar = bar[:fill-1] + ">" + bar[fill:]
	}
	rate := float64(got) / max(time.Since(p.start).Seconds(), 0.001)
	fmt.Fprintf(p.out, "\r\033[K  [%s] [%s] %d/%d images  %s / %s  %s/s", p.plat, bar, p.done, p.n,
		units.Bytes(got), units.Bytes(p.total), units.Bytes(int64(rate)))
	p.drawn = true
}

func (p *progress) finish() {
	if p.out == nil || !p.tty || !p.drawn {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.out, "\r\033[K")
}
