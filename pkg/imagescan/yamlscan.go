package imagescan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// hit is one image reference found in a YAML document.
type hit struct {
	ref     string // as written, or composed from an image map
	path    string // YAML path, e.g. spec.template.spec.containers[0].image
	line    int    // 1-based line in the stream
	problem string // set when the field cannot be used as a reference as it stands
}

const (
	// maxNodes bounds the work on one document: aliases can make a small
	// document expand into a huge tree.
	maxNodes = 1 << 20
	// maxDepth bounds recursion; Kubernetes objects are a few dozen levels deep.
	maxDepth = 1000
)

// scanStream splits r into YAML documents at "---" lines, as kubectl does, and
// calls visit for every image reference in each. Documents are numbered from 0,
// counting only documents with content (a leading "---" or a comment-only
// document does not shift the numbers). A document that fails to parse is
// reported as a hit with a problem and no path, and the documents after it are
// still scanned. Only one document is held in memory at a time.
func scanStream(r io.Reader, visit func(doc int, h hit)) error {
	br := bufio.NewReader(r)
	var (
		buf        bytes.Buffer
		lineNo     int
		start      = 1
		doc        int
		hasContent bool
	)
	flush := func() {
		if hasContent {
			doc += scanChunk(buf.Bytes(), start, doc, visit)
		}
		buf.Reset()
		hasContent = false
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			if lineNo == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			}
			if isDocumentSeparator(line) {
				flush()
				start = lineNo + 1
			} else {
				buf.Write(line)
				hasContent = hasContent || isContentLine(line)
			}
		}
		if errors.Is(err, io.EOF) {
			flush()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", lineNo+1, err)
		}
	}
}

// isDocumentSeparator reports whether line is "---", optionally followed by
// white space or a comment (the rule of k8s.io/apimachinery's YAML reader).
func isDocumentSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

func isContentLine(line []byte) bool {
	s := bytes.TrimSpace(line)
	return len(s) > 0 && s[0] != '#' && !bytes.Equal(s, []byte("..."))
}

var yamlErrLine = regexp.MustCompile(`line (\d+)`)

// scanChunk parses the YAML (or JSON) text between two separator lines,
// whose first line is line firstLine of its file, and reports the image
// references in it. The chunk normally holds one document, but "--- !tag"
// style starts inside it begin more; they are numbered from doc on. It
// returns how many documents it numbered.
func scanChunk(data []byte, firstLine, doc int, visit func(doc int, h hit)) int {
	offset := firstLine - 1
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for n := 0; ; n++ {
		var root yaml.Node
		err := safeDecode(dec, &root)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			line := firstLine
			msg := yamlErrLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
				l, convErr := strconv.Atoi(strings.TrimPrefix(m, "line "))
				if convErr != nil {
					return m
				}
				line = l + offset
				return "line " + strconv.Itoa(line)
			})
			visit(doc+n, hit{line: line, problem: "cannot parse document: " + msg})
			return n + 1
		}
		d := doc + n
		w := walker{visit: func(h hit) { visit(d, h) }, offset: offset}
		w.walk(&root, 0)
	}
}

// safeDecode turns a parser panic into an error: one malformed file must
// not take the whole scan down.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

// walker visits a parsed document and reports image fields.
type walker struct {
	visit     func(hit)
	offset    int
	nodes     int
	exhausted bool
	segs      []string // the YAML path to the node being visited
}

// containerLists are the pod spec lists whose items must carry an image.
var containerLists = map[string]bool{"containers": true, "initContainers": true, "ephemeralContainers": true}

func (w *walker) walk(n *yaml.Node, depth int) {
	n = resolve(n)
	if n == nil {
		return
	}
	w.nodes++
	if w.nodes > maxNodes || depth > maxDepth {
		if !w.exhausted {
			w.exhausted = true
			w.visit(hit{line: n.Line + w.offset, path: w.path(), problem: "document too large or too deeply nested (aliases?); rest of document not scanned"})
		}
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.push("[" + strconv.Itoa(i) + "]")
			w.walk(c, depth+1)
			w.pop()
		}
	case yaml.MappingNode:
		w.mapping(n, depth)
	}
}

func (w *walker) mapping(n *yaml.Node, depth int) {
	// A CRD declares a schema; its "image" properties are schema maps, never references.
	if scalarField(n, "kind") == "CustomResourceDefinition" && strings.HasPrefix(scalarField(n, "apiVersion"), "apiextensions.k8s.io/") {
		return
	}
	// Operators (OLM convention) pass the images they deploy as RELATED_IMAGE_* env vars.
	if name := scalarField(n, "name"); strings.HasPrefix(name, "RELATED_IMAGE_") {
		if k, v := field(n, "value"); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "" {
			w.emit(hit{ref: v.Value, path: w.pathWith("value"), line: k.Line})
		}
	}
	underMetadata := w.last() == "metadata"
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			continue
		}
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			key = "?"
		}
		switch {
		case key == "<<" && k.ShortTag() == "!!merge":
			// A merge key splices another mapping in at this path.
			if rv := resolve(v); rv != nil && rv.Kind == yaml.SequenceNode {
				for _, c := range rv.Content {
					w.walk(c, depth+1)
				}
			} else {
				w.walk(v, depth+1)
			}
		case key == "image":
			w.image(n, k, v, depth)
		case underMetadata && (key == "labels" || key == "annotations"):
			// Free-form strings; a label named "image" is not a pull.
		default:
			w.push(key)
			w.walk(v, depth+1)
			w.pop()
		}
	}
}

// image handles the value of an "image" key in mapping parent.
func (w *walker) image(parent, k, v *yaml.Node, depth int) {
	v = resolve(v)
	if v == nil {
		return
	}
	path := w.pathWith("image")
	inContainer := w.inContainer()
	switch v.Kind {
	case yaml.ScalarNode:
		switch tag := v.ShortTag(); tag {
		case "!!null":
			if inContainer {
				w.emit(hit{path: path, line: k.Line, problem: "container has no image"})
			}
		case "!!str":
			if v.Value == "" {
				if inContainer {
					w.emit(hit{path: path, line: k.Line, problem: "container has an empty image"})
				}
				return
			}
			w.emit(hit{ref: siblingRepository(parent, v.Value), path: path, line: k.Line})
		default:
			w.emit(hit{ref: v.Value, path: path, line: k.Line, problem: fmt.Sprintf("image field is %s, not a string", tag)})
		}
	case yaml.MappingNode:
		if ref, ok := imageFromMap(v); ok {
			w.emit(hit{ref: ref, path: path, line: k.Line})
			return
		}
		w.push("image")
		w.walk(v, depth+1)
		w.pop()
	default:
		w.push("image")
		w.walk(v, depth+1)
		w.pop()
	}
}

// siblingRepository joins "image: driver" with a sibling "repository:
// nvcr.io/nvidia" and "version:"/"tag:", the layout of the NVIDIA GPU
// operator's ClusterPolicy and similar CRs. A container never has such siblings.
func siblingRepository(parent *yaml.Node, image string) string {
	repo := scalarField(parent, "repository")
	if repo == "" || strings.Contains(image, "/") {
		return image
	}
	ref := strings.TrimSuffix(repo, "/") + "/" + image
	if strings.ContainsAny(image, ":@") {
		return ref
	}
	version := scalarField(parent, "version")
	if version == "" {
		version = scalarField(parent, "tag")
	}
	switch {
	case version == "":
	case strings.HasPrefix(version, "sha256:"):
		ref += "@" + version
	default:
		ref += ":" + version
	}
	return ref
}

// imageFromMap understands an image given as a map, as CRs and Helm-style
// values do: {registry, repository, tag, digest}, or {reference} (a
// Kubernetes image volume). Maps without either key (such as schema
// fragments) are not images.
func imageFromMap(m *yaml.Node) (string, bool) {
	repo := scalarField(m, "repository")
	if repo == "" {
		ref := scalarField(m, "reference")
		return ref, ref != ""
	}
	ref := repo
	if reg := scalarField(m, "registry"); reg != "" {
		ref = strings.TrimSuffix(reg, "/") + "/" + repo
	}
	if tag := scalarField(m, "tag"); tag != "" {
		ref += ":" + tag
	}
	if digest := scalarField(m, "digest"); digest != "" {
		ref += "@" + digest
	}
	return ref, true
}

// field returns the key and value nodes of key in mapping m.
func field(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k, resolve(m.Content[i+1])
		}
	}
	return nil, nil
}

// scalarField returns the text of scalar field key in mapping m, "" if absent
// or null. Numbers keep their written form ("1.10" stays "1.10").
func scalarField(m *yaml.Node, key string) string {
	_, v := field(m, key)
	if v == nil || v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return ""
	}
	return v.Value
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func (w *walker) emit(h hit) {
	h.line += w.offset
	w.visit(h)
}

func (w *walker) push(seg string) {
	if !strings.HasPrefix(seg, "[") && !isPlainKey(seg) {
		seg = "[" + strconv.Quote(seg) + "]"
	}
	w.segs = append(w.segs, seg)
}

func (w *walker) pop() { w.segs = w.segs[:len(w.segs)-1] }

func (w *walker) last() string {
	if len(w.segs) == 0 {
		return ""
	}
	return w.segs[len(w.segs)-1]
}

// inContainer reports whether the current node is an item of a pod spec's
// containers, initContainers or ephemeralContainers list.
func (w *walker) inContainer() bool {
	n := len(w.segs)
	return n >= 2 && strings.HasPrefix(w.segs[n-1], "[") && containerLists[w.segs[n-2]]
}

func (w *walker) path() string {
	var b strings.Builder
	for i, s := range w.segs {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func (w *walker) pathWith(key string) string {
	w.push(key)
	defer w.pop()
	return w.path()
}

// isPlainKey reports whether a key can be written bare in a dotted path.
func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '$' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}
