package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transfer selects how VM.Upload moves bytes into the guest.
type Transfer string

const (
	// TransferAuto uses TransferTCP when the guest has socat, else SSH.
	TransferAuto Transfer = ""
	// TransferSSH streams through the SSH session: encrypted end to end, but
	// the guest decrypts under emulation (about 2-8 MB/s under TCG).
	TransferSSH Transfer = "ssh"
	// TransferTCP streams over a second forwarded port (DataPort) into socat
	// in the guest, with SSH only for control: no cipher in the guest, several
	// times faster under TCG. The port is bound to 127.0.0.1 like SSH's; the
	// byte count is checked end to end.
	TransferTCP Transfer = "tcp"
)

// DataPort is the guest TCP port reserved for TransferTCP.
const DataPort = 10022

// guestUserAddr is the address QEMU's user network gives the guest (and that
// hostfwd forwards to).
const guestUserAddr = "10.0.2.15"

// Paths TransferTCP handles: socat's address syntax gives ':' ',' and '!'
// meaning, and a temp file name is built from the path.
var tcpSafePath = regexp.MustCompile(`^/[A-Za-z0-9._/+@=-]+$`)

// transferMethod resolves TransferAuto once per VM.
func (v *VM) transferMethod(ctx context.Context) Transfer {
	v.transferOnce.Do(func() {
		t := v.cfg.Transfer
		if t == TransferAuto {
			t = TransferSSH
			if _, ok := v.fwd[DataPort]; ok {
				if _, err := v.Run(ctx, "command -v socat"); err == nil {
					t = TransferTCP
				}
			}
		}
		v.mu.Lock()
		v.transfer = t
		v.mu.Unlock()
	})
	return v.Transfer()
}

// uploadTCP: a one-shot socat listener in the guest writes what arrives on
// DataPort to a temporary file; this side connects once the listener is up
// (socat -d -d says so on stderr), streams r, half-closes, and after the
// listener has exited checks the size and renames the file into place.
func (v *VM) uploadTCP(ctx context.Context, c *Client, r io.Reader, remotePath string, mode fs.FileMode) error {
	hostPort, ok := v.fwd[DataPort]
	if !ok {
		return errors.New("no data port forwarded (Config.Transfer is ssh)")
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(remotePath), ".cnstack-upload-"+hex.EncodeToString(rnd[:]))
	// Bound to the user-network address that hostfwd targets, so that peers
	// on a private network cannot reach the listener.
	recv := fmt.Sprintf("mkdir -p %s && exec socat -u -d -d TCP-LISTEN:%d,bind=%s,reuseaddr,accept-timeout=120 CREATE:%s",
		shellQuote(path.Dir(remotePath)), DataPort, guestUserAddr, tmp)
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = c.Run(cctx, "rm -f "+shellQuote(tmp))
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	stderr := &watchWriter{needle: []byte("listening on"), found: ready}
	done := make(chan error, 1)
	go func() { done <- c.Exec(rctx, recv, nil, nil, stderr) }()
	select {
	case <-ready:
	case err := <-done:
		return fmt.Errorf("data receiver exited early: %w: %s", err, stderr.tail())
	case <-ctx.Done():
		cleanup()
		return ctx.Err()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
	if err != nil {
		cancel()
		cleanup()
		return fmt.Errorf("connect data port: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	n, err := io.Copy(conn, r)
	stop()
	if err == nil {
		err = conn.(*net.TCPConn).CloseWrite()
	}
	if err != nil {
		conn.Close()
		cancel()
		cleanup()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("stream to data port after %d bytes: %w", n, err)
	}
	// The receiver exits once it has seen EOF and closed the file.
	err = <-done
	conn.Close()
	if err != nil {
		cleanup()
		return fmt.Errorf("data receiver: %w: %s", err, stderr.tail())
	}
	res, err := c.Run(ctx, fmt.Sprintf("set -e; s=$(stat -c %%s %s); if [ \"$s\" != %d ]; then echo \"got $s bytes\" >&2; rm -f %s; exit 1; fi; chmod %04o %s; mv -f %s %s",
		tmp, n, tmp, mode.Perm(), tmp, tmp, shellQuote(remotePath)))
	if err != nil {
		cleanup()
		return fmt.Errorf("finish upload (sent %d bytes): %w %s", n, err, bytes.TrimSpace(res.Stderr))
	}
	return nil
}

// watchWriter closes found the first time needle appears in what is written,
// and keeps a tail for error messages.
type watchWriter struct {
	mu     sync.Mutex
	needle []byte
	found  chan struct{}
	seen   bool
	buf    []byte
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if !w.seen && bytes.Contains(w.buf, w.needle) {
		w.seen = true
		close(w.found)
	}
	if len(w.buf) > 4096 {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-4096:]...)
	}
	return len(p), nil
}

func (w *watchWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}
