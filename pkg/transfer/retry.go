package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// DefaultUploadRetries is how often a failed upload is started over.
const DefaultUploadRetries = 5

// retryingTarget retries what the registry client cannot: an upload whose
// PUT got a 5xx, a 429 or a dropped connection. Its body was a stream,
// so the request cannot simply be sent again, and the registry may have
// dropped the upload session; each retry starts a new session with the
// content fetched again from the source. A blob the registry turns out to
// have (the answer to a successful PUT was lost) is not sent again.
type retryingTarget struct {
	content.Storage
	src     content.ReadOnlyStorage
	name    string // the destination, for messages
	retries int
	wait    func(attempt int) time.Duration
	retried func() // counts retries (Report.Retried)
}

func (r *retryingTarget) Push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	err := r.Storage.Push(ctx, desc, content)
	for attempt := 1; err != nil && attempt <= r.retries && retryableUpload(err) && ctx.Err() == nil; attempt++ {
		slog.Warn("upload failed; retrying with a new upload session", "to", r.name, "digest", desc.Digest, "attempt", attempt, "error", err)
		if r.retried != nil {
			r.retried()
		}
		t := time.NewTimer(r.wait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if ok, eerr := r.Storage.Exists(ctx, desc); eerr == nil && ok {
			return nil
		}
		rc, ferr := r.src.Fetch(ctx, desc)
		if ferr != nil {
			return fmt.Errorf("upload %s to %s: %w (reading it again for a retry: %v)", desc.Digest, r.name, err, ferr)
		}
		err = r.Storage.Push(ctx, desc, rc)
		rc.Close()
	}
	if err != nil && retryableUpload(err) {
		return fmt.Errorf("upload %s to %s: %w (gave up after %d retries)", desc.Digest, r.name, err, r.retries)
	}
	return err
}

// Mount keeps cross-repository mounts working through the wrapper.
func (r *retryingTarget) Mount(ctx context.Context, desc ocispec.Descriptor, fromRepo string, getContent func() (io.ReadCloser, error)) error {
	m, ok := r.Storage.(registry.Mounter)
	if !ok {
		rc, err := getContent()
		if err != nil {
			return err
		}
		defer rc.Close()
		return r.Push(ctx, desc, rc)
	}
	return m.Mount(ctx, desc, fromRepo, getContent)
}

// retryableUpload reports whether an upload failed for a reason worth a
// new attempt: the registry's 5xx or 429, or the network.
func retryableUpload(err error) bool {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode >= 500 || er.StatusCode == 429 || er.StatusCode == 408
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		(errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "connection reset")
}

// uploadBackoff waits 0.5 s, 1 s, 2 s, … (at most 10 s), with jitter.
func uploadBackoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt-1, 5)
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	return d/2 + rand.N(d/2+1)
}
