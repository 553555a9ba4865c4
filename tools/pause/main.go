// Command pause is the process that holds a pod sandbox's namespaces open: the
// infra ("pause") container of every pod. It is cnstack's own stand-in for
// registry.k8s.io/pause, written in Go so the cluster image's pause image can be
// built from source like every other binary: it sleeps until SIGINT or SIGTERM
// and, running as PID 1 of the pod's PID namespace, reaps orphaned children so
// they do not linger as zombies.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version identifies this implementation; it is not upstream pause's version.
const version = "cnstack-pause 1.0"

func main() {
	showVersion := flag.Bool("v", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	os.Exit(run(sigs, reap))
}

// run waits for signals: SIGCHLD triggers reaping, SIGINT and SIGTERM end the
// process with the exit status upstream pause uses (0 for both).
func run(sigs <-chan os.Signal, reapFn func() int) int {
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reapFn()
		case syscall.SIGINT, syscall.SIGTERM:
			return 0
		}
	}
	return 0
}

// reap collects every child that has exited, without blocking, and returns
// how many it collected.
func reap() int {
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return n
		}
		n++
	}
}
