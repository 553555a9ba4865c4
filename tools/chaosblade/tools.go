//go:build tools

// Package tools pins the ChaosBlade operator v1.8.0 for the offline edition's ha layer;
// tools/install.sh builds chaosblade-operator from here. The API package is imported too
// so that controller-gen, run on this module, generates the ChaosBlade CRD from the exact
// types the operator serves.
package tools

import (
	_ "github.com/chaosblade-io/chaosblade-operator/cmd/manager"
	_ "github.com/chaosblade-io/chaosblade-operator/pkg/apis/chaosblade/v1alpha1"
)
