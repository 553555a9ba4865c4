//go:build tools

// Package tools pins Prometheus v3.16.0 (module v0.316.0) for the offline edition's
// observability layer; tools/install.sh builds prometheus and promtool from here. Built
// without the builtinassets tag: the web UI's assets are npm-built upstream, so this
// binary serves the HTTP API (what the checks and Grafana use) and no UI pages.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
