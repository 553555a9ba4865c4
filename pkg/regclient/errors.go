package regclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// AuthError is a registry refusing our credentials (or their absence).
type AuthError struct {
	Status int // 401 or 403; 0 when no credentials were found to send
	Err    error
}

func (e *AuthError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("authentication failed (HTTP %d): %v; check the credentials for this registry in the docker config (cnstack login, docker login, --docker-config)", e.Status, e.Err)
	}
	return fmt.Sprintf("authentication required: %v; log in with cnstack login or docker login, or pass --docker-config", e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// NotFoundError is a manifest or blob the registry does not have. It
// wraps errdef.ErrNotFound, so errors.Is(err, errdef.ErrNotFound) holds.
type NotFoundError struct {
	What string // "manifest" or "blob"
	Err  error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s unknown: the registry has no such image, tag or digest (%v)", e.What, e.Err)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// UnreachableError is a registry that could not be reached at all.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "registry unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// explain turns what oras-go and the transport report into the errors
// above, keeping the original wrapped; what is "manifest" or "blob".
func explain(err error, what string) error {
	if err == nil {
		return nil
	}
	var (
		ae *AuthError
		nf *NotFoundError
		ue *UnreachableError
	)
	if errors.As(err, &ae) || errors.As(err, &nf) || errors.As(err, &ue) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return &AuthError{Err: err}
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return &AuthError{Status: resp.StatusCode, Err: err}
	}
	if errors.Is(err, errdef.ErrNotFound) || (resp != nil && resp.StatusCode == http.StatusNotFound) {
		return &NotFoundError{What: what, Err: err}
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return &UnreachableError{Err: err}
	}
	return err
}
