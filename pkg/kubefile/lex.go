package kubefile

import (
	"bytes"
	"regexp"
	"strings"
)

// DefaultEscape is the escape character when no `# escape=` directive is given.
const DefaultEscape = '\\'

var (
	utf8BOM = []byte{0xEF, 0xBB, 0xBF}

	// Sealer matches directives on the lower-cased line and takes the first
	// character after '=' whatever follows it; we do the same.
	escapeDirective   = regexp.MustCompile(`^#[ \t]*escape[ \t]*=[ \t]*(.).*$`)
	platformDirective = regexp.MustCompile(`^#[ \t]*platform[ \t]*=[ \t]*(.*)$`)
)

// segment is one physical line's contribution to a logical line.
type segment struct {
	off  int // offset of text within the logical line
	line int // physical line number, 1-based
	col  int // column of text[0] in the physical line, 1-based
	text string
}

// logicalLine is an instruction's text with continuations joined, plus the
// map from offsets in that text back to physical positions.
type logicalLine struct {
	file     string
	text     string
	segs     []segment
	lastLine int
}

// pos maps an offset in the logical text to a physical position. Offsets at
// or past the end map to just after the last character.
func (l *logicalLine) pos(off int) Pos {
	for _, s := range l.segs {
		if off < s.off+len(s.text) {
			if off < s.off {
				off = s.off
			}
			return Pos{File: l.file, Line: s.line, Col: s.col + off - s.off}
		}
	}
	if len(l.segs) == 0 {
		return Pos{File: l.file, Line: l.lastLine, Col: 1}
	}
	s := l.segs[len(l.segs)-1]
	return Pos{File: l.file, Line: s.line, Col: s.col + len(s.text)}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'
}

func trimLeftBlank(s string) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return s[i:]
}

func trimRightBlank(s string) string {
	i := len(s)
	for i > 0 && isBlank(s[i-1]) {
		i--
	}
	return s[:i]
}

// lexer turns source bytes into logical lines, handling the BOM, parser
// directives, comments and line continuations the way sealer v0.11 does.
type lexer struct {
	file   string
	lines  []string
	escape rune
	d      *diags

	directivesDone bool
	escapeSeen     bool
}

func newLexer(file string, src []byte, d *diags) *lexer {
	src = bytes.TrimPrefix(src, utf8BOM)
	text := string(src)
	lines := strings.Split(text, "\n")
	if strings.HasSuffix(text, "\n") {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return &lexer{file: file, lines: lines, escape: DefaultEscape, d: d}
}

// directive handles a possible parser directive; it reports whether the
// line was consumed as one.
func (lx *lexer) directive(trimmed string, lineNo, col int) bool {
	if lx.directivesDone {
		return false
	}
	// Lower-case ASCII only, so byte offsets into trimmed stay valid.
	lower := asciiLower(trimmed)
	if m := escapeDirective.FindStringSubmatchIndex(lower); m != nil {
		p := Pos{File: lx.file, Line: lineNo, Col: col + m[2]}
		ch := trimmed[m[2]:m[3]]
		if lx.escapeSeen {
			lx.d.errorf(Pos{File: lx.file, Line: lineNo, Col: col}, "only one escape directive is allowed, got another in %s", quote(trimmed))
			return true
		}
		lx.escapeSeen = true
		switch ch {
		case "\\":
			lx.escape = '\\'
		case "`":
			lx.escape = '`'
		default:
			lx.d.errorf(p, "invalid escape character %q in %s; write # escape=\\ or # escape=`", ch, quote(trimmed))
		}
		return true
	}
	if m := platformDirective.FindStringSubmatch(lower); m != nil {
		lx.d.warnf(Pos{File: lx.file, Line: lineNo, Col: col}, "the platform directive is ignored in %s (sealer honours it only on Windows LCOW); use FROM --platform=os/arch or the --platform build flag", quote(trimmed))
	}
	lx.directivesDone = true
	return false
}

// continuation strips a trailing escape character (and blanks after it),
// reporting whether the line continues.
func (lx *lexer) continuation(s string) (string, bool) {
	// Only spaces and tabs may follow the escape character, as in sealer.
	t := strings.TrimRight(s, " \t")
	if strings.HasSuffix(t, string(lx.escape)) {
		return t[:len(t)-len(string(lx.escape))], true
	}
	return s, false
}

// next returns the next logical line, or nil at the end of input.
func (lx *lexer) next(i *int) *logicalLine {
	for *i < len(lx.lines) {
		raw := lx.lines[*i]
		*i++
		lineNo := *i
		trimmed := strings.TrimLeft(raw, " \t\v\f\r")
		lead := len(raw) - len(trimmed)
		if lx.directive(trimmed, lineNo, lead+1) {
			continue
		}
		lx.directivesDone = true
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		content, cont := lx.continuation(trimmed)
		if !cont && content == "" {
			continue
		}
		ll := &logicalLine{file: lx.file, lastLine: lineNo}
		ll.segs = append(ll.segs, segment{off: 0, line: lineNo, col: lead + 1, text: content})
		var sb strings.Builder
		sb.WriteString(content)
		for cont && *i < len(lx.lines) {
			raw := lx.lines[*i]
			*i++
			lineNo := *i
			t := strings.TrimLeft(raw, " \t\v\f\r")
			if t == "" {
				lx.d.warnf(Pos{File: lx.file, Line: lineNo, Col: 1}, "empty line inside a line continuation; remove it (Docker and sealer warn that this will become an error)")
				continue
			}
			if strings.HasPrefix(t, "#") {
				continue
			}
			content, cont = lx.continuation(raw)
			ll.segs = append(ll.segs, segment{off: sb.Len(), line: lineNo, col: 1, text: content})
			sb.WriteString(content)
		}
		ll.text = sb.String()
		ll.lastLine = *i
		if strings.TrimLeft(ll.text, " \t\v\f\r") == "" {
			continue
		}
		return ll
	}
	return nil
}
