package report

import (
	"errors"
	"fmt"
	"time"
)

// Merge combines the runs of one pipeline spread over several jobs (a CI
// matrix: one job per layer and platform, each with its own report) into
// one run: each layer comes from the run in which it has steps (its
// platforms gathered from every such run), the stages are concatenated,
// and the run spans from the first job's start to the last job's end. The
// first run names the merged one.
func Merge(runs []*Run) (*Run, error) {
	if len(runs) == 0 {
		return nil, errors.New("merge: no runs")
	}
	first := runs[0]
	out := &Run{Schema: Schema, ID: first.ID, Stack: first.Stack, Version: first.Version, Staging: first.Staging, PromoteTag: first.PromoteTag}
	var start, end time.Time
	platforms := map[string]bool{}
	for _, r := range runs {
		if r.Stack != first.Stack || r.Version != first.Version {
			return nil, fmt.Errorf("merge: run %s is of %s %s, run %s of %s %s", r.ID, r.Stack, r.Version, first.ID, first.Stack, first.Version)
		}
		if start.IsZero() || r.Started.Before(start) {
			start = r.Started
		}
		if e := r.Started.Add(r.Duration); e.After(end) {
			end = e
		}
		for _, p := range r.Platforms {
			if !platforms[p] {
				platforms[p] = true
				out.Platforms = append(out.Platforms, p)
			}
		}
		out.Stages = append(out.Stages, r.Stages...)
	}
	out.Started, out.Duration = start, end.Sub(start)
	// Layers in the first run's order; each from the runs that worked on it.
	for _, l := range first.Layers {
		merged := Layer{Name: l.Name, Type: l.Type, Image: l.Image, Parent: l.Parent, From: l.From, Steps: []Step{}, Platforms: []Platform{}}
		seen := map[string]bool{}
		for _, r := range runs {
			for i := range r.Layers {
				rl := &r.Layers[i]
				if rl.Name != l.Name || len(rl.Steps) == 0 {
					continue
				}
				if merged.Digest == "" {
					merged.Digest, merged.Signature, merged.Attestations = rl.Digest, rl.Signature, rl.Attestations
				}
				for _, s := range rl.Steps {
					merged.Steps = upsertStep(merged.Steps, s)
				}
				for _, p := range rl.Platforms {
					if !seen[p.Platform] {
						seen[p.Platform] = true
						merged.Platforms = append(merged.Platforms, p)
					}
				}
			}
		}
		out.Layers = append(out.Layers, merged)
	}
	out.Finish()
	return out, nil
}
