package kubebase

import (
	"bytes"
	"errors"
	"fmt"
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
	// The controller-manager and the scheduler lost their leases and restarted
	// under load (offline edition in a TCG VM); Deployments then had no status
	// updates and an app's rollout status timed out.
	for _, component := range []string{"controllerManager", "scheduler"} {
		args, _ := docs["ClusterConfiguration"][component].(map[string]any)["extraArgs"].(map[string]any)
		d := func(k string) time.Duration {
			v, err := time.ParseDuration(fmt.Sprint(args[k]))
			if err != nil {
				t.Errorf("%s %s: %v", component, k, err)
			}
			return v
		}
		lease, renew, retry := d("leader-elect-lease-duration"), d("leader-elect-renew-deadline"), d("leader-elect-retry-period")
		if lease < 30*time.Second || renew < 20*time.Second || !(retry < renew && renew < lease) {
			t.Errorf("%s leader election lease %s, renew %s, retry %s: want lease ≥ 30s, renew ≥ 20s, retry < renew < lease", component, lease, renew, retry)
		}
	}
	// The API server's liveness probe (/livez) reads etcd with this timeout:
	// at the default 2 s, a slow etcd on a busy node had the API server killed
	// five times in 20 minutes. It must stay under the probe's 15 s.
	apiArgs, _ := docs["ClusterConfiguration"]["apiServer"].(map[string]any)["extraArgs"].(map[string]any)
	if d, err := time.ParseDuration(fmt.Sprint(apiArgs["etcd-healthcheck-timeout"])); err != nil || d < 5*time.Second || d >= 15*time.Second {
		t.Errorf("apiServer etcd-healthcheck-timeout %v (%v): want 5s ≤ it < 15s", apiArgs["etcd-healthcheck-timeout"], err)
	}
	for _, kind := range []string{"InitConfiguration", "JoinConfiguration"} {
		nr, _ := docs[kind]["nodeRegistration"].(map[string]any)
		if nr["criSocket"] != "unix:///run/containerd/containerd.sock" {
			t.Errorf("%s criSocket = %v", kind, nr["criSocket"])
		}
	}
}
