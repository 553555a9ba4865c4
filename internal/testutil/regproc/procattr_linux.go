package regproc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the registry in its own process group, so Stop can signal
// everything it started, and has the kernel kill it if the test binary dies
// without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// terminate signals the process group of cmd: SIGTERM, or SIGKILL if kill.
func terminate(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig) // the group may already be gone
}
