//go:build tools

// Package tools pins the CNI reference plugins v1.10.0 so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
