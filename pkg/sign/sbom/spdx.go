// Package sbom describes what a cluster image carries as an SPDX 2.3 JSON
// document: the container images of its registry tree (name, digest,
// platform), every file under bin/ (sha256) and every Helm chart (name,
// version). Scan reads an image; Document is a pure function of what Scan
// found, so the same image always gives the same bytes.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/oci"
)

// PredicateType is the in-toto predicate type of an SPDX document
// (cosign's --type spdxjson).
const PredicateType = "https://spdx.dev/Document"

// Subject is the image the document describes.
type Subject struct {
	Name      string // repository, "docker.io/library/app"
	Tag       string // optional
	Digest    digest.Digest
	MediaType string
}

// Part is one platform image of the subject: the subject itself for a
// single-platform image, or one child of an index.
type Part struct {
	Digest   digest.Digest
	Contents *Contents
}

// Options are the document's creation info.
type Options struct {
	Created time.Time // SOURCE_DATE_EPOCH or the epoch: never the wall clock
	Tool    string    // "cnstack-v0.1.0"
}

// Document is an SPDX 2.3 JSON document (the subset cnstack writes).
type Document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      CreationInfo   `json:"creationInfo"`
	DocumentDescribes []string       `json:"documentDescribes"`
	Packages          []Package      `json:"packages"`
	Files             []SPDXFile     `json:"files,omitempty"`
	Relationships     []Relationship `json:"relationships"`
}

// CreationInfo says who made the document and when.
type CreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// Package is an SPDX package: the cluster image, a platform image, a
// container image or a chart.
type Package struct {
	SPDXID                string        `json:"SPDXID"`
	Name                  string        `json:"name"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	Checksums             []Checksum    `json:"checksums,omitempty"`
	ExternalRefs          []ExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
	Comment               string        `json:"comment,omitempty"`
}

// SPDXFile is an SPDX file entry.
type SPDXFile struct {
	SPDXID    string     `json:"SPDXID"`
	FileName  string     `json:"fileName"`
	Checksums []Checksum `json:"checksums"`
	FileTypes []string   `json:"fileTypes,omitempty"`
}

// Checksum is an SPDX checksum.
type Checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// ExternalRef is an SPDX external reference (a purl here).
type ExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// Relationship links two SPDX elements.
type Relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// Build returns the document describing subject and its platform parts.
func Build(subject Subject, parts []Part, opts Options) (*Document, error) {
	if subject.Digest == "" {
		return nil, fmt.Errorf("SBOM: subject %s has no digest", subject.Name)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("SBOM: subject %s@%s has no platform image", subject.Name, subject.Digest)
	}
	tool := opts.Tool
	if tool == "" {
		tool = "cnstack"
	}
	b := &builder{ids: map[string]bool{}}
	rootID := b.id("Image", subject.Name+"@"+subject.Digest.String())
	doc := &Document{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              subject.Name + "@" + subject.Digest.String(),
		DocumentNamespace: "https://github.com/cnstack/cnstack/spdx/" + subject.Digest.Encoded(),
		CreationInfo: CreationInfo{
			Created:  opts.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + tool},
		},
		DocumentDescribes: []string{rootID},
	}
	root := Package{
		SPDXID: rootID, Name: subject.Name, VersionInfo: subject.Tag, DownloadLocation: noAssertion,
		Checksums:             []Checksum{sha256Checksum(subject.Digest)},
		ExternalRefs:          []ExternalRef{purlRef(subject.Name, subject.Tag, subject.Digest, nil)},
		PrimaryPackagePurpose: "CONTAINER",
		Comment:               "cluster image (" + subject.MediaType + ")",
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, Relationship{"SPDXRef-DOCUMENT", "DESCRIBES", rootID})

	// A single-platform subject holds its contents directly; an index holds
	// one package per platform image, each holding its contents.
	sorted := append([]Part(nil), parts...)
	sort.Slice(sorted, func(i, j int) bool { return platformKey(sorted[i]) < platformKey(sorted[j]) })
	for _, p := range sorted {
		if p.Contents == nil {
			return nil, fmt.Errorf("SBOM: platform image %s has no contents", p.Digest)
		}
		owner := rootID
		if p.Digest != subject.Digest {
			plat := oci.PlatformString(p.Contents.Platform)
			owner = b.id("Platform", plat+"@"+p.Digest.String())
			doc.Packages = append(doc.Packages, Package{
				SPDXID: owner, Name: subject.Name, VersionInfo: subject.Tag, DownloadLocation: noAssertion,
				Checksums:             []Checksum{sha256Checksum(p.Digest)},
				ExternalRefs:          []ExternalRef{purlRef(subject.Name, subject.Tag, p.Digest, &p.Contents.Platform)},
				PrimaryPackagePurpose: "CONTAINER",
				Comment:               "platform " + plat,
			})
			doc.Relationships = append(doc.Relationships, Relationship{rootID, "CONTAINS", owner})
		}
		b.addContents(doc, owner, p.Contents)
	}
	return doc, nil
}

// Marshal returns the document as indented JSON with a trailing newline.
func (d *Document) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Format prints an SPDX document read from elsewhere (an attestation) as
// Marshal prints a computed one (field order, indentation) when that loses
// nothing, else indented as it is; raw that is not JSON is returned as is.
// Either way it ends in a newline.
func Format(raw []byte) []byte {
	var doc Document
	if json.Unmarshal(raw, &doc) == nil {
		if b, err := doc.Marshal(); err == nil && sameJSON(b, raw) {
			return b
		}
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return append(raw, '\n')
	}
	return append(buf.Bytes(), '\n')
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

type builder struct{ ids map[string]bool }

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// id makes a unique, stable SPDX identifier from a kind and a key.
func (b *builder) id(kind, key string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + key))
	readable := strings.Trim(idUnsafe.ReplaceAllString(key, "-"), "-")
	if len(readable) > 48 {
		readable = readable[:48]
	}
	base := "SPDXRef-" + kind + "-" + readable + "-" + hex.EncodeToString(sum[:6])
	id := base
	for n := 2; b.ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	b.ids[id] = true
	return id
}

func (b *builder) addContents(doc *Document, owner string, c *Contents) {
	plat := oci.PlatformString(c.Platform)
	for _, img := range c.Images {
		id := b.id("ContainerImage", plat+" "+img.Name+"@"+img.Digest.String())
		p := Package{
			SPDXID: id, Name: img.Name, VersionInfo: img.Tag, DownloadLocation: noAssertion,
			PrimaryPackagePurpose: "CONTAINER",
		}
		var platforms []string
		for _, m := range img.Manifests {
			s := oci.PlatformString(m.Platform)
			if m.Digest != "" && m.Digest != img.Digest {
				s += " manifest " + m.Digest.String()
			}
			platforms = append(platforms, s)
		}
		if img.Digest != "" {
			p.Checksums = []Checksum{sha256Checksum(img.Digest)}
			var pl *ocispec.Platform
			if len(img.Manifests) == 1 {
				pl = &img.Manifests[0].Platform
			}
			p.ExternalRefs = []ExternalRef{purlRef(nameOnly(img.Name), img.Tag, img.Digest, pl)}
			p.Comment = "container image in registry/ as " + img.Repository + ":" + img.Tag
		} else {
			p.Comment = "listed in sealer.image.container.images but not stored in registry/"
		}
		if len(platforms) > 0 {
			p.Comment += "; platform " + strings.Join(platforms, ", ")
		}
		if img.AppName != "" {
			p.Comment += "; app " + img.AppName
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, Relationship{owner, "CONTAINS", id})
	}
	for _, ch := range c.Charts {
		id := b.id("Chart", plat+" "+ch.Path)
		p := Package{
			SPDXID: id, Name: ch.Name, VersionInfo: ch.Version, DownloadLocation: noAssertion,
			PrimaryPackagePurpose: "APPLICATION",
			Comment:               "Helm chart at " + ch.Path,
		}
		if ch.AppVersion != "" {
			p.Comment += "; appVersion " + ch.AppVersion
		}
		if ch.Name != "" && ch.Version != "" {
			p.ExternalRefs = []ExternalRef{{"PACKAGE-MANAGER", "purl", "pkg:helm/" + url.PathEscape(ch.Name) + "@" + url.PathEscape(ch.Version)}}
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, Relationship{owner, "CONTAINS", id})
	}
	for _, f := range c.Files {
		id := b.id("File", plat+" "+f.Path)
		doc.Files = append(doc.Files, SPDXFile{
			SPDXID: id, FileName: "./" + f.Path, FileTypes: []string{"BINARY"},
			Checksums: []Checksum{{"SHA1", f.SHA1}, {"SHA256", f.SHA256}},
		})
		doc.Relationships = append(doc.Relationships, Relationship{owner, "CONTAINS", id})
	}
}

func sha256Checksum(d digest.Digest) Checksum {
	return Checksum{Algorithm: "SHA256", ChecksumValue: d.Encoded()}
}

// purlRef is the package URL of an OCI image (purl "oci" type).
func purlRef(name, tag string, d digest.Digest, p *ocispec.Platform) ExternalRef {
	repo := name
	last := repo[strings.LastIndex(repo, "/")+1:]
	q := url.Values{}
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		q.Set("repository_url", repo)
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	if p != nil {
		if p.Architecture != "" {
			q.Set("arch", p.Architecture)
		}
		if p.OS != "" {
			q.Set("os", p.OS)
		}
		if p.Variant != "" {
			q.Set("variant", p.Variant)
		}
	}
	loc := "pkg:oci/" + url.PathEscape(strings.ToLower(last)) + "@" + strings.ReplaceAll(d.String(), ":", "%3A")
	if enc := q.Encode(); enc != "" {
		loc += "?" + enc
	}
	return ExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: loc}
}

// nameOnly strips the tag or digest from an image reference.
func nameOnly(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func platformKey(p Part) string {
	if p.Contents == nil {
		return p.Digest.String()
	}
	return oci.PlatformString(p.Contents.Platform) + " " + p.Digest.String()
}
