package regserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultAddr is where the registry listens unless told otherwise.
const DefaultAddr = "127.0.0.1:5000"

// ErrRemoteAddr is returned for a listen address that other machines could
// reach when remote access was not allowed.
var ErrRemoteAddr = errors.New("listen address is reachable from other machines")

// checkListenAddr accepts host:port where host is a loopback IP or
// "localhost"; anything else needs allowRemote, because the registry has no
// authentication and no TLS: whoever reaches it can read, overwrite and (in
// writable mode) delete every image.
func checkListenAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: want HOST:PORT: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("listen address %q: missing port", addr)
	}
	if allowRemote || isLoopbackHost(host) {
		return nil
	}
	what := host
	if host == "" {
		what = "all interfaces"
	}
	return fmt.Errorf("%w: %q listens on %s, and this registry has no authentication and no TLS, "+
		"so anyone who can reach it could read, overwrite and delete images; "+
		"listen on 127.0.0.1 or ::1, or pass --allow-remote (Options.AllowRemote) to accept that",
		ErrRemoteAddr, addr, what)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// A name other than localhost may resolve anywhere; resolving it here
		// would make the check depend on DNS, so it counts as remote.
		return false
	}
	return ip.Unmap().IsLoopback()
}
