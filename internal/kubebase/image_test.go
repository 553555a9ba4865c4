package kubebase

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/store"
)

// stubBinaries are the payload names ci/kube-base.sh and images.yaml use.
var stubBinaries = strings.Fields(`kubeadm kubelet kubectl seautil registry helm
	containerd containerd-shim-runc-v2 ctr runc crictl bridge host-local loopback portmap flannel
	kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd etcdctl coredns pause flanneld lvscare`)

// TestBaseFromStubPayload is make test's fast Kubernetes check: it runs
// ci/kube-base.sh — the same script `make kube-base` runs — on stub
// binaries, from a copy of the layer, and checks the image it builds keeps
// sealer v0.11's run contract: a kube-installer for containerd with the
// scripts, kubeadm config, audit policy and plugin sealer reads, flannel
// launched, and every image kubeadm, flannel, sealer's workers and the boot
// checks need in registry/ under the name kubeadm expects. The real binaries
// and the real sealer run are `make e2e` (pkg/verify TestE2EKube*).
func TestBaseFromStubPayload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cnstack and a cluster image")
	}
	repo := filepath.Join(layerDir(t), "..", "..")
	dir := t.TempDir()
	bin := filepath.Join(dir, "cnstack")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cnstack")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tools := filepath.Join(dir, "tools")
	payload := filepath.Join(tools, "payload", "linux-amd64")
	for _, b := range stubBinaries {
		writeFile(t, filepath.Join(payload, b), "#!/bin/sh\necho stub "+b+"\n", 0o755)
	}
	for _, set := range []string{"iptables/usr/sbin/xtables-nft-multi", "busybox/bin/busybox"} {
		writeFile(t, filepath.Join(payload, "debs", set), "stub\n", 0o755)
	}
	layer := filepath.Join(dir, "kubernetes")
	if out, err := exec.Command("cp", "-r", layerDir(t), layer).CombinedOutput(); err != nil {
		t.Fatalf("copy the layer: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(layer, "payload"))
	home := filepath.Join(dir, "home")
	const ref = "registry.cnstack.local/cnstack/kubernetes:v1.34.4"
	cmd = exec.Command("bash", filepath.Join(repo, "ci", "kube-base.sh"))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CNSTACK="+bin, "CNSTACK_HOME="+home, "CNSTACK_TOOLS_DIR="+tools,
		"PLATFORMS=linux/amd64", "SKIP_PAYLOAD=1", "KUBE_LAYER="+layer, "KUBE_BASE_REF="+ref)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ci/kube-base.sh: %v\n%s", err, out)
	}

	ctx := t.Context()
	s, err := store.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err = oci.SelectPlatform(ctx, s, desc, oci.DefaultPlatform)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	b, err := content.FetchAll(ctx, s, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ext, err := clusterimage.ParseExtension(m.Annotations[clusterimage.AnnotationExtension])
	if err != nil {
		t.Fatal(err)
	}
	if ext.Type != clusterimage.KubeInstaller || strings.Join(ext.Launch.AppNames, ",") != "flannel" || ext.App("flannel") == nil {
		t.Errorf("extension: type %s, launch %v, flannel app %+v", ext.Type, ext.Launch.AppNames, ext.App("flannel"))
	}
	cb, err := content.FetchAll(ctx, s, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		clusterimage.LabelClusterRuntimeType:              "kubernetes",
		clusterimage.LabelContainerRuntimeType:            "containerd",
		"cluster.alpha.sealer.io/cluster-runtime-version": "v1.34.4",
	} {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
		}
	}

	// Every file sealer v0.11 runs or reads.
	files := map[string]bool{}
	if err := oci.Walk(ctx, s, m.Layers, func(h *tar.Header, _ io.Reader) error {
		files[h.Name] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"scripts/containerd.sh", "scripts/uninstall-containerd.sh", "scripts/init-registry.sh", "scripts/init-kube.sh",
		"etc/kubeadm.yml", "statics/audit-policy.yml", "plugins/kubelet-node-ip.yaml", "manifests/imageList",
		"bin/kubeadm", "bin/kubelet", "bin/kubectl", "bin/seautil", "bin/registry", "bin/helm",
		"cri/bin/containerd", "cri/bin/runc", "cri/bin/crictl", "cri/cni/bridge", "cri/cni/flannel",
		"application/apps/flannel/flannel.yaml"} {
		if !files[f] {
			t.Errorf("the image lacks %s", f)
		}
	}

	// registry/ holds each image under the path containerd asks sea.hub:5000 for.
	images, err := clusterimage.ParseContainerImages(m.Annotations[clusterimage.AnnotationContainerImages])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ci := range images {
		got = append(got, ci.Image)
	}
	sort.Strings(got)
	for _, want := range []string{
		"registry.k8s.io/kube-apiserver:v1.34.4", "registry.k8s.io/kube-controller-manager:v1.34.4", "registry.k8s.io/kube-scheduler:v1.34.4",
		"registry.k8s.io/kube-proxy:v1.34.4", "registry.k8s.io/etcd:3.6.5-0", "registry.k8s.io/coredns/coredns:v1.12.1", "registry.k8s.io/pause:3.10.1",
		"registry.cnstack.local/cnstack/flannel:v0.28.10", "registry.cnstack.local/cnstack/busybox:1.35.0", "docker.io/sealerio/lvscare:v1.1.3-beta.8",
	} {
		r, err := reference.Parse(want)
		if err != nil {
			t.Fatal(err)
		}
		link := "registry/docker/registry/v2/repositories/" + r.Repository + "/_manifests/tags/" + r.Tag + "/current/link"
		if !files[link] {
			t.Errorf("registry/ has no %s (%s); images %v", want, link, got)
		}
	}
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
