// Package reference normalises image references the way users and sealer see
// them: "nginx" is docker.io/library/nginx:latest, never index.docker.io.
package reference

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/cnstack/cnstack/internal/printable"
)

// DockerHub is the registry a reference without a domain points to.
const DockerHub = "docker.io"

// Normalize returns the fully qualified form of ref: registry, repository and
// either a tag (default "latest") or a digest; a ref with both keeps both.
func Normalize(ref string) (string, error) {
	r, err := Parse(ref)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// MaxLength bounds a reference: a registry host (253), a repository (255,
// distribution's limit), a tag (128) and a digest fit well within it.
const MaxLength = 1024

// Reference is a parsed, normalised image reference.
type Reference struct {
	Registry   string // "docker.io", "127.0.0.1:5000"
	Repository string // "library/nginx"
	Tag        string // "" when only a digest was given
	Digest     string // "sha256:…" or ""
}

// Parse parses and normalises ref. It accepts "name", "name:tag",
// "name@digest" and "name:tag@digest".
func Parse(ref string) (Reference, error) {
	if len(ref) > MaxLength {
		return Reference{}, fmt.Errorf("invalid image reference %.60q…: %d bytes, over the %d-byte limit", ref, len(ref), MaxLength)
	}
	s := strings.TrimSpace(ref)
	if s == "" {
		return Reference{}, fmt.Errorf("empty image reference")
	}
	if strings.Count(s, "@") > 1 {
		return Reference{}, invalid(ref, fmt.Errorf("it has more than one '@'"))
	}
	var digest string
	if i := strings.Index(s, "@"); i >= 0 {
		d, err := name.NewDigest("example.invalid/x@" + s[i+1:])
		if err != nil {
			return Reference{}, invalid(ref, err)
		}
		digest = d.DigestStr()
		s = s[:i]
	}
	tag, err := name.NewTag(s, name.WithDefaultRegistry(DockerHub))
	if err != nil {
		return Reference{}, invalid(ref, err)
	}
	r := Reference{Registry: registryName(tag.RegistryStr()), Repository: tag.RepositoryStr(), Digest: digest}
	// name.NewTag defaults the tag to "latest"; with a digest and no explicit
	// tag we keep the reference digest-only.
	if digest == "" || hasExplicitTag(s) {
		r.Tag = tag.TagStr()
	}
	return r, nil
}

// ParseTag parses the name a command gives an image (build -t, tag
// TARGET): NAME or NAME:TAG, never a digest, which only the content can
// have.
func ParseTag(ref string) (Reference, error) {
	r, err := Parse(ref)
	if err != nil {
		return r, err
	}
	if r.Tag == "" || r.Digest != "" {
		return Reference{}, fmt.Errorf("want NAME:TAG, not a digest: a digest names content, not an image to be tagged")
	}
	return r, nil
}

// invalid explains a refused reference; the parser's message quotes the
// bad part raw, so it is escaped before anyone prints it.
func invalid(ref string, err error) error {
	return fmt.Errorf("invalid image reference %q: %s", ref, printable.String(err.Error()))
}

// hasExplicitTag reports whether the last path component carries ":tag".
func hasExplicitTag(s string) bool {
	last := s[strings.LastIndex(s, "/")+1:]
	return strings.Contains(last, ":")
}

func registryName(r string) string {
	if r == name.DefaultRegistry || r == "index.docker.io" {
		return DockerHub
	}
	return r
}

// Name is registry/repository, without tag or digest.
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// String is the normalised reference.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Identifier is the tag or, failing that, the digest: what a registry
// manifest URL needs.
func (r Reference) Identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// WithDigest returns r pinned to digest, keeping its tag.
func (r Reference) WithDigest(digest string) Reference {
	r.Digest = digest
	return r
}

// Relocate returns r under a new registry and repository prefix, keeping the
// path after the original registry: Relocate("private:5000/team") turns
// docker.io/cnstack/base:v1 into private:5000/team/cnstack/base:v1.
func (r Reference) Relocate(prefix string) (Reference, error) {
	p := strings.TrimSuffix(strings.TrimSpace(prefix), "/")
	if p == "" {
		return Reference{}, fmt.Errorf("empty relocation prefix")
	}
	out, err := Parse(p + "/" + r.Repository + ":" + orLatest(r.Tag))
	if err != nil {
		return Reference{}, fmt.Errorf("relocate %s to %s: %w", r, prefix, err)
	}
	if r.Tag == "" {
		out.Tag = ""
	}
	out.Digest = r.Digest
	return out, nil
}

func orLatest(t string) string {
	if t == "" {
		return "latest"
	}
	return t
}
