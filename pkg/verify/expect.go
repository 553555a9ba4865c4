package verify

import (
	"archive/tar"
	"context"
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
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/registrytree"
)

// expected is what the image promises, read from the store on the host:
// every file of its root with its sha256, and the registry tree's tags.
type expected struct {
	Ref       string
	Digest    digest.Digest
	BaseName  string // the image it was built FROM (org.opencontainers.image.base.name)
	Platform  string
	Extension *clusterimage.Extension
	Images    []clusterimage.ContainerImage
	Files     map[string]string        // path in the image root -> sha256 hex
	Tags      map[string]digest.Digest // "repo:tag" -> manifest digest, from the registry tree
	Kube      bool                     // the image brings kubeadm
	Checks    []string                 // checks/*.sh the image ships
}

const tagLinkSuffix = "/current/link"

// readExpected streams the image's layers once, hashing every file.
func readExpected(ctx context.Context, s oras.ReadOnlyTarget, ref string, platform ocispec.Platform) (*expected, error) {
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	desc, err = oci.SelectPlatform(ctx, s, desc, platform)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	mb, err := content.FetchAll(ctx, s, desc)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, err
	}
	e := &expected{Ref: ref, BaseName: m.Annotations[ocispec.AnnotationBaseImageName], Digest: desc.Digest, Platform: oci.PlatformString(platform), Files: map[string]string{}, Tags: map[string]digest.Digest{}}
	if e.Extension, err = clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension]); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if e.Images, err = clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages]); err != nil {
		return nil, err
	}
	tagPrefix := registrytree.ImageDir + "/" + registrytree.V2 + "/repositories/"
	if err := oci.Walk(ctx, s, m.Layers, func(h *tar.Header, r io.Reader) error { return e.addEntry(h, r, tagPrefix) }); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	_, e.Kube = e.Files["bin/kubeadm"]
	for p := range e.Files {
		if path.Dir(p) == "checks" && strings.HasSuffix(p, ".sh") {
			e.Checks = append(e.Checks, p)
		}
	}
	sort.Strings(e.Checks)
	return e, nil
}

// addEntry records one entry of the image root: a regular file's sha256,
// and a registry tag link's digest.
func (e *expected) addEntry(h *tar.Header, r io.Reader, tagPrefix string) error {
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	name := h.Name
	h256 := sha256.New()
	var keep strings.Builder
	w := io.Writer(h256)
	isTag := strings.HasPrefix(name, tagPrefix) && strings.HasSuffix(name, tagLinkSuffix) && strings.Contains(name, "/_manifests/tags/")
	if isTag {
		w = io.MultiWriter(h256, &keep)
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	e.Files[name] = hex.EncodeToString(h256.Sum(nil))
	if isTag {
		rest := strings.TrimSuffix(strings.TrimPrefix(name, tagPrefix), tagLinkSuffix)
		repo, tag, ok := strings.Cut(rest, "/_manifests/tags/")
		if d, err := digest.Parse(strings.TrimSpace(keep.String())); ok && err == nil {
			e.Tags[repo+":"+tag] = d
		}
	}
	return nil
}
