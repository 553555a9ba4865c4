package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cnstack/cnstack/internal/atomicfile"
)

// ownerFile, in every run directory and network directory, records which
// process owns it and which QEMU runs in it, so that a later process can tell
// a live run from the remains of a killed one.
const ownerFile = "owner.json"

type owner struct {
	OwnerPID   int    `json:"ownerPid"`
	OwnerStart uint64 `json:"ownerStart"`
	QEMUPID    int    `json:"qemuPid,omitempty"`
	QEMUStart  uint64 `json:"qemuStart,omitempty"`
}

// writeOwner records the current process (and o's QEMU fields) in dir.
func writeOwner(dir string, o owner) error {
	o.OwnerPID = os.Getpid()
	start, err := procStart(o.OwnerPID)
	if err != nil {
		return err
	}
	o.OwnerStart = start
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ownerFile), data, 0o644)
}

func readOwner(dir string) (owner, error) {
	var o owner
	data, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(data, &o)
}

// procStart returns a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat): with the PID it identifies a process even after PID reuse.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: skip past
	// its last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid that started at start still runs
// (zombies count as gone).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := procStart(pid)
	if err != nil || got != start {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// ReapReport says what Reap cleaned.
type ReapReport struct {
	// Removed are the run and network directories deleted.
	Removed []string
	// Killed are the PIDs of orphaned QEMU processes killed.
	Killed []int
}

// Reap cleans the remains of runs whose owning process is gone: it kills their
// QEMU (if it still runs, and is the same process) and deletes their run
// directories under runRoot and network directories in the temp directory.
// Runs of live processes are left alone. Start calls it for its RunRoot.
func Reap(runRoot string) (ReapReport, error) {
	var rep ReapReport
	var errs []error
	dirs, _ := filepath.Glob(filepath.Join(runRoot, "*"))
	nets, _ := filepath.Glob(filepath.Join(os.TempDir(), netDirPrefix+"*"))
	for _, dir := range append(dirs, nets...) {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		o, err := readOwner(dir)
		if err != nil {
			// Owner is written right after the directory is made; a
			// directory without one that is not brand new is debris.
			if errors.Is(err, os.ErrNotExist) && time.Since(fi.ModTime()) > 2*time.Minute {
				if err := os.RemoveAll(dir); err != nil {
					errs = append(errs, err)
				} else {
					rep.Removed = append(rep.Removed, dir)
				}
			}
			continue
		}
		if alive(o.OwnerPID, o.OwnerStart) {
			continue
		}
		if alive(o.QEMUPID, o.QEMUStart) {
			_ = syscall.Kill(-o.QEMUPID, syscall.SIGKILL)
			_ = syscall.Kill(o.QEMUPID, syscall.SIGKILL)
			rep.Killed = append(rep.Killed, o.QEMUPID)
			// Not our child: poll until the kernel has torn it down, so the
			// overlay is no longer open when we delete it.
			for i := 0; i < 100 && alive(o.QEMUPID, o.QEMUStart); i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Removed = append(rep.Removed, dir)
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("reap %s: %w", runRoot, err)
	}
	return rep, nil
}
