package kubefile

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// word is a piece of an instruction with its offset in the logical line.
type word struct {
	text string
	off  int
}

// splitBlank splits s on runs of blanks (sealer's whitespace form).
func splitBlank(s string, base int) []word {
	var out []word
	i := 0
	for i < len(s) {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && !isBlank(s[i]) {
			i++
		}
		out = append(out, word{text: s[start:i], off: base + start})
	}
	return out
}

// shellWords splits s into words the way Docker does for ARG, ENV and LABEL:
// blanks separate words except inside quotes or after the escape character.
// Quotes and escapes stay in the words; they are removed when the word is
// expanded, as Docker does.
func shellWords(s string, base int, escape rune) []word {
	var out []word
	var sb strings.Builder
	start := -1
	var quote rune
	flush := func() {
		if start >= 0 {
			out = append(out, word{text: sb.String(), off: base + start})
		}
		sb.Reset()
		start = -1
	}
	for pos := 0; pos < len(s); {
		ch, w := utf8.DecodeRuneInString(s[pos:])
		if quote == 0 && unicode.IsSpace(ch) {
			flush()
			pos += w
			continue
		}
		if start < 0 {
			start = pos
		}
		switch {
		case quote == 0 && (ch == '\'' || ch == '"'):
			quote = ch
		case quote != 0 && ch == quote:
			quote = 0
		case ch == escape && quote != '\'':
			if pos+w == len(s) {
				pos += w // a trailing escape character is dropped
				continue
			}
			sb.WriteString(s[pos : pos+w])
			pos += w
			_, w = utf8.DecodeRuneInString(s[pos:])
		}
		sb.WriteString(s[pos : pos+w])
		pos += w
	}
	flush()
	return out
}

// rawFlag is a leading --name=value word.
type rawFlag struct {
	text string // without the leading dashes, quotes removed
	off  int
}

// extractFlags splits leading --flag words off s, as sealer (and Docker)
// do: quotes inside a flag word are removed and a backslash escapes the next
// byte. A bare "--" ends the flags. It returns the flags and the offset in s
// where the arguments start.
func extractFlags(s string) ([]rawFlag, int) {
	var flags []rawFlag
	pos := 0
	for {
		for pos < len(s) && isBlank(s[pos]) {
			pos++
		}
		if pos >= len(s) || !strings.HasPrefix(s[pos:], "--") {
			return flags, pos
		}
		start := pos
		var sb strings.Builder
		var quote byte
		for pos < len(s) {
			c := s[pos]
			if quote == 0 && isBlank(c) {
				break
			}
			switch {
			case quote == 0 && (c == '\'' || c == '"'):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			case c == '\\' && pos+1 < len(s):
				pos++
				sb.WriteByte(s[pos])
			case c == '\\':
				// trailing backslash: dropped
			default:
				sb.WriteByte(c)
			}
			pos++
		}
		text := sb.String()
		if text == "--" {
			return flags, pos
		}
		flags = append(flags, rawFlag{text: strings.TrimLeft(text, "-"), off: start})
	}
}

var errNotStrings = errors.New("a JSON array here must hold only strings")

// jsonArray parses s (which starts with '[') as a JSON array of strings,
// returning the elements with their offsets. ok is false when s is not valid
// JSON at all: the caller then falls back to the whitespace form, as sealer
// does. trailing is the offset of non-blank text after the array, or -1.
func jsonArray(s string, base int) (words []word, ok bool, trailing int, err error) {
	var probe []any
	dec := json.NewDecoder(strings.NewReader(s))
	if dec.Decode(&probe) != nil {
		return nil, false, -1, nil
	}
	end := int(dec.InputOffset())
	for _, v := range probe {
		if _, isString := v.(string); !isString {
			return nil, true, -1, errNotStrings
		}
	}
	// Second pass for element offsets.
	dec = json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil { // '['
		return nil, false, -1, nil
	}
	for dec.More() {
		off := int(dec.InputOffset())
		for off < len(s) && (isBlank(s[off]) || s[off] == ',' || s[off] == '\n') {
			off++
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, false, -1, nil
		}
		str, _ := tok.(string)
		words = append(words, word{text: str, off: base + off})
	}
	trailing = -1
	rest := s[end:]
	if t := strings.TrimLeft(rest, " \t\v\f\r"); t != "" {
		trailing = base + end + len(rest) - len(t)
	}
	return words, true, trailing, nil
}
