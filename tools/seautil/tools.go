//go:build tools

// Package tools pins seautil, the helper sealer v0.11.0 runs on workers (route,
// ipvs, cert), so that go.mod and go.sum fix its exact dependency graph;
// tools/install.sh builds it from here for the cluster-image payload.
//
// go.mod keeps sealer v0.11.0's replace block verbatim, as tools/sealer does; the
// 45 modules seautil links have the same versions here as in tools/sealer's graph.
// It is a module of its own so that the host sealer's stamp (a hash of
// tools/sealer/go.mod and go.sum, shared by every checkout using one
// CNSTACK_TOOLS_BIN) does not change for a payload binary.
package tools

import _ "github.com/sealerio/sealer/cmd/seautil"
