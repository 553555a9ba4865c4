//go:build tools

// Package tools pins etcd v3.6.5 (server, etcdctl and etcdutl) so that go.mod and go.sum fix its
// exact dependency graph; tools/install.sh builds it from here for the cluster-image payload.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
