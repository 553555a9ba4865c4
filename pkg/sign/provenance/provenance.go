// Package provenance writes a SLSA v1 provenance predicate for a cluster
// image from what the image itself records: the base image (the
// org.opencontainers.image.base.* annotations), the Kubefile, context and
// lock digests (io.cnstack.build.* annotations), the instructions (config
// history) and the container images it carries. It is a pure function of
// its inputs: no clock, no environment.
package provenance

import (
	"encoding/json"
	"fmt"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"sort"
	"strings"

	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
)

// PredicateType is the in-toto predicate type (cosign's --type slsaprovenance1).
const PredicateType = slsa1.PredicateSLSAProvenance

// BuildType names how cnstack builds an image from a Kubefile.
const BuildType = "https://github.com/cnstack/cnstack/buildtypes/kubefile/v1"

// BuilderID identifies cnstack as the builder.
const BuilderID = "https://github.com/cnstack/cnstack"

// Build-time manifest annotations the provenance reads. The builder writes
// them; an image without them still gets a provenance naming what it has.
const (
	// AnnotationKubefileDigest is the digest of the Kubefile ("sha256:…").
	AnnotationKubefileDigest = clusterimage.AnnotationKubefileDigest
	// AnnotationKubefile is the Kubefile's path relative to the stack or context root.
	AnnotationKubefile = clusterimage.AnnotationKubefile
	// AnnotationContextDigest is a digest over the build context's files.
	AnnotationContextDigest = clusterimage.AnnotationContextDigest
	// AnnotationLockDigest is the digest of the stack's lock file.
	AnnotationLockDigest = clusterimage.AnnotationLockDigest
	// AnnotationLock is the lock file's path relative to the stack root.
	AnnotationLock = clusterimage.AnnotationLock
	// AnnotationBuilderVersion is the cnstack version that built the image.
	AnnotationBuilderVersion = "io.cnstack.build.version"
	// AnnotationStack names the stack the image is a layer of.
	AnnotationStack = clusterimage.AnnotationStack
)

// Image is one platform image's inputs.
type Image struct {
	Digest   digest.Digest
	Manifest ocispec.Manifest
	Config   ocispec.Image
	// Images are the container images the image carries (name and digest).
	Images []Dependency
}

// Dependency is a resolved input: a container image, a file, an image.
type Dependency struct {
	Name   string
	URI    string
	Digest digest.Digest
}

// Builder names who built (or, lacking a build annotation, attested) the image.
type Builder struct {
	ID      string // default BuilderID
	Version string // cnstack version
}

// Subject is the image the provenance is about.
type Subject struct {
	Name   string // repository
	Digest digest.Digest
}

// Predicate returns the SLSA v1 predicate for subject, built from its
// platform images (one, or an index's children).
func Predicate(subject Subject, images []Image, builder Builder) (*slsa1.ProvenancePredicate, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("provenance: %s has no platform image", subject.Digest)
	}
	ext := map[string]any{"image": subject.Name}
	var platforms []string
	var deps []slsa1.ResourceDescriptor
	var steps []string
	version := builder.Version
	for _, im := range images {
		ann := im.Manifest.Annotations
		plat := oci.PlatformString(im.Config.Platform)
		platforms = append(platforms, plat)
		if im.Digest != subject.Digest {
			deps = append(deps, resource(Dependency{Name: "image " + plat, URI: ociURI(subject.Name, im.Digest), Digest: im.Digest}))
		}
		if n, d := ann[ocispec.AnnotationBaseImageName], ann[ocispec.AnnotationBaseImageDigest]; d != "" {
			deps = append(deps, resource(Dependency{Name: "base image " + n, URI: ociURI(nameOf(n), digest.Digest(d)), Digest: digest.Digest(d)}))
		}
		if d := ann[AnnotationKubefileDigest]; d != "" {
			deps = append(deps, resource(Dependency{Name: "Kubefile", URI: fileURI(orDefault(ann[AnnotationKubefile], "Kubefile")), Digest: digest.Digest(d)}))
		}
		if d := ann[AnnotationContextDigest]; d != "" {
			deps = append(deps, resource(Dependency{Name: "build context", Digest: digest.Digest(d)}))
		}
		if d := ann[AnnotationLockDigest]; d != "" {
			deps = append(deps, resource(Dependency{Name: "lock file", URI: fileURI(orDefault(ann[AnnotationLock], "cnstack.lock")), Digest: digest.Digest(d)}))
		}
		for _, ci := range im.Images {
			deps = append(deps, resource(ci))
		}
		if v := ann[AnnotationBuilderVersion]; v != "" {
			version = v
		}
		for _, k := range []string{ocispec.AnnotationTitle, ocispec.AnnotationVersion, AnnotationStack} {
			if v := ann[k]; v != "" {
				ext[strings.TrimPrefix(strings.TrimPrefix(k, "org.opencontainers.image."), "io.cnstack.")] = v
			}
		}
		if len(steps) == 0 {
			for _, h := range im.Config.History {
				if h.CreatedBy != "" {
					steps = append(steps, h.CreatedBy)
				}
			}
		}
	}
	sort.Strings(platforms)
	ext["platforms"] = platforms
	if len(steps) > 0 {
		ext["instructions"] = steps
	}
	id := builder.ID
	if id == "" {
		id = BuilderID
	}
	b := slsa1.Builder{ID: id}
	if version != "" {
		b.Version = map[string]string{"cnstack": version}
	}
	return &slsa1.ProvenancePredicate{
		BuildDefinition: slsa1.ProvenanceBuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			ResolvedDependencies: dedupe(deps),
		},
		RunDetails: slsa1.ProvenanceRunDetails{Builder: b},
	}, nil
}

// Marshal encodes a predicate as JSON (map keys sorted by encoding/json).
func Marshal(p *slsa1.ProvenancePredicate) ([]byte, error) {
	return json.Marshal(p)
}

func resource(d Dependency) slsa1.ResourceDescriptor {
	r := slsa1.ResourceDescriptor{Name: d.Name, URI: d.URI}
	if d.Digest != "" && d.Digest.Validate() == nil {
		r.Digest = map[string]string{d.Digest.Algorithm().String(): d.Digest.Encoded()}
	}
	return r
}

func dedupe(in []slsa1.ResourceDescriptor) []slsa1.ResourceDescriptor {
	seen := map[string]bool{}
	var out []slsa1.ResourceDescriptor
	for _, r := range in {
		k := r.Name + "\x00" + r.URI + "\x00" + fmt.Sprint(r.Digest)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].URI < out[j].URI
	})
	return out
}

// ociURI names an image by repository and digest, oci://name@digest.
func ociURI(name string, d digest.Digest) string {
	if name == "" {
		return ""
	}
	return "oci://" + name + "@" + d.String()
}

func fileURI(p string) string { return "file:" + p }

// nameOf strips a tag or digest from a reference.
func nameOf(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
