package main

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/sign"
)

// bundleVerifier checks each bundle image's cosign signatures, and its
// attestations when the bundle carries any (sign.VerifyNamed), reading
// only the bundle.
func bundleVerifier(keyPath string) (bundle.VerifyFunc, error) {
	key, err := sign.LoadPublicKey(keyPath)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t *bundle.Target, ref string, root ocispec.Descriptor) ([]string, error) {
		lines, err := sign.VerifyNamed(ctx, t, ref, root, key)
		if err != nil {
			return lines, fmt.Errorf("signature check failed: %w", err)
		}
		return lines, nil
	}, nil
}
