package offline

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestChaosBladeOnAPIServer runs the ha layer's chaosblade-operator (the
// payload binary) against a real kube-apiserver and etcd, as its own
// ServiceAccount (so our ClusterRole is all it has), with the CRD
// controller-gen generates from the operator's API package: the check's
// experiment (manifests/chaos-pod-delete.yaml) must report success and delete
// exactly one of the two pods it selects, and the operator is never refused.
// With the negative variant's ClusterRole (no pod delete) the experiment must
// fail and both pods stay. Recreating the pod and Readiness need a
// controller-manager and a kubelet: checks/chaosblade-pod-delete.sh proves
// those in the VM.
func TestChaosBladeOnAPIServer(t *testing.T) {
	t.Run("chaosblade-rbac.yaml", func(t *testing.T) { testChaosBlade(t, "chaosblade-rbac.yaml", true) })
	t.Run("chaosblade-no-pod-delete.yaml", func(t *testing.T) { testChaosBlade(t, "chaosblade-no-pod-delete.yaml", false) })
}

func testChaosBlade(t *testing.T, rbac string, works bool) {
	dir := payloadFor(t, "etcd", "kube-apiserver", "kubectl", "chaosblade-operator")
	work := t.TempDir()
	gen := generateCRDs(t, "chaosblade", work)
	c := startCluster(t, dir, work)
	ha := filepath.Join(editionDir(t), "ha")
	c.kubectl(t, "apply", "-f", filepath.Join(gen, "chaosblade-crds.yaml"))
	if got := c.kubectl(t, "get", "crd", "chaosblades.chaosblade.io", "-o", "jsonpath={.spec.scope}"); got != "Cluster" {
		t.Errorf("the ChaosBlade CRD is %s-scoped, want Cluster", got)
	}
	c.kubectl(t, "apply", "-f", filepath.Join(ha, "apps", "chaosblade.yaml"), "-f", filepath.Join(ha, "apps", rbac))

	ns := "cnstack-check-chaos"
	c.kubectl(t, "create", "namespace", ns)
	c.kubectl(t, "-n", ns, "create", "serviceaccount", "default") // no controller-manager here
	for _, p := range []string{"chaos-target-a", "chaos-target-b", "bystander"} {
		app := "chaos-target"
		if p == "bystander" {
			app = "bystander"
		}
		c.kubectl(t, "-n", ns, "run", p, "--image=registry.cnstack.local/cnstack/busybox:1.35.0", "--labels=app="+app, "--restart=Never", "--command", "--", "sleep", "1")
		// The operator acts on running containers only: write the status a
		// kubelet would report.
		c.kubectl(t, "-n", ns, "patch", "pod", p, "--subresource=status", "--type=merge", "-p", fmt.Sprintf(
			`{"status":{"phase":"Running","containerStatuses":[{"name":%q,"containerID":"containerd://%064d","image":"registry.cnstack.local/cnstack/busybox:1.35.0","imageID":"","ready":true,"restartCount":0,"started":true,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}}`, p, len(p)))
	}
	op := c.start(t, "chaosblade-operator", []string{"WATCH_NAMESPACE=", "POD_NAME=chaosblade-operator-test", "OPERATOR_NAME=chaosblade-operator"},
		"--kubeconfig="+c.saKubeconfig(t, "chaosblade", "chaosblade"), "--chaosblade-namespace=chaosblade",
		"--daemonset-enable=false", "--webhook-enable=false", "--log-level=debug")
	waitFor(t, "the operator's controller started", 2*time.Minute, op, func() bool {
		return strings.Contains(op.log(), "Starting workers") || strings.Contains(op.log(), "Starting Controller")
	})
	c.kubectl(t, "apply", "-f", filepath.Join(ha, "manifests", "chaos-pod-delete.yaml"))
	status := func() string {
		return c.kubectl(t, "get", "chaosblade", "cnstack-check-pod-delete", "-o",
			`jsonpath={.status.phase} {.status.expStatuses[*].success} {.status.expStatuses[*].resStatuses[*].identifier}`)
	}
	waitFor(t, "the experiment ran", 2*time.Minute, op, func() bool {
		s := status()
		return strings.HasPrefix(s, "Running ") || strings.HasPrefix(s, "Error ")
	})
	got := status()
	left := c.kubectl(t, "-n", ns, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{end}`)
	t.Logf("experiment: %s; pods left: %s", got, left)
	if !works {
		if strings.HasPrefix(got, "Running true ") || strings.Count(left, "chaos-target-") != 2 {
			t.Errorf("without permission to delete pods the experiment must fail and leave both pods: status %q, pods %q", got, left)
		}
		return
	}
	if !strings.HasPrefix(got, "Running true ") {
		t.Fatalf("experiment status %q, want Running and success\n%s", got, tail(op.log(), 25))
	}
	if n := strings.Count(left, "chaos-target-"); n != 1 || !strings.Contains(left, "bystander") {
		t.Errorf("after deleting 1 of 2 chaos-target pods, pods left: %q", left)
	}
	c.kubectl(t, "delete", "chaosblade", "cnstack-check-pod-delete", "--timeout=60s")
	if n := strings.Count(op.log(), "forbidden"); n > 0 {
		t.Errorf("chaosblade-operator was refused %d times: its RBAC lacks something\n%s", n, grepLines(op.log(), "forbidden", 5))
	}
}

// TestObservabilityOnAPIServer runs the observability layer's pipeline on
// loopback: node_exporter, kube-state-metrics and the OpenTelemetry Collector
// (payload binaries) on free ports, each behind a Service of our manifests
// whose Endpoints point at it (no controller-manager here), and Prometheus,
// as its own ServiceAccount, with the scrape configuration of our ConfigMap
// (plus a kubeconfig, since it runs outside a pod). Every job must be
// discovered and report up == 1; one span posted over OTLP/HTTP must be
// counted on the collector's own metrics as received and exported.
func TestObservabilityOnAPIServer(t *testing.T) {
	dir := payloadFor(t, "etcd", "kube-apiserver", "kubectl", "node_exporter", "kube-state-metrics", "prometheus", "otelcol")
	work := t.TempDir()
	c := startCluster(t, dir, work)
	obs := filepath.Join(editionDir(t), "observability", "apps")
	c.kubectl(t, "apply", "-f", filepath.Join(obs, "node-exporter.yaml"), "-f", filepath.Join(obs, "node-exporter-service.yaml"),
		"-f", filepath.Join(obs, "kube-state-metrics.yaml"), "-f", filepath.Join(obs, "prometheus.yaml"), "-f", filepath.Join(obs, "otel-collector.yaml"))

	p := freePorts(t, 8)
	ne := c.start(t, "node_exporter", nil, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p[0]))
	ksm := c.start(t, "kube-state-metrics", nil, "--kubeconfig="+c.saKubeconfig(t, "observability", "kube-state-metrics"),
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", p[1]), "--telemetry-host=127.0.0.1", fmt.Sprintf("--telemetry-port=%d", p[2]))
	// The collector with our ConfigMap's configuration, its ports moved to free ones.
	colCfg := configMapData(t, filepath.Join(obs, "otel-collector.yaml"), "config.yaml")
	for from, to := range map[string]string{"0.0.0.0:4317": fmt.Sprintf("127.0.0.1:%d", p[3]), "0.0.0.0:4318": fmt.Sprintf("127.0.0.1:%d", p[4]),
		"0.0.0.0:8889": fmt.Sprintf("127.0.0.1:%d", p[5]), `host: "0.0.0.0", port: 8888`: fmt.Sprintf(`host: "127.0.0.1", port: %d`, p[6])} {
		if !strings.Contains(colCfg, from) {
			t.Fatalf("the collector's configuration has no %q", from)
		}
		colCfg = strings.Replace(colCfg, from, to, 1)
	}
	writeFile(t, filepath.Join(work, "otelcol.yaml"), colCfg, 0o644)
	col := c.start(t, "otelcol", nil, "--config="+filepath.Join(work, "otelcol.yaml"))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p[0]), time.Minute, ne)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p[6]), time.Minute, col)

	// Endpoints for each Service's metrics port, as the endpoints controller
	// would write them for pods. The API server refuses loopback addresses in
	// Endpoints, so they name 192.0.2.1 (TEST-NET-1) and the test's scrape
	// configuration rewrites that address to 127.0.0.1 before any scrape:
	// nothing ever reaches 192.0.2.1.
	for svc, port := range map[string]int{"node-exporter": p[0], "kube-state-metrics": p[1], "otel-collector": p[6]} {
		ep := fmt.Sprintf(`{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":%q,"namespace":"observability"},"subsets":[{"addresses":[{"ip":"192.0.2.1"}],"ports":[{"name":"metrics","port":%d}]}]}`, svc, port)
		writeFile(t, filepath.Join(work, svc+"-ep.json"), ep, 0o644)
		c.kubectl(t, "apply", "-f", filepath.Join(work, svc+"-ep.json"))
	}

	// Prometheus with our scrape configuration, discovering through the API
	// server as its ServiceAccount.
	promCfg := configMapData(t, filepath.Join(obs, "prometheus.yaml"), "prometheus.yml")
	kc := c.saKubeconfig(t, "observability", "prometheus")
	promCfg = strings.ReplaceAll(promCfg, "      - role: endpoints\n", "      - role: endpoints\n        kubeconfig_file: "+kc+"\n")
	const relabels = "    relabel_configs:\n"
	if !strings.Contains(promCfg, relabels) {
		t.Fatal("the scrape configuration has no relabel_configs")
	}
	promCfg = strings.Replace(promCfg, relabels, relabels+
		"      - {source_labels: [__address__], regex: '192\\.0\\.2\\.1:(.*)', replacement: '127.0.0.1:$1', target_label: __address__}\n", 1)
	for from, to := range map[string]string{"targets: [localhost:9090]": fmt.Sprintf("targets: [127.0.0.1:%d]", p[7]), "scrape_interval: 30s": "scrape_interval: 2s"} {
		if !strings.Contains(promCfg, from) {
			t.Fatalf("the scrape configuration has no %q", from)
		}
		promCfg = strings.Replace(promCfg, from, to, 1)
	}
	writeFile(t, filepath.Join(work, "prometheus.yml"), promCfg, 0o644)
	prom := c.start(t, "prometheus", nil, "--config.file="+filepath.Join(work, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(work, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p[7]))
	promURL := fmt.Sprintf("http://127.0.0.1:%d", p[7])
	waitHTTP(t, promURL+"/-/ready", time.Minute, prom)
	jobs := []string{"prometheus", "node-exporter", "kube-state-metrics", "otel-collector"}
	var up string
	waitFor(t, "every job up == 1", 2*time.Minute, prom, func() bool {
		up = get(t, promURL+"/federate?match%5B%5D=up")
		for _, j := range jobs {
			if !strings.Contains(up, `job="`+j+`"`) {
				return false
			}
		}
		return !strings.Contains(up, "} 0 ")
	})
	t.Logf("Prometheus /federate:\n%s", grepLines(up, "up{", 10))
	if n := strings.Count(prom.log()+ksm.log(), "forbidden"); n > 0 {
		t.Errorf("Prometheus or kube-state-metrics was refused %d times: RBAC lacks something\n%s", n, grepLines(prom.log()+ksm.log(), "forbidden", 5))
	}

	// One span over OTLP/HTTP JSON, as checks/observability-pipeline.sh sends it.
	now := time.Now().Unix()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cnstack-check"}}]},"scopeSpans":[{"scope":{"name":"cnstack-check"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"cnstack-otlp-check","kind":1,"startTimeUnixNano":"%d000000000","endTimeUnixNano":"%d500000000"}]}]}]}`, now, now)
	resp := post(t, fmt.Sprintf("http://127.0.0.1:%d/v1/traces", p[4]), "application/json", body)
	if resp != 200 {
		t.Fatalf("POST /v1/traces: HTTP %d", resp)
	}
	waitFor(t, "the span counted as received and exported", time.Minute, col, func() bool {
		m := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p[6]))
		return strings.Contains(m, `otelcol_receiver_accepted_spans{receiver="otlp",transport="http"} 1`) &&
			strings.Contains(m, `otelcol_exporter_sent_spans{exporter="debug"} 1`)
	})
}

// configMapData is one key of the ConfigMap in a multi-document manifest.
func configMapData(t *testing.T, manifest, key string) string {
	t.Helper()
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var cm struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatalf("%s: %v", manifest, err)
		}
		if cm.Kind == "ConfigMap" && cm.Data[key] != "" {
			return cm.Data[key]
		}
	}
	t.Fatalf("%s has no ConfigMap with data %q", manifest, key)
	return ""
}

// post sends body to url and returns the HTTP status.
func post(t *testing.T, url, contentType, body string) int {
	t.Helper()
	r, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}
