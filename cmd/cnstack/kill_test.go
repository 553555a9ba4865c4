package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the tests run the test binary itself as the cnstack CLI:
// as "cnstack" on the PATH of the CLI scripts (testscript), and with
// CNSTACK_AS_CLI=1 so a test can SIGKILL a real cnstack process in the
// middle of its work.
func TestMain(m *testing.M) {
	if os.Getenv("CNSTACK_AS_CLI") == "1" {
		main()
		os.Exit(0)
	}
	testscript.Main(m, map[string]func(){"cnstack": main})
}

func cliCmd(home string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--home", home}, args...)...)
	cmd.Env = append(os.Environ(), "CNSTACK_AS_CLI=1")
	return cmd
}

// bigImage builds an image of three ~40 MiB random layers into home.
func bigImage(t *testing.T, home string) string {
	t.Helper()
	dir := t.TempDir()
	kf := "FROM scratch\n"
	for i := 0; i < 3; i++ {
		b := make([]byte, 40<<20)
		rand.Read(b)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%d", i)), b, 0o644)
		kf += fmt.Sprintf("COPY blob%d data/\n", i)
	}
	os.WriteFile(filepath.Join(dir, "Kubefile"), []byte(kf), 0o644)
	const ref = "kill.test/big:v1"
	if out, err := cliCmd(home, "build", "-t", ref, dir).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return ref
}

// killWhen starts cmd and SIGKILLs it once cond holds (or fails the test
// when the command ends first).
func killWhen(t *testing.T, cmd *exec.Cmd, cond func() bool) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("command finished (%v) before it could be killed", err)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("condition never held")
		case <-time.After(2 * time.Millisecond):
		}
		if cond() {
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return
		}
	}
}

func partialBytes(home string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(home, "store", "ingest", "*.partial"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// bigBlobs counts committed blobs over 10 MiB.
func bigBlobs(home string) int {
	n := 0
	matches, _ := filepath.Glob(filepath.Join(home, "store", "blobs", "sha256", "*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Size() > 10<<20 {
			n++
		}
	}
	return n
}

func TestKillDuringLoadAndSave(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~500 MB")
	}
	src := t.TempDir()
	ref := bigImage(t, src)
	bundleFile := filepath.Join(t.TempDir(), "big.tar")

	// save, killed mid-way: no bundle appears; the rerun completes.
	killWhen(t, cliCmd(src, "save", "-o", bundleFile, ref), func() bool {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(bundleFile), ".big.tar.*.tmp"))
		if len(m) == 0 {
			return false
		}
		fi, err := os.Stat(m[0])
		return err == nil && fi.Size() > 30<<20
	})
	if _, err := os.Stat(bundleFile); err == nil {
		t.Fatal("a killed save left a bundle behind")
	}
	if out, err := cliCmd(src, "save", "-o", bundleFile, ref).CombinedOutput(); err != nil {
		t.Fatalf("save rerun: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(bundleFile), ".big.tar.*.tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	if out, err := cliCmd(src, "check", bundleFile).CombinedOutput(); err != nil {
		t.Fatalf("check after rerun: %v\n%s", err, out)
	}

	// load, killed mid-blob: nothing tagged; the rerun reuses finished blobs.
	dst := t.TempDir()
	killWhen(t, cliCmd(dst, "load", "-i", bundleFile), func() bool { return bigBlobs(dst) >= 1 && partialBytes(dst) > 5<<20 })
	out, _ := cliCmd(dst, "images", "-q").CombinedOutput()
	if strings.TrimSpace(string(out)) != "" {
		t.Fatalf("a killed load tagged images:\n%s", out)
	}
	resumed := partialBytes(dst)
	out, err := cliCmd(dst, "load", "-i", bundleFile).CombinedOutput()
	if err != nil {
		t.Fatalf("load rerun: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "loaded "+ref) || strings.Contains(string(out), "(0 already in the store)") {
		t.Fatalf("load rerun did not reuse the finished blobs:\n%s", out)
	}
	t.Logf("resumed a %d-byte partial blob; rerun said: %s", resumed, strings.TrimSpace(string(out)))
	if out, err := cliCmd(dst, "save", "-o", filepath.Join(t.TempDir(), "again.tar"), ref).CombinedOutput(); err != nil {
		t.Fatalf("the loaded image is not whole: %v\n%s", err, out)
	}
}

// blobCounter counts blob uploads the registry completes.
type blobCounter struct {
	h         http.Handler
	completed atomic.Int64
}

func (b *blobCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	b.h.ServeHTTP(sw, r)
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && sw.code == http.StatusCreated {
		b.completed.Add(1)
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func TestKillDuringPush(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~250 MB")
	}
	home := t.TempDir()
	ref := bigImage(t, home)
	reg := &blobCounter{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	dest := strings.TrimPrefix(srv.URL, "http://") + "/kill/big:v1"
	killWhen(t, cliCmd(home, "push", "-j", "1", ref, dest), func() bool { return reg.completed.Load() >= 1 })
	first := reg.completed.Load()
	out, err := cliCmd(home, "push", ref, dest).CombinedOutput()
	if err != nil {
		t.Fatalf("push rerun: %v\n%s", err, out)
	}
	total := reg.completed.Load()
	// 3 layers + config: the rerun uploads only what the killed push had not finished.
	if first == 0 || total != 4 {
		t.Fatalf("the killed push finished %d blobs and the rerun %d more; want 4 in all, none twice", first, total-first)
	}
	t.Logf("killed push finished %d blobs; the rerun uploaded %d more", first, total-first)
}
