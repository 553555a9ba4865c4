//go:build tools

// Package tools pins the sealer CLI so that go.mod and go.sum fix its exact
// dependency graph; tools/install.sh builds it from here.
package tools

import _ "github.com/sealerio/sealer/cmd/sealer"
