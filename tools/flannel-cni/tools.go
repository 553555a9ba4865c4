//go:build tools

// Package tools pins the flannel CNI plugin (containernetworking/plugins v0.9.1,
// plugins/meta/flannel) so that go.mod and go.sum fix its exact dependency graph;
// tools/install.sh builds it from here for the cluster-image payload.
package tools

import _ "github.com/containernetworking/plugins/plugins/meta/flannel"
