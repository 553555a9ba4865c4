//go:build tools

// Package tools pins kube-state-metrics v2.20.0 for the offline edition's observability layer.
package tools

import _ "k8s.io/kube-state-metrics/v2"
