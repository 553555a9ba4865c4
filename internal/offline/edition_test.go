package offline

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// stubBinaries are the payload names ci/kube-base.sh, ci/offline-edition.sh
// and their images.yaml recipes use.
var stubBinaries = strings.Fields(`kubeadm kubelet kubectl seautil registry helm
	containerd containerd-shim-runc-v2 ctr runc crictl bridge host-local loopback portmap flannel
	kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd etcdctl coredns pause flanneld lvscare
	kruise-manager kruise-daemon node_exporter kube-state-metrics prometheus promtool otelcol chaosblade-operator
	daprd dapr-operator dapr-sentry dapr-injector dapr-placement dapr-scheduler`)

func repoRoot(t *testing.T) string { return filepath.Join(editionDir(t), "..", "..") }

func buildCnstack(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "cnstack")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cnstack")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// copyEdition copies Kubefiles/offline without its generated files.
func copyEdition(t *testing.T, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", editionDir(t), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the edition: %v\n%s", err, out)
	}
	for _, layer := range []string{"base", "mesh", "ha"} {
		os.RemoveAll(filepath.Join(dst, layer, "generated"))
	}
}

// TestLint: both stacks of the edition (the edition and its negative variant)
// lint clean once the generated files exist, and a missing generated file is
// reported by cnstack lint with its Kubefile position.
func TestLint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cnstack")
	}
	dir := t.TempDir()
	bin := buildCnstack(t, dir)
	ed := filepath.Join(dir, "offline")
	copyEdition(t, ed)
	out, err := exec.Command(bin, "lint", ed).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "generated/kruise-crds.yaml") || !strings.Contains(string(out), "Kubefile:") {
		t.Errorf("lint without generated files: %v, want an error naming generated/kruise-crds.yaml at its Kubefile line:\n%s", err, out)
	}
	gen := filepath.Join(ed, "base", "generated")
	os.MkdirAll(gen, 0o755)
	os.WriteFile(filepath.Join(gen, "kruise-crds.yaml"), []byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: clonesets.apps.kruise.io\n"), 0o644)
	os.WriteFile(filepath.Join(gen, "kruise-manager-role.yaml"), []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: kruise-manager\n"), 0o644)
	haGen := filepath.Join(ed, "ha", "generated")
	os.MkdirAll(haGen, 0o755)
	chart := filepath.Join(ed, "mesh", "generated", "chart", "dapr")
	writeFile(t, filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: dapr\nversion: 1.18.2\n", 0o644)
	writeFile(t, filepath.Join(chart, "values.yaml"), "{}\n", 0o644)
	writeFile(t, filepath.Join(chart, "templates", "NOTES.txt"), "dapr\n", 0o644)
	os.WriteFile(filepath.Join(haGen, "chaosblade-crds.yaml"), []byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: chaosblades.chaosblade.io\n"), 0o644)
	for _, s := range []string{ed, filepath.Join(ed, "negative")} {
		if out, err := exec.Command(bin, "lint", s).CombinedOutput(); err != nil || !strings.Contains(string(out), "0 errors, 0 warnings") {
			t.Errorf("cnstack lint %s: %v\n%s", s, err, out)
		}
	}
}

// TestEditionFromStubPayload runs ci/offline-edition.sh — what `make
// offline-edition` runs — on stub binaries (the Kubernetes base first, with
// ci/kube-base.sh, as the script does when the store lacks it), with the real
// controller-gen, and checks the images it builds: kruise's generated CRDs and
// ClusterRole, our manifests and the checks in the layers, LAUNCH order, and
// every image the pods and checks run in registry/; the negative variant
// lacks exactly the node-exporter Service and the operator's pod permission.
// The real binaries in a VM are TestE2EOfflineEdition's.
func TestEditionFromStubPayload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cnstack and three cluster images")
	}
	toolsBin := os.Getenv("CNSTACK_TOOLS_BIN")
	if toolsBin == "" {
		toolsBin = filepath.Join(repoRoot(t), ".cache", "tools", "bin")
	}
	if _, err := os.Stat(filepath.Join(toolsBin, "controller-gen")); err != nil {
		t.Skipf("controller-gen is not built: run `tools/install.sh controller-gen` (CNSTACK_TOOLS_BIN=%s)", toolsBin)
	}
	dir := t.TempDir()
	bin := buildCnstack(t, dir)
	tools := filepath.Join(dir, "tools")
	payload := filepath.Join(tools, "payload", "linux-amd64")
	for _, b := range stubBinaries {
		writeFile(t, filepath.Join(payload, b), "#!/bin/sh\necho stub "+b+"\n", 0o755)
	}
	for _, set := range []string{"iptables/usr/sbin/xtables-nft-multi", "busybox/bin/busybox"} {
		writeFile(t, filepath.Join(payload, "debs", set), "stub\n", 0o755)
	}
	ed := filepath.Join(dir, "offline")
	copyEdition(t, ed)
	// The Kubernetes base from a copy of its layer (its payload/ is written there).
	kube := filepath.Join(dir, "kubernetes")
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "Kubefiles", "kubernetes"), kube).CombinedOutput(); err != nil {
		t.Fatalf("copy the base layer: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(kube, "payload"))
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "CNSTACK="+bin, "CNSTACK_HOME="+home, "CNSTACK_TOOLS_DIR="+tools, "CNSTACK_TOOLS_BIN="+toolsBin,
		"PLATFORMS=linux/amd64", "SKIP_PAYLOAD=1", "KUBE_LAYER="+kube, "OFFLINE_DIR="+ed, "NEGATIVE=1")
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "ci", "offline-edition.sh"))
	cmd.Dir = repoRoot(t)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ci/offline-edition.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "/sealer registry.cnstack.local/cnstack/ha:v0.1.0-offline\n") {
		t.Errorf("the script does not say what to boot:\n%s", out)
	}

	s, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	top := readImage(t, s, "registry.cnstack.local/cnstack/ha:v0.1.0-offline")
	if got := strings.Join(top.ext.Launch.AppNames, ","); got != "flannel,kruise,dapr,node-exporter,kube-state-metrics,otel-collector,prometheus,chaosblade" {
		t.Errorf("launch %s", got)
	}
	for _, f := range []string{
		"checks/kruise-cloneset.sh", "checks/dapr-invoke.sh", "manifests/dapr-apps.yaml",
		"application/apps/dapr/dapr/Chart.yaml", "application/apps/dapr/dapr/crds/components.yaml",
		"application/apps/dapr/dapr.yaml", "application/apps/dapr/dapr-variant.yaml", "application/apps/dapr/dapr-images.yaml",
		"application/apps/dapr/dapr-operator-no-leader-election.json", "scripts/kube-retry.sh",
		"checks/observability-metrics.sh", "checks/observability-pipeline.sh", "checks/chaosblade-pod-delete.sh",
		"manifests/kruise-check-v1.yaml", "manifests/kruise-check-v2.yaml", "manifests/imageList",
		"manifests/chaos-target.yaml", "manifests/chaos-pod-delete.yaml",
		"application/apps/otel-collector/otel-collector.yaml", "application/apps/prometheus/prometheus.yaml",
		"application/apps/chaosblade/chaosblade-crds.yaml", "application/apps/chaosblade/chaosblade.yaml", "application/apps/chaosblade/chaosblade-rbac.yaml",
		"application/apps/kruise/kruise-crds.yaml", "application/apps/kruise/kruise-manager-role.yaml", "application/apps/kruise/kruise.yaml",
		"application/apps/node-exporter/node-exporter.yaml", "application/apps/node-exporter/node-exporter-service.yaml",
		"application/apps/kube-state-metrics/kube-state-metrics.yaml",
		"bin/kubeadm", "application/apps/flannel/flannel.yaml",
	} {
		if _, ok := top.files[f]; !ok {
			t.Errorf("the top image lacks %s", f)
		}
	}
	// Every app of the edition installs through scripts/kube-retry.sh (flannel is the
	// Kubernetes base's CNI, installed before any load).
	for _, app := range top.ext.Applications {
		if app.Name == "flannel" {
			continue
		}
		if len(app.Cmds) != 1 || !strings.HasPrefix(app.Cmds[0], "bash ../../../scripts/kube-retry.sh ") {
			t.Errorf("app %s does not install through scripts/kube-retry.sh: %q", app.Name, app.Cmds)
		}
	}
	crds := top.files["application/apps/kruise/kruise-crds.yaml"]
	for _, w := range []string{"name: clonesets.apps.kruise.io", "name: sidecarsets.apps.kruise.io", "Generated by controller-gen v0.23.0"} {
		if !strings.Contains(crds, w) {
			t.Errorf("kruise-crds.yaml lacks %q", w)
		}
	}
	if crd := top.files["application/apps/chaosblade/chaosblade-crds.yaml"]; !strings.Contains(crd, "name: chaosblades.chaosblade.io") || !strings.Contains(crd, "scope: Cluster") {
		t.Errorf("chaosblade-crds.yaml is not the cluster-scoped ChaosBlade CRD:\n%.400s", crd)
	}
	// Dapr's chart comes from the pinned module, stamped with its version.
	if c := top.files["application/apps/dapr/dapr/Chart.yaml"]; !strings.Contains(c, "version: '1.18.2'") || !strings.Contains(c, "name: dapr") {
		t.Errorf("the Dapr chart is not dapr 1.18.2:\n%s", c)
	}
	if role := top.files["application/apps/kruise/kruise-manager-role.yaml"]; !strings.Contains(role, "kind: ClusterRole") || !strings.Contains(role, "clonesets") {
		t.Errorf("kruise-manager-role.yaml is not the manager's ClusterRole:\n%.400s", role)
	}
	// Every image a pod or a check runs is carried, under the path containerd asks sea.hub:5000 for.
	for _, want := range []string{
		"registry.cnstack.local/cnstack/kruise:v1.9.1",
		"registry.cnstack.local/cnstack/node-exporter:v1.12.1",
		"registry.cnstack.local/cnstack/kube-state-metrics:v2.20.0",
		"registry.cnstack.local/cnstack/prometheus:v3.16.0",
		"registry.cnstack.local/cnstack/otel-collector:v0.165.0",
		"registry.cnstack.local/cnstack/chaosblade-operator:v1.8.0",
		"registry.cnstack.local/cnstack/dapr/daprd:1.18.2",
		"registry.cnstack.local/cnstack/dapr/operator:1.18.2",
		"registry.cnstack.local/cnstack/dapr/sentry:1.18.2",
		"registry.cnstack.local/cnstack/dapr/injector:1.18.2",
		"registry.cnstack.local/cnstack/dapr/placement:1.18.2",
		"registry.cnstack.local/cnstack/busybox:1.35.0",
		"registry.cnstack.local/cnstack/busybox:1.35.0-inplace",
		"registry.k8s.io/kube-apiserver:v1.34.4",
	} {
		r, err := reference.Parse(want)
		if err != nil {
			t.Fatal(err)
		}
		link := "registry/docker/registry/v2/repositories/" + r.Repository + "/_manifests/tags/" + r.Tag + "/current/link"
		if _, ok := top.files[link]; !ok {
			t.Errorf("registry/ has no %s (%s)", want, link)
		}
	}
	// The two toolbox tags are different images: an in-place update has something to do.
	a := top.files["registry/docker/registry/v2/repositories/cnstack/busybox/_manifests/tags/1.35.0/current/link"]
	b := top.files["registry/docker/registry/v2/repositories/cnstack/busybox/_manifests/tags/1.35.0-inplace/current/link"]
	if a == "" || a == b {
		t.Errorf("busybox:1.35.0 (%s) and busybox:1.35.0-inplace (%s) must differ", a, b)
	}

	neg := readImage(t, s, "registry.cnstack.local/cnstack/ha:v0.1.0-offline-negative")
	if _, ok := neg.files["application/apps/node-exporter/node-exporter-service.yaml"]; ok {
		t.Error("the negative variant carries the node-exporter Service")
	}
	if _, ok := neg.files["application/apps/node-exporter/no-node-exporter-service.yaml"]; !ok {
		t.Error("the negative variant lacks its marker no-node-exporter-service.yaml")
	}
	if _, ok := neg.files["application/apps/chaosblade/chaosblade-rbac.yaml"]; ok {
		t.Error("the negative variant carries the operator's full ClusterRole")
	}
	if _, ok := neg.files["application/apps/chaosblade/chaosblade-no-pod-delete.yaml"]; !ok {
		t.Error("the negative variant lacks its marker chaosblade-no-pod-delete.yaml")
	}
	if v := top.files["application/apps/dapr/dapr.yaml"]; !strings.Contains(v, "registry: registry.cnstack.local/cnstack/dapr") {
		t.Errorf("the edition's Dapr values are not the edition's:\n%s", v)
	}
	if v := top.files["application/apps/dapr/dapr-variant.yaml"]; strings.Contains(v, "dapr_sidecar_injector") {
		t.Errorf("the edition's Dapr override touches the injector:\n%s", v)
	}
	if v := neg.files["application/apps/dapr/dapr-variant.yaml"]; !strings.Contains(v, "dapr_sidecar_injector:\n  enabled: false") {
		t.Errorf("the negative variant's Dapr override keeps the injector:\n%s", v)
	}
	if top.files["application/apps/dapr/dapr.yaml"] != neg.files["application/apps/dapr/dapr.yaml"] {
		t.Error("the negative variant's base Dapr values differ from the edition's: only the override may")
	}
	for _, c := range []string{"checks/dapr-invoke.sh", "checks/observability-metrics.sh", "checks/chaosblade-pod-delete.sh"} {
		if _, ok := neg.files[c]; !ok {
			t.Errorf("the negative variant lacks %s, the check that must catch it", c)
		}
	}
}

type image struct {
	ext   *clusterimage.Extension
	files map[string]string // path -> content (small files only)
}

// readImage reads the linux/amd64 image REF from the store: its extension and
// every file of its layers (contents kept for files under 1 MiB).
func readImage(t *testing.T, s *store.Store, ref string) image {
	t.Helper()
	ctx := t.Context()
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	desc, err = oci.SelectPlatform(ctx, s, desc, oci.DefaultPlatform)
	if err != nil {
		t.Fatal(err)
	}
	b, err := content.FetchAll(ctx, s, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	img := image{files: map[string]string{}}
	if img.ext, err = clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension]); err != nil {
		t.Fatal(err)
	}
	if err := oci.Walk(ctx, s, m.Layers, func(h *tar.Header, r io.Reader) error {
		if h.Size < 1<<20 {
			c, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			img.files[h.Name] = string(c)
		} else {
			img.files[h.Name] = ""
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return img
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
