package regserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Header names of the OCI distribution spec's referrers support.
const (
	headerFiltersApplied = "OCI-Filters-Applied"
	headerSubject        = "OCI-Subject"
)

// manifestInfo is what the referrers API needs from one stored manifest.
// Manifests are content-addressed, so it never changes for a digest.
type manifestInfo struct {
	subject    digest.Digest // empty when the manifest has no subject
	descriptor ocispec.Descriptor
}

// manifestFields are the parts of an image manifest or index that the
// referrers API reads.
type manifestFields struct {
	MediaType    string              `json:"mediaType"`
	ArtifactType string              `json:"artifactType"`
	Config       *ocispec.Descriptor `json:"config"`
	Manifests    json.RawMessage     `json:"manifests"`
	Subject      *ocispec.Descriptor `json:"subject"`
	Annotations  map[string]string   `json:"annotations"`
}

// describeManifest reads a manifest's subject and the descriptor the
// referrers API lists for it: artifactType is the manifest's artifactType,
// else (image manifests only) its config media type; annotations are copied.
func describeManifest(dgst digest.Digest, payload []byte) (manifestInfo, error) {
	var m manifestFields
	if err := json.Unmarshal(payload, &m); err != nil {
		return manifestInfo{}, fmt.Errorf("manifest %s: %w", dgst, err)
	}
	mediaType := m.MediaType
	if mediaType == "" {
		// OCI allows the field to be absent; an index is told by its list.
		mediaType = ocispec.MediaTypeImageManifest
		if m.Manifests != nil {
			mediaType = ocispec.MediaTypeImageIndex
		}
	}
	d := ocispec.Descriptor{
		MediaType:    mediaType,
		Digest:       dgst,
		Size:         int64(len(payload)),
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
	}
	if d.ArtifactType == "" && mediaType != ocispec.MediaTypeImageIndex && m.Config != nil {
		d.ArtifactType = m.Config.MediaType
	}
	info := manifestInfo{descriptor: d}
	if m.Subject != nil && m.Subject.Digest.Validate() == nil {
		info.subject = m.Subject.Digest
	}
	return info, nil
}

// referrersIndex is the referrers response: an OCI image index of the given
// descriptors, kept only if artifactTypes is empty or holds their
// artifactType, in digest order so that the answer is deterministic.
func referrersIndex(descs []ocispec.Descriptor, artifactTypes []string) ocispec.Index {
	out := make([]ocispec.Descriptor, 0, len(descs))
	for _, d := range descs {
		if len(artifactTypes) == 0 || slices.Contains(artifactTypes, d.ArtifactType) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: out,
	}
}

// splitReferrersPath splits /v2/<name>/referrers/<digest>. distribution's own
// routes all end in /manifests/…, /blobs/…, /tags/list or /blobs/uploads/…,
// so a path of this shape never belongs to them.
func splitReferrersPath(p string) (name, ref string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/referrers/")
	if i <= 0 {
		return "", "", false
	}
	name, ref = rest[:i], rest[i+len("/referrers/"):]
	if ref == "" || strings.Contains(ref, "/") {
		return "", "", false
	}
	return name, ref, true
}

// infoCacheLimit bounds the manifest cache; past it the cache starts over.
const infoCacheLimit = 1 << 16

// referrers answers GET /v2/<name>/referrers/<digest> by scanning the
// repository's manifest revisions for a matching subject. Scanning (instead
// of an index kept on PUT) makes the answer right for trees written by other
// tools and after restarts; parsed manifests are cached by digest, so a scan
// costs a directory walk once the cache is warm.
type referrers struct {
	ns  distribution.Namespace
	log *slog.Logger

	mu    sync.Mutex
	cache map[digest.Digest]manifestInfo
}

func newReferrers(ns distribution.Namespace, log *slog.Logger) *referrers {
	return &referrers{ns: ns, log: log, cache: map[digest.Digest]manifestInfo{}}
}

func (rf *referrers) ServeHTTP(w http.ResponseWriter, r *http.Request, name, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		serveError(w, errcode.ErrorCodeUnsupported.WithMessage("the referrers API is read-only: use GET"))
		return
	}
	named, err := reference.WithName(name)
	if err != nil {
		serveError(w, errcode.ErrorCodeNameInvalid.WithDetail(err.Error()))
		return
	}
	subject, err := digest.Parse(ref)
	if err != nil {
		serveError(w, errcode.ErrorCodeDigestInvalid.WithDetail(err.Error()))
		return
	}
	descs, err := rf.list(r.Context(), named, subject)
	if err != nil {
		rf.log.Error("referrers lookup failed", "repository", name, "subject", subject, "err", err)
		serveError(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	artifactTypes := nonEmpty(r.URL.Query()["artifactType"])
	body, err := json.Marshal(referrersIndex(descs, artifactTypes))
	if err != nil {
		serveError(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ocispec.MediaTypeImageIndex)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	if len(artifactTypes) > 0 {
		h.Set(headerFiltersApplied, "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// list returns the descriptors of every manifest in the repository whose
// subject is the given digest.
func (rf *referrers) list(ctx context.Context, named reference.Named, subject digest.Digest) ([]ocispec.Descriptor, error) {
	repo, err := rf.ns.Repository(ctx, named)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", named.Name(), err)
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, fmt.Errorf("manifests of %s: %w", named.Name(), err)
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, fmt.Errorf("manifest store of %s cannot list revisions", named.Name())
	}
	var found []ocispec.Descriptor
	err = enum.Enumerate(ctx, func(dgst digest.Digest) error {
		info, ok := rf.info(ctx, ms, named, dgst)
		if ok && info.subject == subject {
			found = append(found, info.descriptor)
		}
		return ctx.Err()
	})
	var notFound storagedriver.PathNotFoundError
	if errors.As(err, &notFound) {
		// No manifest revisions (or no repository): nothing refers to the
		// subject. The spec forbids a 404 from a registry with referrers
		// support, and clients read 404 as "API unsupported".
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list manifests of %s: %w", named.Name(), err)
	}
	return found, nil
}

// info parses one manifest revision, from the cache when it can. A revision
// that cannot be read or parsed is skipped: one dangling link (sealer trees
// carry them) must not break the listing.
func (rf *referrers) info(ctx context.Context, ms distribution.ManifestService, named reference.Named, dgst digest.Digest) (manifestInfo, bool) {
	rf.mu.Lock()
	info, ok := rf.cache[dgst]
	rf.mu.Unlock()
	if ok {
		return info, true
	}
	m, err := ms.Get(ctx, dgst)
	if err != nil {
		rf.log.Debug("referrers: skip unreadable manifest", "repository", named.Name(), "digest", dgst, "err", err)
		return manifestInfo{}, false
	}
	_, payload, err := m.Payload()
	if err != nil {
		rf.log.Debug("referrers: skip manifest without payload", "repository", named.Name(), "digest", dgst, "err", err)
		return manifestInfo{}, false
	}
	info, err = describeManifest(dgst, payload)
	if err != nil {
		rf.log.Debug("referrers: skip unparsable manifest", "repository", named.Name(), "err", err)
		return manifestInfo{}, false
	}
	rf.mu.Lock()
	if len(rf.cache) >= infoCacheLimit {
		clear(rf.cache)
	}
	rf.cache[dgst] = info
	rf.mu.Unlock()
	return info, true
}

func nonEmpty(vals []string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// maxManifestSize mirrors distribution's limit on a manifest PUT body.
const maxManifestSize = 4 << 20

// withSubjectHeader reads a manifest PUT body and, when the manifest has a
// subject and distribution stores it (201), adds the OCI-Subject header that
// tells clients this registry indexes referrers. The body is handed on intact.
func withSubjectHeader(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	head, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	body := io.MultiReader(bytes.NewReader(head), r.Body)
	r2 := r.Clone(r.Context())
	r2.Body = readCloser{Reader: body, Closer: r.Body}
	if err != nil || len(head) > maxManifestSize {
		return w, r2 // distribution reports the error or the size
	}
	var m struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(head, &m) != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return w, r2
	}
	return &subjectWriter{ResponseWriter: w, subject: m.Subject.Digest}, r2
}

type readCloser struct {
	io.Reader
	io.Closer
}

type subjectWriter struct {
	http.ResponseWriter
	subject digest.Digest
	wrote   bool
}

func (s *subjectWriter) WriteHeader(code int) {
	if !s.wrote && code == http.StatusCreated {
		s.Header().Set(headerSubject, s.subject.String())
	}
	s.wrote = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *subjectWriter) Write(p []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(p)
}

func (s *subjectWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func serveError(w http.ResponseWriter, err error) {
	_ = errcode.ServeJSON(w, err)
}
