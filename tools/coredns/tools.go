//go:build tools

// Package tools pins CoreDNS v1.12.1 (the tag kubeadm 1.34 deploys) so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "github.com/coredns/coredns"
)
