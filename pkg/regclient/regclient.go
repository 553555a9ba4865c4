// Package regclient is cnstack's client of OCI registries (pkg/regserver is
// its server). It opens registries the way users expect: credentials from
// ~/.docker/config.json and credential helpers, plain HTTP or unverified TLS
// for registries named insecure (and for loopback, as Docker does), a custom
// CA, mirrors, retries with backoff on 5xx, 429 and dropped connections, and
// an idle timeout on every body, so a stalled registry is an error naming
// it, never a hang.
// It returns oras-go repositories, so content moves with oras.Copy, whose
// reads are cnstack's one pull path: every pull (transfer, FROM images,
// container images collected into a build) resumes broken blobs with HTTP
// Range and reports what a registry refuses in errors that say what to do.
//
// It knows nothing of the local store or of what an image means: it moves
// bytes to and from registries. (It is not named "remote", so it does not
// shadow oras-go's registry/remote, which it wraps.)
package regclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/cnstack/cnstack/pkg/reference"
)

// Options configure registry access. The zero value uses the Docker config
// in the user's home and verifies TLS for every non-loopback registry.
type Options struct {
	// Insecure lists registries ("host[:port]") reached over plain HTTP, or
	// HTTPS without certificate verification when they speak TLS.
	Insecure []string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// DockerConfig is a config.json path; empty means $DOCKER_CONFIG or ~/.docker.
	DockerConfig string
	// Mirrors maps a registry ("docker.io") to the host that serves it
	// ("127.0.0.1:5000"); pulls of that registry go to the mirror instead.
	Mirrors map[string]string
	// MaxRetry is the number of retries of a failed request (default 5).
	MaxRetry int
	// UserAgent names cnstack in requests.
	UserAgent string
	// VerifyLoopback verifies TLS for loopback registries too (by default
	// they are treated as insecure, as Docker does).
	VerifyLoopback bool
	// IdleTimeout abandons a transfer (blob, manifest, upload) when no byte
	// moves for this long, so a registry that stops sending mid-body fails
	// the request (retried or resumed by the caller) instead of hanging;
	// 0 means DefaultIdleTimeout, negative disables it.
	IdleTimeout time.Duration
	// Offline refuses every connection to a non-loopback address with
	// ErrOffline, before any DNS lookup (for air-gapped sites).
	Offline bool
}

// Client hands out repositories that share one HTTP client, token cache and
// credential store.
type Client struct {
	opts   Options
	http   *http.Client
	tlsCfg *tls.Config
	creds  credentials.Store
	cache  auth.Cache
	policy *retry.GenericPolicy // requests, and the resumes of blob bodies

	mu    sync.Mutex
	plain map[string]bool // host -> speaks plain HTTP (probed once)
}

// New builds a client from opts.
func New(opts Options) (*Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	var store credentials.Store
	var err error
	sopts := credentials.StoreOptions{AllowPlaintextPut: false, DetectDefaultNativeStore: false}
	if opts.DockerConfig != "" {
		store, err = credentials.NewStore(opts.DockerConfig, sopts)
	} else {
		store, err = credentials.NewStoreFromDocker(sopts)
	}
	if err != nil {
		return nil, fmt.Errorf("read docker credentials: %w", err)
	}
	c := &Client{opts: opts, tlsCfg: tlsCfg, creds: store, cache: auth.NewCache(), plain: map[string]bool{}}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	base.MaxIdleConnsPerHost = 32
	base.DialContext = c.dial((&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	base.ResponseHeaderTimeout = 2 * time.Minute
	insecureBase := base.Clone()
	insecureBase.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for registries the user named insecure
	idle := opts.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	rt := &idleTransport{base: &hostTransport{secure: base, insecure: insecureBase, isInsecure: c.IsInsecure}, idle: idle}
	maxRetry := opts.MaxRetry
	if maxRetry == 0 {
		maxRetry = 5
	}
	policy := &retry.GenericPolicy{
		Retryable: retryable, Backoff: retry.DefaultBackoff,
		MinWait: 200 * time.Millisecond, MaxWait: 5 * time.Second, MaxRetry: maxRetry,
	}
	c.policy = policy
	c.http = &http.Client{Transport: &retry.Transport{Base: rt, Policy: func() retry.Policy { return policy }}}
	return c, nil
}

// maxRetry is how often a failed request, or a blob body that made no
// progress, is tried again.
func (c *Client) maxRetry() int { return c.policy.MaxRetry }

// backoff is the wait before retry number attempt (from 1), as the
// request retries wait: exponential with jitter, within MinWait..MaxWait.
func (c *Client) backoff(attempt int) time.Duration {
	return min(max(c.policy.Backoff(attempt-1, nil), c.policy.MinWait), c.policy.MaxWait)
}

// dial wraps next with the offline guard when the client is offline.
func (c *Client) dial(next dialFunc) dialFunc {
	if c.opts.Offline {
		return offlineDial(next)
	}
	return next
}

// HTTPClient is the retrying client, for callers that speak to registries directly.
func (c *Client) HTTPClient() *http.Client { return c.http }

// retryable retries what a flaky network or an overloaded registry produces.
func retryable(resp *http.Response, err error) (bool, error) {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return true, nil
		}
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
			return true, nil
		}
		return false, err
	}
	return retry.DefaultPredicate(resp, nil)
}

type hostTransport struct {
	secure, insecure http.RoundTripper
	isInsecure       func(host string) bool
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.isInsecure(req.URL.Host) {
		return t.insecure.RoundTrip(req)
	}
	return t.secure.RoundTrip(req)
}

// IsInsecure reports whether host may be reached without TLS verification:
// it was named insecure, or it is a loopback address.
func (c *Client) IsInsecure(host string) bool {
	for _, h := range c.opts.Insecure {
		if strings.EqualFold(strings.TrimSpace(h), host) {
			return true
		}
	}
	return !c.opts.VerifyLoopback && IsLoopback(host)
}

// IsLoopback reports whether host[:port] is localhost or a loopback IP.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Endpoint is the host content of registry is fetched from (a mirror, or
// the registry itself; docker.io means registry-1.docker.io).
func (c *Client) Endpoint(registry string) string {
	if m, ok := c.opts.Mirrors[registry]; ok && m != "" {
		return m
	}
	if registry == reference.DockerHub {
		return "registry-1.docker.io"
	}
	return registry
}

// Repository opens the repository of ref (tag and digest are ignored).
func (c *Client) Repository(ctx context.Context, ref reference.Reference) (*Repository, error) {
	host := c.Endpoint(ref.Registry)
	repo, err := remote.NewRepository(host + "/" + ref.Repository)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", ref.Name(), err)
	}
	repo.PlainHTTP = c.speaksPlainHTTP(ctx, host)
	repo.Client = &auth.Client{
		Client:     c.http,
		Cache:      c.cache,
		Header:     http.Header{"User-Agent": {c.userAgent()}},
		Credential: credentials.Credential(c.creds), // maps registry-1.docker.io to Docker's Hub key
	}
	return &Repository{Repository: repo, client: c}, nil
}

func (c *Client) userAgent() string {
	if c.opts.UserAgent != "" {
		return c.opts.UserAgent
	}
	return "cnstack"
}

// speaksPlainHTTP decides the scheme for an insecure host once: a TLS
// handshake that gets an HTTP answer means plain HTTP.
func (c *Client) speaksPlainHTTP(ctx context.Context, host string) bool {
	if !c.IsInsecure(host) {
		return false
	}
	c.mu.Lock()
	plain, ok := c.plain[host]
	c.mu.Unlock()
	if ok {
		return plain
	}
	plain = c.probePlain(ctx, host)
	c.mu.Lock()
	c.plain[host] = plain
	c.mu.Unlock()
	slog.Debug("registry scheme", "host", host, "plainHTTP", plain)
	return plain
}

func (c *Client) probePlain(ctx context.Context, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	raw, err := c.dial(d.DialContext)(ctx, "tcp", withPort(host))
	if err != nil {
		// Not reachable: HTTP fails with a clear error too.
		return true
	}
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: hostOnly(host)}) //nolint:gosec // probing the scheme only
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		// Not TLS.
		return true
	}
	return false
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

func withPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, "443")
}
