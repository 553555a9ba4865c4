#!/bin/bash
# Checked by `cnstack boot` on the master, in the rootfs directory: the observability layer's
# exporters work. Each one's Service is asked for /metrics through the API server's service
# proxy (the path Prometheus's kubernetes_sd endpoints take: Service -> endpoints -> pod), and
# the answer must hold the exporter's own metrics:
#   node-exporter:9100       node_exporter_build_info and node_uname_info (this node)
#   kube-state-metrics:8080  kube_node_info and kube_deployment_status_replicas_ready of itself
# Exit status (pkg/verify): 0 passed, 1 failed, 3 not-run (it could not run; never a pass).
set -uo pipefail
ns=observability
timeout_s=${CHECK_TIMEOUT:-300}
notrun() { echo "not-run: $*"; exit 3; }
failed=0
fail() { echo "FAILED: $*"; failed=1; }

command -v kubectl >/dev/null || notrun "kubectl is not on PATH"
if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ] && [ -f /etc/kubernetes/admin.conf ]; then
	export KUBECONFIG=/etc/kubernetes/admin.conf
fi
# The API server may be restarting under load (a TCG guest): wait for it, within the timeout.
until kubectl get --raw /readyz >/dev/null 2>&1; do
	[ "$SECONDS" -lt "${CHECK_TIMEOUT:-300}" ] ||
		notrun "the Kubernetes API server does not answer within ${CHECK_TIMEOUT:-300}s ($(kubectl get --raw /readyz 2>&1 | head -n1))"
	sleep 2
done

# probe SERVICE PORT METRIC...: the Service exists, has ready endpoints, and its /metrics holds
# every METRIC (a regular expression matched at the start of a line).
probe() {
	local svc=$1 port=$2 out eps t0=$SECONDS
	shift 2
	if ! kubectl -n "$ns" get service "$svc" >/dev/null 2>&1; then
		fail "service $ns/$svc does not exist, so nothing can scrape $svc ($(kubectl -n "$ns" get service "$svc" 2>&1 | head -n1))"
		return
	fi
	while :; do
		eps=$(kubectl -n "$ns" get endpoints "$svc" -o jsonpath='{range .subsets[*].addresses[*]}{.ip} {end}' 2>/dev/null)
		[ -n "$eps" ] && break
		((SECONDS - t0 < timeout_s)) || { fail "service $ns/$svc has no ready endpoints after ${timeout_s}s"; kubectl -n "$ns" get pods -o wide 2>&1 | sed 's/^/  /'; return; }
		sleep 2
	done
	echo "service $ns/$svc: endpoints $eps"
	local path="/api/v1/namespaces/$ns/services/http:$svc:$port/proxy/metrics"
	while :; do
		out=$(kubectl get --raw "$path" 2>&1) && break
		((SECONDS - t0 < timeout_s)) || { fail "GET $path did not answer within ${timeout_s}s: $(echo "$out" | head -n3)"; return; }
		sleep 2
	done
	echo "GET $path: $(echo "$out" | grep -vc '^#') samples, $(echo "$out" | wc -c) bytes"
	local m line
	for m in "$@"; do
		line=$(echo "$out" | grep -E "^$m" | head -n1)
		if [ -n "$line" ]; then
			echo "  $line"
		else
			fail "$svc's /metrics has no sample matching ^$m"
		fi
	done
}

probe node-exporter 9100 'node_exporter_build_info\{' 'node_uname_info\{' 'node_load1 '
probe kube-state-metrics 8080 'kube_node_info\{' "kube_deployment_status_replicas_ready\\{.*deployment=\"kube-state-metrics\".*\\} 1"
if ((failed)); then
	echo "--- diagnostics"
	kubectl -n "$ns" get all -o wide 2>&1 | sed 's/^/  /'
	exit 1
fi
echo "PASS: node-exporter and kube-state-metrics answer /metrics through their Services"
