package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

// planOffline prints the stack's inventory (stack.Inventory): what can be
// known with no network. A missing base or an unlocked chart is reported,
// not an error.
func planOffline(ctx context.Context, c *cli.Command, format string) error {
	s, err := loadStack(c)
	if err != nil {
		return err
	}
	var lock *lockfile.File
	lockPath := lockfile.Find(s.Dir)
	if lockPath != "" {
		if lock, err = lockfile.Read(lockPath); err != nil {
			return err
		}
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	inStore := func(ref string) bool {
		_, err := st.Resolve(ctx, ref)
		return err == nil
	}
	inv := s.Inventory(lock, displayName(lockPath), inStore)
	if format == "json" {
		enc := json.NewEncoder(c.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(inventoryJSON(s, inv))
	}
	printInventory(c.Writer, s, inv)
	return nil
}

func printInventory(w io.Writer, s *stack.Stack, inv stack.Inventory) {
	lock := "no lock file (run cnstack lock)"
	if inv.Lock != "" {
		lock = "lock " + inv.Lock
	}
	fmt.Fprintf(w, "stack %s %s (%s), %s; offline: cache keys not computed; %s\n", s.Spec.Name, s.Spec.Version, oci.PlatformsString(s.Platforms), plural(len(inv.Layers), "layer", "layers"), lock)
	missing := 0
	for i, l := range inv.Layers {
		bar := "│  "
		if i == len(inv.Layers)-1 {
			bar = "   "
		}
		from := "FROM " + l.Layer.From
		switch {
		case l.Layer.Parent != "":
			from = "FROM layer " + l.Layer.Parent
		case l.Base == stack.BaseMissing:
			from += " (MISSING: not in the local store; build or pull it before building this layer)"
			missing++
		case l.Base != "":
			from += " (" + l.Base + ")"
		}
		fmt.Fprintf(w, "%s  %s  %s\n", l.Layer.Name, l.Layer.Ref, from)
		for _, a := range l.Apps {
			launched := ""
			if a.Launched {
				launched = ", launched"
			}
			fmt.Fprintf(w, "%s  app %s (%s%s)\n", bar, a.Name, a.Kind, launched)
			for _, src := range a.Sources {
				fmt.Fprintf(w, "%s    %-6s %s  %s\n", bar, src.Kind, src.Ref, src)
			}
		}
		for _, src := range l.Other {
			fmt.Fprintf(w, "%s  %-6s %s  %s\n", bar, src.Kind, src.Ref, src)
		}
		switch {
		case l.Launch == nil:
			fmt.Fprintf(w, "%s  launch: none\n", bar)
		default:
			fmt.Fprintf(w, "%s  launch: %s\n", bar, strings.Join(l.Launch, ", "))
		}
		if l.Images >= 0 {
			fmt.Fprintf(w, "%s  container images pinned by the lock: %d\n", bar, l.Images)
		}
	}
	fmt.Fprintf(w, "%s unlocked, %s missing\n", plural(inv.Unlocked(), "chart source", "chart sources"), plural(missing, "base image", "base images"))
}

func inventoryJSON(s *stack.Stack, inv stack.Inventory) any {
	type source struct {
		Kind   string `json:"kind"`
		Ref    string `json:"ref"`
		Pos    string `json:"pos"`
		Pin    string `json:"pin"`
		Digest string `json:"digest,omitempty"`
	}
	type app struct {
		Name     string   `json:"name"`
		Kind     string   `json:"kind"`
		Launched bool     `json:"launched"`
		Sources  []source `json:"sources"`
	}
	type layer struct {
		Name   string   `json:"name"`
		Image  string   `json:"image"`
		From   string   `json:"from"`
		Parent string   `json:"parent,omitempty"`
		Base   string   `json:"base,omitempty"`
		Apps   []app    `json:"apps,omitempty"`
		Other  []source `json:"sources,omitempty"`
		Launch []string `json:"launch"`
		Images *int     `json:"lockedImages,omitempty"`
	}
	conv := func(in []stack.SourceStatus) []source {
		var out []source
		for _, s := range in {
			out = append(out, source{Kind: s.Kind, Ref: s.Ref, Pos: s.Pos.String(), Pin: s.Pin, Digest: s.Digest})
		}
		return out
	}
	out := struct {
		Name     string  `json:"name"`
		Version  string  `json:"version"`
		Lock     string  `json:"lock,omitempty"`
		Layers   []layer `json:"layers"`
		Unlocked int     `json:"unlocked"`
	}{Name: s.Spec.Name, Version: s.Spec.Version, Lock: inv.Lock, Unlocked: inv.Unlocked()}
	for _, l := range inv.Layers {
		lj := layer{Name: l.Layer.Name, Image: l.Layer.Ref, From: l.Layer.From, Parent: l.Layer.Parent, Base: l.Base, Launch: l.Launch, Other: conv(l.Other)}
		if l.Images >= 0 {
			n := l.Images
			lj.Images = &n
		}
		for _, a := range l.Apps {
			lj.Apps = append(lj.Apps, app{Name: a.Name, Kind: a.Kind, Launched: a.Launched, Sources: conv(a.Sources)})
		}
		out.Layers = append(out.Layers, lj)
	}
	return out
}
