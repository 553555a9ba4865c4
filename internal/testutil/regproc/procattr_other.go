//go:build !linux

package regproc

import "os/exec"

func setProcAttr(*exec.Cmd) {}

// terminate kills the process; without Linux process groups there is no
// graceful variant here.
func terminate(cmd *exec.Cmd, _ bool) {
	_ = cmd.Process.Kill()
}
