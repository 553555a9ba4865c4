package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/cnstack/cnstack/"

// stages is the pipeline, earliest first: a package may import packages
// of its own stage or of earlier ones, never of a later one. Every package
// of the module is listed here, so a new one must be placed (and the
// README's architecture section with it). Test files are not checked: an
// integration test may build an image to push it.
var stages = []struct {
	name     string
	packages []string
}{
	{"foundation: bytes, files and limits no stage owns", []string{
		"internal/atomicfile", "internal/ctxio", "internal/filelock", "internal/printable",
		"internal/progress", "internal/spool", "internal/tailbuf",
		"pkg/manifest", "pkg/layer", "pkg/safearchive", "images",
	}},
	{"model: what an image, a reference and a cluster image are", []string{
		"pkg/oci", "pkg/reference", "pkg/clusterimage", "pkg/registrytree",
	}},
	{"locations: where content lives", []string{
		"pkg/store", "pkg/regclient", "pkg/regserver",
	}},
	{"language: Kubefiles and the sources they pin", []string{
		"pkg/chartref", "pkg/helmcmd", "pkg/kubefile", "pkg/download",
	}},
	{"inputs: contexts, what a Kubefile puts where, stacks, lock files", []string{
		"pkg/buildcontext", "pkg/contents", "pkg/imagescan", "pkg/lockfile", "pkg/chartrepo", "pkg/stack",
	}},
	{"collect: container images a cluster image carries", []string{
		"pkg/collect/collector", "pkg/collect",
	}},
	{"build: Kubefiles and stacks into store images", []string{
		"pkg/build", "pkg/assemble",
	}},
	{"sign: signatures, SBOM, provenance", []string{
		"pkg/sign", "pkg/sign/sbom", "pkg/sign/provenance", "pkg/sign/signtest",
	}},
	{"ship: registries and offline bundles", []string{
		"pkg/transfer", "pkg/bundle",
	}},
	{"install: an image laid out as sealer run does", []string{
		"pkg/install",
	}},
	{"verify: boot it on throw-away VMs", []string{
		"pkg/vm/cloudinit", "pkg/vm/vmimage", "pkg/vm", "pkg/verify",
	}},
	{"nightly: a pipeline run's report and its CI jobs", []string{
		"pkg/report", "pkg/ci",
	}},
	{"tools and test support", []string{
		"internal/benchcmd", "internal/sampleimages", "internal/kubebase", "internal/offline", "internal/hostile",
		"internal/archtest", "internal/testutil/regfault", "internal/testutil/regproc",
		"internal/testutil/tooltest", "internal/testutil/vmtest", "internal/testutil/zstdimage",
	}},
	{"command: flags, wiring and output", []string{
		"cmd/cnstack",
	}},
}

// forbidden are imports the stage order allows but the design does not:
// install and verify read an image through pkg/oci and content.Fetcher,
// never through the packages that build one (issue 9).
var forbidden = map[string][]string{
	"pkg/install": {"pkg/build", "pkg/collect", "pkg/contents", "pkg/buildcontext", "pkg/kubefile", "pkg/stack"},
	"pkg/verify":  {"pkg/build", "pkg/collect", "pkg/contents", "pkg/buildcontext", "pkg/kubefile", "pkg/stack"},
}

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
}

var listed = sync.OnceValues(goList)

// list runs `go list -json` over the module (once for every test): the
// packages as the go command sees them, build tags and all.
func list(t *testing.T) []pkg {
	t.Helper()
	pkgs, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; is the test run from the module?", len(pkgs))
	}
	return pkgs
}

func goList() ([]pkg, error) {
	cmd := exec.Command("go", "list", "-json", "../../...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

func TestNoPackageImportsALaterStage(t *testing.T) {
	stageOf := map[string]int{}
	for i, s := range stages {
		for _, p := range s.packages {
			if _, dup := stageOf[p]; dup {
				t.Errorf("%s is listed in two stages", p)
			}
			stageOf[p] = i
		}
	}
	seen := map[string]bool{}
	for _, p := range list(t) {
		seen[p.ImportPath] = true
		from, ok := stageOf[p.ImportPath]
		if !ok {
			t.Errorf("%s is in no stage: place it in stages (and in the README's architecture section)", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			to, ok := stageOf[imp]
			if ok && to > from {
				t.Errorf("%s (stage %q) imports %s of a later stage (%q)", p.ImportPath, stages[from].name, imp, stages[to].name)
			}
			if slices.Contains(forbidden[p.ImportPath], imp) {
				t.Errorf("%s imports %s: it reads images through pkg/oci and content.Fetcher only", p.ImportPath, imp)
			}
		}
	}
	for p := range stageOf {
		if !seen[p] {
			t.Errorf("stages lists %s, which go list does not find", p)
		}
	}
}

// TestEveryPackageSaysWhatItIs: a newcomer reads the folder list and each
// package's comment (go doc, pkg.go.dev) to find the owner of a concept.
func TestEveryPackageSaysWhatItIs(t *testing.T) {
	for _, p := range list(t) {
		if p.Doc == "" {
			t.Errorf("%s has no package comment", p.ImportPath)
		}
	}
}
