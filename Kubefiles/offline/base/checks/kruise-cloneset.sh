#!/bin/bash
# Checked by `cnstack boot` on the master, in the rootfs directory: OpenKruise works.
# A CloneSet of the toolbox scales 2 -> 3 with every pod Ready, then an update of its image
# (manifests/kruise-check-v2.yaml: another tag, another digest) is done in place: the same
# three pods (same UIDs), each now running the new image.
# Exit status (pkg/verify): 0 passed, 1 failed, 3 not-run (it could not run; never a pass).
set -uo pipefail
ns=cnstack-check-kruise
timeout_s=${CHECK_TIMEOUT:-300}
notrun() { echo "not-run: $*"; exit 3; }
diag() {
	echo "--- diagnostics"
	kubectl -n "$ns" get cloneset,pods -o wide 2>&1 | sed 's/^/  /'
	kubectl -n "$ns" get events --sort-by=.lastTimestamp 2>&1 | tail -n 15 | sed 's/^/  /'
	kubectl -n kruise-system get pods -o wide 2>&1 | sed 's/^/  /'
	kubectl -n kruise-system logs deploy/kruise-controller-manager --tail=15 2>&1 | sed 's/^/  /'
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
for f in manifests/kruise-check-v1.yaml manifests/kruise-check-v2.yaml; do
	[ -f "$f" ] || notrun "$f is missing from the rootfs ($PWD)"
done

kubectl get crd clonesets.apps.kruise.io >/dev/null 2>&1 || fail "CRD clonesets.apps.kruise.io is not installed (did the kruise app run?)"
echo "CRD clonesets.apps.kruise.io is installed"
kubectl -n kruise-system rollout status deployment/kruise-controller-manager --timeout="${timeout_s}s" >/dev/null 2>&1 ||
	fail "deployment kruise-system/kruise-controller-manager is not available"
echo "kruise-controller-manager is available"

kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
kubectl create namespace "$ns" >/dev/null || fail "cannot create namespace $ns"
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1' EXIT

# wait_for DESC JSONPATH WANT: poll the CloneSet until JSONPATH prints WANT.
wait_for() {
	local desc=$1 path=$2 want=$3 got="" t0=$SECONDS
	while ((SECONDS - t0 < timeout_s)); do
		got=$(kubectl -n "$ns" get cloneset kruise-check -o jsonpath="$path" 2>/dev/null)
		[ "$got" = "$want" ] && { echo "$desc after $((SECONDS - t0))s ($got)"; return 0; }
		sleep 2
	done
	fail "$desc: not within ${timeout_s}s (want $want, last saw '$got')"
}
ready='{.status.replicas}/{.status.readyReplicas}/{.status.updatedReadyReplicas}'
pods() { kubectl -n "$ns" get pods -l app=kruise-check -o jsonpath='{range .items[*]}{.metadata.name} uid={.metadata.uid} image={.spec.containers[0].image} restarts={.status.containerStatuses[0].restartCount} ready={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | sort; }

# kube WHAT ARGS...: kubectl -n ns ARGS, retried while kruise's webhook cannot answer (the
# manager restarting on a busy node); any other refusal fails the check at once, naming WHAT.
kube() {
	local what=$1 out t0=$SECONDS
	shift
	while ! out=$(kubectl -n "$ns" "$@" 2>&1); do
		if ! echo "$out" | grep -q 'failed calling webhook' || ((SECONDS - t0 >= timeout_s)); then
			fail "$what was refused: $out"
		fi
		echo "kruise's webhook is not answering yet, retrying: $(echo "$out" | tail -n1)"
		sleep 5
	done
}
kube "kubectl apply manifests/kruise-check-v1.yaml" apply -f manifests/kruise-check-v1.yaml
echo "applied CloneSet $ns/kruise-check: 2 replicas of registry.cnstack.local/cnstack/busybox:1.35.0"
wait_for "2 pods Ready" "$ready" "2/2/2"
kube "scaling the CloneSet to 3" patch cloneset kruise-check --type merge -p '{"spec":{"replicas":3}}'
echo "scaled the CloneSet 2 -> 3"
wait_for "3 pods Ready" "$ready" "3/3/3"
before=$(pods)
echo "pods before the update:"
echo "$before" | sed 's/^/  /'
[ "$(echo "$before" | grep -c 'ready=True')" = 3 ] || fail "not every pod is Ready"

gen=$(kubectl -n "$ns" get cloneset kruise-check -o jsonpath='{.metadata.generation}')
kube "kubectl apply manifests/kruise-check-v2.yaml" apply -f manifests/kruise-check-v2.yaml
echo "updated the image to registry.cnstack.local/cnstack/busybox:1.35.0-inplace (generation $gen -> $((gen + 1)))"
wait_for "3 pods updated and Ready" '{.status.observedGeneration}/{.status.updatedReplicas}/{.status.updatedReadyReplicas}' "$((gen + 1))/3/3"
after=$(pods)
echo "pods after the update:"
echo "$after" | sed 's/^/  /'
uids() { sed -n 's/.* uid=\([^ ]*\) .*/\1/p' | sort; }
[ "$(echo "$before" | uids)" = "$(echo "$after" | uids)" ] || fail "the pods were recreated, not updated in place (UIDs differ)"
[ "$(echo "$after" | grep -c 'image=registry.cnstack.local/cnstack/busybox:1.35.0-inplace ')" = 3 ] || fail "not every pod runs the new image"
[ "$(echo "$after" | grep -c 'ready=True')" = 3 ] || fail "not every pod is Ready after the update"
imgids=$(kubectl -n "$ns" get pods -l app=kruise-check -o jsonpath='{range .items[*]}{.status.containerStatuses[0].imageID}{"\n"}{end}' | sort -u)
echo "running image: $imgids"
echo "PASS: CloneSet scaled 2 -> 3 (all Ready) and updated its image in place (same 3 pod UIDs, containers restarted in place)"
