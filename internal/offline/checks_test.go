package offline

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func editionDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "Kubefiles", "offline")
}

func checkScripts(t *testing.T) []string {
	t.Helper()
	scripts, err := filepath.Glob(filepath.Join(editionDir(t), "*", "checks", "*.sh"))
	if err != nil || len(scripts) < 2 {
		t.Fatalf("want the checks of base and observability, found %v (%v)", scripts, err)
	}
	return scripts
}

// TestChecksSyntax: every layer check parses (bash -n) and is executable.
func TestChecksSyntax(t *testing.T) {
	for _, s := range checkScripts(t) {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		if st, err := os.Stat(s); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", s, err)
		}
	}
}

// runCheck runs a layer check as cnstack boot does (bash SCRIPT in a
// directory holding the rootfs files it reads) with stubs first on PATH.
func runCheck(t *testing.T, script, stubDir string, pathRest string) (string, int) {
	t.Helper()
	rootfs := t.TempDir()
	layer := filepath.Dir(filepath.Dir(script))
	if m, _ := filepath.Glob(filepath.Join(layer, "manifests", "*")); len(m) > 0 {
		os.MkdirAll(filepath.Join(rootfs, "manifests"), 0o755)
		for _, f := range m {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(rootfs, "manifests", filepath.Base(f)), b, 0o644)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, script)
	cmd.Dir = rootfs
	path := stubDir
	if pathRest != "" {
		path += ":" + pathRest
	}
	cmd.Env = []string{"PATH=" + path, "HOME=" + rootfs, "CHECK_TIMEOUT=3", "DAPR_INVOKE_HOLD_SECONDS=0", "STUB_DIR=" + stubDir}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", script, err)
		return "", -1
	}
}

// judgeCheck wants exit status want and every line of wants in a check's
// output, and no PASS from a check that fails.
func judgeCheck(t *testing.T, out string, code, want int, wants []string) {
	t.Helper()
	if code != want {
		t.Errorf("exit %d, want %d; output:\n%s", code, want, out)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if want != 0 && strings.Contains(out, "PASS") {
		t.Errorf("a failing check printed PASS:\n%s", out)
	}
	// A tool the script misuses (a sed expression, a bash syntax slip) shows
	// up as the tool's own complaint, in the report people read.
	for _, broken := range []string{"sed: ", "awk: ", "syntax error", "command not found"} {
		if strings.Contains(out, broken) {
			t.Errorf("the check's own commands failed (%q):\n%s", broken, out)
		}
	}
}

func writeStub(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestChecksNotRun: without kubectl, or with an API server that does not
// answer, every check says not-run (exit 3) with the reason — never passes.
func TestChecksNotRun(t *testing.T) {
	sysPath := os.Getenv("PATH")
	for _, s := range checkScripts(t) {
		t.Run(filepath.Base(s)+"/no-kubectl", func(t *testing.T) {
			out, code := runCheck(t, s, t.TempDir(), "")
			if code != 3 || !strings.Contains(out, "not-run: kubectl is not on PATH") {
				t.Errorf("exit %d, want 3 with the reason; output:\n%s", code, out)
			}
		})
		t.Run(filepath.Base(s)+"/no-apiserver", func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", `echo "The connection to the server localhost:8080 was refused" >&2; exit 1`+"\n")
			out, code := runCheck(t, s, stubs, sysPath)
			if code != 3 || !strings.Contains(out, "not-run: the Kubernetes API server does not answer") || !strings.Contains(out, "refused") {
				t.Errorf("exit %d, want 3 naming the API server; output:\n%s", code, out)
			}
		})
	}
}

// fakeMetrics are exporter answers, as the service proxy returns them.
const nodeExporterMetrics = `# HELP node_exporter_build_info A metric with a constant '1' value.
node_exporter_build_info{branch="",goarch="amd64",goos="linux",goversion="go1.26.8",revision="",tags="unknown",version="1.12.1"} 1
node_load1 0.25
node_uname_info{domainname="(none)",machine="x86_64",nodename="node0",release="6.1.0",sysname="Linux",version="#1"} 1
`
const ksmMetrics = `kube_node_info{node="node0",kernel_version="6.1.0"} 1
kube_deployment_status_replicas_ready{namespace="observability",deployment="kube-state-metrics"} 1
`

// observabilityKubectl is a stub kubectl for one cluster state: the
// Services in $STUB_DIR/services exist, each answers with $STUB_DIR/<svc>.metrics.
const observabilityKubectl = `args="$*"
case $args in
"get --raw /readyz") echo ok ;;
*"get service "*)
	svc=${args##* }
	grep -qx "$svc" "$STUB_DIR/services" && { echo "$svc"; exit 0; }
	echo "Error from server (NotFound): services \"$svc\" not found" >&2; exit 1 ;;
*"get endpoints "*) echo "10.244.0.7 " ;;
"get --raw /api/v1/namespaces/observability/services/http:"*)
	svc=${args#*services/http:}; svc=${svc%%:*}
	cat "$STUB_DIR/$svc.metrics" ;;
*) echo "kubectl $args" ;;
esac
`

// TestObservabilityCheck: with both exporters answering the check passes and
// shows the samples it saw; without the node-exporter Service (the negative
// variant's break) it fails naming that Service; with an exporter that
// answers without its metrics it fails naming the missing metric.
func TestObservabilityCheck(t *testing.T) {
	script := filepath.Join(editionDir(t), "observability", "checks", "observability-metrics.sh")
	sysPath := os.Getenv("PATH")
	for _, tc := range []struct {
		name     string
		services string
		ne       string
		code     int
		want     []string
	}{
		{"working", "node-exporter\nkube-state-metrics\n", nodeExporterMetrics, 0,
			[]string{"node_exporter_build_info{", "kube_deployment_status_replicas_ready{", "PASS"}},
		{"no node-exporter Service", "kube-state-metrics\n", nodeExporterMetrics, 1,
			[]string{"FAILED: service observability/node-exporter does not exist", "kube_node_info{"}},
		{"no node metrics", "node-exporter\nkube-state-metrics\n", "go_goroutines 7\n", 1,
			[]string{"FAILED: node-exporter's /metrics has no sample matching ^node_exporter_build_info"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", observabilityKubectl)
			os.WriteFile(filepath.Join(stubs, "services"), []byte(tc.services), 0o644)
			os.WriteFile(filepath.Join(stubs, "node-exporter.metrics"), []byte(tc.ne), 0o644)
			os.WriteFile(filepath.Join(stubs, "kube-state-metrics.metrics"), []byte(ksmMetrics), 0o644)
			out, code := runCheck(t, script, stubs, sysPath)
			judgeCheck(t, out, code, tc.code, tc.want)
		})
	}
}

// TestKruiseCheckWithoutKruise: on a cluster without OpenKruise the CloneSet
// check fails (not not-run: the layer's component is missing) and says so.
func TestKruiseCheckWithoutKruise(t *testing.T) {
	script := filepath.Join(editionDir(t), "base", "checks", "kruise-cloneset.sh")
	stubs := t.TempDir()
	writeStub(t, stubs, "kubectl", `case "$*" in
"get --raw /readyz") echo ok ;;
"get crd clonesets.apps.kruise.io") echo 'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "clonesets.apps.kruise.io" not found' >&2; exit 1 ;;
*) exit 1 ;;
esac
`)
	out, code := runCheck(t, script, stubs, os.Getenv("PATH"))
	if code != 1 || !strings.Contains(out, "FAILED: CRD clonesets.apps.kruise.io is not installed") {
		t.Errorf("exit %d, want 1 naming the CRD; output:\n%s", code, out)
	}
}

// pipelineKubectl is a stub kubectl for the observability pipeline check:
// Prometheus's /federate answers $STUB_DIR/federate; the OTLP test pod
// answers $STUB_DIR/otlp-answer; the collector's own metrics count a span
// once the pod has run, unless $STUB_DIR/drop-spans exists (received, never
// exported).
const pipelineKubectl = `args="$*"
case $args in
"get --raw /readyz") echo ok ;;
*"get service "*" -o jsonpath={.spec.clusterIP}") echo 10.96.0.42 ;;
*"get service "*) echo ok ;;
*"get endpoints "*) echo "10.244.0.7 " ;;
*"/proxy/federate"*) cat "$STUB_DIR/federate" ;;
*"/services/http:otel-collector:8888/proxy/metrics")
	n=0; [ -f "$STUB_DIR/ran" ] && n=1
	echo "otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"} $n"
	[ -f "$STUB_DIR/drop-spans" ] && n=0
	echo "otelcol_exporter_sent_spans{exporter=\"debug\"} $n" ;;
*" run "*) touch "$STUB_DIR/ran"; echo "pod/x created" ;;
*"get pod "*"{.status.phase}") echo Succeeded ;;
*" logs "*) cat "$STUB_DIR/otlp-answer" ;;
*) echo "kubectl $args" ;;
esac
`

// TestObservabilityPipelineCheck: every job up and a span received and
// exported passes, showing what it saw; a job missing from Prometheus (the
// negative variant's break), a span refused, or a span received but never
// exported each fail naming what is wrong.
func TestObservabilityPipelineCheck(t *testing.T) {
	script := filepath.Join(editionDir(t), "observability", "checks", "observability-pipeline.sh")
	all := `up{instance="10.244.0.5:9090",job="prometheus"} 1 1796653605416
up{instance="10.0.2.15:9100",job="node-exporter",node="node0"} 1 1796653605557
up{instance="10.244.0.6:8080",job="kube-state-metrics"} 1 1796653606304
up{instance="10.244.0.8:8888",job="otel-collector"} 1 1796653606567
`
	noNodeExporter := strings.Join(strings.Split(all, "\n")[0:1], "\n") + "\n" + strings.Join(strings.Split(all, "\n")[2:], "\n")
	ok := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}"
	for _, tc := range []struct {
		name, federate, answer string
		drop                   bool
		code                   int
		want                   []string
	}{
		{"working", all, ok, false, 0, []string{`up{instance="10.0.2.15:9100",job="node-exporter",node="node0"} = 1`,
			"otlp receiver accepted 1 spans, debug exporter sent 1", "PASS"}},
		{"no node-exporter job", noNodeExporter, ok, false, 1, []string{"FAILED: Prometheus: after 3s these jobs are not up == 1: node-exporter"}},
		{"a job down", strings.Replace(all, `job="kube-state-metrics"} 1`, `job="kube-state-metrics"} 0`, 1), ok, false, 1,
			[]string{"these jobs are not up == 1: kube-state-metrics", `down: up{instance="10.244.0.6:8080",job="kube-state-metrics"} 0`}},
		{"span refused", all, "HTTP/1.1 400 Bad Request\r\n\r\nbad", false, 1, []string{"FAILED: the collector did not accept the span over OTLP/HTTP: HTTP/1.1 400 Bad Request"}},
		{"span not exported", all, ok, true, 1, []string{"FAILED: otelcol_exporter_sent_spans for the debug exporter did not grow (0 -> 0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", pipelineKubectl)
			os.WriteFile(filepath.Join(stubs, "federate"), []byte(tc.federate), 0o644)
			os.WriteFile(filepath.Join(stubs, "otlp-answer"), []byte(tc.answer), 0o644)
			if tc.drop {
				os.WriteFile(filepath.Join(stubs, "drop-spans"), nil, 0o644)
			}
			out, code := runCheck(t, script, stubs, os.Getenv("PATH"))
			judgeCheck(t, out, code, tc.code, tc.want)
		})
	}
}

// chaosKubectl is a stub kubectl for the ChaosBlade check: the operator is
// available, the test Deployment is Ready with pods a and b, and the
// experiment ends in $STUB_DIR/phase with success $STUB_DIR/success; once it
// has run, pod a is gone and c replaces it.
const chaosKubectl = `args="$*"
ran() { [ -f "$STUB_DIR/applied" ]; }
case $args in
"get --raw /readyz") echo ok ;;
"get crd chaosblades.chaosblade.io") echo ok ;;
*"rollout status"*) echo ok ;;
*"apply -f manifests/chaos-pod-delete.yaml") touch "$STUB_DIR/applied" ;;
*"get deployment chaos-target"*) echo 2/2 ;;
*"get pods -l app=chaos-target -o jsonpath={.items[*].metadata.deletionTimestamp}") ;;
*"get pods -l app=chaos-target"*) if ran && [ "$(cat "$STUB_DIR/success")" = true ]; then printf 'b\nc\n'; else printf 'a\nb\n'; fi ;;
*"get pod a -o jsonpath={.metadata.deletionTimestamp}") ran && [ "$(cat "$STUB_DIR/success")" = true ] && { echo 'Error from server (NotFound): pods "a" not found' >&2; exit 1; }; echo ;;
*"get pod "*) echo ;;
*"{.status.phase}") cat "$STUB_DIR/phase" ;;
*"{.status.expStatuses[0].success}") cat "$STUB_DIR/success" ;;
*"{.status.expStatuses[0].state}"*) cat "$STUB_DIR/state" ;;
*"resStatuses"*) echo "cnstack-check-chaos/node0/a " ;;
*) echo "kubectl $args" ;;
esac
`

// TestChaosBladeCheck: an experiment that succeeds, deletes a pod and sees
// the Deployment recover passes, naming the pod; one the operator may not
// carry out (the negative variant's ClusterRole) fails with its error.
func TestChaosBladeCheck(t *testing.T) {
	script := filepath.Join(editionDir(t), "ha", "checks", "chaosblade-pod-delete.sh")
	for _, tc := range []struct {
		name, phase, success, state string
		code                        int
		want                        []string
	}{
		{"working", "Running", "true", "Success", 0, []string{"deleted by the experiment: a", "PASS: a ChaosBlade experiment deleted pod a"}},
		{"refused", "Error", "false", `Error pods "a" is forbidden: User "system:serviceaccount:chaosblade:chaosblade" cannot delete resource "pods"`, 1,
			[]string{"FAILED: the experiment did not succeed (phase Error, success 'false': Error pods \"a\" is forbidden"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", chaosKubectl)
			for f, v := range map[string]string{"phase": tc.phase, "success": tc.success, "state": tc.state} {
				os.WriteFile(filepath.Join(stubs, f), []byte(v), 0o644)
			}
			out, code := runCheck(t, script, stubs, os.Getenv("PATH"))
			judgeCheck(t, out, code, tc.code, tc.want)
		})
	}
}

// daprKubectl is a stub kubectl for the Dapr check: the control plane is up,
// the injector only when $STUB_DIR/injector exists (then the apps' pods carry
// daprd), and an exec in the client pod runs its command here, where the nc
// on PATH is daprNC.
const daprKubectl = `args="$*"
case $args in
"get --raw /readyz") echo ok ;;
*"rollout status deployment/dapr-sidecar-injector"*)
	[ -f "$STUB_DIR/injector" ] && exit 0
	echo 'Error from server (NotFound): deployments.apps "dapr-sidecar-injector" not found' >&2; exit 1 ;;
*"get pods -l app="*) a=${args#*app=}; echo "${a%% *}-7f9c" ;;
*"get pods -o name"*) echo pod/dapr-echo-7f9c; echo pod/dapr-client-7f9c ;;
*" logs "*) echo 'level=info msg="dapr initialized"' ;;
*"get pod "*)
	printf 'app=registry.cnstack.local/cnstack/busybox:1.35.0 '
	[ -f "$STUB_DIR/injector" ] && printf 'daprd=registry.cnstack.local/cnstack/dapr/daprd:1.18.2 '
	exit 0 ;;
*" exec "*)
	while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
	shift
	exec "$@" ;;
esac
exit 0
`

// daprNC is the client container's nc: it keeps the request it was sent
// and its arguments, and answers with $STUB_DIR/answer (an HTTP response).
const daprNC = `printf '%s\n' "$*" >"$STUB_DIR/nc-args"
cat >"$STUB_DIR/request"
cat "$STUB_DIR/answer"
`

// TestDaprCheck: with the injector and an echo that answers, the check passes
// and shows the sidecars and the answer; without the injector (the negative
// variant's break) it fails saying the pod has no daprd sidecar and naming
// the injector; with an invocation that fails it fails with what came back.
func TestDaprCheck(t *testing.T) {
	script := filepath.Join(editionDir(t), "mesh", "checks", "dapr-invoke.sh")
	for _, tc := range []struct {
		name     string
		injector bool
		answer   string
		code     int
		want     []string
	}{
		{"working", true, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n\r\nhello from dapr-echo-7f9c\n", 0, []string{
			"pod dapr-echo-7f9c has the daprd sidecar: app=registry.cnstack.local/cnstack/busybox:1.35.0 daprd=registry.cnstack.local/cnstack/dapr/daprd:1.18.2",
			"invoked app id echo from dapr-client-7f9c through Dapr (http://127.0.0.1:3500/v1.0/invoke/echo.cnstack-check-dapr/method/hello) in 1 attempt(s): 'hello from dapr-echo-7f9c'",
			"PASS: Dapr injected daprd into both apps"}},
		{"no-injector", false, "", 1, []string{
			"dapr-sidecar-injector is not available: ",
			"FAILED: pod dapr-echo-7f9c has no daprd sidecar (containers: app=registry.cnstack.local/cnstack/busybox:1.35.0 ): is the Dapr sidecar injector (deployment dapr-system/dapr-sidecar-injector) running?"}},
		{"invoke-fails", true, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n{\"errorCode\":\"ERR_DIRECT_INVOKE\"}", 1, []string{
			"FAILED: service invocation from dapr-client-7f9c to app id echo (http://127.0.0.1:3500/v1.0/invoke/echo.cnstack-check-dapr/method/hello) answered 'HTTP/1.1 500 Internal Server Error: {\"errorCode\":\"ERR_DIRECT_INVOKE\"}', want 'hello from dapr-echo-7f9c'",
			`  dapr-client-7f9c daprd| level=info msg="dapr initialized"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := t.TempDir()
			writeStub(t, stubs, "kubectl", daprKubectl)
			writeStub(t, stubs, "nc", daprNC)
			if tc.injector {
				os.WriteFile(filepath.Join(stubs, "injector"), nil, 0o644)
			}
			os.WriteFile(filepath.Join(stubs, "answer"), []byte(tc.answer), 0o644)
			out, code := runCheck(t, script, stubs, os.Getenv("PATH"))
			judgeCheck(t, out, code, tc.code, tc.want)
			if !tc.injector {
				return
			}
			// What reached daprd: an HTTP/1.0 request for the method, on its port.
			req, _ := os.ReadFile(filepath.Join(stubs, "request"))
			args, _ := os.ReadFile(filepath.Join(stubs, "nc-args"))
			if want := "GET /v1.0/invoke/echo.cnstack-check-dapr/method/hello HTTP/1.0\r\nHost: 127.0.0.1:3500\r\n\r\n"; string(req) != want {
				t.Errorf("request sent %q, want %q", req, want)
			}
			if got := strings.TrimSpace(string(args)); got != "-w 20 127.0.0.1 3500" {
				t.Errorf("nc %s, want nc -w 20 127.0.0.1 3500", got)
			}
			// nc's input stays open while daprd works: a half-close cancels the invocation.
			if b, _ := os.ReadFile(script); !strings.Contains(string(b), "; sleep $hold_s; } | nc ") {
				t.Error("the request's writer closes at once: nc half-closes, daprd cancels the invocation")
			}
		})
	}
}
