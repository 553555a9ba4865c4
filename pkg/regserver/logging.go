package regserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// logRequests logs one debug line per request: method, path, status, bytes
// and duration. The query string and headers are never logged: they carry
// upload state and, behind a proxy, could carry credentials.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelDebug, "registry request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", rec.written),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr))
	})
}

// statusRecorder remembers the status and counts body bytes. It forwards
// ReadFrom so that large blob responses keep the kernel's copy path.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.written += int64(n)
	return n, err
}

func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(s.ResponseWriter, r)
	}
	s.written += n
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// distributionLogField is set on every entry distribution logs: its default
// logger is logrus' standard logger with this field. It tells distribution's
// entries apart from other users of the standard logger.
const distributionLogField = "go.version"

var bridgeOnce sync.Once

// bridgeDistributionLogs sends distribution's logrus output to slog.Default at
// debug level, leaving other users of logrus' standard logger untouched.
// distribution logs every request at info through logrus; our own request
// line replaces that, and its remaining messages are diagnostics.
func bridgeDistributionLogs() {
	bridgeOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetFormatter(&slogFormatter{next: std.Formatter})
	})
}

type slogFormatter struct{ next logrus.Formatter }

// fromDistribution tells distribution's entries apart: its context loggers
// carry distributionLogField; its upload purger logs through the package
// functions with these messages (registry/storage/purgeuploads.go).
func fromDistribution(e *logrus.Entry) bool {
	if _, ok := e.Data[distributionLogField]; ok {
		return true
	}
	for _, prefix := range []string{"PurgeUploads starting:", "Upload files in ", "Purge uploads finished."} {
		if strings.HasPrefix(e.Message, prefix) {
			return true
		}
	}
	return false
}

func (f *slogFormatter) Format(e *logrus.Entry) ([]byte, error) {
	if !fromDistribution(e) {
		return f.next.Format(e)
	}
	if e.Message == "response completed" {
		return nil, nil // covered by logRequests
	}
	log := slog.Default()
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelDebug) {
		return nil, nil
	}
	attrs := []slog.Attr{slog.String("source", "distribution")}
	// Only fields that describe the outcome; request fields (URI with its
	// query, remote address, user agent) stay out of the logs.
	for _, k := range []string{"err.code", "err.message", "err.detail", "error", "vars.name", "vars.reference", "vars.digest"} {
		if v, ok := e.Data[k]; ok {
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	log.LogAttrs(ctx, slog.LevelDebug, e.Message, attrs...)
	return nil, nil
}
