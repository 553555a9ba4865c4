package stack

import (
	"context"
	"fmt"
	"sync"
)

// PlanEntry is one layer of a stack plan.
type PlanEntry struct {
	Layer *Layer
	// Keys are the layer's image keys by platform ("linux/amd64"). A
	// child's keys chain through its parent's, so the whole stack's keys
	// are known before anything is built.
	Keys map[string]string
	// Rebuild says a build would write the layer's image: its inputs
	// changed, it was never built, or its parent rebuilds.
	Rebuild bool
	Reason  string
	// Inputs are, by platform, what each key is made of (input name →
	// digest), when the planner tells: two plans compared say which
	// input of a rebuilding layer changed.
	Inputs map[string]map[string]string
}

// LayerPlanner computes one layer's keys and whether its image is in the
// cache. parent is the entry of the layer it builds on, nil when it has
// none in the plan (scratch, an image outside the stack, or a parent not
// selected).
type LayerPlanner func(ctx context.Context, l *Layer, parent *PlanEntry) (keys map[string]string, cached bool, err error)

// Plan computes the plan of layers (a Select result, parents first): each
// layer's keys, through planLayer, and whether it rebuilds. A layer whose
// parent rebuilds rebuilds too, whatever its own cache says.
func Plan(ctx context.Context, layers []*Layer, planLayer LayerPlanner) ([]PlanEntry, error) {
	byName := map[string]*PlanEntry{}
	out := make([]PlanEntry, 0, len(layers))
	for _, l := range layers {
		parent := byName[l.Parent]
		keys, cached, err := planLayer(ctx, l, parent)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		e := PlanEntry{Layer: l, Keys: keys, Rebuild: !cached}
		switch {
		case parent != nil && parent.Rebuild:
			e.Rebuild, e.Reason = true, "base layer "+parent.Layer.Name+" rebuilds"
		case e.Rebuild:
			e.Reason = "inputs changed or not built yet"
		}
		out = append(out, e)
		byName[l.Name] = &out[len(out)-1]
	}
	return out, nil
}

// Walk runs fn for layers (a Select result, parents first) in dependency
// order: a layer starts once its parent has finished, independent layers
// up to parallel at once (default 2). After a failure no further layer
// starts; the layers left out get an error saying which failure stopped
// them. It returns each layer's error (aligned with layers) and the first
// failure.
func Walk(ctx context.Context, layers []*Layer, parallel int, fn func(ctx context.Context, l *Layer) error) ([]error, error) {
	if parallel <= 0 {
		parallel = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		errs   = make([]error, len(layers))
		ok     = map[string]bool{}
		done   = map[string]chan struct{}{}
		failed error
		sem    = make(chan struct{}, parallel)
		wg     sync.WaitGroup
	)
	for _, l := range layers {
		done[l.Name] = make(chan struct{})
	}
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs[i] = err
		if failed == nil {
			failed = err
		}
	}
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[l.Name])
			parentDone, selected := done[l.Parent]
			if selected {
				<-parentDone
			}
			mu.Lock()
			stop, parentOK := failed, ok[l.Parent]
			mu.Unlock()
			switch {
			case selected && !parentOK:
				errs[i] = fmt.Errorf("layer %s: not built because layer %s failed", l.Name, l.Parent)
				return
			case stop != nil:
				errs[i] = fmt.Errorf("layer %s: not built after an earlier failure", l.Name)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := fn(ctx, l); err != nil {
				fail(i, err)
				return
			}
			mu.Lock()
			ok[l.Name] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs, failed
}
