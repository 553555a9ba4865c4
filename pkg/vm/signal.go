package vm

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Every VM and Network this process has open, so that CloseAll (and the
// signal handler) can tear them all down.
var live struct {
	sync.Mutex
	set map[closer]struct{}
}

type closer interface{ close() error }

func register(c closer) {
	live.Lock()
	defer live.Unlock()
	if live.set == nil {
		live.set = map[closer]struct{}{}
	}
	live.set[c] = struct{}{}
}

func unregister(c closer) {
	live.Lock()
	defer live.Unlock()
	delete(live.set, c)
}

// CloseAll closes every VM, then every Network, that this process still has
// open. It is safe to call more than once and alongside Close.
func CloseAll() error {
	live.Lock()
	var vms, nets []closer
	for c := range live.set {
		if _, ok := c.(*Network); ok {
			nets = append(nets, c)
		} else {
			vms = append(vms, c)
		}
	}
	live.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range nets {
		if err := c.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HandleSignals makes SIGINT, SIGTERM and SIGHUP tear down every open VM and
// network before the process dies of the signal as it would have (so the exit
// status still says which). Call the returned function to stop handling. The
// pidfile and parent-death signal cover a SIGKILL, which cannot be caught.
func HandleSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			_ = CloseAll()
			signal.Reset(sigs...)
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), s)
			}
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}
