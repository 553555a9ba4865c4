package kubefile

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b", "E": "", "SP": "x y"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct {
		in, want  string
		escape    rune
		undefined []string
		err       string
	}{
		{in: "plain", want: "plain"},
		{in: "$A", want: "a"},
		{in: "${A}", want: "a"},
		{in: "${A}x$B", want: "axb"},
		{in: "$A.$B", want: "a.b"},
		{in: "$Ax", want: "", undefined: []string{"Ax"}},
		{in: "${U:-d}", want: "d"},
		{in: "${E:-d}", want: "d"},
		{in: "${E-d}", want: ""},
		{in: "${U-d}", want: "d"},
		{in: "${A:-d}", want: "a"},
		{in: "${A:+alt}", want: "alt"},
		{in: "${U:+alt}", want: ""},
		{in: "${E:+alt}", want: ""},
		{in: "${E+alt}", want: "alt"},
		{in: "${A:?msg}", want: "a"},
		{in: "${U:?must set U}", err: "U: must set U"},
		{in: "${E:?}", err: "E: is empty"},
		{in: "${U?}", err: "U: is not set"},
		{in: "${E?}", want: ""},
		{in: "${U:-$B}", want: "b"},
		{in: "${U:-${U2:-deep}}", want: "deep"},
		{in: `${U:-"x y"}`, want: "x y"},
		{in: "${A:-$NOPE}", want: "a"}, // the unused branch does not warn
		{in: "${U:-$NOPE}", want: "", undefined: []string{"NOPE"}},
		{in: `\$A`, want: "$A"},
		{in: `'$A'`, want: "$A"},
		{in: `"$A"`, want: "a"},
		{in: `"\$A \"q\" \\ \x"`, want: `$A "q" \ \x`},
		{in: `a\ b`, want: "a b"},
		{in: `trailing\`, want: "trailing"},
		{in: "$", want: "$"},
		{in: "$-x", want: "$-x"},
		{in: "a$", want: "a$"},
		{in: "${SP}", want: "x y"},
		{in: "}", want: "}"},
		{in: "$U", want: "", undefined: []string{"U"}},
		{in: "${U}", want: "", undefined: []string{"U"}},
		{in: "`$A", escape: '`', want: "$A"},
		{in: `C:\dir\$A`, escape: '`', want: `C:\dir\a`},
		{in: "\xff$A", want: "\xffa"},
		{in: "${", err: "bad substitution"},
		{in: "${A", err: "missing '}'"},
		{in: "${A:-x", err: "missing '}'"},
		{in: "${A:x}", err: "bad substitution in ${A…}"},
		{in: "${A#x}", err: "bad substitution in ${A…}"},
		{in: "'open", err: "unterminated single quote"},
		{in: `"open`, err: "unterminated double quote"},
		{in: `"open\`, err: "unterminated double quote"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			esc := tt.escape
			if esc == 0 {
				esc = '\\'
			}
			x := &expander{escape: esc, lookup: lookup}
			got, err := x.word(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(x.undefined, tt.undefined) {
				t.Errorf("undefined = %q, want %q", x.undefined, tt.undefined)
			}
		})
	}
}
