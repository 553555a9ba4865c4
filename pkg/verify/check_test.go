package verify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/vm"
)

// TestCheckVerdict pins the exit-status convention of an image's checks/*.sh:
// 0 passes, CheckNotRunExit (3) is not-run with the script's reason, anything
// else (or no exit status at all) fails. A check that cannot run never passes.
func TestCheckVerdict(t *testing.T) {
	exit := func(n int) error { return &vm.ExitError{Command: "bash checks/x.sh", Status: n} }
	for _, tc := range []struct {
		name   string
		out    string
		err    error
		status string
		want   []string
	}{
		{"pass", "cloneset scaled 2 -> 3\n", nil, Passed, []string{"cloneset scaled 2 -> 3"}},
		{"fail", "node-exporter: no endpoints\n", exit(1), Failed, []string{"node-exporter: no endpoints", "exit status 1"}},
		{"not-run", "not-run: kubectl not found\n", exit(CheckNotRunExit), NotRun, []string{"not-run: kubectl not found", "could not run"}},
		{"killed", "", &vm.ExitError{Command: "bash checks/x.sh", Status: -1, Signal: "KILL"}, Failed, []string{"signal KILL"}},
		{"transport", "", errors.New("ssh: connection lost"), Failed, []string{"connection lost"}},
		{"deadline", "", context.DeadlineExceeded, Failed, []string{"deadline"}},
		{"exit 2 is not not-run", "", exit(2), Failed, []string{"exit status 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ev := checkVerdict(vm.Result{Stdout: []byte(tc.out)}, tc.err)
			if status != tc.status {
				t.Errorf("status %q, want %q (evidence %q)", status, tc.status, ev)
			}
			for _, w := range tc.want {
				if !strings.Contains(ev, w) {
					t.Errorf("evidence %q lacks %q", ev, w)
				}
			}
		})
	}
}
