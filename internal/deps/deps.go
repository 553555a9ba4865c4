//go:build deps

package deps

import (
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/sigstore/cosign/v2/pkg/cosign"
	_ "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	_ "github.com/urfave/cli/v3"
	_ "golang.org/x/crypto/ssh"
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "helm.sh/helm/v3/pkg/engine"
	_ "oras.land/oras-go/v2"
)
