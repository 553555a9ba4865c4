package kubefile

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// expander processes one word the way a Dockerfile does: quotes are removed,
// the escape character protects the next character, and $NAME, ${NAME},
// ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word}, ${NAME:?msg}
// and ${NAME?msg} are substituted. Unknown names expand to "".
type expander struct {
	escape rune
	lookup func(name string) (string, bool)

	// undefined collects names referenced plainly ($X, ${X}) that have no value.
	undefined []string
	noVars    bool // process quotes and escapes only
}

type wordScanner struct {
	s   string
	pos int
}

const eof = -1

func (w *wordScanner) peek() rune {
	if w.pos >= len(w.s) {
		return eof
	}
	r, _ := utf8.DecodeRuneInString(w.s[w.pos:])
	return r
}

// next returns the next rune and its original bytes (invalid UTF-8 is kept byte for byte).
func (w *wordScanner) next() (rune, string) {
	if w.pos >= len(w.s) {
		return eof, ""
	}
	r, n := utf8.DecodeRuneInString(w.s[w.pos:])
	raw := w.s[w.pos : w.pos+n]
	w.pos += n
	return r, raw
}

// word expands s.
func (e *expander) word(s string) (string, error) {
	sc := &wordScanner{s: s}
	return e.until(sc, eof, true)
}

// until processes runes until stop (eof or '}'), consuming stop.
func (e *expander) until(sc *wordScanner, stop rune, record bool) (string, error) {
	var sb strings.Builder
	for {
		ch, raw := sc.next()
		switch {
		case ch == stop:
			return sb.String(), nil
		case ch == eof:
			return "", errors.New("missing '}' to close ${")
		case ch == '\'':
			if err := e.singleQuoted(sc, &sb); err != nil {
				return "", err
			}
		case ch == '"':
			if err := e.doubleQuoted(sc, &sb, record); err != nil {
				return "", err
			}
		case ch == '$' && !e.noVars:
			v, err := e.dollar(sc, record)
			if err != nil {
				return "", err
			}
			sb.WriteString(v)
		case ch == e.escape:
			_, raw := sc.next() // a trailing escape character is dropped
			sb.WriteString(raw)
		default:
			sb.WriteString(raw)
		}
	}
}

func (e *expander) singleQuoted(sc *wordScanner, sb *strings.Builder) error {
	for {
		ch, raw := sc.next()
		switch ch {
		case eof:
			return errors.New("unterminated single quote")
		case '\'':
			return nil
		}
		sb.WriteString(raw)
	}
}

func (e *expander) doubleQuoted(sc *wordScanner, sb *strings.Builder, record bool) error {
	for {
		ch, raw := sc.next()
		switch {
		case ch == eof:
			return errors.New("unterminated double quote")
		case ch == '"':
			return nil
		case ch == '$' && !e.noVars:
			v, err := e.dollar(sc, record)
			if err != nil {
				return err
			}
			sb.WriteString(v)
		case ch == e.escape:
			next, nraw := sc.next()
			switch next {
			case eof:
				return errors.New("unterminated double quote")
			case '"', '$', e.escape:
				sb.WriteString(nraw)
			default:
				sb.WriteString(raw)
				sb.WriteString(nraw)
			}
		default:
			sb.WriteString(raw)
		}
	}
}

func isNameRune(r rune) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func (e *expander) name(sc *wordScanner) string {
	start := sc.pos
	for isNameRune(sc.peek()) {
		sc.next()
	}
	return sc.s[start:sc.pos]
}

func (e *expander) get(name string, record bool) (string, bool) {
	v, ok := e.lookup(name)
	if !ok && record {
		e.undefined = append(e.undefined, name)
	}
	return v, ok
}

// dollar expands what follows a '$'.
func (e *expander) dollar(sc *wordScanner, record bool) (string, error) {
	switch r := sc.peek(); {
	case r == '{':
		sc.next()
	case isNameRune(r):
		v, _ := e.get(e.name(sc), record)
		return v, nil
	default:
		return "$", nil
	}
	name := e.name(sc)
	if name == "" {
		return "", errors.New("bad substitution: ${ must be followed by a variable name")
	}
	ch, _ := sc.next()
	if ch == '}' {
		v, _ := e.get(name, record)
		return v, nil
	}
	colon := false
	if ch == ':' {
		colon = true
		ch, _ = sc.next()
	}
	if ch != '-' && ch != '+' && ch != '?' {
		if ch == eof {
			return "", fmt.Errorf("missing '}' to close ${%s", name)
		}
		return "", fmt.Errorf("bad substitution in ${%s…}: supported forms are ${%s}, ${%s:-default}, ${%s-default}, ${%s:+alt}, ${%s+alt}, ${%s:?message}", name, name, name, name, name, name, name)
	}
	v, set := e.lookup(name)
	empty := !set || (colon && v == "")
	var taken bool
	switch ch {
	case '-':
		taken = empty
	case '+':
		taken = !empty
	case '?':
		taken = empty
	}
	// Only names inside the branch actually used count as undefined.
	w, err := e.until(sc, '}', record && taken)
	if err != nil {
		return "", err
	}
	switch ch {
	case '-':
		if taken {
			return w, nil
		}
		return v, nil
	case '+':
		if taken {
			return w, nil
		}
		return "", nil
	default: // '?'
		if taken {
			if w == "" {
				w = "is not set"
				if set {
					w = "is empty"
				}
			}
			return "", fmt.Errorf("%s: %s", name, w)
		}
		return v, nil
	}
}
