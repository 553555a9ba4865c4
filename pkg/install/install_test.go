package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

func TestLayOutSampleImage(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	st, err := stack.Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&build.Builder{Store: s, Cache: c}).BuildStack(ctx, st, build.StackOptions{Layers: []string{"cnstack"}}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	hosts := filepath.Join(root, "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.0.0.9 sea.hub\n"), 0o644)
	var log strings.Builder
	res, err := Run(ctx, s, Options{Ref: "registry.cnstack.local/cnstack/cnstack:v0.1.0", DataRoot: root, HostsFile: hosts, Log: &log, Env: map[string]string{"PodCIDR": "10.99.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("install failed: %+v\n%s", res.Steps, log.String())
	}
	rootfs := filepath.Join(root, "my-cluster", "rootfs")
	for _, p := range []string{"scripts/init-registry.sh", "bin/cnstack-hello", "manifests/imageList", "application/apps/mesh/Chart.yaml", "README.txt", "statics/audit-policy.yml"} {
		if _, err := os.Stat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	// The kubeadm template is rendered with the cluster env over the image env.
	b, err := os.ReadFile(filepath.Join(rootfs, "etc", "kubeadm.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "imageRepository: sea.hub:5000") || !strings.Contains(string(b), "podSubnet: 10.99.0.0/16") {
		t.Errorf("rendered kubeadm.yml:\n%s", b)
	}
	h, _ := os.ReadFile(hosts)
	if string(h) != "127.0.0.1 localhost\n127.0.0.1 sea.hub\n" {
		t.Errorf("hosts:\n%s", h)
	}
	var statuses []string
	for _, s := range res.Steps {
		statuses = append(statuses, s.Name+"="+s.Status)
	}
	got := strings.Join(statuses, ",")
	if !strings.Contains(got, "embedded registry (scripts/init-registry.sh)=skipped") || !strings.Contains(got, "kubernetes (init-kube.sh, kubeadm)=skipped") {
		t.Errorf("steps: %s", got)
	}
}
