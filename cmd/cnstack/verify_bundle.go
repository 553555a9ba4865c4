package main

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/sign"
)

// bundleVerifier checks each bundle image's cosign signatures, and its
// attestations when the bundle carries any, reading only the bundle.
func bundleVerifier(keyPath string) (bundle.VerifyFunc, error) {
	key, err := sign.LoadPublicKey(keyPath)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t *bundle.Target, ref string, root ocispec.Descriptor) ([]string, error) {
		r, err := reference.Parse(ref)
		if err != nil {
			return nil, err
		}
		_, attErr := t.Resolve(ctx, r.Name()+":"+oci.AttestationTag(root.Digest))
		rep, err := sign.Verify(ctx, t, sign.Image{Name: r.Name(), Tag: r.Tag, Descriptor: root},
			sign.VerifyOptions{Key: key, Attestations: attErr == nil})
		var lines []string
		if rep != nil {
			for _, c := range rep.Checks {
				lines = append(lines, c.String())
			}
		}
		if err != nil {
			return lines, fmt.Errorf("signature check failed: %w", err)
		}
		return lines, nil
	}, nil
}
