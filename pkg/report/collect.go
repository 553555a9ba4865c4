package report

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/sign"
	"github.com/cnstack/cnstack/pkg/sign/sbom"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/verify"
)

// CollectOptions say where a run's facts are.
type CollectOptions struct {
	ID         string
	Started    time.Time
	Duration   time.Duration
	Staging    string
	PromoteTag string
	Stack      *stack.Stack
	// Source holds the layers' images (the local store).
	Source oras.ReadOnlyTarget
	// Key, when set, verifies signatures, attestations and the SBOM.
	Key sign.Verifier
	// Steps is the pipeline's step log (see ReadSteps).
	Steps []StepRecord
	// Dir is the report directory: boot reports are read from
	// Dir/boot/<layer>/report.json and linked relative to it.
	Dir string
}

// StepRecord is one line of the pipeline's step log: what a step did to a
// layer ("-" for a stage of the whole run).
type StepRecord struct {
	Layer string
	Step
}

// ReadSteps reads a step log: one record a line, tab-separated
// LAYER STEP STATUS SECONDS DETAIL (DETAIL may be empty). A later record of
// the same layer and step replaces an earlier one.
func ReadSteps(r io.Reader) ([]StepRecord, error) {
	var out []StepRecord
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 5)
		if len(f) < 4 {
			return nil, fmt.Errorf("step log line %d: want LAYER<TAB>STEP<TAB>STATUS<TAB>SECONDS[<TAB>DETAIL], got %q", n, line)
		}
		secs, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return nil, fmt.Errorf("step log line %d: seconds %q: %w", n, f[3], err)
		}
		rec := StepRecord{Layer: f[0], Step: Step{Name: f[1], Status: f[2], Duration: time.Duration(secs * float64(time.Second))}}
		if len(f) == 5 {
			rec.Detail = f[4]
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// Collect assembles a run: the stack's layers in order, each with the steps
// the log records, and, for each layer image in Source, its digests, sizes,
// container image count, signature and attestation status, SBOM summary and
// boot report.
func Collect(ctx context.Context, opts CollectOptions) (*Run, error) {
	s := opts.Stack
	run := &Run{Schema: Schema, ID: opts.ID, Stack: s.Spec.Name, Version: s.Spec.Version, Started: opts.Started.UTC(),
		Duration: opts.Duration, Staging: opts.Staging, PromoteTag: opts.PromoteTag}
	for _, p := range s.Platforms {
		run.Platforms = append(run.Platforms, oci.PlatformString(p))
	}
	steps := map[string][]Step{}
	for _, rec := range opts.Steps {
		if rec.Layer == "-" {
			run.Stages = upsert(run.Stages, Stage{Name: rec.Name, Status: rec.Status, Duration: rec.Duration})
			continue
		}
		if s.Layer(rec.Layer) == nil {
			return nil, fmt.Errorf("step log names layer %q, which the stack %s does not have", rec.Layer, s.Spec.Name)
		}
		steps[rec.Layer] = upsertStep(steps[rec.Layer], rec.Step)
	}
	sizes := map[string]map[string]int64{} // layer → platform → size
	for _, l := range s.Layers {
		layer := Layer{Name: l.Name, Type: orDefault(l.Type, clusterimage.KubeInstaller), Image: l.Ref, Parent: l.Parent, From: l.From, Steps: steps[l.Name], Platforms: []Platform{}}
		if layer.Steps == nil {
			layer.Steps = []Step{}
		}
		// A layer whose build failed or did not run has no image of this
		// run: the store's image under its name is an earlier run's.
		if b := layer.Step("build"); b == nil || (b.Status != Failed && b.Status != Skipped) {
			if err := describe(ctx, opts, &layer); err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Name, err)
			}
		}
		sizes[l.Name] = map[string]int64{}
		for i := range layer.Platforms {
			p := &layer.Platforms[i]
			sizes[l.Name][p.Platform] = p.Size
			p.OwnSize = p.Size
			if ps, ok := sizes[l.Parent][p.Platform]; ok && ps <= p.Size {
				p.OwnSize = p.Size - ps
			}
		}
		if err := attachBoot(opts.Dir, &layer); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		run.Layers = append(run.Layers, layer)
	}
	run.Finish()
	return run, nil
}

func upsert(stages []Stage, st Stage) []Stage {
	for i := range stages {
		if stages[i].Name == st.Name {
			stages[i] = st
			return stages
		}
	}
	return append(stages, st)
}

func upsertStep(steps []Step, st Step) []Step {
	for i := range steps {
		if steps[i].Name == st.Name {
			steps[i] = st
			return steps
		}
	}
	return append(steps, st)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// describe fills a layer's digest, platforms and signature status from
// the source; a layer whose image is not there (its build failed) keeps
// none.
func describe(ctx context.Context, opts CollectOptions, layer *Layer) error {
	if opts.Source == nil {
		return nil
	}
	ref, err := reference.Parse(layer.Image)
	if err != nil {
		return err
	}
	root, err := opts.Source.Resolve(ctx, ref.String())
	if sign.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	layer.Digest = root.Digest.String()
	img := sign.Image{Name: ref.Name(), Tag: ref.Tag, Descriptor: root}
	subjects, err := sign.Subjects(ctx, opts.Source, img)
	if err != nil {
		return err
	}
	for _, sub := range subjects {
		if sub.Platform == "index" || sub.Missing {
			continue
		}
		p, err := describePlatform(ctx, opts, img, sub)
		if err != nil {
			return err
		}
		layer.Platforms = append(layer.Platforms, p)
	}
	if opts.Key != nil {
		layer.Signature, layer.Attestations = signatureStatus(ctx, opts, img)
	}
	return nil
}

func describePlatform(ctx context.Context, opts CollectOptions, img sign.Image, sub sign.Subject) (Platform, error) {
	p := Platform{Platform: sub.Platform, Digest: sub.Descriptor.Digest.String()}
	// oci reads the manifest (size-limited, digest-checked), and Size is its layers'.
	im, err := oci.FetchImage(ctx, opts.Source, sub.Descriptor, ocispec.Platform{})
	if err != nil {
		return p, err
	}
	p.Size = im.Manifest.Config.Size + im.Size()
	list, err := clusterimage.ParseContainerImages(im.Manifest.Annotations[clusterimage.AnnotationContainerImages])
	if err != nil {
		return p, err
	}
	p.Images = len(list)
	doc, err := sign.FindPredicate(ctx, opts.Source, img, sub.Descriptor.Digest, sign.PredicateSPDX, opts.Key)
	switch {
	case err == nil:
		var d sbom.Document
		if err := json.Unmarshal(doc, &d); err != nil {
			return p, fmt.Errorf("SBOM of %s: %w", sub, err)
		}
		sum := &SBOMSummary{Packages: len(d.Packages), Files: len(d.Files), ByKind: map[string]int{}, Verified: opts.Key != nil}
		for _, pk := range d.Packages {
			sum.ByKind[orDefault(pk.PrimaryPackagePurpose, "OTHER")]++
		}
		p.SBOM = sum
	case errors.Is(err, sign.ErrNoAttestation), sign.IsNotFound(err):
	default:
		// An SBOM that does not verify is reported as absent; the
		// attestation status says why.
	}
	return p, nil
}

func signatureStatus(ctx context.Context, opts CollectOptions, img sign.Image) (sig, att string) {
	rep, err := sign.Verify(ctx, opts.Source, img, sign.VerifyOptions{Key: opts.Key, Attestations: true})
	if rep == nil {
		return "error: " + err.Error(), "error: " + err.Error()
	}
	sig, att = "verified", "verified"
	for _, c := range rep.Checks {
		if c.OK() {
			continue
		}
		msg := c.Err.Error()
		if strings.HasPrefix(msg, "not signed") || strings.HasPrefix(msg, "no attestations") {
			msg = "missing"
		}
		if c.Kind == "signature" {
			if sig == "verified" {
				sig = msg
			}
		} else if att == "verified" {
			att = msg
		}
	}
	if err != nil && !errors.Is(err, sign.ErrVerification) {
		return "error: " + err.Error(), "error: " + err.Error()
	}
	return sig, att
}

// attachBoot reads dir/boot/<layer>/report.json, when there is one, into
// the platform it booted.
func attachBoot(dir string, layer *Layer) error {
	if dir == "" {
		return nil
	}
	rel := filepath.Join("boot", layer.Name)
	b, err := os.ReadFile(filepath.Join(dir, rel, "report.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var br verify.Report
	if err := json.Unmarshal(b, &br); err != nil {
		return fmt.Errorf("boot report %s: %w", filepath.Join(rel, "report.json"), err)
	}
	for i := range layer.Platforms {
		p := &layer.Platforms[i]
		if br.Platform == "" || br.Platform == p.Platform || len(layer.Platforms) == 1 {
			p.Boot, p.BootDir = &br, filepath.ToSlash(rel)
			return nil
		}
	}
	layer.Platforms = append(layer.Platforms, Platform{Platform: br.Platform, Digest: br.Digest, Boot: &br, BootDir: filepath.ToSlash(rel)})
	return nil
}
