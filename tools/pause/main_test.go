package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestRunStopsOnTermAndInt(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		sigs := make(chan os.Signal, 3)
		reaped := 0
		sigs <- syscall.SIGCHLD
		sigs <- sig
		sigs <- syscall.SIGCHLD // after the stop signal: never handled
		if code := run(sigs, func() int { reaped++; return 0 }); code != 0 {
			t.Errorf("%v: exit code %d, want 0", sig, code)
		}
		if reaped != 1 {
			t.Errorf("%v: reaped %d times, want 1", sig, reaped)
		}
	}
}

// TestReapCollectsExitedChildren starts children that exit at once and checks
// that reap collects them (they are this process's children, as orphans are
// PID 1's).
func TestReapCollectsExitedChildren(t *testing.T) {
	const n = 3
	for i := 0; i < n; i++ {
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		if err != nil {
			t.Skipf("cannot start /bin/true: %v", err)
		}
		_ = pid
	}
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < n && time.Now().Before(deadline) {
		got += reap()
		time.Sleep(10 * time.Millisecond)
	}
	if got != n {
		t.Fatalf("reaped %d children, want %d", got, n)
	}
	if reap() != 0 {
		t.Fatal("reap found a child after all were collected")
	}
}

// TestBinary builds the command and checks it as the kubelet uses it: it stays
// up, and SIGTERM ends it with status 0.
func TestBinary(t *testing.T) {
	bin := t.TempDir() + "/pause"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-v").Output()
	if err != nil || string(out) != version+"\n" {
		t.Fatalf("pause -v = %q, %v; want %q", out, err, version)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited on its own: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pause after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("pause did not exit within 10s of SIGTERM")
	}
}
