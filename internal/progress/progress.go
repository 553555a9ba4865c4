// Package progress reports transfer progress: a live single-line meter on a
// terminal, nothing but the final summary elsewhere (CI logs stay readable).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Meter counts bytes and objects of one transfer.
type Meter struct {
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	bytes    atomic.Int64
	objects  atomic.Int64
	skipped  atomic.Int64
	mounted  atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a meter writing to w (nil: silent).
func New(w io.Writer, label string) *Meter {
	m := &Meter{w: w, label: label, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	m.tty = w != nil && IsTerminal(w)
	if m.tty {
		go m.loop()
	} else {
		close(m.done)
	}
	return m
}

func (m *Meter) loop() {
	defer close(m.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			fmt.Fprint(m.w, "\r\033[K")
			return
		case <-t.C:
			fmt.Fprintf(m.w, "\r\033[K%s: %s", m.label, m.status())
		}
	}
}

// Add counts n transferred bytes.
func (m *Meter) Add(n int64) { m.bytes.Add(n) }

// Object counts a finished object; Skip one the destination had; Mount one
// mounted from another repository.
func (m *Meter) Object() { m.objects.Add(1) }
func (m *Meter) Skip()   { m.skipped.Add(1) }
func (m *Meter) Mount()  { m.mounted.Add(1) }

// Bytes, Objects, Skipped and Mounted are the counts so far.
func (m *Meter) Bytes() int64   { return m.bytes.Load() }
func (m *Meter) Objects() int64 { return m.objects.Load() }
func (m *Meter) Skipped() int64 { return m.skipped.Load() }
func (m *Meter) Mounted() int64 { return m.mounted.Load() }

func (m *Meter) status() string {
	el := time.Since(m.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(m.Bytes()) / el
	}
	objects := "objects"
	if m.Objects() == 1 {
		objects = "object"
	}
	return fmt.Sprintf("%s, %d %s copied, %d already there, %d mounted (%s/s)",
		Bytes(m.Bytes()), m.Objects(), objects, m.Skipped(), m.Mounted(), Bytes(int64(rate)))
}

// Done stops the live line and returns the summary.
func (m *Meter) Done() string {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	return fmt.Sprintf("%s in %s", m.status(), time.Since(m.start).Round(time.Millisecond))
}

// Reader counts what passes through r.
func (m *Meter) Reader(r io.Reader) io.Reader { return &countingReader{r: r, m: m} }

type countingReader struct {
	r io.Reader
	m *Meter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.Add(int64(n))
	return n, err
}

// Bytes formats a byte count.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
