package kubebase

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// TestKubeadmConfig pins the settings of etc/kubeadm.yml that slow hosts
// (TCG VMs, a busy CI machine) need: sealer v0.11 merges this file under the
// Clusterfile and writes what it holds into kubeadm's init and join configs.
func TestKubeadmConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(layerDir(t), "rootfs", "etc", "kubeadm.yml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs[doc["kind"].(string)] = doc
	}
	duration := func(kind string, path ...string) time.Duration {
		t.Helper()
		var v any = docs[kind]
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s has no %v", kind, path)
			}
			v = m[p]
		}
		d, err := time.ParseDuration(v.(string))
		if err != nil {
			t.Fatalf("%s %v: %v", kind, path, err)
		}
		return d
	}
	// kubeadm's defaults (4 and 5 minutes) fail installs under TCG.
	if d := duration("ClusterConfiguration", "apiServer", "timeoutForControlPlane"); d < 10*time.Minute {
		t.Errorf("timeoutForControlPlane %s: under 10 minutes", d)
	}
	// The 2-node boot failed with "could not find a JWS signature in the
	// cluster-info ConfigMap" after the default 5 minutes.
	if d := duration("JoinConfiguration", "discovery", "timeout"); d < 10*time.Minute {
		t.Errorf("join discovery timeout %s: under 10 minutes", d)
	}
	for _, kind := range []string{"InitConfiguration", "JoinConfiguration"} {
		nr, _ := docs[kind]["nodeRegistration"].(map[string]any)
		if nr["criSocket"] != "unix:///run/containerd/containerd.sock" {
			t.Errorf("%s criSocket = %v", kind, nr["criSocket"])
		}
	}
}
