// Package images carries the VM image recipes into the cnstack binary, so
// that "cnstack boot" finds its default recipe from any directory.
package images

import "embed"

// Debian12 is the debian12 recipe directory (image.yaml and rootfs/),
// rooted at "debian12".
//
//go:embed all:debian12
var Debian12 embed.FS
