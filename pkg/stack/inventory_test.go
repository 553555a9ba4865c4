package stack

import (
	"testing"

	"github.com/cnstack/cnstack/pkg/lockfile"
)

func TestInventory(t *testing.T) {
	const sum = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dir := writeStack(t, header, map[string]string{
		"base": "FROM reg.local/k8s:v1\n" +
			"APP kruise local://v.yaml helm+https://charts.example.com/kruise:1.8.3\n" +
			"ADD --checksum=" + sum + " https://example.com/x.tgz etc/\n",
		"top": "FROM base\n" +
			"APP rocketmq oci://reg.example.com/charts/rocketmq:0.0.1\n" +
			"APP extra local://extra.yaml\n" +
			"LAUNCH [\"kruise\", \"rocketmq\"]\n",
	})
	s, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	lock := &lockfile.File{
		Images: []lockfile.Image{{Image: "docker.io/openkruise/kruise-manager:v1.8.3", Layers: []string{"base"}}},
		Charts: []lockfile.Chart{{Chart: "helm+https://charts.example.com/kruise:1.8.3", URL: "https://charts.example.com/kruise-1.8.3.tgz", Digest: sum}},
	}
	for _, tt := range []struct {
		name      string
		lock      *lockfile.File
		inStore   func(string) bool
		base      string
		kruisePin string
		unlocked  int
		images    int
	}{
		{"nothing at hand", nil, nil, BaseMissing, PinUnlocked, 2, -1},
		{"locked, base in the store", lock, func(r string) bool { return r == "reg.local/k8s:v1" }, BaseInStore, PinLocked, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := s.Inventory(tt.lock, "", tt.inStore)
			if len(inv.Layers) != 2 {
				t.Fatalf("%d layers", len(inv.Layers))
			}
			base, top := inv.Layers[0], inv.Layers[1]
			if base.Base != tt.base || top.Base != "" || base.Images != tt.images {
				t.Errorf("base %q (images %d), top %q", base.Base, base.Images, top.Base)
			}
			if inv.Unlocked() != tt.unlocked {
				t.Errorf("unlocked = %d, want %d", inv.Unlocked(), tt.unlocked)
			}
			k := base.Apps[0]
			if k.Name != "kruise" || !k.Launched || len(k.Sources) != 2 || k.Sources[0].Kind != KindLocal || k.Sources[1].Kind != KindChart || k.Sources[1].Pin != tt.kruisePin {
				t.Errorf("kruise: %+v", k)
			}
			if len(base.Other) != 1 || base.Other[0].Pin != PinChecksum || base.Other[0].Digest != sum || base.Launch != nil {
				t.Errorf("base other %+v launch %v", base.Other, base.Launch)
			}
			if top.Apps[1].Name != "extra" || top.Apps[1].Launched || len(top.Launch) != 2 {
				t.Errorf("top: %+v, launch %v", top.Apps, top.Launch)
			}
		})
	}
}
