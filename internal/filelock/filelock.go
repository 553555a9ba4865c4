// Package filelock takes advisory flock(2) locks: on lock files (the
// store's index and blob locks, the VM image cache's build locks) and on
// open files whose lock says their writer lives (the store's temp files). They guard
// against other cnstack processes; goroutines of one process need their own
// mutex as well (flock locks belong to the open file, not the goroutine).
package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Acquire takes a shared or exclusive lock on path (created if missing),
// waiting until ctx is done. The wait polls, backing off from 1ms to 100ms,
// so a short-held lock costs little and a long wait costs no CPU.
func Acquire(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	delay := time.Millisecond
	for {
		ok, err := try(f, how)
		if ok {
			return &Lock{f: f}, nil
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s (another cnstack process holds it): %w", path, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// TryAcquire takes an exclusive lock on path if no one holds it; ok is
// false, with no error, when someone does.
func TryAcquire(path string) (l *Lock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", path, err)
	}
	ok, err = try(f, syscall.LOCK_EX)
	if !ok {
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, nil
	}
	return &Lock{f: f}, true, nil
}

// LockFile takes an exclusive lock on the open file f itself, waiting for
// it; closing f releases it. The store marks its temp files this way while
// their writer lives: a temp file whose lock is free belongs to a writer
// that died (TryLockFile).
func LockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// TryLockFile takes an exclusive lock on the open file f if no one holds
// it; ok is false, with no error, when someone does. Closing f releases it.
func TryLockFile(f *os.File) (ok bool, err error) {
	return try(f, syscall.LOCK_EX)
}

// try attempts the lock once: held, busy (false, nil), or an error.
func try(f *os.File, how int) (bool, error) {
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		return false, nil
	}
	return false, err
}

// Unlock releases the lock; a nil or released Lock is a no-op.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
