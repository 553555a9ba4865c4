package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/pkg/report"
)

// fakePassword is the cosign key password of the nightly test: it must
// appear in no output, log, report or store file.
const fakePassword = "FAKE-pw-4f1e9c-never-print-me"

type nightly struct {
	t                             *testing.T
	repo, dir, stack, key, verlog string
	reports, state, home          string
	registry                      string       // the embedded registry the nights push to
	jobHome                       string       // when set, the store of this night (a fresh CI runner)
	outputs                       bytes.Buffer // every byte the script printed, all nights
}

func newNightly(t *testing.T) *nightly {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("ci/nightly.sh needs jq (apt-get install jq; make deps installs it)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := &nightly{t: t, repo: repo, dir: dir, stack: filepath.Join(dir, "stack"), reports: filepath.Join(dir, "reports"),
		state: filepath.Join(dir, "state"), home: filepath.Join(dir, "home"), verlog: filepath.Join(dir, "verified.log")}
	if err := os.CopyFS(n.stack, os.DirFS(filepath.Join(repo, "testdata", "stack"))); err != nil {
		t.Fatal(err)
	}
	cmd := cliCmd(n.home, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "keys", "cosign"))
	cmd.Env = append(cmd.Env, "COSIGN_PASSWORD="+fakePassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate-key-pair: %v\n%s", err, out)
	}
	n.key = filepath.Join(dir, "keys", "cosign.key")
	// The registry outlives the nights so the test can look at what they left.
	addrFile := filepath.Join(dir, "registry.addr")
	reg := cliCmd(n.home, "registry", "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--root", filepath.Join(n.state, "registry"))
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Process.Kill(); reg.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for n.registry == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile(addrFile)
		n.registry = strings.TrimSpace(string(b))
		time.Sleep(50 * time.Millisecond)
	}
	if n.registry == "" {
		t.Fatal("the embedded registry did not start")
	}
	return n
}

// tagged is the digest tag names in the staging repository of layer, per
// the real CLI (verify --remote prints "verified NAME@DIGEST in ...").
func (n *nightly) tagged(layer, tag string) string {
	n.t.Helper()
	ref := n.registry + "/cnstack-staging/" + layer + ":" + tag
	out, err := cliCmd(n.home, "verify", "--remote", "--key", strings.TrimSuffix(n.key, ".key")+".pub", ref).CombinedOutput()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "verified "); ok {
			if i := strings.Index(rest, "@"); i >= 0 {
				return strings.Fields(rest[i+1:])[0]
			}
		}
	}
	n.t.Fatalf("verify %s printed no digest:\n%s", ref, out)
	return ""
}

// night runs ci/nightly.sh once, as CI would, with the fake verifier
// (booting VMs is for make e2e) failing the layers in fail.
func (n *nightly) night(id string, wantOK bool, fail string, extra ...string) *report.Run {
	n.t.Helper()
	n.script(id, wantOK, fail, extra...)
	run, rerr := report.Read(filepath.Join(n.reports, id, report.RunFile))
	if rerr != nil {
		n.t.Fatalf("night %s wrote no run.json: %v", id, rerr)
	}
	if run.Passed != wantOK {
		n.t.Errorf("night %s: run.json passed=%v, want %v", id, run.Passed, wantOK)
	}
	return run
}

// script runs ci/nightly.sh with the night's flags and extra, and returns
// what it printed.
func (n *nightly) script(id string, wantOK bool, fail string, extra ...string) string {
	n.t.Helper()
	args := append([]string{"--stack", n.stack, "--key", n.key, "--serve-samples", "--state", n.state, "--registry", n.registry,
		"--report-dir", n.reports, "--verifier", filepath.Join(n.repo, "ci", "testdata", "fake-verifier.sh"), "--id", id}, extra...)
	ctx, cancel := context.WithTimeout(n.t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.repo, "ci", "nightly.sh"), args...)
	home := n.home
	if n.jobHome != "" {
		home = n.jobHome
	}
	cmd.Env = append(os.Environ(), "CNSTACK="+os.Args[0], "CNSTACK_AS_CLI=1", "CNSTACK_HOME="+home,
		"CNSTACK_OFFLINE=1", "SOURCE_DATE_EPOCH=0", "COSIGN_PASSWORD="+fakePassword,
		"FAKE_VERIFIER_LOG="+n.verlog, "FAKE_VERIFIER_FAIL="+fail, "DOCKER_CONFIG="+filepath.Join(n.dir, ".docker"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	n.outputs.Write(out.Bytes())
	n.t.Logf("night %s: %s (exit %v)\n%s", id, time.Since(start).Round(time.Millisecond), err, out.String())
	if (err == nil) != wantOK {
		n.t.Fatalf("night %s: exit %v, want success=%v", id, err, wantOK)
	}
	return out.String()
}

// statuses maps layer → "build/push/verify/promote" statuses.
func statuses(run *report.Run) map[string]string {
	out := map[string]string{}
	for i := range run.Layers {
		l := &run.Layers[i]
		var parts []string
		for _, s := range []string{"build", "push", "verify", "promote"} {
			st := "-"
			if x := l.Step(s); x != nil {
				st = x.Status
			}
			parts = append(parts, st)
		}
		out[l.Name] = strings.Join(parts, "/")
	}
	return out
}

func (n *nightly) expect(id string, run *report.Run, want map[string]string) {
	n.t.Helper()
	got := statuses(run)
	for layer, w := range want {
		if got[layer] != w {
			n.t.Errorf("night %s, layer %s: build/push/verify/promote = %s, want %s", id, layer, got[layer], w)
		}
	}
}

// verified reads the layers the fake verifier was asked about so far.
func (n *nightly) verified() []string {
	b, _ := os.ReadFile(n.verlog)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// registryTree lists the registry's files with their sizes: what a push changes.
func (n *nightly) registryTree() string {
	var lines []string
	root := filepath.Join(n.state, "registry")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, fmt.Sprintf("%s %d", rel, fi.Size()))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestNightlyPipeline runs ci/nightly.sh on the sample stack against the
// embedded registry with a throw-away key, four nights:
//  1. builds, signs, pushes, verifies and promotes every layer (the
//     app-installer addon-demo is verified on the stack's top image);
//  2. changes nothing: pushes nothing, re-verifies nothing (the signed
//     verification attestations are recognised);
//  3. one file of the mesh layer changed: mesh and the layers built on it
//     rebuild, are verified and promoted; nothing else;
//  4. the ha layer changed and its verification fails: ha is not promoted,
//     the report says why, the layers on it stop, the exit code is 1.
//
// The key password must show up in no output, report, log or store file.
func TestNightlyPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("the nightly pipeline runs four nights (about a minute)")
	}
	n := newNightly(t)
	kube := []string{"kubernetes", "base", "mesh", "observability", "ha", "middleware", "cnstack"}

	run := n.night("n1", true, "", "--update-lock")
	want := map[string]string{"addon-demo": "built/pushed/passed/promoted"}
	for _, l := range kube {
		want[l] = "built/pushed/passed/promoted"
	}
	n.expect("n1", run, want)
	if got := n.verified(); strings.Join(got, " ") != strings.Join(append(kube, "addon-demo"), " ") {
		t.Errorf("night 1 verified %v, want every layer, parents first", got)
	}
	if b, err := os.ReadFile(n.verlog); err != nil || !regexp.MustCompile(`(?m)^addon-demo sha256:[0-9a-f]+ base=registry\.cnstack\.local/cnstack/cnstack:`).Match(b) {
		t.Errorf("night 1: addon-demo was not verified on the stack's top image:\n%s", b)
	}
	for i := range run.Layers {
		l := &run.Layers[i]
		if l.Signature != "verified" || l.Attestations != "verified" || len(l.Platforms) != 1 || l.Platforms[0].SBOM == nil || l.Digest == "" {
			t.Errorf("night 1, layer %s: signature %q, attestations %q, platforms %+v", l.Name, l.Signature, l.Attestations, l.Platforms)
		}
	}
	for i := range run.Layers {
		l := &run.Layers[i]
		want := l.Digest
		if got := n.tagged(l.Name, "stable"); got != want {
			t.Errorf("night 1: %s:stable names %q, want %q", l.Name, got, want)
		}
	}
	tree := n.registryTree()

	run = n.night("n2", true, "")
	want = map[string]string{"addon-demo": "cached/present/verified-earlier/promoted"}
	for _, l := range kube {
		want[l] = "cached/present/verified-earlier/promoted"
	}
	n.expect("n2", run, want)
	if got := n.verified(); len(got) != len(kube)+1 {
		t.Errorf("night 2 verified again: %v", got[len(kube)+1:])
	}
	if after := n.registryTree(); after != tree {
		t.Errorf("night 2 changed the registry (it should push nothing):\nbefore:\n%s\nafter:\n%s", tree, after)
	}

	values := filepath.Join(n.stack, "mesh", "charts", "mesh", "values.yaml")
	appendFile(t, values, "\n# changed by the nightly test\n")
	run = n.night("n3", true, "")
	n.expect("n3", run, map[string]string{
		"kubernetes": "cached/present/verified-earlier/promoted", "base": "cached/present/verified-earlier/promoted",
		"addon-demo": "cached/present/verified-earlier/promoted",
		"mesh":       "built/pushed/passed/promoted", "observability": "built/pushed/passed/promoted", "ha": "built/pushed/passed/promoted",
		"middleware": "built/pushed/passed/promoted", "cnstack": "built/pushed/passed/promoted",
	})
	if got := n.verified()[len(kube)+1:]; strings.Join(got, " ") != "mesh observability ha middleware cnstack" {
		t.Errorf("night 3 verified %v, want mesh and the layers on it", got)
	}
	if r := run.Layers[layerIndex(run, "mesh")].Step("build").Detail; !strings.Contains(r, "changed since the last run: ") || !strings.Contains(r, "charts/mesh") {
		t.Errorf("night 3: mesh's rebuild reason %q does not name the input that changed", r)
	}
	if r := run.Layers[layerIndex(run, "observability")].Step("build").Detail; !strings.Contains(r, "FROM mesh") {
		t.Errorf("night 3: observability's rebuild reason %q does not say its base changed", r)
	}

	appendFile(t, filepath.Join(n.stack, "ha", "chaos", "install.sh"), "\n# changed by the nightly test\n")
	haStable := n.tagged("ha", "stable")
	run = n.night("n4", false, "ha")
	n.expect("n4", run, map[string]string{
		"mesh": "cached/present/verified-earlier/promoted", "observability": "cached/present/verified-earlier/promoted",
		"ha":         "built/pushed/failed/skipped",
		"middleware": "skipped/skipped/skipped/skipped", "cnstack": "skipped/skipped/skipped/skipped",
	})
	ha := run.Layers[layerIndex(run, "ha")]
	if got := n.tagged("ha", "stable"); got != haStable || got == ha.Digest {
		t.Errorf("night 4: ha:stable moved to %s (the digest that failed verification is %s; it was %s)", got, ha.Digest, haStable)
	}
	if d := ha.Step("verify").Detail; !strings.Contains(d, "CrashLoopBackOff") {
		t.Errorf("night 4: the failed verification's detail %q does not say why", d)
	}
	if d := run.Layers[layerIndex(run, "cnstack")].Step("build").Detail; !strings.Contains(d, "ha failed verify") {
		t.Errorf("night 4: cnstack's skip %q does not name the failure that stopped it", d)
	}
	html, err := os.ReadFile(filepath.Join(n.reports, "n4", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"CrashLoopBackOff", `href="boot/ha/serial-node0.log"`, `class="trend"`} {
		if !bytes.Contains(html, []byte(w)) {
			t.Errorf("night 4 report.html lacks %q", w)
		}
	}
	for _, f := range []string{"junit.xml", "run.json", "steps.tsv", "plan.json"} {
		if _, err := os.Stat(filepath.Join(n.reports, "n4", f)); err != nil {
			t.Error(err)
		}
	}

	// The password: in no output, report, log or store file.
	if bytes.Contains(n.outputs.Bytes(), []byte(fakePassword)) {
		t.Error("the key password was printed")
	}
	for _, root := range []string{n.reports, n.home, n.state} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(fakePassword)) {
				t.Errorf("the key password is in %s", p)
			}
			return nil
		})
	}
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		r, _ := report.Read(filepath.Join(n.reports, id, report.RunFile))
		t.Logf("night %s: %s in the run (%v)", id, r.Duration.Round(time.Millisecond), r.Counts())
	}
}

func layerIndex(run *report.Run, name string) int {
	for i := range run.Layers {
		if run.Layers[i].Name == name {
			return i
		}
	}
	panic("no layer " + name)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

// TestNightlyMatrixJobs runs ci/nightly.sh as the generated workflow's jobs
// do: one job per layer (kubernetes → base → mesh), each on a fresh runner
// (an empty store and cache), sharing only the staging registry and the
// few-byte digests artifact (--digests) the parent's job left. Each job must
// pull its parents from staging by digest and build only its own layer; the
// images are the ones a single-machine night builds (same digests); and a
// digests artifact that names no digest stops the job's layer, saying why.
func TestNightlyMatrixJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ci/nightly.sh six times (about a minute)")
	}
	n := newNightly(t)
	artifact := "" // the digests directory the previous job uploaded
	chain := []string{"kubernetes", "base", "mesh"}
	for i, layer := range chain {
		id := "job-" + layer
		n.jobHome = filepath.Join(n.dir, "runner-"+layer)
		digests := filepath.Join(n.dir, "digests-"+layer)
		if artifact != "" { // actions/download-artifact of the parent's digests
			if err := os.CopyFS(digests, os.DirFS(artifact)); err != nil {
				t.Fatal(err)
			}
		}
		extra := []string{"--layer", layer, "--digests", digests}
		if i == 0 {
			extra = append(extra, "--update-lock")
		}
		run := n.night(id, true, "", extra...)
		n.expect(id, run, map[string]string{layer: "built/pushed/passed/promoted"})
		// Only its own layer was built; each parent was pulled by digest.
		log, err := os.ReadFile(filepath.Join(n.reports, id, "logs", layer+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if got := regexp.MustCompile(`(?m)^(built|cached) (\S+) `).FindAllStringSubmatch(string(log), -1); len(got) != 1 || got[0][2] != layer {
			t.Errorf("job %s built %v, want only %s", id, got, layer)
		}
		for _, parent := range chain[:i] {
			if !strings.Contains(n.outputs.String(), "  "+parent+": pulled cnstack-staging/"+parent+"@sha256:") {
				t.Errorf("job %s did not say it pulled %s by digest", id, parent)
			}
		}
		for _, l := range chain[:i+1] {
			b, err := os.ReadFile(filepath.Join(digests, l))
			if err != nil {
				t.Fatalf("job %s: the digests artifact lacks %s: %v", id, l, err)
			}
			if d := strings.TrimSpace(string(b)); d != n.tagged(l, "stable") {
				t.Errorf("job %s: digests/%s = %s, staging's %s:stable = %s", id, l, d, l, n.tagged(l, "stable"))
			}
		}
		artifact = digests
	}

	// A digests directory holds more than a job builds on: a job for base, given
	// the last job's directory (kubernetes, base, mesh), pulls kubernetes only.
	n.jobHome = filepath.Join(n.dir, "runner-base-again")
	n.outputs.Reset()
	run := n.night("job-base-again", true, "", "--layer", "base", "--digests", artifact)
	n.expect("job-base-again", run, map[string]string{"base": "built/present/verified-earlier/promoted"})
	if out := n.outputs.String(); !strings.Contains(out, "  kubernetes: pulled cnstack-staging/kubernetes@sha256:") || strings.Contains(out, "  mesh: pulled") {
		t.Errorf("job-base-again pulled other than its parent:\n%s", out)
	}

	// A single machine building the whole stack gets the same images: the matrix's
	// pushes are found in staging, nothing is sent again.
	n.jobHome = filepath.Join(n.dir, "runner-all")
	run = n.night("one-machine", true, "")
	n.expect("one-machine", run, map[string]string{
		"kubernetes": "built/present/verified-earlier/promoted", "base": "built/present/verified-earlier/promoted",
		"mesh": "built/present/verified-earlier/promoted", "observability": "built/pushed/passed/promoted"})

	// A broken digests artifact: the job's layer is skipped naming it; exit 1.
	n.jobHome = filepath.Join(n.dir, "runner-broken")
	broken := filepath.Join(n.dir, "digests-broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "base"), []byte("latest\n"), 0o644)
	run = n.night("job-broken", false, "", "--layer", "mesh", "--digests", broken)
	if d := run.Layers[layerIndex(run, "mesh")].Step("build"); d == nil || d.Status != "skipped" || !strings.Contains(d.Detail, "base's digest file is not a digest") {
		t.Errorf("mesh on a broken digests artifact: %+v", d)
	}
	if !strings.Contains(n.outputs.String(), "holds 'latest', not a sha256 digest") {
		t.Error("the broken digest was not reported")
	}
	for _, id := range []string{"job-kubernetes", "job-base", "job-mesh", "job-base-again", "one-machine"} {
		r, _ := report.Read(filepath.Join(n.reports, id, report.RunFile))
		t.Logf("%s: %s (%v)", id, r.Duration.Round(time.Millisecond), r.Counts())
	}
}

// A multi-platform stack in a CI matrix: one job per platform checks the
// stack's lock (written for both platforms) and promotes its image as
// stable-<os>-<arch>, and the last job (--merge) tags stable with the index
// over them, signed: the digest one machine building both platforms gets.
// A platform not verified is left out, and said.
func TestNightlyMergePlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ci/nightly.sh eight times")
	}
	n := newNightly(t)
	pub := strings.TrimSuffix(n.key, ".key") + ".pub"
	steps := func(id string) string {
		b, _ := os.ReadFile(filepath.Join(n.reports, id, "steps.tsv"))
		return string(b)
	}
	// One machine, both platforms; the lock it writes pins both.
	n.jobHome = filepath.Join(n.dir, "runner-both")
	n.night("both", true, "", "--layer", "base", "--platforms", "linux/amd64,linux/arm64", "--promote-tag", "both", "--update-lock")
	both := n.tagged("base", "both")

	for _, p := range []string{"amd64", "arm64"} {
		n.jobHome = filepath.Join(n.dir, "runner-"+p)
		run := n.night("job-"+p, true, "", "--layer", "base", "--platforms", "linux/"+p, "--promote-suffix", "-linux-"+p)
		// Its image is the one-machine build's, pushed then as a child of the index.
		n.expect("job-"+p, run, map[string]string{"base": "built/present/passed/promoted"})
		if lock, _ := os.ReadFile(filepath.Join(n.reports, "job-"+p, "logs", "lock.log")); !strings.Contains(string(lock), "up to date for linux/"+p+" (it pins other platforms too)") {
			t.Errorf("the %s job's lock check on the two-platform lock: %s", p, lock)
		}
	}
	n.jobHome = filepath.Join(n.dir, "runner-merge")
	out := n.script("merge", true, "", "--merge", "--layer", "base", "--platforms", "linux/amd64,linux/arm64")
	if !strings.Contains(steps("merge"), "cnstack-staging/base:stable@sha256:") || !strings.Contains(steps("merge"), "over 2 platform(s), signed") {
		log, _ := os.ReadFile(filepath.Join(n.reports, "merge", "logs", "base.log"))
		t.Errorf("the merge job did not say it merged both platforms:\n%s\nlog:\n%s", out, log)
	}
	if merged := n.tagged("base", "stable"); merged == "" || merged != both { // tagged: signed by the key
		t.Errorf("merged stable = %s, one machine's build of both platforms = %s", merged, both)
	}
	if out, err := cliCmd(n.home, "verify", "--remote", "--key", pub, n.registry+"/cnstack-staging/base:stable").CombinedOutput(); err != nil || !strings.Contains(string(out), "linux/arm64") {
		t.Errorf("verify the merged index (both platforms signed): %v\n%s", err, out)
	}

	// arm64 not verified (no VM on its runner): not promoted, left out of the index.
	for _, p := range []string{"amd64", "arm64"} {
		n.jobHome = filepath.Join(n.dir, "runner-mesh-"+p)
		extra := []string{"--layer", "mesh", "--platforms", "linux/" + p, "--promote-suffix", "-linux-" + p}
		if p == "arm64" {
			extra = append(extra, "--no-boot")
		}
		n.night("mesh-"+p, true, "", extra...)
	}
	n.jobHome = filepath.Join(n.dir, "runner-merge")
	n.script("merge-mesh", true, "", "--merge", "--layer", "mesh", "--platforms", "linux/amd64,linux/arm64")
	if !strings.Contains(steps("merge-mesh"), "over 1 platform(s), signed; left out, not promoted as :stable-<os>-<arch> with a signature of the key: linux/arm64") {
		t.Errorf("the merge job did not leave arm64 out, saying so:\n%s", steps("merge-mesh"))
	}
	if got, amd64 := n.tagged("mesh", "stable"), n.tagged("mesh", "stable-linux-amd64"); got == "" || got == amd64 {
		t.Errorf("mesh:stable = %s: want an index over the amd64 image %s alone", got, amd64)
	}

	// Nothing promoted at all: the layer is skipped, the job does not fail.
	n.script("merge-none", true, "", "--merge", "--layer", "observability", "--platforms", "linux/amd64,linux/arm64")
	if !strings.Contains(steps("merge-none"), "no platform image to merge") {
		t.Errorf("a layer with nothing promoted:\n%s", steps("merge-none"))
	}
	if bytes.Contains(n.outputs.Bytes(), []byte(fakePassword)) {
		t.Error("the key password was printed")
	}
}
