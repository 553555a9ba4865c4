package regclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long a transfer may go without a byte moving,
// in either direction, before it is abandoned (and retried or resumed by
// the caller). The wait for a response's headers is bounded separately.
const DefaultIdleTimeout = time.Minute

// IdleError is a transfer that stopped moving: the registry stopped
// sending a body, or stopped reading an upload.
type IdleError struct {
	Host   string // the registry (or mirror) host
	Method string
	Path   string // names the repository and the blob or manifest
	Idle   time.Duration
}

func (e *IdleError) Error() string {
	verb := "sent no data"
	if e.Method != http.MethodGet && e.Method != http.MethodHead {
		verb = "took no data"
	}
	return fmt.Sprintf("registry %s %s for %s during %s %s (stalled transfer)", e.Host, verb, e.Idle, e.Method, e.Path)
}

// Timeout makes an IdleError a net.Error timeout, so every retry and
// resume policy treats it as the transient failure it is.
func (e *IdleError) Timeout() bool   { return true }
func (e *IdleError) Temporary() bool { return true }

// idleTransport cancels a request whose body (request or response) has
// not moved for idle. While waiting for the response headers it does not
// count: http.Transport.ResponseHeaderTimeout bounds that.
type idleTransport struct {
	base http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.idle <= 0 {
		return t.base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{cancel: cancel, err: &IdleError{Host: req.URL.Host, Method: req.Method, Path: req.URL.Path, Idle: t.idle}, idle: t.idle}
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		w.kick()
		req.Body = &uploadBody{ReadCloser: req.Body, w: w}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		w.stop()
		if w.fired() {
			err = w.err
		}
		cancel(nil)
		return nil, err
	}
	w.kick()
	resp.Body = &downloadBody{ReadCloser: resp.Body, w: w, cancel: cancel}
	return resp, nil
}

// watchdog cancels the request when kick is not called for idle.
type watchdog struct {
	mu       sync.Mutex
	timer    *time.Timer
	idle     time.Duration
	cancel   context.CancelCauseFunc
	err      *IdleError
	done     bool // stopped or fired: kicks are ignored
	hasFired bool
}

func (w *watchdog) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.idle, w.fire)
		return
	}
	w.timer.Reset(w.idle)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	w.done, w.hasFired = true, true
	w.mu.Unlock()
	w.cancel(w.err)
}

// pause stops counting (the upload is sent; the registry is answering).
func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil && !w.done {
		w.timer.Stop()
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.done = true
}

func (w *watchdog) fired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hasFired
}

type uploadBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err == io.EOF {
		b.w.pause()
	}
	return n, err
}

type downloadBody struct {
	io.ReadCloser
	w      *watchdog
	cancel context.CancelCauseFunc
}

func (b *downloadBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && err != io.EOF && b.w.fired() {
		return n, b.w.err
	}
	if err == io.EOF {
		b.w.stop()
	}
	return n, err
}

func (b *downloadBody) Close() error {
	b.w.stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}
