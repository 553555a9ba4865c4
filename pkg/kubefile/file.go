package kubefile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds a Kubefile read from disk: real ones are a few KB; the
// limit only stops a hostile or mistaken file (a disk image named Kubefile).
const MaxFileSize = 4 << 20

// ReadFile reads the Kubefile at path. It refuses anything but a regular
// file (opening is non-blocking, so a FIFO is an error, not a hang) and
// files over MaxFileSize.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read Kubefile: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read Kubefile %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("Kubefile %s is a %s, not a regular file", path, nodeType(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("Kubefile %s is %d bytes, over the %d-byte limit", path, fi.Size(), MaxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read Kubefile %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("Kubefile %s grew past the %d-byte limit while read", path, MaxFileSize)
	}
	return b, nil
}

func nodeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return m.Type().String()
}
