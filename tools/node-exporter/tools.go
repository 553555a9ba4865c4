//go:build tools

// Package tools pins node_exporter v1.12.1 for the offline edition's observability layer.
package tools

import _ "github.com/prometheus/node_exporter"
