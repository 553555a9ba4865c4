//go:build tools

// Package tools pins flanneld v0.28.10 so that go.mod and go.sum fix its exact
// dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import _ "github.com/flannel-io/flannel"
