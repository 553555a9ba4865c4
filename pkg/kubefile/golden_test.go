package kubefile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/oci"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenOptions is testdata/golden/<case>/options.json (optional).
type goldenOptions struct {
	Platforms []string          `json:"platforms"`
	BuildArgs map[string]string `json:"buildArgs"`
	BaseApps  []string          `json:"baseApps"`
}

// goldenResult is what a golden file holds for one platform.
type goldenResult struct {
	Diagnostics []string `json:"diagnostics"`
	Image       *Image   `json:"image"`
}

// TestGolden evaluates testdata/golden/<case>/Kubefile with <case>/context
// as the build context and compares the result with
// <case>/image.<os>-<arch>.json. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/golden/*/Kubefile")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, kf := range cases {
		dir := filepath.Dir(kf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src, err := os.ReadFile(kf)
			if err != nil {
				t.Fatal(err)
			}
			var o goldenOptions
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				if err := json.Unmarshal(b, &o); err != nil {
					t.Fatal(err)
				}
			}
			if len(o.Platforms) == 0 {
				o.Platforms = []string{"linux/amd64"}
			}
			f, ds := Parse("Kubefile", src)
			if err := ds.Err(); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, ps := range o.Platforms {
				p, err := oci.ParsePlatform(ps)
				if err != nil {
					t.Fatal(err)
				}
				img, ds := Evaluate(f, EvalOptions{
					Platform:  p,
					BuildArgs: o.BuildArgs,
					Context:   os.DirFS(filepath.Join(dir, "context")),
					BaseApps:  o.BaseApps,
				})
				if err := ds.Err(); err != nil {
					t.Fatalf("Evaluate %s: %v", p, err)
				}
				res := goldenResult{Image: img, Diagnostics: []string{}}
				for _, d := range ds {
					res.Diagnostics = append(res.Diagnostics, d.Severity.String()+": "+d.Error())
				}
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					t.Fatal(err)
				}
				got := buf.Bytes()
				name := filepath.Join(dir, "image."+strings.ReplaceAll(oci.PlatformString(p), "/", "-")+".json")
				if *update {
					if err := os.WriteFile(name, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(name)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the evaluated image (run go test -run TestGolden -update and review the diff):\n%s", name, got)
				}
				// The golden file must decode back into the same image.
				var back goldenResult
				if err := json.Unmarshal(want, &back); err != nil {
					t.Fatalf("decode %s: %v", name, err)
				}
			}
		})
	}
}
