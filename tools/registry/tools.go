//go:build tools

// Package tools pins the distribution registry server so that go.mod and go.sum fix its exact
// dependency graph; tools/install.sh builds it from here.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
