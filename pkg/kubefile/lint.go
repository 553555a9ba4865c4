package kubefile

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Lint parses a Kubefile and evaluates it for each platform (DefaultPlatform
// when none is given), returning every finding once, in source order. Malformed
// instructions are skipped during evaluation, so one mistake is reported
// once. It is what `cnstack lint` prints.
func Lint(name string, src []byte, opts EvalOptions, platforms ...ocispec.Platform) (*File, Diagnostics) {
	f, ds := Parse(name, src)
	if len(platforms) == 0 {
		platforms = []ocispec.Platform{opts.Platform}
	}
	for _, p := range platforms {
		o := opts
		o.Platform = p
		_, more := Evaluate(f, o)
		ds = append(ds, more...)
	}
	return f, ds.Sorted()
}
