// Package transfer moves images between the places they live — the local
// store, registries, OCI layouts — with one Copy: every platform, the cosign
// signatures and attestations that belong to the image, only the blobs the
// destination lacks (HEAD first, cross-repository mount within a registry),
// in parallel, retried (requests by the registry client; an upload whose PUT
// fails starts over with a new session; a pulled blob whose body breaks
// resumes with HTTP Range, in pkg/regclient) and resumable (a rerun skips what
// already arrived; partial blobs in the store resume).
//
// Push and Pull are Copy between the store and a registry (Pull names a
// digest-only pull NAME:sha256-<hex>); Retag points a tag at a registry
// image without re-sending it (a tag in its repository, or a Copy whose
// blobs are mounted into another); Locate is the one lookup of an image by
// name in the store, its registry, or the store and then the registry.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/internal/progress"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// Endpoint is one side of a copy: a target and the reference of the image in it.
type Endpoint struct {
	Target oras.Target
	// Ref resolves the image in Target: a full reference for the store, a
	// tag or digest for a registry repository.
	Ref string
	// Name describes the endpoint in messages ("127.0.0.1:5000/cnstack/base:v1").
	Name string
	// companionRef turns a cosign tag into a reference Target understands.
	companionRef func(tag string) string
	// repository is the registry repository path, for cross-repo mounts.
	repository string
	registry   string
}

// Store is the endpoint of ref in the local store.
func Store(s *store.Store, ref reference.Reference) Endpoint {
	return Endpoint{
		Target: s, Ref: ref.String(), Name: "store:" + ref.String(),
		companionRef: func(tag string) string { return ref.Name() + ":" + tag },
	}
}

// Remote is the endpoint of ref in its registry repository. Pulls from it
// read blobs through pkg/regclient's resumable reader, as every pull does.
func Remote(repo *regclient.Repository, ref reference.Reference) Endpoint {
	return Endpoint{
		Target: repo, Ref: ref.Identifier(), Name: ref.String(),
		companionRef: func(tag string) string { return tag },
		repository:   ref.Repository, registry: ref.Registry,
	}
}

// Options tune a copy.
type Options struct {
	Concurrency int       // blobs in flight (default 8)
	Progress    io.Writer // live meter on a terminal; nil: silent
	NoCompanion bool      // leave cosign signatures/attestations behind
	// MountFrom lists repositories of the destination registry that may
	// already hold the blobs (cross-repository mount instead of upload).
	MountFrom []string
	// Platforms, when set, copies only these children of an index (and
	// rewrites nothing: the index still names every platform).
	Platforms []ocispec.Platform
	// UploadRetries is how often a failed upload to a registry (5xx, 429,
	// dropped connection) starts over with a new session; 0 means
	// DefaultUploadRetries, negative none.
	UploadRetries int
	// uploadWait overrides the backoff between upload retries (tests).
	uploadWait func(attempt int) time.Duration
}

// Report says what a copy did.
type Report struct {
	Root       ocispec.Descriptor
	Companions []string // cosign tags copied along
	Bytes      int64
	Copied     int64
	Skipped    int64 // objects the destination already had
	Mounted    int64
	Retried    int64 // uploads started over after a failure
	Summary    string
}

// Copy copies the image src names to dst, then its cosign companions.
func Copy(ctx context.Context, src, dst Endpoint, opts Options) (*Report, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	root, err := src.Target.Resolve(ctx, src.Ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", src.Name, err)
	}
	meter := progress.New(opts.Progress, "copy "+src.Name)
	rep := &Report{Root: root}
	var retries atomic.Int64
	retried := func() { retries.Add(1) }
	defer func() {
		rep.Retried = retries.Load()
		rep.Summary = meter.Done()
		rep.Bytes, rep.Copied, rep.Skipped, rep.Mounted = meter.Bytes(), meter.Objects(), meter.Skipped(), meter.Mounted()
	}()
	if err := copyGraph(ctx, src, dst, root, opts, meter, retried); err != nil {
		return rep, err
	}
	if err := tag(ctx, dst, root, dst.Ref); err != nil {
		return rep, err
	}
	if opts.NoCompanion {
		return rep, nil
	}
	manifests, err := oci.ManifestDigests(ctx, src.Target, root)
	if err != nil {
		return rep, err
	}
	for _, d := range manifests {
		for _, suffix := range oci.CompanionSuffixes {
			t := oci.CompanionTag(d, suffix)
			cd, err := src.Target.Resolve(ctx, src.companionRef(t))
			if errors.Is(err, errdef.ErrNotFound) {
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("look up %s of %s: %w", t, src.Name, err)
			}
			if err := copyGraph(ctx, src, dst, cd, opts, meter, retried); err != nil {
				return rep, fmt.Errorf("copy %s: %w", t, err)
			}
			if err := tag(ctx, dst, cd, dst.companionRef(t)); err != nil {
				return rep, err
			}
			rep.Companions = append(rep.Companions, t)
		}
	}
	return rep, nil
}

func tag(ctx context.Context, dst Endpoint, desc ocispec.Descriptor, ref string) error {
	if _, err := digest.Parse(ref); err == nil {
		return nil // by digest: the manifest is there, nothing to name
	}
	if err := dst.Target.Tag(ctx, desc, ref); err != nil {
		return fmt.Errorf("tag %s in %s: %w", ref, dst.Name, err)
	}
	return nil
}

func copyGraph(ctx context.Context, src, dst Endpoint, root ocispec.Descriptor, opts Options, meter *progress.Meter, retried func()) error {
	gopts := oras.CopyGraphOptions{
		Concurrency: opts.Concurrency,
		PreCopy: func(ctx context.Context, d ocispec.Descriptor) error {
			slog.Debug("copy", "digest", d.Digest, "size", d.Size, "to", dst.Name)
			return nil
		},
		PostCopy:      func(context.Context, ocispec.Descriptor) error { meter.Object(); return nil },
		OnCopySkipped: func(context.Context, ocispec.Descriptor) error { meter.Skip(); return nil },
		OnMounted:     func(context.Context, ocispec.Descriptor) error { meter.Mount(); return nil },
	}
	if len(opts.MountFrom) > 0 && dst.repository != "" {
		var from []string
		for _, r := range opts.MountFrom {
			if r != dst.repository {
				from = append(from, r)
			}
		}
		gopts.MountFrom = func(context.Context, ocispec.Descriptor) ([]string, error) { return from, nil }
	}
	if len(opts.Platforms) > 0 {
		gopts.FindSuccessors = func(ctx context.Context, f content.Fetcher, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			succ, err := content.Successors(ctx, f, d)
			if err != nil || !store.IsIndex(d.MediaType) {
				return succ, err
			}
			var keep []ocispec.Descriptor
			for _, s := range succ {
				if s.Platform == nil || oci.MatchAnyPlatform(*s.Platform, opts.Platforms) {
					keep = append(keep, s)
				}
			}
			return keep, nil
		}
	}
	csrc := countingStorage{ReadOnlyStorage: src.Target, meter: meter}
	retries := opts.UploadRetries
	if retries == 0 {
		retries = DefaultUploadRetries
	}
	wait := opts.uploadWait
	if wait == nil {
		wait = uploadBackoff
	}
	var target content.Storage = dst.Target
	if retries > 0 && dst.registry != "" { // the store resumes its own writes
		target = &retryingTarget{Storage: dst.Target, src: src.Target, name: dst.Name, retries: retries, wait: wait, retried: retried}
	}
	if err := oras.CopyGraph(ctx, csrc, target, root, gopts); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src.Name, dst.Name, err)
	}
	return nil
}

// countingStorage counts the bytes read from the source.
type countingStorage struct {
	content.ReadOnlyStorage
	meter *progress.Meter
}

func (c countingStorage) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := c.ReadOnlyStorage.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	cr := &countingReadCloser{rc: rc, meter: c.meter}
	if s, ok := rc.(io.Seeker); ok {
		return &countingReadSeekCloser{countingReadCloser: cr, s: s}, nil
	}
	return cr, nil
}

type countingReadCloser struct {
	rc    io.ReadCloser
	meter *progress.Meter
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.meter.Add(int64(n))
	return n, err
}

func (c *countingReadCloser) Close() error { return c.rc.Close() }

// countingReadSeekCloser keeps Seek so a resumed blob can skip what the
// destination already holds (HTTP Range on a registry).
type countingReadSeekCloser struct {
	*countingReadCloser
	s io.Seeker
}

func (c *countingReadSeekCloser) Seek(off int64, whence int) (int64, error) {
	return c.s.Seek(off, whence)
}
