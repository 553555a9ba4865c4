#!/bin/bash
# Checked by `cnstack boot` on the master, in the rootfs directory: ChaosBlade works. A
# Deployment of two toolbox pods (manifests/chaos-target.yaml) becomes Ready; a ChaosBlade
# experiment (manifests/chaos-pod-delete.yaml) deletes one of its pods; the experiment must
# report success, the chosen pod must be gone, and the Deployment must be Ready again (2/2
# with a new pod) within RECOVER_BOUND_S (default 120 s; measured under TCG in the README).
# Exit status (pkg/verify): 0 passed, 1 failed, 3 not-run (it could not run; never a pass).
set -uo pipefail
ns=cnstack-check-chaos
blade=cnstack-check-pod-delete
timeout_s=${CHECK_TIMEOUT:-300}
recover_bound_s=${RECOVER_BOUND_S:-120}
notrun() { echo "not-run: $*"; exit 3; }
diag() {
	echo "--- diagnostics"
	kubectl get chaosblade "$blade" -o jsonpath='{.status}' 2>&1 | sed 's/^/  status: /'
	echo
	kubectl -n "$ns" get deploy,pods -o wide 2>&1 | sed 's/^/  /'
	kubectl -n chaosblade get pods -o wide 2>&1 | sed 's/^/  /'
	kubectl -n chaosblade logs deploy/chaosblade-operator --tail=15 2>&1 | sed 's/^/  operator| /'
}
fail() { echo "FAILED: $*"; diag; exit 1; }

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
for f in manifests/chaos-target.yaml manifests/chaos-pod-delete.yaml; do
	[ -f "$f" ] || notrun "$f is missing from the rootfs ($PWD)"
done

kubectl get crd chaosblades.chaosblade.io >/dev/null 2>&1 || fail "CRD chaosblades.chaosblade.io is not installed (did the chaosblade app run?)"
echo "CRD chaosblades.chaosblade.io is installed"
kubectl -n chaosblade rollout status deployment/chaosblade-operator --timeout="${timeout_s}s" >/dev/null 2>&1 ||
	fail "deployment chaosblade/chaosblade-operator is not available"
echo "chaosblade-operator is available"

kubectl delete chaosblade "$blade" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
kubectl create namespace "$ns" >/dev/null || fail "cannot create namespace $ns"
trap 'kubectl delete chaosblade "$blade" --wait=false >/dev/null 2>&1; kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1' EXIT

pods() { kubectl -n "$ns" get pods -l app=chaos-target -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null | sort; }
# ready_in SECONDS: the Deployment has 2 ready replicas, 2 pods exist and none is terminating.
ready_in() {
	local t0=$SECONDS got
	while ((SECONDS - t0 < $1)); do
		got=$(kubectl -n "$ns" get deployment chaos-target -o jsonpath='{.status.readyReplicas}/{.status.updatedReplicas}' 2>/dev/null)
		if [ "$got" = 2/2 ] && [ "$(pods | wc -l)" = 2 ] &&
			[ -z "$(kubectl -n "$ns" get pods -l app=chaos-target -o jsonpath='{.items[*].metadata.deletionTimestamp}' 2>/dev/null)" ]; then
			return 0
		fi
		sleep 1
	done
	return 1
}
kubectl -n "$ns" apply -f manifests/chaos-target.yaml >/dev/null || fail "kubectl apply manifests/chaos-target.yaml was refused"
ready_in "$timeout_s" || fail "deployment $ns/chaos-target did not become Ready (2/2) within ${timeout_s}s"
before=$(pods)
echo "deployment $ns/chaos-target Ready: $(echo $before)"

kubectl apply -f manifests/chaos-pod-delete.yaml >/dev/null || fail "kubectl apply manifests/chaos-pod-delete.yaml was refused"
t0=$SECONDS
echo "created ChaosBlade $blade: pod delete, evict-count 1, labels app=chaos-target"
while :; do
	phase=$(kubectl get chaosblade "$blade" -o jsonpath='{.status.phase}' 2>/dev/null)
	[ "$phase" = Running ] || [ "$phase" = Error ] && break
	((SECONDS - t0 < timeout_s)) || fail "ChaosBlade $blade did not run within ${timeout_s}s (phase '$phase')"
	sleep 1
done
success=$(kubectl get chaosblade "$blade" -o jsonpath='{.status.expStatuses[0].success}')
state=$(kubectl get chaosblade "$blade" -o jsonpath='{.status.expStatuses[0].state} {.status.expStatuses[0].error}')
victims=$(kubectl get chaosblade "$blade" -o jsonpath='{range .status.expStatuses[0].resStatuses[*]}{.identifier}{" "}{end}')
echo "ChaosBlade $blade: phase $phase, success $success, state $state, resources: ${victims:-none} (after $((SECONDS - t0))s)"
[ "$phase" = Running ] && [ "$success" = true ] || fail "the experiment did not succeed (phase $phase, success '$success': $state)"
gone=""
for p in $before; do
	# Gone: not found, or terminating.
	if dts=$(kubectl -n "$ns" get pod "$p" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null) && [ -z "$dts" ]; then
		continue
	fi
	gone+="$p "
done
[ -n "$gone" ] || fail "the experiment reported success but every pod of $ns/chaos-target is still there: $(echo $before)"
echo "deleted by the experiment: $gone"
ready_in "$recover_bound_s" || fail "deployment $ns/chaos-target was not Ready (2/2) again within ${recover_bound_s}s of the experiment"
echo "deployment $ns/chaos-target Ready again $((SECONDS - t0))s after the experiment started: $(pods | tr '\n' ' ')"
kubectl delete chaosblade "$blade" --wait=true --timeout=60s >/dev/null 2>&1 && echo "experiment $blade destroyed"
echo "PASS: a ChaosBlade experiment deleted pod $gone and the Deployment recovered in $((SECONDS - t0))s (bound ${recover_bound_s}s)"
