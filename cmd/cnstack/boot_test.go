package main

import (
	"reflect"
	"testing"
)

// TestLastLines pins what a failed boot prints under its first failure: the
// tail of sealer's log as plain text.
func TestLastLines(t *testing.T) {
	sealerLog := "2026-12-07 07:20:18\x1b[31m [ERROR] [root.go:75] failed to join node\n\x1b[0m\n" +
		"[copying files]  14% [==>   ]\r[copying files] 100% [=====]\n\nerror: \x07bell\n"
	for _, tc := range []struct {
		name     string
		evidence string
		n        int
		want     []string
	}{
		{"empty", "", 15, nil},
		{"first line names the failure", "sealer run failed: exit 1\nline 2\nline 3", 1, []string{"sealer run failed: exit 1"}},
		{"tail only", "a\nb\nc\nd", 2, []string{"c", "d"}},
		{"escapes, progress bars and control bytes", sealerLog, 15, []string{
			"2026-12-07 07:20:18 [ERROR] [root.go:75] failed to join node",
			"[copying files] 100% [=====]",
			`error: \abell`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastLines(tc.evidence, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lastLines(%q, %d) = %q, want %q", tc.evidence, tc.n, got, tc.want)
			}
		})
	}
}
