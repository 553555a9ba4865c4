// Package chartrepo fetches the Helm chart archives Kubefiles reference by
// name and version (pkg/chartref): from a chart repository (its index.yaml
// names the archive's URL and digest), from an archive URL, or from an OCI
// registry (the version's tag names a manifest whose chart layer is the
// archive).
//
// Resolve asks the publisher what a version is now and returns a Pin — the
// archive's URL or OCI manifest, and the archive's sha256 — which
// `cnstack lock` records. Fetch gets the archive a Pin names and refuses
// any other bytes. Archives are kept in a cache directory under their
// sha256 (pkg/download's cache, shared with remote ADD/APP sources), so a
// pinned chart is downloaded once and a build with a warm cache needs no
// network.
package chartrepo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"sigs.k8s.io/yaml"

	"github.com/cnstack/cnstack/pkg/chartref"
	"github.com/cnstack/cnstack/pkg/download"
	"github.com/cnstack/cnstack/pkg/reference"
)

// Media types of a Helm chart stored in an OCI registry.
const (
	MediaTypeChartConfig = "application/vnd.cncf.helm.config.v1+json"
	MediaTypeChartLayer  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// mediaTypeLegacyChartLayer is what Helm 3.0–3.7 pushed.
	mediaTypeLegacyChartLayer = "application/tar+gzip"
)

// Size limits: an index.yaml of a big repository is tens of MiB; a chart
// archive far less.
const (
	MaxIndexSize    = 128 << 20
	MaxArchiveSize  = 64 << 20
	maxManifestSize = 4 << 20
)

// Pin is what a lock file records of a chart: where its archive is and
// its digest.
type Pin struct {
	// URL is the archive's URL (charts of repositories and archive URLs).
	URL string
	// Manifest is the OCI manifest the version's tag named (OCI charts).
	Manifest string
	// Digest is the archive's sha256, "sha256:<hex>".
	Digest string
}

// Repository is an OCI repository to read a chart from (pkg/regclient's
// Repository: registry credentials, mirrors, retries, the offline guard).
type Repository interface {
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Fetcher fetches chart archives.
type Fetcher struct {
	// HTTP fetches index.yaml files and archives; nil is http.DefaultClient.
	HTTP *http.Client
	// OpenOCI opens the OCI repository of an OCI chart; nil refuses them.
	OpenOCI func(ctx context.Context, ref reference.Reference) (Repository, error)
	// CacheDir keeps archives under their sha256 (download.Path).
	CacheDir string
}

// ErrNotFound is returned when the publisher has no such chart or version.
var ErrNotFound = errors.New("chart not found")

// Resolve finds what ref's version is now, downloads its archive into the
// cache and returns its pin and cached path. A chart repository's index
// digest, when it gives one, must match what is downloaded.
func (f *Fetcher) Resolve(ctx context.Context, ref chartref.Ref) (Pin, string, error) {
	switch ref.Kind {
	case chartref.Repository:
		u, want, err := f.lookupIndex(ctx, ref)
		if err != nil {
			return Pin{}, "", err
		}
		p, d, err := f.fetchURL(ctx, ref, u, want)
		return Pin{URL: u, Digest: d.String()}, p, err
	case chartref.Archive:
		p, d, err := f.fetchURL(ctx, ref, ref.Location, "")
		return Pin{URL: ref.Location, Digest: d.String()}, p, err
	case chartref.OCI:
		repo, r, err := f.openOCI(ctx, ref)
		if err != nil {
			return Pin{}, "", err
		}
		mdesc, layer, err := chartLayer(ctx, repo, ref, r.Tag)
		if err != nil {
			return Pin{}, "", err
		}
		p, err := f.fetchBlob(ctx, ref, repo, layer)
		return Pin{Manifest: mdesc.Digest.String(), Digest: layer.Digest.String()}, p, err
	}
	return Pin{}, "", fmt.Errorf("chart %s: unknown kind", ref)
}

// Fetch returns the cached archive pin names, downloading it when the cache
// lacks it. Bytes that differ from the pin are refused and not kept.
func (f *Fetcher) Fetch(ctx context.Context, ref chartref.Ref, pin Pin) (string, error) {
	want, err := digest.Parse(pin.Digest)
	if err != nil || want.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("chart %s: the lock file's digest %q is not a sha256 digest", ref, pin.Digest)
	}
	if p := download.Path(f.CacheDir, want); exists(p) {
		return p, nil
	}
	switch ref.Kind {
	case chartref.Repository, chartref.Archive:
		if pin.URL == "" {
			return "", fmt.Errorf("chart %s: the lock file records no archive URL; run `cnstack lock`", ref)
		}
		p, _, err := f.fetchURL(ctx, ref, pin.URL, want)
		return p, err
	case chartref.OCI:
		repo, _, err := f.openOCI(ctx, ref)
		if err != nil {
			return "", err
		}
		// Read the pinned manifest, not the tag (which may have moved):
		// the pin is what the lock says to build.
		m, err := digest.Parse(pin.Manifest)
		if err != nil {
			return "", fmt.Errorf("chart %s: the lock file records no valid OCI manifest (%q); run `cnstack lock`", ref, pin.Manifest)
		}
		_, desc, err := chartLayer(ctx, repo, ref, m.String())
		if err != nil {
			return "", err
		}
		if desc.Digest != want {
			return "", fmt.Errorf("chart %s: manifest %s holds the archive %s, but the lock file pins %s; run `cnstack lock`", ref, m, desc.Digest, want)
		}
		return f.fetchBlob(ctx, ref, repo, desc)
	}
	return "", fmt.Errorf("chart %s: unknown kind", ref)
}

// lookupIndex reads the repository's index.yaml and returns the archive URL
// of ref's version and the digest the index gives ("" when none).
func (f *Fetcher) lookupIndex(ctx context.Context, ref chartref.Ref) (string, digest.Digest, error) {
	indexURL := ref.Location + "/index.yaml"
	b, err := f.get(ctx, indexURL, MaxIndexSize)
	if err != nil {
		return "", "", fmt.Errorf("chart %s: %w", ref, err)
	}
	var idx indexFile
	if err := yaml.Unmarshal(b, &idx); err != nil {
		return "", "", fmt.Errorf("chart %s: %s is not a chart repository index: %w", ref, indexURL, err)
	}
	versions, ok := idx.Entries[ref.Name]
	if !ok {
		return "", "", fmt.Errorf("chart %s: %w: %s lists no chart %s", ref, ErrNotFound, indexURL, ref.Name)
	}
	for _, cv := range versions {
		if cv == nil || (cv.Version != ref.Version && strings.TrimPrefix(cv.Version, "v") != strings.TrimPrefix(ref.Version, "v")) {
			continue
		}
		if len(cv.URLs) == 0 {
			return "", "", fmt.Errorf("chart %s: %s lists version %s without a URL", ref, indexURL, ref.Version)
		}
		u, err := resolveURL(indexURL, cv.URLs[0])
		if err != nil {
			return "", "", fmt.Errorf("chart %s: %s: archive URL %q: %w", ref, indexURL, cv.URLs[0], err)
		}
		var want digest.Digest
		if cv.Digest != "" {
			if want, err = digest.Parse("sha256:" + strings.TrimPrefix(cv.Digest, "sha256:")); err != nil {
				return "", "", fmt.Errorf("chart %s: %s gives the digest %q: %w", ref, indexURL, cv.Digest, err)
			}
		}
		return u, want, nil
	}
	var have []string
	for i, cv := range versions {
		if cv != nil && i < 8 {
			have = append(have, cv.Version)
		}
	}
	return "", "", fmt.Errorf("chart %s: %w: %s has no version %s of %s (newest listed: %s)", ref, ErrNotFound, indexURL, ref.Version, ref.Name, strings.Join(have, ", "))
}

// resolveURL resolves a URL an index gives, which may be relative to the
// index's own URL.
func resolveURL(indexURL, u string) (string, error) {
	base, err := url.Parse(indexURL)
	if err != nil {
		return "", err
	}
	rel, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	out := base.ResolveReference(rel)
	if out.Scheme != "https" && out.Scheme != "http" {
		return "", fmt.Errorf("scheme %q is not http or https", out.Scheme)
	}
	return out.String(), nil
}

func (f *Fetcher) client() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	return http.DefaultClient
}

// get reads a small document (an index.yaml).
func (f *Fetcher) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("get %s: %w (%s)", u, ErrNotFound, resp.Status)
		}
		return nil, fmt.Errorf("get %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("get %s: larger than %d bytes", u, limit)
	}
	return b, nil
}

// fetchURL downloads an archive into the cache, checking want when set.
func (f *Fetcher) fetchURL(ctx context.Context, ref chartref.Ref, u string, want digest.Digest) (string, digest.Digest, error) {
	if want != "" {
		if p := download.Path(f.CacheDir, want); exists(p) {
			return p, want, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", "", fmt.Errorf("chart %s: %w", ref, err)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return "", "", fmt.Errorf("chart %s: download %s: %w", ref, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s", resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w (%s)", ErrNotFound, resp.Status)
		}
		return "", "", fmt.Errorf("chart %s: download %s: %w", ref, u, err)
	}
	p, got, err := f.store(ctx, resp.Body, want)
	if err != nil {
		return "", "", fmt.Errorf("chart %s: download %s: %w", ref, u, err)
	}
	return p, got, nil
}

// fetchBlob downloads an OCI chart layer into the cache.
func (f *Fetcher) fetchBlob(ctx context.Context, ref chartref.Ref, repo Repository, desc ocispec.Descriptor) (string, error) {
	if p := download.Path(f.CacheDir, desc.Digest); exists(p) {
		return p, nil
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return "", fmt.Errorf("chart %s: fetch archive %s: %w", ref, desc.Digest, err)
	}
	defer rc.Close()
	p, _, err := f.store(ctx, rc, desc.Digest)
	if err != nil {
		return "", fmt.Errorf("chart %s: fetch archive %s: %w", ref, desc.Digest, err)
	}
	return p, nil
}

// store streams r into the cache under its sha256 (pkg/download's cache),
// refusing content that is not want (when set) or too large.
func (f *Fetcher) store(ctx context.Context, r io.Reader, want digest.Digest) (string, digest.Digest, error) {
	return download.Store(ctx, f.CacheDir, r, want, MaxArchiveSize)
}

func (f *Fetcher) openOCI(ctx context.Context, ref chartref.Ref) (Repository, reference.Reference, error) {
	r, err := reference.Parse(ref.Location + ":" + ref.Tag())
	if err != nil {
		return nil, reference.Reference{}, fmt.Errorf("chart %s: %w", ref, err)
	}
	if f.OpenOCI == nil {
		return nil, r, fmt.Errorf("chart %s: no registry client to fetch OCI charts with", ref)
	}
	repo, err := f.OpenOCI(ctx, r)
	if err != nil {
		return nil, r, fmt.Errorf("chart %s: %w", ref, err)
	}
	return repo, r, nil
}

// chartLayer reads the manifest id (a tag or digest) names and returns it
// and its chart layer.
func chartLayer(ctx context.Context, repo Repository, ref chartref.Ref, id string) (ocispec.Descriptor, ocispec.Descriptor, error) {
	mdesc, err := repo.Resolve(ctx, id)
	if err != nil {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: %w", ref, err)
	}
	if mdesc.MediaType != ocispec.MediaTypeImageManifest {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: %s names a %s, not an OCI image manifest holding a chart", ref, id, mdesc.MediaType)
	}
	if mdesc.Size > maxManifestSize {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: manifest of %d bytes is too large", ref, mdesc.Size)
	}
	rc, err := repo.Fetch(ctx, mdesc)
	if err != nil {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: %w", ref, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	rc.Close()
	if err != nil {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: read manifest: %w", ref, err)
	}
	if digest.FromBytes(b) != mdesc.Digest {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: manifest digest mismatch", ref)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: manifest: %w", ref, err)
	}
	if m.Config.MediaType != MediaTypeChartConfig {
		return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: %s is not a Helm chart (config media type %q, want %s)", ref, id, m.Config.MediaType, MediaTypeChartConfig)
	}
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeChartLayer || l.MediaType == mediaTypeLegacyChartLayer {
			if l.Size > MaxArchiveSize {
				return mdesc, l, fmt.Errorf("chart %s: the archive is %d bytes, more than %d", ref, l.Size, MaxArchiveSize)
			}
			return mdesc, l, nil
		}
	}
	return mdesc, ocispec.Descriptor{}, fmt.Errorf("chart %s: manifest %s has no layer of type %s", ref, mdesc.Digest, MediaTypeChartLayer)
}

func exists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// indexFile is the part of a chart repository's index.yaml a fetch reads
// (Helm's repo.IndexFile, whose package would link Helm's whole client).
type indexFile struct {
	Entries map[string][]*indexEntry `json:"entries"`
}

type indexEntry struct {
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest"`
}
