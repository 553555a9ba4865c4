package regclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// OpenBlob returns a reader of the blob desc, and the one place cnstack
// speaks the registry's blob protocol. Nothing is sent until the first
// Read; Seek moves where that read (or the next one) starts, so a store
// resuming a partial blob asks only for the bytes it lacks.
//
// A body that breaks or stalls (no byte for the idle timeout) is resumed
// where it stopped with an HTTP Range request, after a backoff; a registry
// that ignores Range has the bytes already read skipped. An attempt that
// moves at least MinProgress bytes (or the rest of the blob) earns fresh
// retries, so a flaky but moving link gets the whole blob; MaxRetry
// attempts in a row that move less give up with the last error. Failed requests themselves (5xx, 429, dropped connections)
// are retried by the client before they get here. At most desc.Size bytes
// plus one are read, so an over-long body fails the reader's digest check
// instead of passing truncated. The reader checks no digest: its consumer
// (the store, content.ReadAll) does, once, while writing.
func (r *Repository) OpenBlob(ctx context.Context, desc ocispec.Descriptor) io.ReadSeekCloser {
	return &blobReader{ctx: ctx, repo: r, desc: desc}
}

// MinProgress is what one attempt at a blob must move to count as
// progress. Less (a registry that sends a little, then stalls, every
// time) counts as a failure, so such a registry cannot keep a pull alive.
const MinProgress = 1 << 20

type blobReader struct {
	ctx    context.Context
	repo   *Repository
	desc   ocispec.Descriptor
	offset int64         // of the next byte Read returns
	body   io.ReadCloser // nil until opened, and after a failure
	skip   int64         // bytes of body to drop first (Range ignored)
	// failures counts attempts in a row that made no progress.
	failures int
	moved    int64 // bytes this attempt has read
	closed   bool
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, fmt.Errorf("blob %s: read after close", b.desc.Digest)
	}
	for {
		if b.body == nil {
			if b.desc.Size > 0 && b.offset >= b.desc.Size {
				return 0, io.EOF
			}
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		var n int
		var err error
		if b.skip > 0 {
			var m int64
			m, err = io.CopyN(io.Discard, b.body, b.skip)
			b.skip -= m
		} else {
			n, err = b.body.Read(p)
			b.offset += int64(n)
		}
		b.moved += int64(n)
		if err == nil {
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err == io.EOF && b.skip == 0 && (b.desc.Size <= 0 || b.offset >= b.desc.Size) {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if rerr := b.retry(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil // the next Read resumes
		}
	}
}

// retry drops the broken body and waits before the next attempt, or says
// why there is none.
func (b *blobReader) retry(cause error) error {
	b.body.Close()
	b.body, b.skip = nil, 0
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if b.moved >= MinProgress {
		b.failures = 0 // a flaky link that moves gets fresh retries
	}
	b.moved = 0
	b.failures++
	if b.failures > b.repo.client.maxRetry() {
		return fmt.Errorf("%w (gave up after %d attempts)", cause, b.failures)
	}
	wait := b.repo.client.backoff(b.failures)
	slog.Debug("resuming blob", "registry", b.repo.Host(), "digest", b.desc.Digest, "offset", b.offset, "attempt", b.failures, "wait", wait, "error", cause)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-t.C:
		return nil
	}
}

// open sends the request for the blob from b.offset on.
func (b *blobReader) open() error {
	ref := b.repo.Reference
	ref.Reference = b.desc.Digest.String()
	ctx := auth.AppendRepositoryScope(b.ctx, ref, auth.ActionPull)
	scheme := "https"
	if b.repo.PlainHTTP {
		scheme = "http"
	}
	url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, ref.Host(), ref.Repository, b.desc.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if b.offset > 0 {
		end := ""
		if b.desc.Size > 0 {
			end = fmt.Sprint(b.desc.Size - 1)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%s", b.offset, end))
	}
	resp, err := b.repo.Client.Do(req)
	if err != nil {
		return explain(err, "blob")
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && b.offset > 0:
		var first int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &first); err != nil || first != b.offset {
			resp.Body.Close()
			return fmt.Errorf("blob %s: asked for bytes from %d, got Content-Range %q", b.desc.Digest, b.offset, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		b.skip = b.offset // the registry ignored Range: skip what we hold
	default:
		defer resp.Body.Close()
		return explain(errorResponse(resp, b.desc), "blob")
	}
	b.body = resp.Body
	if b.desc.Size > 0 {
		b.body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, b.skip+b.desc.Size-b.offset+1), resp.Body}
	}
	return nil
}

// errorResponse reads a registry's error answer as oras-go reports one.
func errorResponse(resp *http.Response, desc ocispec.Descriptor) error {
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", desc.Digest, errdef.ErrNotFound)
	}
	er := &errcode.ErrorResponse{Method: resp.Request.Method, URL: resp.Request.URL, StatusCode: resp.StatusCode}
	var body struct {
		Errors errcode.Errors `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&body) == nil {
		er.Errors = body.Errors
	}
	return er
}

func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.offset
	case io.SeekEnd:
		if b.desc.Size <= 0 {
			return 0, errors.New("seek from the end of a blob of unknown size")
		}
		offset += b.desc.Size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	if offset != b.offset && b.body != nil {
		b.body.Close()
		b.body, b.skip = nil, 0
	}
	b.offset = offset
	return offset, nil
}

func (b *blobReader) Close() error {
	b.closed = true
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	return nil
}
