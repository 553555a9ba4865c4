//go:build tools

// Package tools pins crictl from cri-tools v1.34.0 (the release for Kubernetes 1.34) so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
