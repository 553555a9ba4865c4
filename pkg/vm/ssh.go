package vm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Client is an SSH connection to a guest, authenticated with the run's key
// and pinned to the guest's host key.
type Client struct {
	c    *ssh.Client
	addr string
	user string
}

// KeyPair is an ed25519 key made for one run.
type KeyPair struct {
	Signer ssh.Signer
	// AuthorizedKey is the public key in authorized_keys format (one line,
	// no trailing newline).
	AuthorizedKey string
	// PrivatePEM is the private key in OpenSSH format, for `ssh -i`.
	PrivatePEM []byte
}

// NewKeyPair generates an ed25519 key pair.
func NewKeyPair(comment string) (*KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		line += " " + comment
	}
	return &KeyPair{Signer: signer, AuthorizedKey: line, PrivatePEM: pem.EncodeToMemory(block)}, nil
}

// Dial connects to addr as user, checking that the server presents hostKey.
// One attempt; the handshake is bounded by ctx and by 15 seconds.
func Dial(ctx context.Context, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey) (*Client, error) {
	if hostKey == nil {
		return nil, errors.New("ssh: no host key to check the server against")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{hostKey.Type()},
		Config: ssh.Config{
			// The guest decrypts under emulation: AES-CTR (AES-NI is
			// emulated) with an encrypt-then-MAC HMAC measured about twice as
			// fast as AES-GCM (carry-less multiply is slow under TCG) or
			// ChaCha20-Poly1305. All are sound; the rest are fallbacks.
			Ciphers: []string{"aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"},
			MACs:    []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256"},
		},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{c: ssh.NewClient(cc, chans, reqs), addr: addr, user: user}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Raw is the underlying x/crypto/ssh client, for port forwarding and the like.
func (c *Client) Raw() *ssh.Client { return c.c }

// ExitError is a remote command that ran and failed.
type ExitError struct {
	Command string
	// Status is the exit status; -1 when the command died of a signal.
	Status int
	Signal string
	// Stderr is the tail of the command's standard error, when captured.
	Stderr string
}

func (e *ExitError) Error() string {
	what := fmt.Sprintf("exit status %d", e.Status)
	if e.Signal != "" {
		what = "killed by signal " + e.Signal
	}
	msg := fmt.Sprintf("remote command %q: %s", abbreviate(e.Command, 120), what)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + abbreviate(s, 600)
	}
	return msg
}

// Exec runs command in the guest with the given streams (nil: none/discard)
// and waits for it. A non-zero exit is an *ExitError; when ctx ends first the
// remote command is sent SIGKILL, the session closed, and ctx's error returned.
func (c *Client) Exec(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := c.c.NewSession()
	if err != nil {
		return fmt.Errorf("ssh %s: new session: %w", c.addr, err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(command); err != nil {
		return fmt.Errorf("ssh %s: start %q: %w", c.addr, abbreviate(command, 120), err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return fmt.Errorf("remote command %q: %w", abbreviate(command, 120), ctx.Err())
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		x := &ExitError{Command: command, Status: ee.ExitStatus(), Signal: ee.Signal()}
		if x.Signal != "" {
			x.Status = -1
		}
		return x
	default:
		return fmt.Errorf("remote command %q: %w", abbreviate(command, 120), err)
	}
}

// Result is the outcome of Run.
type Result struct {
	Stdout, Stderr []byte
	ExitStatus     int
	Duration       time.Duration
}

// Run runs command and captures its output. err is an *ExitError (with
// Result still filled in) when the command exits non-zero.
func (c *Client) Run(ctx context.Context, command string) (Result, error) {
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := c.Exec(ctx, command, nil, &stdout, &stderr)
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	var ee *ExitError
	if errors.As(err, &ee) {
		res.ExitStatus = ee.Status
		ee.Stderr = tail(stderr.String(), 2000)
	}
	return res, err
}

// Upload streams r into remotePath with mode, without buffering it. The
// bytes go to a temporary file beside the final name; only when the whole
// stream was sent without error, and the guest holds exactly as many bytes as
// were read, is it renamed into place (so a reader never sees half a file, and
// a failed upload leaves nothing). Missing parent directories are created.
func (c *Client) Upload(ctx context.Context, r io.Reader, remotePath string, mode fs.FileMode) error {
	if !path.IsAbs(remotePath) {
		return fmt.Errorf("upload: remote path %q is not absolute", remotePath)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(remotePath), ".cnstack-upload-"+hex.EncodeToString(rnd[:]))
	cr := &countingReader{r: r}
	var stderr bytes.Buffer
	err := c.Exec(ctx, fmt.Sprintf("mkdir -p %s && cat > %s", shellQuote(path.Dir(remotePath)), shellQuote(tmp)), cr, nil, &stderr)
	if err == nil && cr.err != nil {
		err = cr.err // the local reader failed: the guest saw an early EOF
	}
	if err == nil {
		var res Result
		res, err = c.Run(ctx, fmt.Sprintf("set -e; s=$(stat -c %%s %s); if [ \"$s\" != %d ]; then echo \"got $s bytes\" >&2; exit 1; fi; chmod %04o %s; mv -f %s %s",
			shellQuote(tmp), cr.n, mode.Perm(), shellQuote(tmp), shellQuote(tmp), shellQuote(remotePath)))
		stderr.Write(res.Stderr)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = c.Run(cctx, "rm -f "+shellQuote(tmp))
		var ee *ExitError
		if errors.As(err, &ee) {
			ee.Stderr = tail(stderr.String(), 2000)
		}
		return fmt.Errorf("upload %s (%d bytes sent): %w", remotePath, cr.n, err)
	}
	return nil
}

// countingReader counts bytes and remembers the first non-EOF error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// UploadFile uploads a local file, keeping its permission bits.
func (c *Client) UploadFile(ctx context.Context, localPath, remotePath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return c.Upload(ctx, f, remotePath, fi.Mode())
}

// Download streams remotePath into w.
func (c *Client) Download(ctx context.Context, remotePath string, w io.Writer) error {
	var stderr bytes.Buffer
	if err := c.Exec(ctx, "cat "+shellQuote(remotePath), nil, w, &stderr); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			ee.Stderr = tail(stderr.String(), 2000)
		}
		return fmt.Errorf("download %s: %w", remotePath, err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// serialHostKey finds the last host key the guest printed on its console
// between cloud-init style markers (cnstack-seed prints them the same way).
func serialHostKey(console []byte) (ssh.PublicKey, bool) {
	const begin, end = "-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----"
	var found ssh.PublicKey
	in := false
	for _, line := range strings.Split(string(console), "\n") {
		line = strings.TrimSpace(strings.TrimRight(line, "\r"))
		switch {
		case strings.HasSuffix(line, begin):
			in = true
		case strings.HasSuffix(line, end):
			in = false
		case in:
			// Console lines may carry a prefix ("[ 24.6] cnstack-seed[214]: ").
			i := strings.Index(line, ssh.KeyAlgoED25519+" ")
			if i < 0 {
				continue
			}
			if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:])); err == nil {
				found = k
			}
		}
	}
	return found, found != nil
}
