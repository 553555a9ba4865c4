package build

import (
	"context"
	"fmt"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/stack"
)

// StackOptions apply to every layer of a stack build.
type StackOptions struct {
	Layers   []string // only these layers (and what they build on); empty: all
	Mode     string
	NoCache  bool
	Collect  collect.Options
	Parallel int // layers built at once (default 2)
}

// LayerResult is one layer's outcome.
type LayerResult struct {
	Layer  *stack.Layer
	Result *Result
	Err    error
}

func (b *Builder) layerRequest(s *stack.Stack, l *stack.Layer, opts StackOptions, parents map[string]*Result) Request {
	req := Request{
		Kubefile: l.Kubefile, Context: l.Dir, Name: l.Name, Tags: []string{l.Ref},
		Platforms: s.Platforms, BuildArgs: l.BuildArgs, SharedArgs: true, Type: l.Type, Mode: opts.Mode,
		NoCache: opts.NoCache, Collect: opts.Collect,
		Annotations: map[string]string{
			ocispec.AnnotationTitle:      l.Name,
			ocispec.AnnotationVersion:    s.Spec.Version,
			clusterimage.AnnotationStack: s.Spec.Name,
		},
	}
	if l.Parent != "" {
		pr := parents[l.Parent]
		base := Base{Name: s.Layer(l.Parent).Ref, Keys: map[string]string{}}
		if pr != nil {
			base.Descriptor = pr.Descriptor
			for _, p := range pr.Platforms {
				base.Keys[clusterimage.PlatformString(p.Platform)] = p.Key
			}
		}
		// FROM may name the parent by layer name or by its reference.
		req.Bases = map[string]Base{l.From: base}
	}
	return req
}

// BuildStack builds the stack's layers in dependency order, independent
// layers in parallel. It stops scheduling after the first failure and
// returns every layer's outcome.
func (b *Builder) BuildStack(ctx context.Context, s *stack.Stack, opts StackOptions) ([]LayerResult, error) {
	layers, err := s.Select(opts.Layers)
	if err != nil {
		return nil, err
	}
	par := opts.Parallel
	if par <= 0 {
		par = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		results = map[string]*Result{}
		out     = make([]LayerResult, len(layers))
		done    = map[string]chan struct{}{}
		failed  error
		sem     = make(chan struct{}, par)
		wg      sync.WaitGroup
	)
	for _, l := range layers {
		done[l.Name] = make(chan struct{})
	}
	for i, l := range layers {
		out[i].Layer = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[l.Name])
			if ch, ok := done[l.Parent]; ok {
				<-ch
			}
			mu.Lock()
			stop := failed != nil
			parent := results[l.Parent]
			mu.Unlock()
			if stop || (l.Parent != "" && done[l.Parent] != nil && parent == nil) {
				out[i].Err = fmt.Errorf("layer %s: not built because layer %s failed", l.Name, l.Parent)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].Err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			mu.Lock()
			req := b.layerRequest(s, l, opts, results)
			mu.Unlock()
			if l.Parent != "" && parent == nil {
				// The parent was not selected: use what the store has.
				d, err := b.Store.Resolve(ctx, s.Layer(l.Parent).Ref)
				if err != nil {
					out[i].Err = fmt.Errorf("layer %s builds on layer %s, which is not built: %w", l.Name, l.Parent, err)
					mu.Lock()
					failed = out[i].Err
					mu.Unlock()
					return
				}
				req.Bases[l.From] = Base{Name: s.Layer(l.Parent).Ref, Descriptor: d}
			}
			b.logf("layer %s (%s)", l.Name, l.Ref)
			r, err := b.Build(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out[i].Err = fmt.Errorf("layer %s: %w", l.Name, err)
				if failed == nil {
					failed = out[i].Err
				}
				return
			}
			results[l.Name] = r
			out[i].Result = r
			status := "cached"
			if !r.Cached {
				status = "built"
			}
			b.logf("%s %s %s@%s in %s", status, l.Name, l.Ref, r.Descriptor.Digest, r.Duration.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	return out, failed
}

// PlanEntry is one layer of a stack plan.
type PlanEntry struct {
	Layer   *stack.Layer
	Keys    map[string]string // image key per platform
	Rebuild bool
	Reason  string
}

// PlanStack computes every layer's keys and whether it would rebuild,
// writing nothing.
func (b *Builder) PlanStack(ctx context.Context, s *stack.Stack, opts StackOptions) ([]PlanEntry, error) {
	layers, err := s.Select(opts.Layers)
	if err != nil {
		return nil, err
	}
	results := map[string]*Result{}
	rebuild := map[string]bool{}
	var out []PlanEntry
	for _, l := range layers {
		req := b.layerRequest(s, l, opts, results)
		if l.Parent != "" && rebuild[l.Parent] {
			// Keep the parent's keys but not a descriptor: it will change.
			pb := req.Bases[l.From]
			pb.Descriptor = ocispec.Descriptor{}
			req.Bases[l.From] = pb
		}
		r, err := b.Plan(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		e := PlanEntry{Layer: l, Keys: map[string]string{}, Rebuild: !r.Cached}
		for _, p := range r.Platforms {
			e.Keys[clusterimage.PlatformString(p.Platform)] = p.Key
		}
		switch {
		case l.Parent != "" && rebuild[l.Parent]:
			e.Reason = "base layer " + l.Parent + " rebuilds"
		case e.Rebuild:
			e.Reason = "inputs changed or not built yet"
		}
		rebuild[l.Name] = e.Rebuild
		results[l.Name] = r
		out = append(out, e)
	}
	return out, nil
}
