package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/lockfile"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/stack"
)

func stackCommand() *cli.Command {
	return &cli.Command{
		Name:  "stack",
		Usage: "build or plan a layered stack (a directory of Kubefile layers and a stack.yaml)",
		Description: `A stack directory holds stack.yaml (name, version, repository, platforms, layers) and one
directory per layer with its Kubefile and build context. A layer whose FROM names another
layer (by name or full reference) builds on that layer's freshly built image.
DIR defaults to "." when it holds a stack.yaml (or a Kubefile), else "Kubefiles".`,
		Commands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "build every layer in dependency order (independent layers in parallel)",
				ArgsUsage: "[DIR]",
				Description: `Builds each layer of the stack in DIR into the local store, parents first, --parallel
independent layers at a time, and prints one line per layer: built, cached or failed.
Unchanged layers come from the cache; after a failure no further layer starts.
The build flags (--platform, --build-arg, --build-mode, --locked, …) apply to every layer.`,
				Flags: append([]cli.Flag{
					&cli.StringSliceFlag{Name: "layer", Usage: "build only `NAME` and the layers it builds on (repeatable)"},
					&cli.BoolFlag{Name: "parents-from-store", Usage: "with --layer: build only the named layers, on the images of the layers they build on already in the local store (pulled by digest; a CI job per layer); never rebuild those"},
					&cli.IntFlag{Name: "parallel", Value: 2, Usage: "layers built at the same time"},
				}, buildFlags()...),
				Action: func(ctx context.Context, c *cli.Command) error {
					s, b, opts, err := stackSetup(c)
					if err != nil {
						return err
					}
					opts.Parallel = c.Int("parallel")
					opts.ParentsFromStore = c.Bool("parents-from-store")
					if opts.ParentsFromStore && len(opts.Layers) == 0 {
						return usageError(c, "--parents-from-store needs --layer NAME: the layers to build on parents from the store")
					}
					results, err := b.BuildStack(ctx, s, opts)
					printStackResults(c.Writer, results)
					return err
				},
			},
			{
				Name:      "plan",
				Usage:     "print the layer DAG, each layer's cache key and whether it would rebuild; writes nothing",
				ArgsUsage: "[DIR]",
				Description: `Prints the stack in DIR as a tree of layers (FROM edges), each layer's cache key per
platform and whether "stack build" would rebuild it, and why. Nothing is written to the
store. -o json prints the same for scripts.

With --offline, no network is used and no keys are computed: it prints
each layer's FROM (and whether an external base is in the local store), its apps with their
sources (context paths, pinned URLs, charts) and whether cnstack.lock pins each chart, and
its LAUNCH. A missing base or an unlocked chart is reported, not an error.`,
				Flags: append([]cli.Flag{
					&cli.StringSliceFlag{Name: "layer", Usage: "plan only `NAME` and the layers it builds on"},
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "tree", Usage: "tree or json"},
					// Shadows the global --offline (which only guards the network) for this command.
					&cli.BoolFlag{Name: "offline", Usage: "use no network and compute no keys: print the layers' apps, sources and pin status (implies the global --offline)"},
				}, buildFlags()...),
				Action: func(ctx context.Context, c *cli.Command) error {
					format := c.String("output")
					if format != "tree" && format != "json" {
						return badOutput(c, "tree", "json")
					}
					if c.Bool("offline") {
						return planOffline(ctx, c, format)
					}
					s, b, opts, err := stackSetup(c)
					if err != nil {
						return err
					}
					plan, err := b.PlanStack(ctx, s, opts)
					if err != nil {
						return err
					}
					if format == "json" {
						return printPlanJSON(c.Writer, s, plan)
					}
					printPlanTree(c.Writer, s, plan)
					return nil
				},
			},
		},
	}
}

// stackSetup reads what stack build and stack plan share: the stack, a
// builder, and the options from the build flags.
func stackSetup(c *cli.Command) (*stack.Stack, *build.Builder, build.StackOptions, error) {
	var opts build.StackOptions
	s, err := loadStack(c)
	if err != nil {
		return nil, nil, opts, err
	}
	b, err := newBuilder(c)
	if err != nil {
		return nil, nil, opts, err
	}
	req, err := buildRequest(c)
	if err != nil {
		return nil, nil, opts, err
	}
	if len(req.Platforms) > 0 {
		s.Platforms = req.Platforms
	}
	req.Collect.LockFile = lockfile.Find(s.Dir)
	opts = build.StackOptions{Layers: c.StringSlice("layer"), Mode: req.Mode, NoCache: req.NoCache, Collect: req.Collect}
	return s, b, opts, nil
}

func loadStack(c *cli.Command) (*stack.Stack, error) {
	if c.NArg() > 1 {
		return nil, usageError(c, "takes one stack directory, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	dir := c.Args().First()
	if dir == "" {
		dir = stack.DefaultDir()
	}
	args, err := parseKV("build-arg", c.StringSlice("build-arg"))
	if err != nil {
		return nil, err
	}
	return stack.Load(dir, args)
}

func printStackResults(w io.Writer, results []build.LayerResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSTATUS\tIMAGE\tDIGEST\tTIME")
	for _, r := range results {
		switch {
		case r.Err != nil:
			fmt.Fprintf(tw, "%s\tfailed\t%s\t-\t-\n", r.Layer.Name, r.Layer.Ref)
		case r.Result != nil:
			status := "built"
			if r.Result.Cached {
				status = "cached"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Layer.Name, status, r.Layer.Ref, r.Result.Descriptor.Digest, r.Result.Duration.Round(1e6))
		}
	}
	tw.Flush()
}

func printPlanTree(w io.Writer, s *stack.Stack, plan []stack.PlanEntry) {
	fmt.Fprintf(w, "stack %s %s (%s), %s\n", s.Spec.Name, s.Spec.Version, oci.PlatformsString(s.Platforms), plural(len(plan), "layer", "layers"))
	byName := map[string]stack.PlanEntry{}
	for _, e := range plan {
		byName[e.Layer.Name] = e
	}
	var walk func(name, indent string, last bool, root bool)
	walk = func(name, indent string, last, root bool) {
		e, ok := byName[name]
		if !ok {
			return
		}
		branch, next := "", ""
		if !root {
			branch, next = "├─ ", "│  "
			if last {
				branch, next = "└─ ", "   "
			}
		}
		status := "cached"
		if e.Rebuild {
			status = "rebuild: " + e.Reason
		}
		from := e.Layer.From
		if e.Layer.Parent != "" {
			from = "layer " + e.Layer.Parent
		}
		fmt.Fprintf(w, "%s%s%s  %s  FROM %s\n", indent, branch, e.Layer.Name, e.Layer.Ref, from)
		for _, p := range s.Platforms {
			k := e.Keys[oci.PlatformString(p)]
			if len(k) > 16 {
				k = k[:16]
			}
			fmt.Fprintf(w, "%s%s    key %s %s  %s\n", indent, next, oci.PlatformString(p), k, status)
		}
		kids := s.Children(name)
		var present []string
		for _, k := range kids {
			if _, ok := byName[k.Name]; ok {
				present = append(present, k.Name)
			}
		}
		for i, k := range present {
			walk(k, indent+next, i == len(present)-1, false)
		}
	}
	for _, e := range plan {
		if e.Layer.Parent == "" || byName[e.Layer.Parent].Layer == nil {
			walk(e.Layer.Name, "", true, true)
		}
	}
}

func printPlanJSON(w io.Writer, s *stack.Stack, plan []stack.PlanEntry) error {
	type layerJSON struct {
		Name    string            `json:"name"`
		Image   string            `json:"image"`
		Type    string            `json:"type"`
		From    string            `json:"from"`
		Parent  string            `json:"parent,omitempty"`
		Keys    map[string]string `json:"keys"`
		Rebuild bool              `json:"rebuild"`
		Reason  string            `json:"reason,omitempty"`
		// Inputs: platform → input name → digest (what the key is made of).
		Inputs map[string]map[string]string `json:"inputs,omitempty"`
	}
	out := struct {
		Name    string      `json:"name"`
		Version string      `json:"version"`
		Layers  []layerJSON `json:"layers"`
	}{Name: s.Spec.Name, Version: s.Spec.Version}
	for _, e := range plan {
		out.Layers = append(out.Layers, layerJSON{Name: e.Layer.Name, Image: e.Layer.Ref, Type: e.Layer.Type, From: e.Layer.From, Parent: e.Layer.Parent, Keys: e.Keys, Rebuild: e.Rebuild, Reason: e.Reason, Inputs: e.Inputs})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
