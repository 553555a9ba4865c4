//go:build tools

// Package tools pins Dapr v1.18.2 (the control plane: operator, sentry, sidecar injector,
// placement, scheduler; and the daprd sidecar) for the offline edition's mesh layer;
// tools/install.sh builds them from here with Dapr's own replace block (go.mod). The API
// packages are imported too so that controller-gen, run on this module, generates the CRDs
// from the exact types the operator and daprd read.
package tools

import (
	_ "github.com/dapr/dapr/cmd/daprd"
	_ "github.com/dapr/dapr/cmd/injector"
	_ "github.com/dapr/dapr/cmd/operator"
	_ "github.com/dapr/dapr/cmd/placement"
	_ "github.com/dapr/dapr/cmd/scheduler"
	_ "github.com/dapr/dapr/cmd/sentry"
	_ "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	_ "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	_ "github.com/dapr/dapr/pkg/apis/httpEndpoint/v1alpha1"
	_ "github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	_ "github.com/dapr/dapr/pkg/apis/subscriptions/v2alpha1"
)
