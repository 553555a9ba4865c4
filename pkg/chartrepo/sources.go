package chartrepo

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/lockfile"
)

// Sources fetches every remote source a Kubefile names, for builds and
// for the views `cnstack lock` scans: a chart source (pkg/chartref) by the
// pin of the lock file, or, when the lock has none and Locked is not set,
// by resolving its version now; any other source by its checksum
// (pkg/download). Both share one cache directory.
type Sources struct {
	Charts *Fetcher
	HTTP   *http.Client
	// Lock pins chart sources (nil: none are pinned).
	Lock *lockfile.File
	// Locked refuses a chart source the lock does not pin.
	Locked bool

	mu       sync.Mutex
	resolved map[string]Pin
}

// Fetch returns a host path holding src (a DownloadFunc of pkg/contents).
func (s *Sources) Fetch(ctx context.Context, src kubefile.Source) (string, error) {
	if !src.IsChart() {
		return download.Fetch(ctx, s.HTTP, s.Charts.CacheDir, src)
	}
	ref := *src.Chart
	if c, ok := s.Lock.LookupChart(ref.String()); ok {
		p, err := s.Charts.Fetch(ctx, ref, Pin{URL: c.URL, Manifest: c.Manifest, Digest: c.Digest})
		if err != nil {
			return "", fmt.Errorf("%s: %w", src.Pos, err)
		}
		s.record(ref.String(), Pin{URL: c.URL, Manifest: c.Manifest, Digest: c.Digest})
		return p, nil
	}
	if s.Locked {
		return "", fmt.Errorf("%s: --locked: chart %s is %w (run `cnstack lock`)", src.Pos, ref, lockfile.ErrUnpinned)
	}
	pin, p, err := s.Charts.Resolve(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", src.Pos, err)
	}
	s.record(ref.String(), pin)
	return p, nil
}

func (s *Sources) record(ref string, pin Pin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolved == nil {
		s.resolved = map[string]Pin{}
	}
	s.resolved[ref] = pin
}

// Pinned lists the charts fetched so far with their pins, as lock file
// entries (without layers), sorted.
func (s *Sources) Pinned() []lockfile.Chart {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]lockfile.Chart, 0, len(s.resolved))
	for ref, p := range s.resolved {
		out = append(out, lockfile.Chart{Chart: ref, URL: p.URL, Manifest: p.Manifest, Digest: p.Digest})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chart < out[j].Chart })
	return out
}
