package sbom

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // SPDX 2.3 requires a SHA1 file checksum next to SHA256
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"sigs.k8s.io/yaml"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
)

// Paths inside a cluster image's filesystem that the SBOM reads.
const (
	binDir       = "bin/"
	chartsDir    = "charts/"
	appsDir      = "application/apps/"
	registryRoot = "registry/docker/registry/v2/"
	reposDir     = registryRoot + "repositories/"
	blobsDir     = registryRoot + "blobs/sha256/"
)

// Limits on what is held in memory while scanning: JSON blobs of the
// registry tree (manifests, configs) and Chart.yaml files are small; a
// bigger one is not what it claims to be and is skipped.
const (
	maxJSONBlob  = 4 << 20
	maxChartYAML = 1 << 20
	maxManifest  = 4 << 20
)

// Contents is what one platform image of a cluster image carries.
type Contents struct {
	Platform ocispec.Platform
	Images   []ContainerImage // sorted by Name, then Digest
	Files    []File           // under bin/, sorted by Path
	Charts   []Chart          // sorted by Path
}

// ContainerImage is one container image of the image's registry tree.
type ContainerImage struct {
	// Name is the full reference ("docker.io/library/nginx:1.25") when the
	// sealer.image.container.images annotation names it, else the tree's
	// repository and tag ("library/nginx:1.25").
	Name string
	// Repository and Tag locate it in the registry tree (domain dropped).
	Repository, Tag string
	// Digest is what the tag points at (a manifest or an index); empty when
	// the annotation lists an image the tree does not hold.
	Digest digest.Digest
	// Manifests are the platform manifests present in the tree: the digest
	// itself for a single manifest, the stored children for an index.
	Manifests []PlatformManifest
	AppName   string
}

// PlatformManifest is one platform's manifest of a container image.
type PlatformManifest struct {
	Digest   digest.Digest
	Platform ocispec.Platform
}

// File is a regular file under bin/.
type File struct {
	Path   string // "bin/kubectl"
	SHA256 string // hex
	SHA1   string // hex
	Size   int64
}

// Chart is a Helm chart found by its Chart.yaml under charts/ or application/apps/.
type Chart struct {
	Path       string // directory, "charts/calico"
	Name       string
	Version    string
	AppVersion string
}

// Scan reads the platform image manifest desc from src: its annotations and
// every layer (merged by oci.Walk, whiteouts applied), and returns what the
// image carries. Layers are streamed, never held whole.
func Scan(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) (*Contents, error) {
	raw, err := fetchAll(ctx, src, desc, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("manifest %s is not an image manifest", desc.Digest)
	}
	cfgRaw, err := fetchAll(ctx, src, m.Config, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", desc.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("config of %s: %w", desc.Digest, err)
	}
	listed, err := clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages])
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	fs := newTree()
	if err := oci.Walk(ctx, src, m.Layers, fs.add); err != nil {
		return nil, fmt.Errorf("read layers of %s: %w", desc.Digest, err)
	}
	platform := cfg.Platform
	if desc.Platform != nil && platform.Architecture == "" {
		platform = *desc.Platform
	}
	return fs.contents(platform, listed)
}

func fetchAll(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a manifest may have", desc.Digest, desc.Size, limit)
	}
	return content.FetchAll(ctx, src, desc)
}

// node is one path of the merged filesystem the SBOM cares about.
type node struct {
	file File   // bin/ files
	data []byte // Chart.yaml, tag links, small JSON blobs
}

// tree is the merged view of the paths of interest across layers.
type tree struct {
	nodes map[string]*node
}

func newTree() *tree { return &tree{nodes: map[string]*node{}} }

// interesting reports whether p (a clean relative path) is read, and how.
func interesting(p string) (keep bool, hashFile bool) {
	switch {
	case strings.HasPrefix(p, binDir):
		return true, true
	case path.Base(p) == "Chart.yaml" && (strings.HasPrefix(p, chartsDir) || strings.HasPrefix(p, appsDir)):
		return true, false
	case strings.HasPrefix(p, reposDir) && strings.HasSuffix(p, "/current/link") && strings.Contains(p, "/_manifests/tags/"):
		return true, false
	case strings.HasPrefix(p, blobsDir) && path.Base(p) == "data":
		return true, false
	}
	return false, false
}

// add keeps one entry of the merged filesystem if the SBOM reads it. Hard
// links come last (oci.Walk), so their targets are known.
func (t *tree) add(h *tar.Header, r io.Reader) error {
	p := h.Name
	keep, hashIt := interesting(p)
	if !keep {
		return nil
	}
	switch h.Typeflag {
	case tar.TypeReg:
		n, err := readNode(r, h, p, hashIt)
		if err != nil {
			return err
		}
		if n != nil {
			t.nodes[p] = n
		}
	case tar.TypeLink:
		if target, ok := t.nodes[h.Linkname]; ok {
			c := *target
			c.file.Path = p
			t.nodes[p] = &c
		}
	}
	return nil
}

func readNode(r io.Reader, h *tar.Header, p string, hashIt bool) (*node, error) {
	if hashIt {
		s256, s1 := sha256.New(), sha1.New() //nolint:gosec // SPDX requires SHA1
		n, err := io.Copy(io.MultiWriter(s256, s1), r)
		if err != nil {
			return nil, err
		}
		return &node{file: File{Path: p, SHA256: hex.EncodeToString(s256.Sum(nil)), SHA1: hex.EncodeToString(s1.Sum(nil)), Size: n}}, nil
	}
	limit := int64(maxJSONBlob)
	if path.Base(p) == "Chart.yaml" {
		limit = maxChartYAML
	}
	if h.Size > limit {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(p, blobsDir) && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return nil, nil // a layer blob, not a manifest or config
	}
	return &node{data: b}, nil
}

// contents turns the merged tree into Contents.
func (t *tree) contents(platform ocispec.Platform, listed []clusterimage.ContainerImage) (*Contents, error) {
	c := &Contents{Platform: platform}
	var paths []string
	for p := range t.nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		n := t.nodes[p]
		switch {
		case strings.HasPrefix(p, binDir):
			c.Files = append(c.Files, n.file)
		case path.Base(p) == "Chart.yaml" && !strings.HasPrefix(p, registryRoot):
			ch, err := parseChart(n.data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			ch.Path = path.Dir(p)
			c.Charts = append(c.Charts, ch)
		}
	}
	c.Images = t.images(paths, platform, listed)
	return c, nil
}

func parseChart(b []byte) (Chart, error) {
	var meta struct {
		Name       string `json:"name"`
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		return Chart{}, fmt.Errorf("parse Chart.yaml: %w", err)
	}
	return Chart{Name: meta.Name, Version: meta.Version, AppVersion: meta.AppVersion}, nil
}

// treeKey is how the registry tree stores an image: repository without
// the registry domain, and a tag.
type treeKey struct{ repo, tag string }

func keyOf(image string) (treeKey, error) {
	r, err := reference.Parse(image)
	if err != nil {
		return treeKey{}, err
	}
	tag := r.Tag
	if tag == "" {
		tag = r.Digest
	}
	return treeKey{repo: r.Repository, tag: tag}, nil
}

// images lists every tag of the registry tree, named from the annotation
// where it lists the image, plus annotation images the tree lacks.
func (t *tree) images(paths []string, platform ocispec.Platform, listed []clusterimage.ContainerImage) []ContainerImage {
	byKey := map[treeKey]clusterimage.ContainerImage{}
	for _, ci := range listed {
		k, err := keyOf(ci.Image)
		if err != nil {
			continue
		}
		if _, dup := byKey[k]; !dup {
			byKey[k] = ci
		}
	}
	seen := map[treeKey]bool{}
	var out []ContainerImage
	for _, p := range paths {
		if !strings.HasPrefix(p, reposDir) {
			continue
		}
		rest := strings.TrimPrefix(p, reposDir)
		i := strings.Index(rest, "/_manifests/tags/")
		if i < 0 {
			continue
		}
		repo := rest[:i]
		tag := strings.TrimSuffix(rest[i+len("/_manifests/tags/"):], "/current/link")
		if strings.Contains(tag, "/") {
			continue
		}
		d, err := digest.Parse(strings.TrimSpace(string(t.nodes[p].data)))
		if err != nil {
			continue
		}
		k := treeKey{repo: repo, tag: tag}
		seen[k] = true
		img := ContainerImage{Name: repo + ":" + tag, Repository: repo, Tag: tag, Digest: d}
		if ci, ok := byKey[k]; ok {
			img.Name, img.AppName = ci.Image, ci.AppName
		}
		img.Manifests = t.platformManifests(d, platform)
		out = append(out, img)
	}
	for _, ci := range listed {
		k, err := keyOf(ci.Image)
		if err != nil || seen[k] {
			continue
		}
		seen[k] = true
		img := ContainerImage{Name: ci.Image, Repository: k.repo, Tag: k.tag, AppName: ci.AppName}
		if ci.Platform != nil {
			img.Manifests = []PlatformManifest{{Platform: ci.Platform.OCI()}}
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Digest < out[j].Digest
	})
	return out
}

func (t *tree) blob(d digest.Digest) []byte {
	if d.Algorithm() != digest.SHA256 || d.Validate() != nil {
		return nil
	}
	h := d.Encoded()
	if n, ok := t.nodes[blobsDir+h[:2]+"/"+h+"/data"]; ok {
		return n.data
	}
	return nil
}

// platformManifests finds the platform manifests of d in the tree. An index
// keeps only the children the tree stores (sealer stores the build
// platform's); a manifest's platform comes from its config.
func (t *tree) platformManifests(d digest.Digest, fallback ocispec.Platform) []PlatformManifest {
	raw := t.blob(d)
	if raw == nil {
		return nil
	}
	var m struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	if m.Config != nil {
		p := fallback
		if cfgRaw := t.blob(m.Config.Digest); cfgRaw != nil {
			var cfg ocispec.Platform
			if json.Unmarshal(cfgRaw, &cfg) == nil && cfg.Architecture != "" {
				p = ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
			}
		}
		return []PlatformManifest{{Digest: d, Platform: p}}
	}
	var out []PlatformManifest
	for _, c := range m.Manifests {
		if t.blob(c.Digest) == nil || c.Platform == nil {
			continue
		}
		out = append(out, PlatformManifest{Digest: c.Digest, Platform: ocispec.Platform{OS: c.Platform.OS, Architecture: c.Platform.Architecture, Variant: c.Platform.Variant}})
	}
	return out
}
