//go:build tools

// Package tools pins runc v1.5.3 so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "github.com/opencontainers/runc"
)
