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

func TestLog(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain\nlines", "plain\nlines"},
		{"2026-12-07 10:55:42\x1b[36m [INFO] start\n\x1b[0m", "2026-12-07 10:55:42 [INFO] start\n"},
		{"[copying]  14% [==>  ]\r[copying] 100% [=====]\r\n", "[copying] 100% [=====]\n"},
		{"\t--discovery-token-ca-cert-hash sha256:0f", "\t--discovery-token-ca-cert-hash sha256:0f"},
		{"bell\x07 and \x1b]0;title\x07", `bell\a and \x1b]0;title\a`},
		{"evil\u202etxt", `evil\u202etxt`},
	}
	for _, tt := range tests {
		if got := Log(tt.in); got != tt.want {
			t.Errorf("Log(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
