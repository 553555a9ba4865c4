// Package signtest builds small, deterministic cluster images for the sign
// tests: real gzip+tar layers holding bin/ files, Helm charts and a
// distribution registry tree, per-platform manifests with sealer
// annotations, and an index, pushed into any oras target.
package signtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Entry is one tar entry: a regular file (Body), a hard link (Link), or a
// whiteout (a name whose base starts with ".wh.").
type Entry struct {
	Name string
	Body string
	Link string
}

// Layer returns a gzip-compressed tar of entries (in the given order) and
// its uncompressed digest. The bytes depend only on the entries.
func Layer(entries []Entry) (blob []byte, diffID digest.Digest) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Size: int64(len(e.Body)), Format: tar.FormatPAX}
		if e.Link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.Link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if e.Link == "" {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return gz.Bytes(), digest.FromBytes(tarBuf.Bytes())
}

// Blob is content with its descriptor.
type Blob struct {
	Desc ocispec.Descriptor
	Data []byte
}

func blobOf(mediaType string, b []byte) Blob {
	return Blob{Desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}, Data: b}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ContainerImage is a container image stored in a registry tree.
type ContainerImage struct {
	Repo, Tag string
	// Platforms stored (an index over them when more than one, or when
	// Missing is set); Missing adds index children the tree does not hold.
	Platforms []ocispec.Platform
	Missing   []ocispec.Platform
	// Digest is set by RegistryTree: what the tag points at.
	Digest digest.Digest
}

// RegistryTree returns the entries of a distribution v2 filesystem tree
// under registry/ holding images (each with one small layer per platform),
// and sets each image's Digest.
func RegistryTree(images []*ContainerImage) []Entry {
	const root = "registry/docker/registry/v2/"
	files := map[string]string{}
	addBlob := func(repo string, b []byte, layer bool) digest.Digest {
		d := digest.FromBytes(b)
		h := d.Encoded()
		files[root+"blobs/sha256/"+h[:2]+"/"+h+"/data"] = string(b)
		if layer {
			files[root+"repositories/"+repo+"/_layers/sha256/"+h+"/link"] = d.String()
		} else {
			files[root+"repositories/"+repo+"/_manifests/revisions/sha256/"+h+"/link"] = d.String()
		}
		return d
	}
	for _, img := range images {
		var children []ocispec.Descriptor
		for _, p := range img.Platforms {
			layer, diffID := Layer([]Entry{{Name: "etc/" + img.Repo + "-" + p.Architecture, Body: img.Tag}})
			ld := addBlob(img.Repo, layer, true)
			cfg := mustJSON(ocispec.Image{Platform: p, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}})
			cd := addBlob(img.Repo, cfg, true)
			m := mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
				Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
				Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ld, Size: int64(len(layer))}}})
			md := addBlob(img.Repo, m, false)
			pp := p
			children = append(children, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m)), Platform: &pp})
		}
		top := children[0].Digest
		if len(children) > 1 || len(img.Missing) > 0 {
			for _, p := range img.Missing {
				pp := p
				fake := digest.FromString("absent " + img.Repo + p.Architecture)
				children = append(children, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: fake, Size: 500, Platform: &pp})
			}
			idx := mustJSON(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
			top = addBlob(img.Repo, idx, false)
		}
		img.Digest = top
		files[root+"repositories/"+img.Repo+"/_manifests/tags/"+img.Tag+"/current/link"] = top.String()
		files[root+"repositories/"+img.Repo+"/_manifests/tags/"+img.Tag+"/index/sha256/"+top.Encoded()+"/link"] = top.String()
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		out = append(out, Entry{Name: n, Body: files[n]})
	}
	return out
}

// Platform is one platform image of a cluster image.
type Platform struct {
	Platform    ocispec.Platform
	Layers      [][]Entry
	Annotations map[string]string
	History     []string
}

// Image is a built image: its root descriptor and every blob.
type Image struct {
	Root      ocispec.Descriptor
	Manifests []ocispec.Descriptor // platform manifests, in index order
	Blobs     []Blob
}

// Build assembles platform images and, for more than one, an index.
func Build(platforms []Platform) *Image {
	img := &Image{}
	for _, p := range platforms {
		var layers []ocispec.Descriptor
		var diffIDs []digest.Digest
		for _, l := range p.Layers {
			blob, diffID := Layer(l)
			b := blobOf(ocispec.MediaTypeImageLayerGzip, blob)
			img.Blobs = append(img.Blobs, b)
			layers = append(layers, b.Desc)
			diffIDs = append(diffIDs, diffID)
		}
		var hist []ocispec.History
		for _, h := range p.History {
			hist = append(hist, ocispec.History{CreatedBy: h, Comment: "cnstack"})
		}
		created := time.Unix(0, 0).UTC()
		cfg := blobOf(ocispec.MediaTypeImageConfig, mustJSON(ocispec.Image{Created: &created, Platform: p.Platform,
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}, History: hist}))
		img.Blobs = append(img.Blobs, cfg)
		m := blobOf(ocispec.MediaTypeImageManifest, mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest, Config: cfg.Desc, Layers: layers, Annotations: p.Annotations}))
		img.Blobs = append(img.Blobs, m)
		d := m.Desc
		pp := p.Platform
		d.Platform = &pp
		img.Manifests = append(img.Manifests, d)
	}
	if len(img.Manifests) == 1 {
		img.Root = img.Manifests[0]
		img.Root.Platform = nil
		return img
	}
	idx := blobOf(ocispec.MediaTypeImageIndex, mustJSON(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex, Manifests: img.Manifests}))
	img.Blobs = append(img.Blobs, idx)
	img.Root = idx.Desc
	return img
}

// Push writes every blob of img into t (manifests last) and tags the root ref.
func Push(ctx context.Context, t oras.Target, img *Image, ref string) error {
	for _, b := range img.Blobs {
		ok, err := t.Exists(ctx, b.Desc)
		if err != nil {
			return err
		}
		if !ok {
			if err := t.Push(ctx, b.Desc, bytes.NewReader(b.Data)); err != nil {
				return fmt.Errorf("push %s: %w", b.Desc.Digest, err)
			}
		}
	}
	return t.Tag(ctx, img.Root, ref)
}

// PushBytes stores b in t and returns its descriptor.
func PushBytes(ctx context.Context, t content.Pusher, mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := blobOf(mediaType, b).Desc
	return d, t.Push(ctx, d, bytes.NewReader(b))
}

// Standard returns the cluster image the tests use: linux/amd64 and
// linux/arm64, each with bin/ files (one whited out, one replaced, one hard
// link), two charts, and a registry tree with nginx (an index of which
// only the platform's child is stored), pause (a single manifest), a tree
// image the annotation does not name, and an annotation image the tree lacks.
func Standard() *Image {
	var ps []Platform
	for _, arch := range []string{"amd64", "arm64"} {
		p := ocispec.Platform{OS: "linux", Architecture: arch}
		images := []*ContainerImage{
			{Repo: "library/nginx", Tag: "1.25", Platforms: []ocispec.Platform{p}, Missing: []ocispec.Platform{{OS: "linux", Architecture: other(arch)}}},
			{Repo: "pause", Tag: "3.9", Platforms: []ocispec.Platform{p}},
			{Repo: "calico/node", Tag: "v3.26.1", Platforms: []ocispec.Platform{p}},
		}
		tree := RegistryTree(images)
		listed := `[{"image":"docker.io/library/nginx:1.25","platform":{"architecture":"` + arch + `","os":"linux"}},` +
			`{"image":"registry.k8s.io/pause:3.9","platform":{"architecture":"` + arch + `","os":"linux"}},` +
			`{"image":"docker.io/library/redis:7","appName":"cache","platform":{"architecture":"` + arch + `","os":"linux"}}]`
		ps = append(ps, Platform{
			Platform: p,
			Layers: [][]Entry{
				{
					{Name: "bin/kubectl", Body: "kubectl for " + arch},
					{Name: "bin/helm", Body: "old helm"},
					{Name: "bin/obsolete", Body: "gone later"},
					{Name: "./charts/calico/Chart.yaml", Body: "apiVersion: v2\nname: calico\nversion: v3.26.1\nappVersion: v3.26.1\n"},
					{Name: "charts/calico/values.yaml", Body: "image: calico/node:v3.26.1\n"},
					{Name: "etc/kubeadm.yml", Body: "kubernetesVersion: v1.28.0\n"},
				},
				{
					{Name: "bin/.wh.obsolete"},
					{Name: "bin/helm", Body: "helm v3.12 for " + arch},
					{Name: "bin/kubectl-link", Link: "bin/kubectl"},
					{Name: "application/apps/web/Chart.yaml", Body: "apiVersion: v2\nname: web\nversion: 0.1.0\n"},
				},
				tree,
			},
			Annotations: map[string]string{
				"sealer.image.extension":           `{"buildClient":{"sealerVersion":"v0.11.0","buildahVersion":"1.27.1"},"schemaVersion":"v1alpha1","type":"kube-installer","launch":{}}`,
				"sealer.image.container.images":    listed,
				ocispec.AnnotationBaseImageName:    "registry.example/cnstack/base:v1",
				ocispec.AnnotationBaseImageDigest:  digest.FromString("base " + arch).String(),
				"io.cnstack.build.kubefile.digest": digest.FromString("FROM base\nCOPY . .\n").String(),
				"io.cnstack.build.kubefile":        "Kubefiles/cluster/Kubefile",
				"io.cnstack.build.lock.digest":     digest.FromString("lock").String(),
				ocispec.AnnotationTitle:            "cluster",
				"org.opencontainers.image.created": "1970-01-01T00:00:00Z",
				"io.cnstack.stack":                 "demo",
				"io.cnstack.build.version":         "v0.1.0-test",
				"org.opencontainers.image.version": "v1",
			},
			History: []string{"COPY rootfs .", "COPY apps application/apps", "registry/ (3 container images)"},
		})
	}
	return Build(ps)
}

func other(arch string) string {
	if arch == "amd64" {
		return "arm64"
	}
	return "amd64"
}
