package stack

import (
	"fmt"
	"slices"

	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/lockfile"
)

// Inventory is what a stack is made of, read from its files alone (no
// network, no build): per layer its base, apps and sources, and what the
// lock file pins. `cnstack stack plan --offline` prints it.
type Inventory struct {
	Layers []LayerInventory
	// Lock is the lock file read ("" when the stack has none).
	Lock string
}

// LayerInventory is one layer of an Inventory.
type LayerInventory struct {
	Layer *Layer
	// Base says whether an external FROM image is at hand: "" for a
	// layer of the stack or scratch, else BaseInStore or BaseMissing.
	Base string
	// Apps the layer declares, in order, and Launch its LAUNCH list (nil
	// when it has none: sealer launches no app of it).
	Apps   []AppInventory
	Launch []string
	// Other are the remote sources of COPY/ADD steps.
	Other []SourceStatus
	// Images is the number of container images the lock attributes to
	// the layer (-1 without a lock file).
	Images int
}

// AppInventory is an app and its sources.
type AppInventory struct {
	Name string
	Kind string // APP, CNI or CSI
	// Launched says a top layer of the stack (one no layer builds on)
	// names the app in its LAUNCH: `sealer run` of it installs the app.
	Launched bool
	Sources  []SourceStatus
}

// Source kinds and pin states.
const (
	BaseInStore = "in the local store"
	BaseMissing = "missing"

	KindLocal  = "local"
	KindRemote = "remote"
	KindChart  = "chart"

	PinLocal    = "in the build context"
	PinChecksum = "pinned by its checksum"
	PinLocked   = "locked"
	PinUnlocked = "unlocked"
)

// SourceStatus is one source and how it is pinned.
type SourceStatus struct {
	Kind string
	// Ref is the source as the Kubefile names it: a context path, a URL,
	// a chart reference.
	Ref string
	Pos kubefile.Pos
	// Pin is one of the Pin* states; Digest the digest that pins it.
	Pin    string
	Digest string
}

// Inventory reads the stack's layers against lock (nil when there is
// none, lockPath its path) and asks inStore whether an external base is in
// the local store. Nothing in it fails for a missing base or an unlocked
// source: they are reported.
func (s *Stack) Inventory(lock *lockfile.File, lockPath string, inStore func(ref string) bool) Inventory {
	inv := Inventory{Lock: lockPath}
	launched := map[string]bool{}
	for _, l := range s.Layers {
		if len(s.Children(l.Name)) == 0 && l.Image.Launch != nil {
			for _, n := range l.Image.Launch.AppNames {
				launched[n] = true
			}
		}
	}
	for _, l := range s.Layers {
		li := LayerInventory{Layer: l, Images: -1}
		if l.Parent == "" && l.From != "scratch" {
			li.Base = BaseMissing
			if inStore != nil && inStore(l.From) {
				li.Base = BaseInStore
			}
		}
		img := l.Image
		if img.Launch != nil {
			li.Launch = append([]string{}, img.Launch.AppNames...)
			if li.Launch == nil {
				li.Launch = []string{}
			}
		}
		for _, a := range img.Apps {
			ai := AppInventory{Name: a.Name, Kind: a.Kind, Launched: launched[a.Name]}
			for _, src := range a.Sources {
				ai.Sources = append(ai.Sources, sourceStatus(src, lock))
			}
			li.Apps = append(li.Apps, ai)
		}
		for _, st := range img.Steps {
			if st.Kind != kubefile.StepCopy || st.App != "" {
				continue
			}
			for _, src := range st.Sources {
				if src.IsRemote() {
					li.Other = append(li.Other, sourceStatus(src, lock))
				}
			}
		}
		if lock != nil {
			li.Images = 0
			for _, im := range lock.Images {
				if slices.Contains(im.Layers, l.Name) {
					li.Images++
				}
			}
		}
		inv.Layers = append(inv.Layers, li)
	}
	return inv
}

func sourceStatus(src kubefile.Source, lock *lockfile.File) SourceStatus {
	switch {
	case src.IsChart():
		st := SourceStatus{Kind: KindChart, Ref: src.URL, Pos: src.Pos, Pin: PinUnlocked}
		if c, ok := lock.LookupChart(src.URL); ok {
			st.Pin, st.Digest = PinLocked, c.Digest
		}
		return st
	case src.IsRemote():
		return SourceStatus{Kind: KindRemote, Ref: src.URL, Pos: src.Pos, Pin: PinChecksum, Digest: src.Checksum}
	}
	return SourceStatus{Kind: KindLocal, Ref: src.Path, Pos: src.Pos, Pin: PinLocal}
}

// Unlocked counts the chart sources of the inventory the lock does not pin.
func (inv Inventory) Unlocked() int {
	n := 0
	for _, l := range inv.Layers {
		for _, a := range l.Apps {
			for _, s := range a.Sources {
				if s.Pin == PinUnlocked {
					n++
				}
			}
		}
	}
	return n
}

// String of a SourceStatus is its pin for a listing.
func (st SourceStatus) String() string {
	switch st.Pin {
	case PinLocked, PinChecksum:
		d := st.Digest
		if len(d) > 19 {
			d = d[:19]
		}
		return fmt.Sprintf("%s %s", st.Pin, d)
	case PinUnlocked:
		return "UNLOCKED: not in the lock file (run cnstack lock)"
	}
	return st.Pin
}
