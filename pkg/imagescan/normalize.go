package imagescan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is how normalized references name Docker Hub. go-containerregistry
// spells it index.docker.io; users, sealer and containerd spell it docker.io.
const dockerHub = "docker.io"

// Normalize returns the fully qualified form of an image reference:
// registry/repository[:tag][@digest], with Docker Hub spelled docker.io, the
// library/ namespace made explicit, and tag latest when neither a tag nor a
// digest is given. A reference with both a tag and a digest keeps both, as the
// container runtime pulls by the digest and shows the tag.
func Normalize(ref string) (string, error) {
	if ref == "" {
		return "", errors.New("empty image reference")
	}
	if strings.TrimSpace(ref) != ref {
		return "", fmt.Errorf("invalid image reference %q: it has leading or trailing white space", ref)
	}
	base, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && strings.Contains(digest, "@") {
		return "", fmt.Errorf("invalid image reference %q: it has more than one '@'", ref)
	}
	repoPart, tag := base, ""
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		repoPart, tag = base[:i], base[i+1:]
	}
	repo, err := name.NewRepository(repoPart)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if tag != "" || !hasDigest {
		// NewTag validates the tag's characters and fills in latest when it is absent.
		t, err := name.NewTag(base)
		if err != nil {
			return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
		tag = t.TagStr()
	}
	if hasDigest {
		if _, err := name.NewDigest(repoPart + "@" + digest); err != nil {
			return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
	}

	registry := repo.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = dockerHub
	}
	var b strings.Builder
	b.WriteString(registry)
	b.WriteByte('/')
	b.WriteString(repo.RepositoryStr())
	if tag != "" {
		b.WriteByte(':')
		b.WriteString(tag)
	}
	if hasDigest {
		b.WriteByte('@')
		b.WriteString(digest)
	}
	return b.String(), nil
}

// listEntry is one reference read from an image list, with its 1-based line.
type listEntry struct {
	ref  string
	line int
}

// ParseImageList reads an image list in sealer's format (manifests/imageList,
// --image-list, --ignored-image-list): one reference per line; blank lines and
// lines starting with '#' are skipped; surrounding quotes are trimmed. Unlike
// sealer, a trailing " # comment" is also removed: a reference never contains
// white space or '#', so nothing valid is lost. References are returned as
// written (not normalized), in file order, duplicates kept.
func ParseImageList(r io.Reader) ([]string, error) {
	entries, err := readImageList(r)
	if err != nil {
		return nil, err
	}
	refs := make([]string, len(entries))
	for i, e := range entries {
		refs[i] = e.ref
	}
	return refs, nil
}

func readImageList(r io.Reader) ([]listEntry, error) {
	var entries []listEntry
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read image list line %d: %w", lineNo, err)
		}
		if ref := imageListLine(line); ref != "" {
			entries = append(entries, listEntry{ref: ref, line: lineNo})
		}
		if err != nil {
			return entries, nil
		}
	}
}

// imageListLine returns the reference on one image list line, or "".
func imageListLine(line string) string {
	s := strings.TrimSpace(line)
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			s = strings.TrimSpace(s[:i])
			break
		}
	}
	s = strings.TrimSpace(strings.Trim(s, `'"`))
	if strings.HasPrefix(s, "#") {
		return ""
	}
	return s
}
