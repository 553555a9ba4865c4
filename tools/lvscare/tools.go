//go:build tools

// Package tools pins lvscare (the IPVS keeper that sealer runs on workers) so that
// go.mod and go.sum fix its exact dependency graph; tools/install.sh builds it from
// here for the cluster-image payload.
package tools

import _ "github.com/labring/lvscare"
