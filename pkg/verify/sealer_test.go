package verify

import (
	"os"
	"strings"
	"testing"
)

// TestSealerLogTail: the evidence of a failed sealer run names the failure,
// not cobra's usage text, and carries no colour codes. The log is one a
// failed run wrote (the sample stack's chart app on a base without helm).
func TestSealerLogTail(t *testing.T) {
	log, err := os.ReadFile("testdata/sealer-run-helm-missing.log")
	if err != nil {
		t.Fatal(err)
	}
	got := sealerLogTail(string(log), 4)
	lines := strings.Split(got, "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), got)
	}
	if lines[2] != "/bin/bash: line 1: helm: command not found" {
		t.Errorf("the failing command's output is not kept:\n%s", got)
	}
	if !strings.Contains(lines[3], "[ERROR]") || !strings.Contains(lines[3], "helm install mesh") {
		t.Errorf("the last line is not sealer's ERROR line:\n%s", got)
	}
	for _, bad := range []string{"\x1b", "Usage:", "--Clusterfile", "Global Flags"} {
		if strings.Contains(got, bad) {
			t.Errorf("evidence holds %q:\n%s", bad, got)
		}
	}
	if got := sealerLogTail("one\n\ntwo\n", 40); got != "one\ntwo" {
		t.Errorf("short log: %q", got)
	}
}
