// Package regproc runs the real distribution registry server (v3, built by
// tools/install.sh) as a child process on 127.0.0.1 for tests that need a
// registry other programs (sealer, cosign, crane) can reach.
//
// For in-process tests prefer go-containerregistry's pkg/registry; use this
// where a test claims compatibility with a real registry, or serves a
// distribution storage tree that cnstack wrote.
package regproc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
)

// Options configure Start. The zero value serves an empty, writable registry
// whose storage lives in t.TempDir().
type Options struct {
	// Root serves an existing distribution filesystem tree (the directory that
	// holds docker/registry/v2). It is served read-only unless Writable is set.
	Root string
	// Writable lets clients push to Root. Ignored when Root is empty.
	Writable bool
	// Delete enables the DELETE API for manifests and blobs.
	Delete bool
	// StartTimeout bounds the wait for /v2/ to answer (default 30s).
	StartTimeout time.Duration
}

// Registry is a running registry process.
type Registry struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Root is the storage root directory (rootdirectory in the registry config).
	Root string
	// ReadOnly reports whether pushes are refused.
	ReadOnly bool
	// LogPath is the file that receives the server's stdout and stderr.
	LogPath string

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Ref returns a reference to repo (with an optional ":tag" or "@digest") in this registry.
func (r *Registry) Ref(repo string) string { return r.Addr + "/" + repo }

// URL returns the registry's base URL, "http://127.0.0.1:PORT".
func (r *Registry) URL() string { return "http://" + r.Addr }

// Start starts the registry and waits until GET /v2/ answers. The process (and
// its process group) is stopped in t.Cleanup; if the test failed, the server
// log is printed.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin := tooltest.Path(t, tooltest.Registry)
	work := t.TempDir()

	r := &Registry{Root: opts.Root, LogPath: filepath.Join(work, "registry.log")}
	if r.Root == "" {
		r.Root = filepath.Join(work, "storage")
		if err := os.Mkdir(r.Root, 0o755); err != nil {
			t.Fatalf("regproc: %v", err)
		}
	} else {
		abs, err := filepath.Abs(r.Root)
		if err != nil {
			t.Fatalf("regproc: %v", err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			t.Fatalf("regproc: Root %s is not a directory (%v)", abs, err)
		}
		r.Root = abs
		r.ReadOnly = !opts.Writable
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}

	// Picking a free port and handing it over races with other listeners;
	// retry the rare loser instead of failing.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("regproc: %v", err)
		}
		r.Addr = addr
		configPath := filepath.Join(work, "config.yml")
		if err := os.WriteFile(configPath, config(r, opts.Delete), 0o600); err != nil {
			t.Fatalf("regproc: %v", err)
		}
		if lastErr = r.start(bin, configPath, timeout); lastErr == nil {
			break
		}
		if !strings.Contains(r.log(), "address already in use") {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("regproc: start registry: %v\n--- %s ---\n%s", lastErr, r.LogPath, r.log())
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("regproc: registry %s log (%s):\n%s", r.Addr, r.LogPath, r.log())
		}
	})
	return r
}

// start launches the process and polls /v2/ until it answers or timeout
// passes. On failure the process is gone and r.cmd is nil.
func (r *Registry) start(bin, configPath string, timeout time.Duration) error {
	logFile, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(bin, "serve", configPath)
	cmd.Env = env()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = filepath.Dir(configPath)
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		r.waitErr = cmd.Wait()
		close(exited)
	}()

	if err := waitReady(r.URL()+"/v2/", exited, timeout); err != nil {
		terminate(cmd, true)
		<-exited
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w: %v", err, r.waitErr)
		}
		return err
	}
	r.cmd, r.exited = cmd, exited
	return nil
}

var errExited = errors.New("registry exited before answering")

// waitReady polls url until it answers 200, the process exits or timeout passes.
func waitReady(url string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-exited:
			return errExited
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry did not answer within %s: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the registry's process group: SIGTERM, then SIGKILL after
// five seconds. It is safe to call more than once; t.Cleanup calls it too.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		terminate(r.cmd, false)
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			terminate(r.cmd, true)
			<-r.exited
		}
	})
}

func (r *Registry) log() string {
	b, err := os.ReadFile(r.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// config renders the registry configuration. Everything that could talk to
// anything but the test's clients is off: no notifications, no proxy (pull
// through cache), no redis, no debug server, no health checks, no upload purger.
func config(r *Registry, deleteEnabled bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version: 0.1\n")
	fmt.Fprintf(&b, "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n")
	fmt.Fprintf(&b, "storage:\n")
	fmt.Fprintf(&b, "  filesystem:\n    rootdirectory: %s\n", strconv.Quote(r.Root))
	fmt.Fprintf(&b, "  delete:\n    enabled: %t\n", deleteEnabled)
	fmt.Fprintf(&b, "  cache:\n    blobdescriptor: inmemory\n")
	fmt.Fprintf(&b, "  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: %t\n", r.ReadOnly)
	fmt.Fprintf(&b, "http:\n  addr: %s\n  secret: %s\n", strconv.Quote(r.Addr), randomHex(16))
	fmt.Fprintf(&b, "  headers:\n    X-Content-Type-Options: [nosniff]\n")
	return b.Bytes()
}

// env is the registry's environment: the test's, without REGISTRY_* variables
// (which would override the config) and with OpenTelemetry export off (its
// default exporter would post traces to an OTLP collector).
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"OTEL_SDK_DISABLED=true",
		"OTEL_TRACES_EXPORTER=none",
		"OTEL_METRICS_EXPORTER=none",
		"OTEL_LOGS_EXPORTER=none",
	)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Ping reports whether the registry answers GET /v2/ with 200.
func (r *Registry) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return fmt.Errorf("ping registry %s: %w", r.Addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping registry %s: %s", r.Addr, resp.Status)
	}
	return nil
}
