package install

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnstack/cnstack/internal/testutil/zstdimage"
	"github.com/cnstack/cnstack/pkg/build"
	"github.com/cnstack/cnstack/pkg/stack"
	"github.com/cnstack/cnstack/pkg/store"
)

const sampleRef = "registry.cnstack.local/cnstack/cnstack:v0.1.0"

// sampleStore builds the sample stack's cnstack layer into a new store.
func sampleStore(t *testing.T) *store.Store {
	t.Helper()
	home := t.TempDir()
	s, _ := store.Open(filepath.Join(home, "store"))
	c, _ := build.OpenCache(filepath.Join(home, "cache"))
	st, err := stack.Load("../../testdata/stack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&build.Builder{Store: s, Cache: c}).BuildStack(t.Context(), st, build.StackOptions{Layers: []string{"cnstack"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLayOutSampleImage(t *testing.T) {
	ctx := t.Context()
	s := sampleStore(t)
	root := t.TempDir()
	hosts := filepath.Join(root, "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.0.0.9 sea.hub\n"), 0o644)
	var log strings.Builder
	res, err := Run(ctx, s, Options{Ref: sampleRef, DataRoot: root, HostsFile: hosts, Log: &log, Env: map[string]string{"PodCIDR": "10.99.0.0/16"}})
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

// Issue 9: install read any layer not named gzip as a raw tar, so a zstd
// image was laid out as garbage. The same image with zstd layers must give
// the same rootfs, file for file.
func TestLayOutZstdImageAsGzip(t *testing.T) {
	ctx := t.Context()
	s := sampleStore(t)
	const zstdRef = "registry.cnstack.local/cnstack/cnstack:zstd"
	if _, err := zstdimage.Recompress(ctx, s, sampleRef, zstdRef); err != nil {
		t.Fatal(err)
	}
	trees := map[string]string{}
	for _, ref := range []string{sampleRef, zstdRef} {
		root := t.TempDir()
		hosts := filepath.Join(root, "hosts")
		var log strings.Builder
		res, err := Run(ctx, s, Options{Ref: ref, DataRoot: root, HostsFile: hosts, Log: &log})
		if err != nil || !res.OK {
			t.Fatalf("install %s: %v %+v\n%s", ref, err, res.Steps, log.String())
		}
		trees[ref] = treeOf(t, filepath.Join(root, "my-cluster", "rootfs"))
	}
	if !strings.Contains(trees[sampleRef], "bin/cnstack-hello ") {
		t.Fatalf("the gzip image's rootfs lacks bin/cnstack-hello:\n%s", trees[sampleRef])
	}
	if trees[sampleRef] != trees[zstdRef] {
		t.Errorf("the zstd image's rootfs differs from the gzip one's\ngzip:\n%s\nzstd:\n%s", trees[sampleRef], trees[zstdRef])
	}
}

// treeOf lists every path under dir with its type, mode and sha256.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
