//go:build tools

// Package tools pins containerd v2.4.2 (daemon, runc shim, ctr) so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
