package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/internal/progress"
)

// ErrCheckFailed is returned (wrapped) when a bundle has any problem.
var ErrCheckFailed = errors.New("bundle check failed")

// VerifyFunc verifies the signatures (and attestations) of one image whose
// content is readable through t; it must not touch the network.
type VerifyFunc func(ctx context.Context, t *Target, ref string, root ocispec.Descriptor) ([]string, error)

// CheckOptions configure Check.
type CheckOptions struct {
	Input    string
	Limits   Limits
	Workers  int        // parallel hashers (default GOMAXPROCS)
	Verify   VerifyFunc // nil: signatures are not checked
	Progress io.Writer
}

// CheckReport is the verdict on a bundle.
type CheckReport struct {
	Blobs    int
	Bytes    int64
	Duration time.Duration
	Images   []ImageCheck
	Problems []string // every problem, each naming the blob, file or image
	Omitted  int      // blobs a delta expects from its base
	Verified bool     // signatures were checked
}

// ImageCheck is the verdict on one image of the bundle.
type ImageCheck struct {
	Ref    string
	Digest digest.Digest
	OK     bool
	Lines  []string
}

// OK reports whether the bundle passed.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// Check verifies a bundle without network access: every blob's sha256
// (hashed in parallel while the archive streams), the checksum list, the
// part checksums, that every image is complete, and, with opts.Verify, the
// signatures and attestations.
func Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	start := time.Now()
	in, err := openInput(opts.Input)
	if err != nil {
		return nil, err
	}
	rc, err := in.reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	meter := progress.New(opts.Progress, "check "+opts.Input)
	tr, done, err := decompress(meter.Reader(rc), opts.Limits)
	if err != nil {
		return nil, err
	}
	defer done()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	cv := newCheckVisitor(workers)
	werr := walk(ctx, tr, cv, opts.Limits)
	cv.wait()
	meter.Done()
	rep := &CheckReport{Blobs: cv.blobs, Bytes: cv.bytes}
	rep.Problems = append(rep.Problems, cv.problems...)
	if werr != nil {
		rep.Problems = append(rep.Problems, werr.Error())
	}
	cv.finish(ctx, rep, opts.Verify, opts.Limits)
	rep.Duration = time.Since(start)
	if !rep.OK() {
		return rep, fmt.Errorf("%w: %s", ErrCheckFailed, strings.Join(rep.Problems, "; "))
	}
	return rep, nil
}

type hashJob struct {
	d      digest.Digest
	size   int64
	chunks chan []byte
	keep   *bytes.Buffer // small JSON blobs kept for graph and signature checks
}

type checkVisitor struct {
	jobs  chan *hashJob
	wg    sync.WaitGroup
	pool  sync.Pool
	mu    sync.Mutex
	blobs int
	bytes int64

	problems []string
	present  map[digest.Digest]int64
	small    map[digest.Digest][]byte
	files    map[string][]byte // metadata files
	fileSums map[string]string // sha256 of metadata files
	blobSums map[digest.Digest]string
}

func newCheckVisitor(workers int) *checkVisitor {
	cv := &checkVisitor{
		jobs: make(chan *hashJob), present: map[digest.Digest]int64{}, small: map[digest.Digest][]byte{},
		files: map[string][]byte{}, fileSums: map[string]string{}, blobSums: map[digest.Digest]string{},
	}
	cv.pool.New = func() any { b := make([]byte, 1<<20); return &b }
	for i := 0; i < workers; i++ {
		cv.wg.Add(1)
		go cv.worker()
	}
	return cv
}

func (cv *checkVisitor) worker() {
	defer cv.wg.Done()
	for j := range cv.jobs {
		h := sha256.New()
		for c := range j.chunks {
			h.Write(c)
			if j.keep != nil {
				j.keep.Write(c)
			}
			b := c[:cap(c)]
			cv.pool.Put(&b)
		}
		got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		cv.mu.Lock()
		cv.blobSums[j.d] = got.Encoded()
		if got != j.d {
			cv.problems = append(cv.problems, fmt.Sprintf("blob %s is corrupt: its content hashes to %s", j.d, got))
		} else if j.keep != nil && looksLikeJSON(j.keep.Bytes()) {
			cv.small[j.d] = j.keep.Bytes()
		}
		cv.mu.Unlock()
	}
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// smallLimit bounds blobs kept in memory: manifests, configs, signature
// payloads and attestation envelopes are JSON and small.
const smallLimit = 4 << 20

func (cv *checkVisitor) blob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	j := &hashJob{d: d, size: size, chunks: make(chan []byte, 4)}
	if size <= smallLimit {
		j.keep = &bytes.Buffer{}
	}
	cv.mu.Lock()
	cv.blobs++
	cv.bytes += size
	cv.present[d] = size
	cv.mu.Unlock()
	select {
	case cv.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer close(j.chunks)
	var n int64
	for {
		bp := cv.pool.Get().(*[]byte)
		m, err := io.ReadFull(r, *bp)
		if m > 0 {
			n += int64(m)
			j.chunks <- (*bp)[:m]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: read blob %s: %v", ErrInvalid, d, err)
		}
	}
	if n != size {
		return fmt.Errorf("%w: blob %s is truncated: %d of %d bytes", ErrInvalid, d, n, size)
	}
	return nil
}

func (cv *checkVisitor) metadata(name string, b []byte) error {
	sum := sha256.Sum256(b)
	cv.mu.Lock()
	cv.files[name] = b
	cv.fileSums[name] = hex.EncodeToString(sum[:])
	cv.mu.Unlock()
	return nil
}

func (cv *checkVisitor) nested(name string) (visitor, error) {
	return nil, fmt.Errorf("%w: %s: check reads cnstack bundles; a sealer-format archive is checked by sealer load", ErrInvalid, name)
}

func (cv *checkVisitor) wait() {
	close(cv.jobs)
	cv.wg.Wait()
}

// finish checks the checksum list, the completeness of every image and the
// signatures, adding problems to rep. The rules are load's (validate.go).
func (cv *checkVisitor) finish(ctx context.Context, rep *CheckReport, verify VerifyFunc, lim Limits) {
	var meta Meta
	mb, hasMeta := cv.files[metaName]
	if hasMeta {
		if err := json.Unmarshal(mb, &meta); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s is not valid JSON: %v", metaName, err))
		}
	}
	omitted := map[digest.Digest]bool{}
	if meta.Delta != nil {
		for _, d := range meta.Delta.Omitted {
			omitted[d] = true
		}
		rep.Omitted = len(omitted)
	}
	if b, ok := cv.files[sumsFileName]; ok {
		list, err := parseSums(b)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		} else {
			rep.Problems = append(rep.Problems, sumProblems(list, cv.blobSums, cv.fileSums)...)
		}
	} else if hasMeta {
		rep.Problems = append(rep.Problems, sumsFileName+" is missing")
	}
	ib, ok := cv.files[indexName]
	if !ok {
		rep.Problems = append(rep.Problems, "index.json is missing")
		return
	}
	roots, err := parseIndex(ib, lim)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
		return
	}
	t := &Target{blobs: cv.small, sizes: cv.present, refs: map[string]ocispec.Descriptor{}}
	for _, r := range roots {
		if r.Ref != "" {
			t.refs[r.Ref] = describeRoot(r, cv)
		}
	}
	for _, r := range roots {
		ic := ImageCheck{Ref: r.Ref, Digest: r.Descriptor.Digest, OK: true}
		for _, p := range graphProblems(r, cv, missingUnlessOmitted(omitted)) {
			ic.OK = false
			ic.Lines = append(ic.Lines, p)
			rep.Problems = append(rep.Problems, fmt.Sprintf("image %s: %s", r.Ref, p))
		}
		if verify != nil && !isCompanionRef(r.Ref) && ic.OK {
			rep.Verified = true
			d := describeRoot(r, cv)
			lines, err := verify(ctx, t, r.Ref, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
			ic.Lines = append(ic.Lines, lines...)
			if err != nil {
				ic.OK = false
				rep.Problems = append(rep.Problems, fmt.Sprintf("image %s: %v", r.Ref, err))
			}
		}
		rep.Images = append(rep.Images, ic)
	}
}

// size and read make the checked archive a blobSource.
func (cv *checkVisitor) size(d digest.Digest) (int64, bool) {
	n, ok := cv.present[d]
	return n, ok
}

func (cv *checkVisitor) read(d digest.Digest) ([]byte, bool) {
	b, ok := cv.small[d]
	return b, ok
}

// Target is a read-only view of a checked bundle: its small JSON blobs
// (manifests, configs, signature and attestation payloads) and its refs.
// It satisfies oras-go's ReadOnlyTarget for signature verification.
type Target struct {
	blobs map[digest.Digest][]byte
	sizes map[digest.Digest]int64
	refs  map[string]ocispec.Descriptor
}

// Fetch returns a kept blob.
func (t *Target) Fetch(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := t.blobs[d.Digest]
	if !ok {
		if _, present := t.sizes[d.Digest]; present {
			return nil, fmt.Errorf("blob %s is too large to verify signatures over: %w", d.Digest, errdef.ErrUnsupported)
		}
		return nil, fmt.Errorf("blob %s: %w", d.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists reports whether the bundle holds the blob.
func (t *Target) Exists(_ context.Context, d ocispec.Descriptor) (bool, error) {
	_, ok := t.sizes[d.Digest]
	return ok, nil
}

// Resolve finds a reference named in index.json, or a manifest by digest.
func (t *Target) Resolve(_ context.Context, ref string) (ocispec.Descriptor, error) {
	if d, ok := t.refs[ref]; ok {
		return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
	}
	if dg, err := digest.Parse(ref); err == nil {
		if b, ok := t.blobs[dg]; ok {
			var probe struct {
				MediaType string `json:"mediaType"`
			}
			json.Unmarshal(b, &probe)
			return ocispec.Descriptor{MediaType: probe.MediaType, Digest: dg, Size: int64(len(b))}, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, errdef.ErrNotFound)
}

// Refs lists the references the bundle's index.json names.
func (t *Target) Refs() []string {
	var out []string
	for r := range t.refs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
