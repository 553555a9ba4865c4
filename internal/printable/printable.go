// Package printable makes untrusted text safe to print on a terminal:
// control characters (ANSI escape sequences, carriage returns, NULs) and
// Unicode direction overrides are shown as Go escapes instead of being
// interpreted, so a hostile Kubefile, bundle or registry answer cannot
// rewrite what the user sees.
package printable

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every unsafe rune escaped (\x1b, \r, \u202e, …)
// and invalid UTF-8 bytes shown as \xNN. Safe text comes back unchanged.
func String(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unsafe(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Safe reports whether s prints as itself.
func Safe(s string) bool {
	for i, r := range s {
		if unsafe(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return false
		}
	}
	return true
}

func unsafe(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true // bidirectional overrides and marks
	}
	return false
}

// controlSequence matches the ANSI control sequences (colours, cursor moves)
// that programs such as sealer write into their logs.
var controlSequence = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")

// Log returns a program's log output as plain text, for evidence and for the
// terminal: ANSI control sequences are dropped, a line rewritten with
// carriage returns (a progress bar) keeps its last state, tabs stay, and any
// other unsafe rune is escaped as String does.
func Log(s string) string {
	lines := strings.Split(controlSequence.ReplaceAllString(s, ""), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if j := strings.LastIndexByte(l, '\r'); j >= 0 {
			l = l[j+1:]
		}
		fields := strings.Split(l, "\t")
		for k, f := range fields {
			fields[k] = String(f)
		}
		lines[i] = strings.Join(fields, "\t")
	}
	return strings.Join(lines, "\n")
}
