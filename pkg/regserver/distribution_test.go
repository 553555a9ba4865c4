package regserver_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// distributionRegistry is the upstream `registry` binary (distribution v3,
// built by tools/install.sh) running as a child process on 127.0.0.1.
type distributionRegistry struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// registryBinary finds the pinned upstream registry: $CNSTACK_TOOLS_BIN, or
// .cache/tools/bin at the repository root. A missing binary fails the test:
// a compatibility test that skips proves nothing.
func registryBinary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CNSTACK_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "tools", "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("upstream registry binary %s is missing (%v): run `make tools` or set CNSTACK_TOOLS_BIN", p, err)
	}
	return p
}

// startDistribution serves root with the upstream registry and stops it at
// cleanup. Everything that could reach beyond the test is off.
func startDistribution(t testing.TB, root string, readOnly bool) *distributionRegistry {
	t.Helper()
	bin := registryBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	work := t.TempDir()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: %t
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: %t
http:
  addr: %q
  secret: regserver-test-secret
`, root, !readOnly, readOnly, addr)
	cfgPath := filepath.Join(work, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.Env = append(os.Environ(), "OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	r := &distributionRegistry{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("upstream registry log:\n%s", logBuf.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case <-r.done:
			t.Fatalf("upstream registry exited: %s", logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream registry did not answer on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *distributionRegistry) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// TestTreesInterchangeWithDistribution: a tree the upstream registry wrote is
// served by ours, and a tree ours wrote is served by the upstream registry,
// with the same digests and intact blobs.
func TestTreesInterchangeWithDistribution(t *testing.T) {
	// upstream writes, we serve read-only
	root := t.TempDir()
	up := startDistribution(t, root, false)
	want := pushImageAndIndex(t, up.addr)
	up.stop()
	pullAndValidate(t, start(t, root, true).Addr(), want)

	// we write, upstream serves read-only
	root2 := t.TempDir()
	ours := start(t, root2, false)
	want2 := pushImageAndIndex(t, ours.Addr())
	if err := ours.Close(); err != nil {
		t.Fatal(err)
	}
	pullAndValidate(t, startDistribution(t, root2, true).addr, want2)
}
