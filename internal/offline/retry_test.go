package offline

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// retryKubectl answers /readyz only once $STUB_DIR/down-polls is counted down
// to zero (the API server restarting), and logs every call.
const retryKubectl = `echo "kubectl $*" >>"$STUB_DIR/calls"
if [ "$*" = "get --raw=/readyz" ]; then
	n=$(cat "$STUB_DIR/down-polls" 2>/dev/null || echo 0)
	if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$STUB_DIR/down-polls"; echo "connection refused" >&2; exit 1; fi
	echo ok; exit 0
fi
exit 0
`

// TestKubeRetry: scripts/kube-retry.sh, which every app of the edition installs
// through, runs the command once when all goes well; waits for /readyz before
// running it; runs it again when it fails (an API server restarting mid-install)
// and stops at the first success; and when it keeps failing, gives up after the
// attempts with the command's own exit code and says so.
func TestKubeRetry(t *testing.T) {
	script := filepath.Join(editionDir(t), "base", "scripts", "kube-retry.sh")
	for _, tc := range []struct {
		name      string
		downPolls string
		failFirst int // the command fails this many times, then succeeds
		code      int
		runs      int
		want      []string
	}{
		{"ok", "0", 0, 0, 1, nil},
		{"apiserver-restarting", "3", 0, 0, 1, []string{"kube-retry: the API server answered /readyz after"}},
		{"fails-once", "0", 1, 0, 2, []string{"kube-retry: attempt 1/3 failed (exit 7): "}},
		{"keeps-failing", "0", 99, 7, 3, []string{"attempt 3/3 failed (exit 7)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", retryKubectl)
			os.WriteFile(filepath.Join(stubs, "down-polls"), []byte(tc.downPolls), 0o644)
			// The app command: counts its runs, fails the first failFirst with exit 7.
			app := `n=$(($(cat "$STUB_DIR/runs" 2>/dev/null || echo 0) + 1)); echo $n >"$STUB_DIR/runs"; ` +
				`kubectl apply -f app.yaml && [ $n -gt ` + strconv.Itoa(tc.failFirst) + ` ] || exit 7`
			cmd := exec.Command("bash", script, app)
			cmd.Env = append(os.Environ(), "PATH="+stubs+":"+os.Getenv("PATH"), "STUB_DIR="+stubs,
				"KUBE_RETRY_POLL_SECONDS=0", "KUBE_RETRY_PAUSE_SECONDS=0")
			out, _ := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			runs, _ := os.ReadFile(filepath.Join(stubs, "runs"))
			if got := strings.TrimSpace(string(runs)); got != strconv.Itoa(tc.runs) {
				t.Errorf("the command ran %s times, want %d:\n%s", got, tc.runs, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			// The command ran only after the restarting API server answered /readyz.
			calls, _ := os.ReadFile(filepath.Join(stubs, "calls"))
			before, _, _ := strings.Cut(string(calls), "kubectl apply")
			if polls := strings.Count(before, "kubectl get --raw=/readyz\n"); strconv.Itoa(polls-1) != tc.downPolls {
				t.Errorf("%d /readyz polls before the first run, want %s + 1:\n%s", polls, tc.downPolls, calls)
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		out, err := exec.Command("bash", script).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "usage: kube-retry.sh 'COMMAND'") {
			t.Errorf("no argument: %v\n%s", err, out)
		}
	})
}
