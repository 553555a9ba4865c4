package imagescan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cnstack/cnstack/pkg/reference"
)

// normalizeFound normalises a reference found in a file (reference.Normalize
// owns the rules). Unlike a reference a user types, which is trimmed, one with
// surrounding white space is refused: Kubernetes refuses such an image field,
// so it is reported where it is rather than fixed here.
func normalizeFound(ref string) (string, error) {
	if strings.TrimSpace(ref) != ref {
		return "", fmt.Errorf("invalid image reference %q: it has leading or trailing white space", ref)
	}
	return reference.Normalize(ref)
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

// ReadListFile returns the lines of an image list file (--image-list,
// --ignored-image-list) unparsed, for Options.ExtraImages and
// Options.Ignored: the scan parses them as it parses manifests/imageList,
// and numbers them as the file does.
func ReadListFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
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
