package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/pkg/clusterimage"
)

// runCLI runs the cnstack CLI (this test binary re-executed) and fails the
// test on error.
func runCLI(t *testing.T, env []string, home string, args ...string) string {
	t.Helper()
	cmd := cliCmd(home, args...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cnstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sealer v0.11 needs root (it writes /etc/containers and mounts overlay); CI runs as root")
	}
}

// TestE2ESealerPullInspect pushes cnstack-built images to a real registry
// process and checks that the real sealer v0.11 pulls and inspects them and
// reports the applications, launch and env cnstack wrote.
func TestE2ESealerPullInspect(t *testing.T) {
	requireRoot(t)
	tooltest.Path(t, tooltest.Sealer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	home := t.TempDir()
	runCLI(t, nil, home, "stack", "build", "--build-mode", "lite", sample)
	reg := regproc.Start(t, regproc.Options{})
	sealerStore := t.TempDir()
	env := tooltest.SealerEnv(t, sealerStore)
	t.Cleanup(func() {
		if m := tooltest.MountsUnder(t, sealerStore); len(m) > 0 {
			t.Errorf("sealer left mounts: %v", m)
		}
	})
	for _, layer := range []string{"cnstack", "addon-demo"} {
		src := "registry.cnstack.local/cnstack/" + layer + ":v0.1.0"
		dst := reg.Ref("cnstack/" + layer + ":v0.1.0")
		runCLI(t, nil, home, "push", src, dst)
		if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "--color=never", "pull", "--skip-tls-verify", dst); err != nil {
			t.Fatalf("sealer pull: %v", err)
		}
		out, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "--color=never", "inspect", dst)
		if err != nil {
			t.Fatalf("sealer inspect: %v", err)
		}
		var got clusterimage.ImageSpec
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("sealer inspect output: %v\n%s", err, out)
		}
		var want clusterimage.ImageSpec
		if err := json.Unmarshal([]byte(runCLI(t, nil, home, "inspect", src)), &want); err != nil {
			t.Fatal(err)
		}
		ge, we := got.ImageExtension, want.ImageExtension
		if ge.Type != we.Type || !reflect.DeepEqual(ge.Launch.AppNames, we.Launch.AppNames) || !reflect.DeepEqual(ge.Env, we.Env) {
			t.Errorf("%s: sealer sees type %q launch %v env %v; cnstack wrote %q %v %v", layer, ge.Type, ge.Launch.AppNames, ge.Env, we.Type, we.Launch.AppNames, we.Env)
		}
		if len(ge.Applications) != len(we.Applications) {
			t.Fatalf("%s: sealer sees %d apps, cnstack wrote %d", layer, len(ge.Applications), len(we.Applications))
		}
		for i, a := range we.Applications {
			g := ge.Applications[i]
			if g.Name != a.Name || g.Type != a.Type || !reflect.DeepEqual(g.Files, a.Files) || !reflect.DeepEqual(g.Cmds, a.Cmds) || !reflect.DeepEqual(g.Env, a.Env) {
				t.Errorf("%s: app %d: sealer sees %+v, cnstack wrote %+v", layer, i, g, a)
			}
		}
		if got.Digest != want.Digest || !reflect.DeepEqual(ge.Labels, we.Labels) {
			t.Errorf("%s: digest %s labels %v; cnstack %s %v", layer, got.Digest, ge.Labels, want.Digest, we.Labels)
		}
		if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "rmi", dst); err != nil {
			t.Errorf("sealer rmi: %v", err)
		}
	}
}

// TestE2EShip is issue 4's pipeline: build → sign → push to `cnstack
// registry serve` → real cosign verify → save → check with no network →
// load into a second registry under another prefix → real cosign verify
// there → sealer load -i of the --format sealer bundle and sealer inspect.
func TestE2EShip(t *testing.T) {
	requireRoot(t)
	tooltest.Path(t, tooltest.Cosign)
	tooltest.Path(t, tooltest.Sealer)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	home, work := t.TempDir(), t.TempDir()
	keyEnv := []string{"COSIGN_PASSWORD="}
	runCLI(t, nil, home, append([]string{"stack", "build"}, append(sampleMirrors(t), sample)...)...)
	const top = "registry.cnstack.local/cnstack/cnstack:v0.1.0"
	runCLI(t, keyEnv, home, "generate-key-pair", "--output-key-prefix", filepath.Join(work, "cosign"))
	key, pub := filepath.Join(work, "cosign.key"), filepath.Join(work, "cosign.pub")
	runCLI(t, keyEnv, home, "sign", "--key", key, "--attest", top)

	reg1 := serveRegistry(t, home, filepath.Join(work, "reg1"))
	dest := reg1 + "/cnstack/cnstack:v0.1.0"
	out := runCLI(t, nil, home, "push", top, dest)
	digest := between(out, "@", " ")
	cosignEnv := tooltest.CosignEnv(t)
	cosignVerify := func(ref string) {
		t.Helper()
		if _, err := tooltest.RunEnv(t, ctx, cosignEnv, tooltest.Cosign, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref); err != nil {
			t.Fatalf("cosign verify %s: %v", ref, err)
		}
		for _, typ := range []string{"spdxjson", "slsaprovenance1"} {
			if _, err := tooltest.RunEnv(t, ctx, cosignEnv, tooltest.Cosign, "verify-attestation", "--key", pub, "--type", typ, "--insecure-ignore-tlog", "--allow-insecure-registry", ref); err != nil {
				t.Fatalf("cosign verify-attestation --type %s %s: %v", typ, ref, err)
			}
		}
	}
	cosignVerify(reg1 + "/cnstack/cnstack@" + digest)

	bundleFile := filepath.Join(work, "cnstack.tar")
	runCLI(t, nil, home, "save", "-o", bundleFile, top)
	// check inside a network namespace with no interfaces but loopback down:
	// any network access would fail the check.
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is needed to prove check makes no network access")
	}
	cmd := exec.Command(unshare, "-n", os.Args[0], "--home", home, "check", "--key", pub, bundleFile)
	cmd.Env = append(os.Environ(), "CNSTACK_AS_CLI=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("check in a network namespace: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "signature: 1 of 1 signatures verified") {
		t.Fatalf("check did not verify signatures:\n%s", out)
	}

	// Relocate into a second registry, from a fresh store, as a private cloud would.
	reg2 := serveRegistry(t, home, filepath.Join(work, "reg2"))
	site := t.TempDir()
	out = runCLI(t, nil, site, "load", "-i", bundleFile, "--to", reg2+"/private")
	if !strings.Contains(out, reg2+"/private/cnstack/cnstack:v0.1.0") {
		t.Fatalf("relocation output:\n%s", out)
	}
	cosignVerify(reg2 + "/private/cnstack/cnstack@" + digest)

	// The sealer-format bundle loads into the real sealer.
	sealerBundle := filepath.Join(work, "sealer.tar")
	runCLI(t, nil, home, "save", "--format", "sealer", "-o", sealerBundle, top)
	sealerStore := t.TempDir()
	env := tooltest.SealerEnv(t, sealerStore)
	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "load", "-i", sealerBundle); err != nil {
		t.Fatalf("sealer load: %v", err)
	}
	out2, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "inspect", top)
	if err != nil {
		t.Fatalf("sealer inspect after load: %v", err)
	}
	var spec clusterimage.ImageSpec
	if err := json.Unmarshal([]byte(out2), &spec); err != nil || len(spec.ImageExtension.Applications) != 5 {
		t.Fatalf("sealer inspect after load: %v\n%s", err, out2)
	}
	tooltest.RunEnv(t, ctx, env, tooltest.Sealer, "-q", "--log-to-file=false", "rmi", top)
}

// serveRegistry starts `cnstack registry serve` on a free loopback port.
func serveRegistry(t *testing.T, home, root string) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := cliCmd(home, "registry", "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--root", root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("registry serve did not start")
	return ""
}

// between returns the text of s between the first start and the next end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}
