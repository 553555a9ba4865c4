// Package regserver is an OCI distribution registry that stores images on
// disk: distribution/v3's registry handlers over its filesystem storage
// driver, configured in code, with the OCI referrers API added in front
// (distribution v3.1 has none). It can also serve an existing distribution
// storage tree, such as the registry/ directory of a sealer image, read-only.
package regserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// treeMarker is the directory every distribution filesystem tree has below
// its root (registry/storage/paths.go).
const treeMarker = "docker/registry/v2"

// shutdownGrace is how long Close and a cancelled Serve wait for requests in
// flight (a blob upload, a pull) before cutting connections.
const shutdownGrace = 30 * time.Second

// Options configure a Server.
type Options struct {
	// Addr is the listen address, HOST:PORT; port 0 picks a free port.
	// Empty means DefaultAddr. Only loopback hosts are accepted unless
	// AllowRemote is set.
	Addr string
	// Root is the storage directory: the directory holding docker/registry/v2
	// (a sealer image's registry/ directory). A directory holding
	// registry/docker/registry/v2 (a sealer image root) is accepted too. A
	// writable server creates Root if missing; a read-only one requires the tree.
	Root string
	// ReadOnly serves pulls only: every other method is refused with 405
	// UNSUPPORTED, and nothing under Root is ever written or deleted.
	ReadOnly bool
	// AllowRemote permits a listen address that other machines can reach.
	AllowRemote bool
	// Logger receives one debug line per request and the server's messages;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running (or ready to run) registry.
type Server struct {
	opts     Options
	root     string
	log      *slog.Logger
	app      *handlers.App
	refs     *referrers
	handler  http.Handler
	listener net.Listener
	http     *http.Server
	stopApp  context.CancelFunc

	startOnce sync.Once
	done      chan struct{} // closed when serving has stopped
	serveErr  error

	closeOnce sync.Once
	closeErr  error
}

// New checks the options, prepares the storage and binds the listen address,
// so Addr is final when New returns. Call Start or Serve to accept requests,
// and Close to release the address.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := checkListenAddr(opts.Addr, opts.AllowRemote); err != nil {
		return nil, err
	}
	root, err := storageRoot(opts.Root, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	cfg, err := distributionConfig(root, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	bridgeDistributionLogs()
	appCtx, cancelApp := context.WithCancel(context.Background())
	app, err := newApp(appCtx, cfg)
	if err != nil {
		cancelApp()
		return nil, err
	}
	// A second view of the same tree for the referrers scan; the filesystem
	// driver holds no state, so both views see every write at once.
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": root, "maxthreads": driverMaxThreads})
	if err != nil {
		cancelApp()
		return nil, fmt.Errorf("open storage %s: %w", root, err)
	}
	ns, err := storage.NewRegistry(appCtx, driver)
	if err != nil {
		cancelApp()
		return nil, fmt.Errorf("open storage %s: %w", root, err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		cancelApp()
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	s := &Server{
		opts:     opts,
		root:     root,
		log:      log,
		app:      app,
		refs:     newReferrers(ns, log),
		listener: ln,
		stopApp:  cancelApp,
		done:     make(chan struct{}),
	}
	s.handler = logRequests(log, http.HandlerFunc(s.route))
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// newApp builds distribution's application, turning its configuration
// panics into errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configure registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// storageRoot resolves Options.Root: an absolute path to the directory that
// holds docker/registry/v2 (or will, for a new writable registry).
func storageRoot(root string, readOnly bool) (string, error) {
	if root == "" {
		return "", errors.New("registry root directory is not set")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("registry root %s: %w", root, err)
	}
	if isDir(filepath.Join(abs, treeMarker)) {
		return abs, nil
	}
	if nested := filepath.Join(abs, "registry"); isDir(filepath.Join(nested, treeMarker)) {
		return nested, nil // an image root holding a registry/ tree
	}
	if readOnly {
		return "", fmt.Errorf("registry root %s: no registry tree to serve (want %s/ below it)", abs, treeMarker)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create registry root: %w", err)
	}
	return abs, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// route sends referrers requests to our handler, refuses writes in
// read-only mode, and passes everything else to distribution.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if name, ref, ok := splitReferrersPath(r.URL.Path); ok {
		s.refs.ServeHTTP(w, r, name, ref)
		return
	}
	if s.opts.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		serveError(w, errcode.ErrorCodeUnsupported.WithMessage(
			"registry is read-only: it serves pulls only (started with --read-only), "+r.Method+" refused"))
		return
	}
	if r.Method == http.MethodPut && isManifestPath(r.URL.Path) {
		w, r = withSubjectHeader(w, r)
	}
	s.app.ServeHTTP(w, r)
}

func isManifestPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, "/manifests/")
	return i > 0 && !strings.Contains(rest[i+len("/manifests/"):], "/")
}

// Addr is the bound listen address, with the real port when Options.Addr
// asked for port 0.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Root is the storage directory in use.
func (s *Server) Root() string { return s.root }

// Handler is the registry's HTTP handler, for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Start serves requests in the background until ctx is done or Close is
// called. Calling it again has no effect.
func (s *Server) Start(ctx context.Context) error {
	s.startOnce.Do(func() {
		s.log.Info("registry serving", "addr", s.Addr(), "root", s.root, "read-only", s.opts.ReadOnly)
		go func() {
			err := s.http.Serve(s.listener)
			if !errors.Is(err, http.ErrServerClosed) {
				s.serveErr = err
			}
			close(s.done)
		}()
		go func() {
			select {
			case <-ctx.Done():
				_ = s.Close()
			case <-s.done:
			}
		}()
	})
	return nil
}

// Serve serves requests until ctx is done, then shuts down gracefully:
// requests in flight get up to 30 seconds to finish.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	if err := s.Close(); err != nil {
		return err
	}
	<-s.done
	return s.serveErr
}

// Close stops accepting requests, waits for those in flight (up to 30
// seconds), and releases the listen address. It is safe to call more than
// once and on a server that never started.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := s.http.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = s.http.Close()
		}
		// Shutdown of a server that never served leaves the listener open.
		if lerr := s.listener.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
			err = lerr
		}
		if aerr := s.app.Shutdown(); aerr != nil && err == nil {
			err = aerr
		}
		s.stopApp()
		if err != nil {
			s.closeErr = fmt.Errorf("close registry: %w", err)
		}
		s.log.Debug("registry stopped", "addr", s.Addr())
	})
	return s.closeErr
}
