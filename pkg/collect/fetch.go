package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/cnstack/cnstack/pkg/store"

	"github.com/cnstack/cnstack/internal/ctxio"
)

// Manifest media types cnstack collects (sealer accepts the same four;
// Docker schema 1 is refused).
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, mediaTypeDockerList, ocispec.MediaTypeImageManifest, mediaTypeDockerManifest,
}, ", ")

// maxManifestSize bounds what is read of a manifest; real ones are a few KB.
const maxManifestSize = 4 << 20

// endpoint is one repository on the registry content comes from (the
// registry itself or its mirror), reached through remote's client: auth,
// TLS choices and request-level retries on 5xx, 429 and dropped connections.
type endpoint struct {
	host   string // what errors name: "127.0.0.1:5000", "registry-1.docker.io"
	base   string // "https://host/v2/<repository>"
	client orasremote.Client
	scope  string // the repository, for token scopes
	repo   *orasremote.Repository
}

func newEndpoint(repo *orasremote.Repository) *endpoint {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	return &endpoint{
		host:   repo.Reference.Registry,
		base:   scheme + "://" + repo.Reference.Registry + "/v2/" + repo.Reference.Repository,
		client: repo.Client,
		repo:   repo,
	}
}

func (e *endpoint) do(ctx context.Context, url string, header http.Header) (*http.Response, error) {
	ctx = auth.AppendRepositoryScope(ctx, e.repo.Reference, auth.ActionPull)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return e.client.Do(req)
}

// manifest fetches a manifest by tag or digest. The bytes are checked
// against the digest asked for, or against the registry's
// Docker-Content-Digest for a tag.
func (e *endpoint) manifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	resp, err := e.do(ctx, e.base+"/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return ocispec.Descriptor{}, nil, classify(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, httpError(resp, "manifest")
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, classify(err)
	}
	if len(b) > maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest is larger than %d bytes", maxManifestSize)
	}
	got := digest.FromBytes(b)
	want := digest.Digest(ref)
	if want.Validate() != nil {
		want = digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	}
	if want != "" && want.Validate() == nil && want.Algorithm() == digest.SHA256 && got != want {
		return ocispec.Descriptor{}, nil, &DigestError{Want: want, Got: got}
	}
	mt, err := manifestMediaType(b, resp.Header.Get("Content-Type"))
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(b))}, b, nil
}

// DigestError is content that does not match its digest.
type DigestError struct {
	Want, Got digest.Digest
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, the registry sent content with digest %s", e.Want, e.Got)
}

// manifestMediaType finds a manifest's type from its mediaType field, then
// the Content-Type header, then its shape (OCI allows omitting the field).
func manifestMediaType(b []byte, contentType string) (string, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", fmt.Errorf("manifest is not JSON: %w", err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.TrimSpace(mt)
	}
	switch mt {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList, ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		return mt, nil
	}
	switch {
	case probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return "", fmt.Errorf("Docker schema 1 manifests are not supported (sealer refuses them too); push the image again with a current Docker or crane")
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("unrecognized manifest content type %q", mt)
}

// blob streams a blob into the store, verifying its digest as it goes.
// A broken transfer is resumed where it stopped (HTTP Range on the partial
// file the store keeps), with backoff; a blob already stored is not fetched.
func (e *endpoint) blob(ctx context.Context, s *store.Store, desc ocispec.Descriptor, maxRetry int, onBytes func(int64)) error {
	restarted := false
	failures := 0
	for {
		if ok, _ := s.Exists(ctx, desc); ok {
			return nil
		}
		w, err := s.Ingest(ctx, desc)
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil
		}
		if err != nil {
			return err
		}
		start := w.Offset()
		var n int64
		if start < desc.Size || desc.Size == 0 {
			n, err = e.copyBlob(ctx, w, desc, start, onBytes)
		}
		if err == nil {
			err = w.Commit()
			if err != nil && start > 0 && !restarted {
				// The partial file from an earlier attempt may have been
				// wrong; the store dropped it, so fetch once more from zero.
				restarted = true
				continue
			}
			if err != nil && strings.Contains(err.Error(), "digest mismatch") {
				return &DigestError{Want: desc.Digest, Got: w.Digest()}
			}
			return err
		}
		w.Close() // keeps the partial file for the next attempt
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		if n > 0 {
			failures = 0 // progress was made: a flaky link gets fresh retries
		}
		failures++
		if failures > maxRetry {
			return fmt.Errorf("%w (gave up after %d attempts)", err, failures)
		}
		if err := sleep(ctx, backoff(failures)); err != nil {
			return err
		}
	}
}

// copyBlob fetches desc from offset on and writes it to w.
func (e *endpoint) copyBlob(ctx context.Context, w io.Writer, desc ocispec.Descriptor, offset int64, onBytes func(int64)) (int64, error) {
	h := http.Header{}
	if offset > 0 {
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, desc.Size-1))
	}
	resp, err := e.do(ctx, e.base+"/blobs/"+desc.Digest.String(), h)
	if err != nil {
		return 0, classify(err)
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		var first int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &first); err != nil || first != offset {
			return 0, fmt.Errorf("blob %s: asked for bytes from %d, got Content-Range %q", desc.Digest, offset, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			// The registry ignored Range: skip what we already hold.
			if _, err := io.CopyN(io.Discard, body, offset); err != nil {
				return 0, classify(err)
			}
		}
	default:
		return 0, httpError(resp, "blob")
	}
	// One byte more than expected exposes an over-long body: the digest check
	// then fails instead of a truncated read passing silently.
	n, err := ctxio.Copy(ctx, w, io.LimitReader(body, desc.Size-offset+1), onBytes)
	if err != nil {
		return n, classify(err)
	}
	if offset+n < desc.Size {
		return n, classify(io.ErrUnexpectedEOF)
	}
	return n, nil
}

func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt-1, 5)
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var te *transientError
	return errors.As(err, &te)
}

// UnreachableError is a registry that could not be reached at all.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "registry unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// classify turns transport errors into what users and retries need.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return &AuthError{Err: err}
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &UnreachableError{Err: err}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return &UnreachableError{Err: err}
	}
	var ne net.Error
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "connection reset") {
		return &transientError{err: err}
	}
	return err
}

// AuthError is a registry refusing our credentials (or their absence).
type AuthError struct {
	Status int
	Err    error
}

func (e *AuthError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("authentication failed (HTTP %d): %v; check the credentials for this registry in the docker config (docker login, --docker-config)", e.Status, e.Err)
	}
	return fmt.Sprintf("authentication required: %v; log in with docker login or pass --docker-config", e.Err)
}
func (e *AuthError) Unwrap() error { return e.Err }

// NotFoundError is a manifest or blob the registry does not have.
type NotFoundError struct {
	What string
	Err  error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s unknown: the registry has no such image, tag or digest (%v)", e.What, e.Err)
}
func (e *NotFoundError) Unwrap() error { return e.Err }

// httpError reads a registry error response.
func httpError(resp *http.Response, what string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var er struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	msg := resp.Status
	if json.Unmarshal(body, &er) == nil && len(er.Errors) > 0 {
		var parts []string
		for _, e := range er.Errors {
			parts = append(parts, strings.TrimSpace(e.Code+": "+e.Message))
		}
		msg += ": " + strings.Join(parts, "; ")
	}
	err := errors.New("HTTP " + msg)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &AuthError{Status: resp.StatusCode, Err: err}
	case resp.StatusCode == http.StatusNotFound:
		return &NotFoundError{What: what, Err: err}
	}
	// 5xx and 429 were already retried, with backoff, by remote's transport.
	return err
}
