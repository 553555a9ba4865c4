package collect

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/cnstack/cnstack/pkg/imagescan"
	"github.com/cnstack/cnstack/pkg/oci"
)

// Hit is where a container image comes into a stack for one platform: the
// layer that brings it in, where in that layer it is referenced, and the
// layers that carry it from there (the layer itself and those built on it
// that reference it again).
type Hit struct {
	Layer    string          `json:"layer"`
	Platform string          `json:"platform"`
	Image    imagescan.Image `json:"image"`
	Ignored  bool            `json:"ignored,omitempty"` // left out by --ignored-image-list
	Carried  []string        `json:"carriedBy"`
}

// WhyResult is what Why found.
type WhyResult struct {
	Hits []Hit
	// Similar lists, when there is no hit, the images found of the same
	// repository (other tags or digests).
	Similar []string
}

// Why scans every view, as Lock does, for the image want (a normalized
// reference) and says where it comes from. A layer that references an
// image its parent already brings in carries it rather than bringing it
// in again.
func Why(ctx context.Context, platforms []PlatformViews, want string, o LockOptions) (*WhyResult, error) {
	res := &WhyResult{}
	for _, pv := range platforms {
		var cur *Hit
		for _, v := range pv.Views {
			found, err := Discover(ctx, os.DirFS(v.Dir), DiscoverOptions{Env: v.Env(), Extension: v.Extension, ImageList: o.ImageList, Ignored: o.Ignored, KubeVersion: v.KubeVersion()})
			if err != nil {
				return nil, fmt.Errorf("layer %s (%s): %w", v.Name, oci.PlatformString(pv.Platform), err)
			}
			img, ignored, err := found.Lookup(want)
			if err != nil {
				for _, ref := range found.SameRepository(want) {
					if !slices.Contains(res.Similar, ref) {
						res.Similar = append(res.Similar, ref)
					}
				}
				continue
			}
			if cur != nil && v.Parent != "" && slices.Contains(cur.Carried, v.Parent) {
				cur.Carried = append(cur.Carried, v.Name)
				continue
			}
			res.Hits = append(res.Hits, Hit{Layer: v.Name, Platform: oci.PlatformString(pv.Platform), Image: img, Ignored: ignored, Carried: []string{v.Name}})
			cur = &res.Hits[len(res.Hits)-1]
		}
	}
	if len(res.Hits) > 0 {
		res.Similar = nil
	}
	return res, nil
}
