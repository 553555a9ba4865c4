//go:build tools

// Package tools pins controller-gen v0.23.0, which generates the offline edition's
// CRDs (OpenKruise's) from the API packages of the pinned modules at build time.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
