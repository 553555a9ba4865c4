package build

import (
	"context"
	"fmt"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

// StackOptions apply to every layer of a stack build.
type StackOptions struct {
	Layers []string // only these layers (and what they build on); empty: all
	// ParentsFromStore builds only Layers themselves: the layers they build
	// on must be in the local store under their references already (a CI job
	// that pulled its parent from the registry by digest), never rebuilt.
	ParentsFromStore bool
	Mode             string
	NoCache          bool
	Collect          collector.Options
	Parallel         int // layers built at once (default 2)
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
		base := Base{Name: s.Layer(l.Parent).Ref, Keys: map[string]string{}, isDir: map[string]func(string) bool{}}
		if pr != nil {
			base.Descriptor = pr.Descriptor
			for _, p := range pr.Platforms {
				base.Keys[oci.PlatformString(p.Platform)] = p.Key
				base.isDir[oci.PlatformString(p.Platform)] = p.isDir
			}
		}
		// FROM may name the parent by layer name or by its reference.
		req.Bases = map[string]Base{l.From: base}
	}
	return req
}

// BuildStack builds the stack's layers in dependency order, independent
// layers in parallel (stack.Walk schedules them). It stops scheduling after
// the first failure and returns every layer's outcome.
func (b *Builder) BuildStack(ctx context.Context, s *stack.Stack, opts StackOptions) ([]LayerResult, error) {
	selectLayers := s.Select
	if opts.ParentsFromStore {
		selectLayers = s.Only
	}
	layers, err := selectLayers(opts.Layers)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	results := map[string]*Result{}
	errs, failed := stack.Walk(ctx, layers, opts.Parallel, func(ctx context.Context, l *stack.Layer) error {
		mu.Lock()
		req := b.layerRequest(s, l, opts, results)
		parent := results[l.Parent]
		mu.Unlock()
		if l.Parent != "" && parent == nil {
			// The parent was not selected: use what the store has.
			d, err := b.Store.Resolve(ctx, s.Layer(l.Parent).Ref)
			if err != nil {
				return fmt.Errorf("layer %s builds on layer %s, which is not in the local store as %s: %w", l.Name, l.Parent, s.Layer(l.Parent).Ref, err)
			}
			req.Bases[l.From] = Base{Name: s.Layer(l.Parent).Ref, Descriptor: d}
		}
		b.logf("layer %s (%s)", l.Name, l.Ref)
		r, err := b.Build(ctx, req)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Name, err)
		}
		mu.Lock()
		results[l.Name] = r
		mu.Unlock()
		status := "cached"
		if !r.Cached {
			status = "built"
		}
		b.logf("%s %s %s@%s in %s", status, l.Name, l.Ref, r.Descriptor.Digest, r.Duration.Round(time.Millisecond))
		return nil
	})
	out := make([]LayerResult, len(layers))
	for i, l := range layers {
		out[i] = LayerResult{Layer: l, Result: results[l.Name], Err: errs[i]}
	}
	return out, failed
}

// PlanStack computes every layer's keys and whether it would rebuild,
// writing nothing: stack.Plan orders the layers and chains their keys;
// each layer's keys are Plan's.
func (b *Builder) PlanStack(ctx context.Context, s *stack.Stack, opts StackOptions) ([]stack.PlanEntry, error) {
	layers, err := s.Select(opts.Layers)
	if err != nil {
		return nil, err
	}
	results := map[string]*Result{}
	plan, err := stack.Plan(ctx, layers, func(ctx context.Context, l *stack.Layer, parent *stack.PlanEntry) (map[string]string, bool, error) {
		req := b.layerRequest(s, l, opts, results)
		if parent != nil && parent.Rebuild {
			// Keep the parent's keys but not a descriptor: it will change.
			pb := req.Bases[l.From]
			pb.Descriptor = ocispec.Descriptor{}
			req.Bases[l.From] = pb
		}
		r, err := b.Plan(ctx, req)
		if err != nil {
			return nil, false, err
		}
		results[l.Name] = r
		keys := map[string]string{}
		for _, p := range r.Platforms {
			keys[oci.PlatformString(p.Platform)] = p.Key
		}
		return keys, r.Cached, nil
	})
	for i := range plan {
		if r := results[plan[i].Layer.Name]; r != nil {
			plan[i].Inputs = map[string]map[string]string{}
			for _, p := range r.Platforms {
				plan[i].Inputs[oci.PlatformString(p.Platform)] = p.Inputs
			}
		}
	}
	return plan, err
}
