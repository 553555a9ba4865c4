package printable

import "testing"

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text: ok", "plain text: ok"},
		{"héllo wörld ✓", "héllo wörld ✓"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a\rb\nc\x00", `a\rb\nc\x00`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"\uFFFD is fine", "\uFFFD is fine"},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
