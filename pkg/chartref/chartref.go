// Package chartref parses the Helm chart references a Kubefile's APP, CNI
// and CSI instructions may name: cnstack's extension of sealer's app
// sources (local://, http(s)://) for charts published upstream, which are
// referenced by name and version and never copied into a build context.
//
//	helm+https://<repository URL>/<chart>:<version>   a chart of a chart repository (its index.yaml)
//	helm+https://<URL>/<chart>-<version>.tgz          a chart archive at a URL
//	oci://<registry>/<repository>/<chart>:<version>   a chart in an OCI registry
//
// helm+http:// is accepted too (plain HTTP, for repositories on 127.0.0.1).
// The version is a SemVer 2 version, never a range: what is built is what
// the Kubefile names. The archive's digest is not written in the Kubefile;
// `cnstack lock` records it (pkg/lockfile) and builds verify it.
//
// Whatever the form, the chart lands in the app directory as
// <chart>.tgz (the archive as published, not unpacked), so the app's
// APPCMDS name a file that does not change when the version does:
//
//	APP istiod local://istiod.values.yaml helm+https://istio-release.storage.googleapis.com/charts/istiod:${ISTIO_VERSION}
//	APPCMDS istiod ["helm upgrade --install istiod istiod.tgz -n istio-system --create-namespace -f istiod.values.yaml"]
package chartref

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Kind says where a chart is published.
type Kind int

const (
	// Repository is a chart of a Helm chart repository (index.yaml).
	Repository Kind = iota + 1
	// Archive is a chart archive at a URL.
	Archive
	// OCI is a chart stored as an OCI artifact.
	OCI
)

func (k Kind) String() string {
	switch k {
	case Repository:
		return "chart repository"
	case Archive:
		return "chart archive"
	case OCI:
		return "OCI chart"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Schemes of chart sources.
const (
	SchemeHTTPS = "helm+https://"
	SchemeHTTP  = "helm+http://"
	SchemeOCI   = "oci://"
)

// Ref is a parsed chart reference.
type Ref struct {
	Kind Kind
	// Location is the chart repository's URL (Repository: no trailing
	// "/"), the archive's URL (Archive), or the OCI repository without
	// tag, "registry/path/chart" (OCI).
	Location string
	// Name is the chart's name: the last element of the reference
	// (Repository, OCI), or the archive's file name before -<version>.tgz.
	Name string
	// Version is the chart version, SemVer 2.
	Version string
}

// ErrNotChart is returned by Parse for a source that is no chart reference.
var ErrNotChart = errors.New("not a chart reference")

// IsChart reports whether s uses a chart scheme (helm+https://, helm+http://, oci://).
func IsChart(s string) bool {
	return strings.HasPrefix(s, SchemeHTTPS) || strings.HasPrefix(s, SchemeHTTP) || strings.HasPrefix(s, SchemeOCI)
}

// Parse parses a chart reference; its errors say what a valid one looks like.
func Parse(s string) (Ref, error) {
	switch {
	case strings.HasPrefix(s, SchemeOCI):
		return parseOCI(s)
	case strings.HasPrefix(s, SchemeHTTPS), strings.HasPrefix(s, SchemeHTTP):
		return parseHTTP(s)
	}
	return Ref{}, fmt.Errorf("%q: %w (chart references start with helm+https://, helm+http:// or oci://)", s, ErrNotChart)
}

func parseHTTP(s string) (Ref, error) {
	raw := strings.TrimPrefix(s, "helm+")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Ref{}, fmt.Errorf("%q is not a valid URL after helm+", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Ref{}, fmt.Errorf("%q: a chart reference has no query, fragment or user info (the lock file pins the archive's digest)", s)
	}
	base := path.Base(u.Path)
	if strings.HasSuffix(base, ".tgz") {
		name, version, ok := splitArchiveName(strings.TrimSuffix(base, ".tgz"))
		if !ok {
			return Ref{}, fmt.Errorf("%q: a chart archive's file name must be <chart>-<version>.tgz with a SemVer version, as `helm package` names it", s)
		}
		return Ref{Kind: Archive, Location: u.String(), Name: name, Version: version}, nil
	}
	name, version, ok := strings.Cut(base, ":")
	if !ok || u.Path == "" || base == "/" || base == "." {
		return Ref{}, fmt.Errorf("%q: write a chart of a repository as %s<repository URL>/<chart>:<version> (or a chart archive's URL ending in <chart>-<version>.tgz)", s, SchemeHTTPS)
	}
	if err := checkName(name); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := checkVersion(version); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	repo := *u
	repo.Path = strings.TrimSuffix(path.Dir(u.Path), "/")
	repo.RawPath = ""
	return Ref{Kind: Repository, Location: repo.String(), Name: name, Version: version}, nil
}

func parseOCI(s string) (Ref, error) {
	rest := strings.TrimPrefix(s, SchemeOCI)
	if strings.Contains(rest, "@") {
		return Ref{}, fmt.Errorf("%q: name the chart by version, %s<registry>/<repository>/<chart>:<version>; the lock file pins its digest", s, SchemeOCI)
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return Ref{}, fmt.Errorf("%q: write %s<registry>/<repository>/<chart>:<version>", s, SchemeOCI)
	}
	last := rest[strings.LastIndexByte(rest, '/')+1:]
	name, version, ok := strings.Cut(last, ":")
	if !ok {
		return Ref{}, fmt.Errorf("%q: the chart's version is missing; write %s<registry>/<repository>/<chart>:<version>", s, SchemeOCI)
	}
	if err := checkName(name); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := checkVersion(version); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	loc := strings.TrimSuffix(rest, ":"+version)
	if strings.ToLower(loc[slash:]) != loc[slash:] {
		return Ref{}, fmt.Errorf("%q: OCI repository names are lower case", s)
	}
	return Ref{Kind: OCI, Location: loc, Name: name, Version: version}, nil
}

// splitArchiveName splits "<chart>-<version>" where the version is the
// first "-"-separated suffix that parses as SemVer ("kruise-1.9.0-alpha.3").
func splitArchiveName(s string) (name, version string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '-' || i == 0 || i+1 >= len(s) || s[i+1] < '0' || s[i+1] > '9' {
			continue
		}
		if checkVersion(s[i+1:]) == nil && checkName(s[:i]) == nil {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func checkName(name string) error {
	if name == "" {
		return errors.New("the chart name is empty")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("chart name %q has the character %q (charts are named with letters, digits, '-', '_' and '.')", name, r)
		}
	}
	return nil
}

func checkVersion(v string) error {
	if v == "" {
		return errors.New("the chart version is empty")
	}
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(v, "v")); err != nil {
		return fmt.Errorf("chart version %q is not a SemVer version (ranges are not allowed: a build uses exactly the version it names)", v)
	}
	return nil
}

// String is the canonical reference, as a Kubefile writes it and the lock
// file records it.
func (r Ref) String() string {
	switch r.Kind {
	case Repository:
		return "helm+" + r.Location + "/" + r.Name + ":" + r.Version
	case Archive:
		return "helm+" + r.Location
	case OCI:
		return SchemeOCI + r.Location + ":" + r.Version
	}
	return ""
}

// FileName is the file the chart archive is in the app directory:
// <chart>.tgz, whatever the version.
func (r Ref) FileName() string { return r.Name + ".tgz" }

// Tag is the OCI tag of an OCI chart: Helm writes a version's "+" as "_".
func (r Ref) Tag() string { return strings.ReplaceAll(r.Version, "+", "_") }

// Host is the host the chart is fetched from (for messages).
func (r Ref) Host() string {
	if r.Kind == OCI {
		h, _, _ := strings.Cut(r.Location, "/")
		return h
	}
	if u, err := url.Parse(r.Location); err == nil {
		return u.Host
	}
	return ""
}
