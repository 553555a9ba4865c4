package tooltest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
	"github.com/cnstack/cnstack/internal/testutil/tooltest"
)

// extension is a v0.11 sealer.image.extension as sealer build would write it.
const extension = `{"buildClient":{"sealerVersion":"v0.11.0","buildahVersion":"1.27.1"},"schemaVersion":"v1alpha1","type":"kube-installer","applications":[{"name":"a","type":"shell","files":["a.sh"],"version":"v1"}],"launch":{"app_names":["a"]}}`

var testLabels = map[string]string{
	"cluster.alpha.sealer.io/cluster-runtime-type":   "kubernetes",
	"cluster.alpha.sealer.io/container-runtime-type": "docker",
	"io.sealer.version":                              "v0.11.0",
}

// sealerImage builds a small sealer-compatible cluster image for the host
// platform: OCI media types, one gzip layer holding application/apps/a/a.sh
// with random content (so every image has its own config digest, which sealer
// uses as image ID), config labels and the extension annotation.
func sealerImage(t *testing.T) v1.Image {
	t.Helper()
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	script := []byte("#!/bin/sh\necho " + hex.EncodeToString(nonce) + "\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"application/", "application/apps/", "application/apps/a/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "application/apps/a/a.sh", Mode: 0o755, Size: int64(len(script))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(script); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = runtime.GOOS, runtime.GOARCH
	cfg.Config.Labels = testLabels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(img, map[string]string{"sealer.image.extension": extension}).(v1.Image)
}

// push writes img to ref (plain HTTP) and returns its manifest digest.
func push(t *testing.T, ctx context.Context, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSealerPullInspect(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sealer v0.11 needs root (it writes /etc/containers and mounts overlay); run as root")
	}
	tooltest.Path(t, tooltest.Sealer) // fail early, before the registry starts
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	reg := regproc.Start(t, regproc.Options{})
	img := sealerImage(t)
	ref := reg.Ref("test/cluster:v1")
	digest := push(t, ctx, ref, img)

	store := t.TempDir()
	t.Cleanup(func() {
		if m := tooltest.MountsUnder(t, store); len(m) > 0 {
			t.Errorf("sealer left mounts under its temp store: %v", m)
		}
	})
	env := tooltest.SealerEnv(t, store)
	common := []string{"--log-to-file=false", "--color=never"}

	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, append(common, "pull", "--skip-tls-verify", ref)...); err != nil {
		t.Fatal(err)
	}
	out, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, append(common, "inspect", ref)...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Digest         string          `json:"digest"`
		ImageExtension json.RawMessage `json:"imageExtension"`
		ManifestV1     struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifestv1"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &got); err != nil {
		t.Fatalf("sealer inspect output is not JSON: %v\n%s", err, out)
	}
	if got.Digest != digest.String() {
		t.Errorf("sealer inspect digest = %s, want the pushed %s", got.Digest, digest)
	}
	if _, ok := got.ManifestV1.Annotations["sealer.image.extension"]; ok {
		t.Errorf("sealer inspect manifestv1 still has the extension annotation; sealer v0.11 strips it")
	}

	// Inspect fills imageExtension.labels from the config labels; everything
	// else must be exactly what the annotation said.
	var gotExt, wantExt map[string]any
	if err := json.Unmarshal(got.ImageExtension, &gotExt); err != nil {
		t.Fatalf("imageExtension: %v\n%s", err, got.ImageExtension)
	}
	if err := json.Unmarshal([]byte(extension), &wantExt); err != nil {
		t.Fatal(err)
	}
	labels, _ := gotExt["labels"].(map[string]any)
	delete(gotExt, "labels")
	if !reflect.DeepEqual(gotExt, wantExt) {
		t.Errorf("imageExtension round trip:\n got  %s\n want %s", got.ImageExtension, extension)
	}
	for k, v := range testLabels {
		if labels[k] != v {
			t.Errorf("imageExtension.labels[%q] = %v, want %q", k, labels[k], v)
		}
	}

	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, append(common, "rmi", ref)...); err != nil {
		t.Fatal(err)
	}
	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Sealer, append(common, "inspect", ref)...); err == nil ||
		!strings.Contains(err.Error(), "image not known") {
		t.Errorf("sealer inspect after rmi: %v; want an image not known failure", err)
	}
}

func TestCosignSignVerify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := append(tooltest.CosignEnv(t), "COSIGN_PASSWORD=")

	reg := regproc.Start(t, regproc.Options{})
	ref := reg.Ref("test/signed:v1")
	digest := push(t, ctx, ref, sealerImage(t))
	byDigest := reg.Ref("test/signed@" + digest.String())

	keys := t.TempDir()
	for _, prefix := range []string{"good", "other"} {
		if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, prefix)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Cosign, "sign", "--key", filepath.Join(keys, "good.key"),
		"--tlog-upload=false", "--allow-insecure-registry", "-y", byDigest); err != nil {
		t.Fatal(err)
	}

	// cosign v2's default form: a signature manifest at tag sha256-<hex>.sig.
	sigRef, err := name.ParseReference(reg.Ref("test/signed:"+digest.Algorithm+"-"+digest.Hex+".sig"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(sigRef, remote.WithContext(ctx)); err != nil {
		t.Errorf("signature tag %s: %v", sigRef, err)
	}

	verify := func(pub string) (string, error) {
		return tooltest.RunEnv(t, ctx, env, tooltest.Cosign, "verify", "--key", filepath.Join(keys, pub),
			"--insecure-ignore-tlog", "--allow-insecure-registry", byDigest)
	}
	out, err := verify("good.pub")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, digest.String()) {
		t.Errorf("cosign verify output does not name %s:\n%s", digest, out)
	}
	if _, err := verify("other.pub"); err == nil || !strings.Contains(err.Error(), "no matching signatures") {
		t.Errorf("cosign verify with another key: %v; want a no matching signatures failure", err)
	}
	// A public key with one bit flipped is not the signer's either.
	tampered := flipKeyBit(t, filepath.Join(keys, "good.pub"))
	if _, err := verify(filepath.Base(tampered)); err == nil {
		t.Errorf("cosign verify with a tampered key succeeded; want failure")
	}
	// An image nobody signed has nothing to verify.
	unsigned := push(t, ctx, reg.Ref("test/unsigned:v1"), sealerImage(t))
	if _, err := tooltest.RunEnv(t, ctx, env, tooltest.Cosign, "verify", "--key", filepath.Join(keys, "good.pub"),
		"--insecure-ignore-tlog", "--allow-insecure-registry", reg.Ref("test/unsigned@"+unsigned.String())); err == nil ||
		!strings.Contains(err.Error(), "no signatures found") {
		t.Errorf("cosign verify of an unsigned image: %v; want a no signatures found failure", err)
	}
}

// flipKeyBit writes a copy of the PEM public key at path with one bit of the
// key point changed and returns the copy's path (in the same directory).
func flipKeyBit(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// Line 1 is base64 of the SPKI header and the start of the point; change a
	// character near its end, inside the X coordinate.
	b := []byte(lines[1])
	i := len(b) - 4
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	lines[1] = string(b)
	out := filepath.Join(filepath.Dir(path), "tampered.pub")
	if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCraneDigest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := regproc.Start(t, regproc.Options{})
	ref := reg.Ref("test/crane:v1")
	digest := push(t, ctx, ref, sealerImage(t))

	out, err := tooltest.Run(t, ctx, tooltest.Crane, "digest", "--insecure", ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != digest.String() {
		t.Errorf("crane digest = %s, want %s", got, digest)
	}
}

// TestVersions checks that each installed tool is the pinned version.
func TestVersions(t *testing.T) {
	tests := []struct {
		tool string
		args []string
		want string
	}{
		{tooltest.Sealer, []string{"version"}, `"gitVersion":"v0.11.0"`},
		{tooltest.Cosign, []string{"version"}, "v2.6.5"},
		{tooltest.Registry, []string{"--version"}, "v3.1.2"},
		{tooltest.Crane, []string{"version"}, "v0.22.1"},
	}
	for _, tc := range tests {
		t.Run(tc.tool, func(t *testing.T) {
			out, err := tooltest.Run(t, context.Background(), tc.tool, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s %s = %q, want it to contain %q", tc.tool, strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}
