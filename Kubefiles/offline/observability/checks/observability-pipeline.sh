#!/bin/bash
# Checked by `cnstack boot` on the master, in the rootfs directory: the observability layer's
# pipeline works end to end.
#   Prometheus  every job it discovers reports up == 1: prometheus, node-exporter,
#               kube-state-metrics and otel-collector (read from its /federate endpoint
#               through the API server's service proxy);
#   OpenTelemetry Collector  a test pod sends one span over OTLP/HTTP to the collector's
#               Service, and the collector's own metrics count it as accepted by the otlp
#               receiver and sent by the debug exporter.
# Exit status (pkg/verify): 0 passed, 1 failed, 3 not-run (it could not run; never a pass).
set -uo pipefail
ns=observability
timeout_s=${CHECK_TIMEOUT:-300}
toolbox=${TOOLBOX_IMAGE:-registry.cnstack.local/cnstack/busybox:1.35.0}
jobs=(prometheus node-exporter kube-state-metrics otel-collector)
pod=cnstack-check-otlp-$$
notrun() { echo "not-run: $*"; exit 3; }
failed=0
fail() { echo "FAILED: $*"; failed=1; }
diag() {
	echo "--- diagnostics"
	kubectl -n "$ns" get pods,endpoints -o wide 2>&1 | sed 's/^/  /'
	kubectl -n "$ns" logs deploy/prometheus --tail=10 2>&1 | sed 's/^/  prometheus| /'
	kubectl -n "$ns" logs deploy/otel-collector --tail=10 2>&1 | sed 's/^/  otel-collector| /'
}

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

# ready SERVICE: the Service exists and has ready endpoints (waits up to timeout_s).
ready() {
	local svc=$1 eps t0=$SECONDS
	kubectl -n "$ns" get service "$svc" >/dev/null 2>&1 || { fail "service $ns/$svc does not exist"; return 1; }
	while :; do
		eps=$(kubectl -n "$ns" get endpoints "$svc" -o jsonpath='{range .subsets[*].addresses[*]}{.ip} {end}' 2>/dev/null)
		[ -n "$eps" ] && { echo "service $ns/$svc: endpoints $eps"; return 0; }
		((SECONDS - t0 < timeout_s)) || { fail "service $ns/$svc has no ready endpoints after ${timeout_s}s"; return 1; }
		sleep 2
	done
}

# --- Prometheus: every job up == 1 ---------------------------------------------------------
if ready prometheus; then
	fed="/api/v1/namespaces/$ns/services/http:prometheus:9090/proxy/federate?match%5B%5D=up"
	t0=$SECONDS
	while :; do
		up=$(kubectl get --raw "$fed" 2>&1 | grep '^up{')
		missing=()
		for j in "${jobs[@]}"; do
			echo "$up" | grep -q "job=\"$j\".* 1 [0-9]*$" || missing+=("$j")
		done
		down=$(echo "$up" | grep -E ' 0 [0-9]+$')
		[ ${#missing[@]} = 0 ] && [ -z "$down" ] && break
		if ((SECONDS - t0 >= timeout_s)); then
			fail "Prometheus: after ${timeout_s}s these jobs are not up == 1: ${missing[*]:-none}${down:+; down: $down}"
			break
		fi
		sleep 5
	done
	echo "Prometheus /federate up (after $((SECONDS - t0))s):"
	echo "$up" | sed -E 's/^up\{(.*)\} ([0-9.]+) [0-9]+$/  up{\1} = \2/'
fi

# --- OpenTelemetry Collector: one span over OTLP/HTTP, counted ------------------------------
# sent_spans METRIC LABEL: the collector's own counter METRIC for the component LABEL
# (e.g. exporter="debug"), summed over its series; 0 when absent.
sent_spans() {
	kubectl get --raw "/api/v1/namespaces/$ns/services/http:otel-collector:8888/proxy/metrics" 2>/dev/null |
		awk -v m="$1" -v l="$2" 'index($0, m) == 1 && index($0, l) { s += $NF } END { print s + 0 }'
}
if ready otel-collector; then
	ip=$(kubectl -n "$ns" get service otel-collector -o jsonpath='{.spec.clusterIP}')
	before_rx=$(sent_spans otelcol_receiver_accepted_spans 'receiver="otlp"')
	before_tx=$(sent_spans otelcol_exporter_sent_spans 'exporter="debug"')
	echo "collector counters before: otlp receiver accepted $before_rx spans, debug exporter sent $before_tx"
	# The span is written in the pod, with the pod's clock; busybox nc speaks HTTP/1.0.
	script='now=$(date +%s); body="{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"cnstack-check\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"cnstack-check\"},\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"cnstack-otlp-check\",\"kind\":1,\"startTimeUnixNano\":\"${now}000000000\",\"endTimeUnixNano\":\"${now}500000000\"}]}]}]}"; printf "POST /v1/traces HTTP/1.0\r\nHost: otel-collector\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" ${#body} "$body" | nc -w 10 '"$ip"' 4318'
	kubectl -n "$ns" delete pod "$pod" --ignore-not-found >/dev/null 2>&1
	trap 'kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null 2>&1' EXIT
	kubectl -n "$ns" run "$pod" --image="$toolbox" --restart=Never --overrides='{"spec":{"tolerations":[{"operator":"Exists"}],"automountServiceAccountToken":false}}' \
		--command -- /bin/sh -c "$script" >/dev/null || fail "cannot start the OTLP test pod $ns/$pod"
	t0=$SECONDS
	while phase=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null); [ "$phase" != Succeeded ] && [ "$phase" != Failed ]; do
		((SECONDS - t0 < timeout_s)) || break
		sleep 2
	done
	answer=$(kubectl -n "$ns" logs "$pod" 2>&1)
	echo "test pod $ns/$pod ($phase) POST http://$ip:4318/v1/traces answered: $(echo "$answer" | head -n1 | tr -d '\r')"
	if ! echo "$answer" | head -n1 | grep -q ' 200 '; then
		fail "the collector did not accept the span over OTLP/HTTP: $(echo "$answer" | head -n5 | tr -d '\r')"
	else
		t0=$SECONDS
		while :; do
			rx=$(sent_spans otelcol_receiver_accepted_spans 'receiver="otlp"')
			tx=$(sent_spans otelcol_exporter_sent_spans 'exporter="debug"')
			((rx > before_rx && tx > before_tx)) && break
			((SECONDS - t0 < timeout_s)) || break
			sleep 2
		done
		echo "collector counters after: otlp receiver accepted $rx spans, debug exporter sent $tx"
		((rx > before_rx)) || fail "otelcol_receiver_accepted_spans for the otlp receiver did not grow ($before_rx -> $rx)"
		((tx > before_tx)) || fail "otelcol_exporter_sent_spans for the debug exporter did not grow ($before_tx -> $tx): the trace was not exported"
	fi
fi

if ((failed)); then
	diag
	exit 1
fi
echo "PASS: Prometheus scrapes ${jobs[*]} (all up == 1); the collector received and exported a span sent over OTLP"
