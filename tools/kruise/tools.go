//go:build tools

// Package tools pins OpenKruise v1.9.1 (kruise-manager and kruise-daemon) for the
// offline edition's base layer; tools/install.sh builds both from here. The API
// packages are imported too so that controller-gen, run on this module, generates
// the CRDs from the exact types the manager serves.
package tools

import (
	_ "github.com/openkruise/kruise"
	_ "github.com/openkruise/kruise/apis"
	_ "github.com/openkruise/kruise/cmd/daemon"
)
