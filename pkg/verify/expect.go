package verify

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/registrytree"
	"github.com/cnstack/cnstack/pkg/store"
)

// expected is what the image promises, read from the store on the host:
// every file of its root with its sha256, and the registry tree's tags.
type expected struct {
	Digest    digest.Digest
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
func readExpected(ctx context.Context, s *store.Store, ref string, platform ocispec.Platform) (*expected, error) {
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	desc, err = build.SelectPlatform(ctx, s, desc, platform)
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
	e := &expected{Digest: desc.Digest, Platform: clusterimage.PlatformString(platform), Files: map[string]string{}, Tags: map[string]digest.Digest{}}
	if e.Extension, err = clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension]); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if e.Images, err = clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages]); err != nil {
		return nil, err
	}
	tagPrefix := registrytree.ImageDir + "/" + registrytree.V2 + "/repositories/"
	for _, l := range m.Layers {
		if err := e.readLayer(ctx, s, l, tagPrefix); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	_, e.Kube = e.Files["bin/kubeadm"]
	for p := range e.Files {
		if path.Dir(p) == "checks" && strings.HasSuffix(p, ".sh") {
			e.Checks = append(e.Checks, p)
		}
	}
	return e, nil
}

func (e *expected) readLayer(ctx context.Context, s *store.Store, l ocispec.Descriptor, tagPrefix string) error {
	rc, err := s.Fetch(ctx, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if strings.Contains(l.MediaType, "gzip") {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return err
		}
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		base := path.Base(name)
		switch {
		case strings.HasPrefix(base, ".wh."):
			victim := path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh."))
			for p := range e.Files {
				if p == victim || strings.HasPrefix(p, victim+"/") {
					delete(e.Files, p)
				}
			}
		case h.Typeflag == tar.TypeReg:
			h256 := sha256.New()
			var keep strings.Builder
			w := io.Writer(h256)
			isTag := strings.HasPrefix(name, tagPrefix) && strings.HasSuffix(name, tagLinkSuffix) && strings.Contains(name, "/_manifests/tags/")
			if isTag {
				w = io.MultiWriter(h256, &keep)
			}
			if _, err := io.Copy(w, tr); err != nil {
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
		}
	}
}
