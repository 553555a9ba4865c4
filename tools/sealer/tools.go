//go:build tools

// Package tools pins the sealer CLI and seautil (the helper sealer runs on
// workers) so that go.mod and go.sum fix their exact dependency graph;
// tools/install.sh builds them from here.
package tools

import (
	_ "github.com/sealerio/sealer/cmd/sealer"
	_ "github.com/sealerio/sealer/cmd/seautil"
)
