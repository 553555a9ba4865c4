package imagescan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// collect runs the YAML scanner and formats each hit as
// "doc:line path=ref" or "doc:line path!problem".
func collect(t testing.TB, in string) []string {
	t.Helper()
	var out []string
	err := scanStream(strings.NewReader(in), func(doc int, h hit) {
		if h.problem != "" {
			out = append(out, fmt.Sprintf("%d:%d %s!%s", doc, h.line, h.path, h.problem))
			return
		}
		out = append(out, fmt.Sprintf("%d:%d %s=%s", doc, h.line, h.path, h.ref))
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScanStream(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "pod",
			in:   "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: a:1\n  initContainers:\n  - image: b:1\n",
			want: []string{"0:5 spec.containers[0].image=a:1", "0:7 spec.initContainers[0].image=b:1"},
		},
		{
			name: "document numbers skip empty and comment-only documents",
			in:   "---\n# only a comment\n---\n\n---\nimage: a\n--- # separator with a comment\nimage: b\n---\n...\n",
			want: []string{"0:6 image=a", "1:8 image=b"},
		},
		{
			name: "--- inside a block scalar is not a separator",
			in:   "data:\n  x: |\n    ---\n    image: not-this\nimage: a\n",
			want: []string{"0:5 image=a"},
		},
		{
			name: "a document start with a tag on its line begins a new document",
			in:   "image: a\n--- !!map\nimage: b\n---\nimage: c\n",
			want: []string{"0:1 image=a", "1:3 image=b", "2:5 image=c"},
		},
		{
			name: "keys that end in image are not images",
			in:   "baseImage: a\nimagePullPolicy: Always\nparameter.image: b\nImage: c\nsidecarImage: {repository: d}\n",
			want: nil,
		},
		{
			name: "image map forms",
			in: "a: {image: {repository: r/x, tag: 1.10}}\nb: {image: {registry: reg.io/, repository: x, digest: '" + testDigest + "'}}\n" +
				"c: {image: {reference: v:1, pullPolicy: Always}}\nd: {image: {pullPolicy: Always, nested: {image: n:1}}}\n",
			want: []string{"0:1 a.image=r/x:1.10", "0:2 b.image=reg.io/x@" + testDigest, "0:3 c.image=v:1", "0:4 d.image.nested.image=n:1"},
		},
		{
			name: "repository sibling",
			in:   "driver: {repository: nvcr.io/nvidia, image: driver, version: '535'}\ndev: {repository: r, image: full/ref:1}\ndig: {repository: r, image: x, version: 'sha256:abc'}\n",
			want: []string{"0:1 driver.image=nvcr.io/nvidia/driver:535", "0:2 dev.image=full/ref:1", "0:3 dig.image=r/x@sha256:abc"},
		},
		{
			name: "odd keys are quoted in paths",
			in:   "metadata: {name: x}\nspec:\n  \"a.b/c\": {image: x:1}\n  \"\": {image: y:1}\n",
			want: []string{`0:3 spec["a.b/c"].image=x:1`, `0:4 spec[""].image=y:1`},
		},
		{
			name: "labels and annotations are skipped, other metadata fields are not",
			in:   "metadata:\n  labels: {image: l}\n  annotations: {image: a}\n  image: m\n",
			want: []string{"0:4 metadata.image=m"},
		},
		{
			name: "CRD skipped, also inside a List",
			in: "kind: List\nitems:\n- apiVersion: apiextensions.k8s.io/v1\n  kind: CustomResourceDefinition\n  spec: {image: {type: string, default: x}}\n" +
				"- kind: Foo\n  spec: {image: y}\n",
			want: []string{"0:7 items[1].spec.image=y"},
		},
		{
			name: "kind CustomResourceDefinition in another group is scanned",
			in:   "apiVersion: example.io/v1\nkind: CustomResourceDefinition\nspec: {image: y}\n",
			want: []string{"0:3 spec.image=y"},
		},
		{
			name: "merge keys and aliases",
			in:   "base: &b\n  image: shared:1\nx:\n  <<: *b\ny:\n  <<: [*b]\n",
			want: []string{"0:2 base.image=shared:1", "0:2 x.image=shared:1", "0:2 y.image=shared:1"},
		},
		{
			name: "RELATED_IMAGE env vars",
			in:   "env:\n- name: RELATED_IMAGE_DB\n  value: db:1\n- name: OTHER\n  value: nope:1\n- name: RELATED_IMAGE_EMPTY\n  value: ''\n",
			want: []string{"0:3 env[0].value=db:1"},
		},
		{
			name: "non-string image",
			in:   "a: {image: true}\nb: {image: 1.5}\nc: {image: null}\n",
			want: []string{"0:1 a.image!image field is !!bool, not a string", "0:2 b.image!image field is !!float, not a string"},
		},
		{
			name: "containers with null or empty image",
			in:   "spec:\n  containers:\n  - image:\n  - image: ''\n  - name: no-image-key\n",
			want: []string{"0:3 spec.containers[0].image!container has no image", "0:4 spec.containers[1].image!container has an empty image"},
		},
		{
			name: "parse error keeps later documents and reports the file line",
			in:   "image: a\n---\nimage: [b\n---\nimage: c\n",
			want: []string{"0:1 image=a", "1:3 !cannot parse document: yaml: line 3: did not find expected ',' or ']'", "2:5 image=c"},
		},
		{
			name: "json with tabs",
			in:   "{\n\t\"spec\": {\n\t\t\"containers\": [{\"image\": \"j:1\"}]\n\t}\n}\n",
			want: []string{"0:3 spec.containers[0].image=j:1"},
		},
		{
			name: "byte order mark and CRLF",
			in:   "\xef\xbb\xbfimage: a\r\n---\r\nimage: b\r\n",
			want: []string{"0:1 image=a", "1:3 image=b"},
		},
		{
			name: "alias bomb stops with a problem",
			in:   "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
			want: []string{"0:1 f[8][3][2][6][0][4]!document too large or too deeply nested (aliases?); rest of document not scanned"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(t, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func FuzzScanStream(f *testing.F) {
	for _, seed := range []string{
		"kind: Pod\nspec:\n  containers:\n  - image: a:1\n",
		"---\n---\nimage: {repository: x, tag: 1}\n",
		"a: &a {image: x}\nb: *a\nc: {<<: *a}\n",
		"{\"items\": [{\"image\": \"j\"}]}",
		"image: [b\n---\nimage: c\n",
		"env: [{name: RELATED_IMAGE_X, value: v}]\n",
		"driver: {repository: r, image: d, version: 1}\n",
		"? [complex, key]\n: {image: z}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lastDoc := -1
		err := scanStream(strings.NewReader(string(data)), func(doc int, h hit) {
			if doc < lastDoc {
				t.Fatalf("document numbers went back: %d after %d", doc, lastDoc)
			}
			lastDoc = doc
			if h.line < 1 {
				t.Fatalf("hit without a line: %+v", h)
			}
			if h.problem == "" && (h.ref == "" || h.path == "") {
				t.Fatalf("usable hit without ref or path: %+v", h)
			}
			_, _ = normalizeFound(h.ref)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
