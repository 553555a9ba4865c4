package regclient

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ErrOffline is returned, at once and without a DNS lookup, for any
// connection an offline client would make to a non-loopback address.
var ErrOffline = errors.New("offline: only loopback addresses may be reached")

// dialFunc is the shape of net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// offlineDial refuses every address that is not loopback before anything
// is resolved or sent, so an air-gapped site gets a clear error instead of
// DNS and connect time-outs. Proxies are dialled through here too.
func offlineDial(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !IsLoopback(addr) {
			return nil, &offlineError{addr: addr}
		}
		return next(ctx, network, addr)
	}
}

// offlineError is ErrOffline for one address. It is not a timeout and not
// a reset, so the retry policy gives up on it immediately.
type offlineError struct{ addr string }

func (e *offlineError) Error() string {
	return fmt.Sprintf("offline: refusing to connect to %s (only loopback addresses may be reached)", e.addr)
}

func (e *offlineError) Is(target error) bool { return target == ErrOffline }
