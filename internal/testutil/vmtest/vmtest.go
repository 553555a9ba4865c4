// Package vmtest gives the tests that boot VMs a cache of their own: VM images
// and run directories go to a test-owned directory (shared by every test
// package and by later runs, so debootstrap runs once per machine), never into
// the user's real $CNSTACK_HOME/vm.
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CacheEnv overrides the test VM cache directory.
const CacheEnv = "CNSTACK_TEST_VM_CACHE"

// vmCacheEnv is vmimage.CacheEnv; it is not imported because vmimage's own
// tests use this package (TestVMCacheEnvName keeps the two in step).
const vmCacheEnv = "CNSTACK_VM_CACHE"

// CacheDir is the test VM cache: $CNSTACK_TEST_VM_CACHE, else
// <user cache dir>/cnstack/test-vm (~/.cache/cnstack/test-vm), else a
// directory under the system temp dir.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil && d != "" {
		return filepath.Join(d, "cnstack", "test-vm")
	}
	return filepath.Join(os.TempDir(), "cnstack-test-vm")
}

// UseTestCache points vmimage.CacheRoot (images, run directories, the
// accelerator probe) at CacheDir for this process and the processes it starts.
// Call it from TestMain before anything builds or boots a VM.
func UseTestCache() {
	os.Setenv(vmCacheEnv, CacheDir())
}

// hostPrograms are what building the development image and booting it need,
// with the Debian package that provides each (`make deps` installs them).
var hostPrograms = []struct{ program, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"qemu-img", "qemu-utils"},
	{"debootstrap", "debootstrap"},
	{"mke2fs", "e2fsprogs"},
	{"ssh", "openssh-client"},
}

// Missing says what this machine lacks to build and boot the development
// VM image, or "" when nothing is missing. VM tests skip with this message
// (which names the fix) instead of failing on an unprepared machine.
func Missing() string {
	var why []string
	if os.Geteuid() != 0 {
		why = append(why, "root (debootstrap builds the VM image)")
	}
	var pkgs []string
	for _, p := range hostPrograms {
		if _, err := exec.LookPath(p.program); err != nil {
			pkgs = append(pkgs, p.pkg)
		}
	}
	if len(pkgs) > 0 {
		why = append(why, "packages "+strings.Join(pkgs, " "))
	}
	if len(why) == 0 {
		return ""
	}
	return fmt.Sprintf("VM tests need %s: run `make deps` as root (or `sudo make deps`)", strings.Join(why, " and "))
}
