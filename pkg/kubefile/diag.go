package kubefile

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cnstack/cnstack/internal/printable"
)

// Pos is a position in a Kubefile. Line and Col are 1-based; Col counts bytes
// of the physical line (after a leading UTF-8 BOM is removed).
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as "file:line:col".
func (p Pos) String() string {
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// IsValid reports whether the position names a line.
func (p Pos) IsValid() bool { return p.Line > 0 }

// MarshalText encodes the position as "file:line:col" (compact golden files).
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses "file:line:col"; the file name may itself contain colons.
func (p *Pos) UnmarshalText(b []byte) error {
	s := string(b)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("position %q: want file:line:col", s)
	}
	j := strings.LastIndexByte(s[:i], ':')
	if j < 0 {
		return fmt.Errorf("position %q: want file:line:col", s)
	}
	line, err := strconv.Atoi(s[j+1 : i])
	if err != nil {
		return fmt.Errorf("position %q: bad line: %w", s, err)
	}
	col, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return fmt.Errorf("position %q: bad column: %w", s, err)
	}
	*p = Pos{File: s[:j], Line: line, Col: col}
	return nil
}

// Severity says whether a diagnostic stops a build.
type Severity int

const (
	// SeverityError makes the Kubefile unusable: builds refuse it, lint exits non-zero.
	SeverityError Severity = iota
	// SeverityWarning flags something that works but is probably not what was meant,
	// or that behaves differently under the real sealer.
	SeverityWarning
)

func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "error" or "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = SeverityError
	case "warning":
		*s = SeverityWarning
	default:
		return fmt.Errorf("unknown severity %q", b)
	}
	return nil
}

// Diagnostic is one finding about a Kubefile.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Msg      string
}

// Error returns "file:line:col: msg" (the file name escaped if need be).
func (d Diagnostic) Error() string { return printable.String(d.Pos.String()) + ": " + d.Msg }

// Diagnostics is every finding of a Parse or Evaluate, in source order.
type Diagnostics []Diagnostic

// Err joins the error-severity diagnostics into one error (nil when there are
// none). Each joined element is a Diagnostic, so errors.As finds them.
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs = append(errs, d)
		}
	}
	return errors.Join(errs...)
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns the error-severity diagnostics.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns the warning-severity diagnostics.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Sorted returns a copy ordered by file, line and column (stable otherwise)
// without exact duplicates, which appear when the same file is evaluated for
// several platforms.
func (ds Diagnostics) Sorted() Diagnostics {
	out := append(Diagnostics(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	seen := make(map[Diagnostic]bool, len(out))
	uniq := out[:0]
	for _, d := range out {
		if !seen[d] {
			seen[d] = true
			uniq = append(uniq, d)
		}
	}
	return uniq
}

// diags collects diagnostics; the helpers keep call sites short.
type diags struct{ list Diagnostics }

// errorf and warnf escape control characters in the message: it quotes the
// Kubefile, which may hold anything (an ANSI escape in an instruction name).
func (c *diags) errorf(p Pos, format string, args ...any) {
	c.list = append(c.list, Diagnostic{Pos: p, Severity: SeverityError, Msg: printable.String(fmt.Sprintf(format, args...))})
}

func (c *diags) warnf(p Pos, format string, args ...any) {
	c.list = append(c.list, Diagnostic{Pos: p, Severity: SeverityWarning, Msg: printable.String(fmt.Sprintf(format, args...))})
}

// maxQuote bounds how much of a line a message quotes.
const maxQuote = 120

// quote renders text for a message: Go-quoted, shortened in the middle of very
// long lines so a message stays readable.
func quote(s string) string {
	if len(s) > maxQuote {
		head, tail := maxQuote-20, len(s)-19
		for head > 0 && !utf8.RuneStart(s[head]) {
			head--
		}
		for tail < len(s) && !utf8.RuneStart(s[tail]) {
			tail++
		}
		s = s[:head] + "…" + s[tail:]
	}
	return strconv.Quote(s)
}
