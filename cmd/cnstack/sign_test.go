package main

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/urfave/cli/v3"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/cnstack/cnstack/pkg/sign/signtest"
	"github.com/cnstack/cnstack/pkg/store"
)

// runSign runs the signing commands in-process with a private home.
func runSign(t *testing.T, home string, args ...string) (string, error) {
	out, _, err := runSignErr(t, home, args...)
	return out, err
}

// runSignErr is runSign returning stderr apart.
func runSignErr(t *testing.T, home string, args ...string) (string, string, error) {
	t.Helper()
	return runApp(t, home, args...)
}

func TestSignCommands(t *testing.T) {
	const ref = "registry.example/cnstack/cluster:v1"
	home, keys := t.TempDir(), t.TempDir()
	ctx := t.Context()
	st, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signtest.Push(ctx, st, signtest.Standard(), ref); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(keys, "cosign")
	if out, err := runSign(t, home, "generate-key-pair", "--output-key-prefix", prefix); err != nil || !strings.Contains(out, prefix+".pub") {
		t.Fatalf("generate-key-pair: %v\n%s", err, out)
	}
	if _, err := runSign(t, home, "generate-key-pair", "--output-key-prefix", prefix); err == nil {
		t.Error("generate-key-pair replaced existing keys without --force")
	}
	if _, err := runSign(t, home, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "other")); err != nil {
		t.Fatal(err)
	}

	out, err := runSign(t, home, "verify", "--key", prefix+".pub", ref)
	if err == nil || strings.Count(out, "FAIL") != 3 {
		t.Fatalf("verify of an unsigned image: %v\n%s", err, out)
	}
	out, err = runSign(t, home, "sign", "--key", prefix+".key", "--attest", ref)
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	if strings.Count(out, "added") != 9 || !strings.Contains(out, "in the local store") {
		t.Errorf("sign output, want 3 signatures and 6 attestations added:\n%s", out)
	}
	out, err = runSign(t, home, "verify", "--key", prefix+".pub", "--attestations", ref)
	if err != nil || strings.Count(out, "OK ") != 9 {
		t.Fatalf("verify --attestations: %v\n%s", err, out)
	}
	out, err = runSign(t, home, "verify", "--key", filepath.Join(keys, "other.pub"), ref)
	var ec cli.ExitCoder
	if err == nil || !strings.Contains(err.Error(), "index") || strings.Count(out, "FAIL") != 3 {
		t.Fatalf("verify with a foreign key: %v\n%s", err, out)
	}
	if !errors.As(err, &ec) || ec.ExitCode() != 1 {
		t.Errorf("verify failure exit code: %v", err)
	}

	out, errOut, err := runSignErr(t, home, "sbom", ref)
	if err != nil || !strings.Contains(errOut, "not verified") {
		t.Fatalf("sbom: %v\n%s\n%s", err, out, errOut)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("sbom output is not an SPDX 2.3 document: %v\n%s", err, out)
	}
	arm, err := runSign(t, home, "sbom", "--platform", "linux/arm64", "--key", prefix+".pub", ref)
	if err != nil || !strings.Contains(arm, "arch=arm64") || strings.Contains(arm, "arch=amd64") {
		t.Fatalf("sbom --platform linux/arm64: %v\n%s", err, arm)
	}
	computed, err := runSign(t, home, "sbom", "--compute", "--platform", "linux/arm64", ref)
	if err != nil || computed != arm {
		t.Errorf("computed SBOM differs from the attested one: %v\n%s\n%s", err, computed, arm)
	}
	if _, err := runSign(t, home, "sbom", "--platform", "linux/s390x", ref); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("sbom for a missing platform: %v", err)
	}
}

func TestSignRemote(t *testing.T) {
	ctx := t.Context()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	name := strings.TrimPrefix(srv.URL, "http://") + "/cnstack/cluster"
	repo, err := remote.NewRepository(name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	fx := signtest.Standard()
	if err := signtest.Push(ctx, repo, fx, "v1"); err != nil {
		t.Fatal(err)
	}
	home, keys := t.TempDir(), t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	prefix := filepath.Join(keys, "cosign")
	if _, err := runSign(t, home, "generate-key-pair", "--output-key-prefix", prefix); err != nil {
		t.Fatal(err)
	}
	// Not in the (empty) store: found in the registry.
	out, err := runSign(t, home, "sign", "--key", prefix+".key", name+":v1")
	if err != nil || strings.Count(out, "added") != 3 {
		t.Fatalf("sign in registry: %v\n%s", err, out)
	}
	out, err = runSign(t, home, "verify", "--remote", "--key", prefix+".pub", name+":v1")
	if err != nil || strings.Count(out, "OK ") != 3 {
		t.Fatalf("verify in registry: %v\n%s", err, out)
	}
	// The signatures are where cosign looks: <repo>:sha256-<hex>.sig.
	tag := "sha256-" + fx.Root.Digest.Encoded() + ".sig"
	if _, err := oras.Resolve(ctx, repo, tag, oras.DefaultResolveOptions); err != nil {
		t.Errorf("registry lacks %s: %v", tag, err)
	}
}
