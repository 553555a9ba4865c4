// Package regfault wraps a registry handler (an in-process registry) with
// the faults real networks and registries produce: a blob download that
// stops mid-body and never resumes, and blob-upload PUTs answered with 500
// or a reset connection. Tests of pulls and pushes use it to prove that a
// stall is an error naming the registry and that an upload is retried.
package regfault

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Failure is how a faulty PUT fails.
type Failure int

const (
	// Status500 answers 500 Internal Server Error (after reading the body).
	Status500 Failure = iota
	// Reset closes the connection without an answer, halfway through the body.
	Reset
)

// Registry is a registry handler with faults switched on by its fields.
type Registry struct {
	Handler http.Handler

	// StallBlobs makes every blob GET send its headers and half its body,
	// then stall until the client gives up (or Release is closed).
	StallBlobs atomic.Bool
	Release    chan struct{}

	// StallPuts makes every blob-upload PUT stop reading its body (the
	// registry hangs while the client uploads).
	StallPuts atomic.Bool

	// FailPuts fails the next n blob-upload PUTs (the final request of an
	// upload session), each as PutFailure says.
	FailPuts   atomic.Int64
	PutFailure Failure

	// Counters.
	Stalled   atomic.Int64 // blob GETs and PUTs stalled
	PutFailed atomic.Int64 // upload PUTs failed on purpose
	PutDone   atomic.Int64 // upload PUTs passed to the registry
}

// New wraps h.
func New(h http.Handler) *Registry {
	return &Registry{Handler: h, Release: make(chan struct{})}
}

func (f *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && f.StallBlobs.Load():
		f.stall(w, r)
		return
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
		if f.StallPuts.Load() {
			f.Stalled.Add(1)
			select {
			case <-r.Context().Done():
			case <-f.Release:
			}
			return
		}
		if f.FailPuts.Add(-1) >= 0 {
			f.PutFailed.Add(1)
			f.fail(w, r)
			return
		}
		f.PutDone.Add(1)
	}
	f.Handler.ServeHTTP(w, r)
}

// stall serves half the blob, then waits.
func (f *Registry) stall(w http.ResponseWriter, r *http.Request) {
	f.Stalled.Add(1)
	rec := &buffer{header: http.Header{}}
	f.Handler.ServeHTTP(rec, r)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	w.WriteHeader(code)
	w.Write(rec.body[:len(rec.body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-f.Release:
	case <-time.After(10 * time.Minute):
	}
}

func (f *Registry) fail(w http.ResponseWriter, r *http.Request) {
	if f.PutFailure == Reset {
		io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	io.Copy(io.Discard, r.Body)
	http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
}

// buffer records a response.
type buffer struct {
	header http.Header
	code   int
	body   []byte
}

func (b *buffer) Header() http.Header         { return b.header }
func (b *buffer) WriteHeader(code int)        { b.code = code }
func (b *buffer) Write(p []byte) (int, error) { b.body = append(b.body, p...); return len(p), nil }
