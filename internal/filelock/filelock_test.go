package filelock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExclusiveAndShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	a, err := Acquire(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shared lock while exclusive held: %v, want a deadline", err)
	}
	if _, ok, err := TryAcquire(path); ok || err != nil {
		t.Fatalf("TryAcquire while held = %v, %v", ok, err)
	}
	a.Unlock()
	a.Unlock() // twice is harmless

	s1, err := Acquire(t.Context(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Acquire(t.Context(), path, false)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, ok, _ := TryAcquire(path); ok {
		t.Fatal("TryAcquire took an exclusive lock over shared ones")
	}
	s1.Unlock()
	s2.Unlock()
	l, ok, err := TryAcquire(path)
	if !ok || err != nil {
		t.Fatalf("TryAcquire of a free lock = %v, %v", ok, err)
	}
	l.Unlock()
	var none *Lock
	none.Unlock()
}

// A waiter gets the lock as soon as the holder lets go.
func TestAcquireWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	a, err := Acquire(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(30 * time.Millisecond); a.Unlock() }()
	b, err := Acquire(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	b.Unlock()
}

// Concurrent holders of an exclusive lock take turns (moved from the VM
// image cache, whose builds it serialises).
func TestExclusiveSerializes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.lock")
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l, err := Acquire(t.Context(), path, true)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > maxInside.Load() {
				maxInside.Store(n)
			}
			time.Sleep(50 * time.Millisecond)
			inside.Add(-1)
			l.Unlock()
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders at once", maxInside.Load())
	}
}

// TestLockFile: a lock on an open file is held until the file closes, and
// seen by TryLockFile on another open of it (as the store's cleaner sees a
// live writer's temp file).
func TestLockFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new-1.tmp")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := LockFile(w); err != nil {
		t.Fatal(err)
	}
	c, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := TryLockFile(c); ok || err != nil {
		t.Fatalf("a live writer's file: TryLockFile = %v, %v; want busy", ok, err)
	}
	w.Close() // the writer dies
	if ok, err := TryLockFile(c); !ok || err != nil {
		t.Fatalf("a dead writer's file: TryLockFile = %v, %v; want the lock", ok, err)
	}
}
