package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the CLI scripts of testdata/script: cnstack as a user
// types it, a real process per command (this test binary, installed as
// "cnstack" on the scripts' PATH by TestMain), from relative and absolute
// directories, flags before and after arguments, the same command twice.
//
// Each script gets its own $CNSTACK_HOME ($WORK/home) and docker config,
// and runs with CNSTACK_OFFLINE=1: only loopback addresses can be reached,
// so a script that strays off the machine fails instead of hanging.
// $REPO is the repository root (for testdata/stack and testdata/images).
func TestScripts(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", repo)
			env.Setenv("CNSTACK_HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("DOCKER_CONFIG", filepath.Join(env.WorkDir, ".docker"))
			env.Setenv("CNSTACK_OFFLINE", "1")
			env.Setenv("SOURCE_DATE_EPOCH", "0")
			// The VM cache must never be the user's (boot is not run here).
			env.Setenv("CNSTACK_VM_CACHE", filepath.Join(env.WorkDir, "vm"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitaddr": waitAddr,
			"symlink2": func(ts *testscript.TestScript, neg bool, args []string) {
				// symlink2 OLD NEW: a symlink whose target is taken verbatim
				// (the builtin symlink wants "->").
				if len(args) != 2 {
					ts.Fatalf("usage: symlink2 target link")
				}
				ts.Check(os.Symlink(args[0], ts.MkAbs(args[1])))
			},
			"mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: mkfifo path")
				}
				ts.Check(exec.Command("mkfifo", ts.MkAbs(args[0])).Run())
			},
		},
	})
}

// waitAddr VAR FILE waits (up to 30s) for a background server to write its
// address to FILE, then sets $VAR to it.
func waitAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitaddr VAR FILE")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ts.MkAbs(args[1])); err == nil && strings.TrimSpace(string(b)) != "" {
			ts.Setenv(args[0], strings.TrimSpace(string(b)))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("no address in %s after 30s", args[1])
}
