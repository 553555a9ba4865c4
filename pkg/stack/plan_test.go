package stack

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// a DAG: base <- mid <- top, base <- side, and ext on its own.
func dag(t *testing.T) *Stack {
	t.Helper()
	s, err := Load(writeStack(t, header, map[string]string{
		"base": "FROM scratch\n",
		"mid":  "FROM base\n",
		"top":  "FROM mid\n",
		"side": "FROM base\n",
		"ext":  "FROM docker.io/library/external:1\n",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Each layer is planned after its parent and sees the parent's entry; a
// layer whose parent rebuilds rebuilds too, saying why.
func TestPlan(t *testing.T) {
	s := dag(t)
	cached := map[string]bool{"base": true, "mid": false, "top": true, "side": true, "ext": true}
	plan, err := Plan(t.Context(), s.Layers, func(_ context.Context, l *Layer, parent *PlanEntry) (map[string]string, bool, error) {
		key := l.Name
		if parent != nil {
			key = parent.Keys["linux/amd64"] + "/" + l.Name // keys chain through the parent's
		}
		return map[string]string{"linux/amd64": key}, cached[l.Name], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PlanEntry{}
	for _, e := range plan {
		got[e.Layer.Name] = e
	}
	for _, tt := range []struct {
		layer, key string
		rebuild    bool
		reason     string
	}{
		{"base", "base", false, ""},
		{"mid", "base/mid", true, "inputs changed or not built yet"},
		{"top", "base/mid/top", true, "base layer mid rebuilds"},
		{"side", "base/side", false, ""},
		{"ext", "ext", false, ""},
	} {
		e := got[tt.layer]
		if e.Keys["linux/amd64"] != tt.key || e.Rebuild != tt.rebuild || e.Reason != tt.reason {
			t.Errorf("%s: %+v, want key %s rebuild %v reason %q", tt.layer, e, tt.key, tt.rebuild, tt.reason)
		}
	}
	_, err = Plan(t.Context(), s.Layers, func(_ context.Context, l *Layer, _ *PlanEntry) (map[string]string, bool, error) {
		return nil, false, errors.New("boom")
	})
	if err == nil || !strings.HasPrefix(err.Error(), "layer base: boom") {
		t.Errorf("err = %v", err)
	}
}

// Walk runs a layer after its parent, at most parallel at once, and after
// a failure starts nothing more, saying why each layer was left out.
func TestWalk(t *testing.T) {
	s := dag(t)
	var mu sync.Mutex
	finished := map[string]bool{}
	var running, peak atomic.Int32
	errs, err := Walk(t.Context(), s.Layers, 2, func(_ context.Context, l *Layer) error {
		if n := running.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		defer running.Add(-1)
		mu.Lock()
		if l.Parent != "" && !finished[l.Parent] {
			t.Errorf("%s started before its parent %s finished", l.Name, l.Parent)
		}
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		finished[l.Name] = true
		mu.Unlock()
		return nil
	})
	if err != nil || len(finished) != 5 {
		t.Fatalf("err %v, finished %v, errs %v", err, finished, errs)
	}
	if p := peak.Load(); p > 2 || p < 2 {
		t.Errorf("%d layers ran at once, want 2", p)
	}

	// mid fails: top (its child) is not built, naming mid.
	errs, err = Walk(t.Context(), s.Layers, 1, func(_ context.Context, l *Layer) error {
		if l.Name == "mid" {
			return errors.New("layer mid: boom")
		}
		return nil
	})
	if err == nil || err.Error() != "layer mid: boom" {
		t.Fatalf("first failure = %v", err)
	}
	for i, l := range s.Layers {
		if l.Name == "top" && (errs[i] == nil || !strings.Contains(errs[i].Error(), "not built because layer mid failed")) {
			t.Errorf("top: %v", errs[i])
		}
	}

	// A parent left out of the selection does not hold its child back.
	sel, _ := s.Select([]string{"top"})
	errs, err = Walk(t.Context(), sel[1:], 1, func(context.Context, *Layer) error { return nil })
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Errorf("without base: %v %v", err, errs)
	}
}
