//go:build tools

// Package tools pins the helm CLI (v3.22.0, the Helm library cnstack itself
// renders charts with) so go.mod and go.sum fix its dependency graph;
// tools/install.sh builds it for the cluster-image payload: sealer v0.11
// installs helm-type apps by running `helm install` on master0.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
