// Package report owns the record of one pipeline run (a nightly build of a
// stack): per layer and platform what was built or cached and why, the
// digest and size, signatures and attestations, the SBOM summary, the boot
// verdict (pkg/verify's Report, reused as is) and what was promoted. It
// reads a run from its JSON, collects one from the store and the pipeline's
// step log (Collect), and renders it as one self-contained HTML page with
// inline SVG pictures (the layer DAG, stacked size bars, the boot timeline,
// the trend over earlier runs), as JSON and as JUnit.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cnstack/cnstack/pkg/verify"
)

// Schema is the version of the run JSON this package writes.
const Schema = 1

// RunFile is the run's JSON in a report directory.
const RunFile = "run.json"

// Step statuses of a layer. Verification adds verify.Passed, verify.Failed
// and verify.NotRun.
const (
	Built    = "built"            // the build wrote a new image
	Cached   = "cached"           // the build found the image in the cache
	Pushed   = "pushed"           // the registry lacked the image and got it
	Present  = "present"          // the registry already held the digest: nothing sent
	Signed   = "signed"           // signatures and attestations made
	Earlier  = "verified-earlier" // a signed verification attestation from an earlier run
	Promoted = "promoted"         // the verified digest got the promotion tag
	Failed   = "failed"
	Skipped  = "skipped" // not run because something it needs failed, or not applicable
)

// Run is one run of the pipeline over a stack.
type Run struct {
	Schema   int           `json:"schema"`
	ID       string        `json:"id"` // e.g. 20261207T060000Z, the report directory's name
	Stack    string        `json:"stack"`
	Version  string        `json:"version"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Staging is where images are pushed by digest (registry/prefix);
	// PromoteTag the tag verified digests get (stable or a release tag).
	Staging    string   `json:"staging,omitempty"`
	PromoteTag string   `json:"promoteTag,omitempty"`
	Platforms  []string `json:"platforms"`
	// Layers in dependency order (parents first).
	Layers []Layer `json:"layers"`
	// Stages are the run's own phases (lock, build, push, …) with timings.
	Stages []Stage `json:"stages,omitempty"`
	Passed bool    `json:"passed"`
}

// Stage is one timed phase of the whole run.
type Stage struct {
	Name     string        `json:"name"`
	Status   string        `json:"status"`
	Duration time.Duration `json:"duration"`
}

// Layer is one layer of the stack in this run.
type Layer struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // kube-installer or app-installer
	Image  string `json:"image"`
	Parent string `json:"parent,omitempty"`
	From   string `json:"from,omitempty"`
	// Digest is the image's root (index or manifest) digest.
	Digest string `json:"digest,omitempty"`
	// Steps are what the pipeline did to the layer, in order: build, sign,
	// push, verify, promote.
	Steps []Step `json:"steps"`
	// Signature and Attestations say whether the key verifies them
	// ("verified", "missing" or the failure).
	Signature    string     `json:"signature,omitempty"`
	Attestations string     `json:"attestations,omitempty"`
	Platforms    []Platform `json:"platforms"`
}

// Step is one step of the pipeline on one layer.
type Step struct {
	Name     string        `json:"name"` // build, sign, push, verify, promote
	Status   string        `json:"status"`
	Detail   string        `json:"detail,omitempty"` // why: the rebuild reason, the failure, the tag
	Duration time.Duration `json:"duration"`
}

// Platform is one platform image of a layer.
type Platform struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	// Size is the image's bytes (config and layers); OwnSize the part its
	// parent layer's image does not have.
	Size    int64        `json:"size"`
	OwnSize int64        `json:"ownSize"`
	Images  int          `json:"images"` // container images it carries
	SBOM    *SBOMSummary `json:"sbom,omitempty"`
	// Boot is the boot verification's report, when this run booted it;
	// BootDir the directory (relative to the run's report) with its logs.
	Boot    *verify.Report `json:"boot,omitempty"`
	BootDir string         `json:"bootDir,omitempty"`
}

// SBOMSummary counts what the image's SPDX SBOM lists.
type SBOMSummary struct {
	Packages int            `json:"packages"`
	Files    int            `json:"files"`
	ByKind   map[string]int `json:"byKind,omitempty"` // primaryPackagePurpose → count
	Verified bool           `json:"verified"`         // read from an attestation the key verifies
}

// Step returns the layer's step called name, or nil.
func (l *Layer) Step(name string) *Step {
	for i := range l.Steps {
		if l.Steps[i].Name == name {
			return &l.Steps[i]
		}
	}
	return nil
}

// Failed says whether any step of the layer failed.
func (l *Layer) Failed() bool {
	for _, s := range l.Steps {
		if s.Status == Failed {
			return true
		}
	}
	return false
}

// Verdict is the layer's verification status ("" when not recorded).
func (l *Layer) Verdict() string {
	if s := l.Step("verify"); s != nil {
		return s.Status
	}
	return ""
}

// Finish sets Passed: no step of any layer failed.
func (r *Run) Finish() {
	r.Passed = true
	for i := range r.Layers {
		if r.Layers[i].Failed() {
			r.Passed = false
		}
	}
	for _, s := range r.Stages {
		if s.Status == Failed {
			r.Passed = false
		}
	}
}

// Read reads a run's JSON.
func Read(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: run schema %d, this cnstack reads %d", path, r.Schema, Schema)
	}
	return &r, nil
}

// Marshal is the run's JSON, indented.
func (r *Run) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// History reads the runs of the report directories under dir (each
// DIR/<id>/run.json), oldest first, leaving out the run called skip.
// Directories without a readable run are left out.
func History(dir, skip string) ([]*Run, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Run
	for _, e := range entries {
		if !e.IsDir() || e.Name() == skip {
			continue
		}
		r, err := Read(filepath.Join(dir, e.Name(), RunFile))
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// platform finds a layer's platform in a run, or nil.
func (r *Run) platform(layer, platform string) *Platform {
	if r == nil {
		return nil
	}
	for i := range r.Layers {
		if r.Layers[i].Name != layer {
			continue
		}
		for j := range r.Layers[i].Platforms {
			if r.Layers[i].Platforms[j].Platform == platform {
				return &r.Layers[i].Platforms[j]
			}
		}
	}
	return nil
}

// TotalSize is the sum of every layer's platform image sizes.
func (r *Run) TotalSize() int64 {
	var n int64
	for _, l := range r.Layers {
		for _, p := range l.Platforms {
			n += p.Size
		}
	}
	return n
}

// Counts counts the layers by build status and by verification verdict.
func (r *Run) Counts() map[string]int {
	out := map[string]int{}
	for i := range r.Layers {
		l := &r.Layers[i]
		if s := l.Step("build"); s != nil {
			out["build:"+s.Status]++
		}
		if v := l.Verdict(); v != "" {
			out["verify:"+v]++
		}
		if s := l.Step("push"); s != nil {
			out["push:"+s.Status]++
		}
		if s := l.Step("promote"); s != nil {
			out["promote:"+s.Status]++
		}
	}
	return out
}
