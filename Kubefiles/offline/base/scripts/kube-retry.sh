#!/bin/bash
# kube-retry.sh 'COMMAND': the offline edition's app installs (APPCMDS) run through this.
# It runs COMMAND (a shell string: kubectl apply, helm upgrade --install, rollout status)
# at most KUBE_RETRY_ATTEMPTS times (3), each time once the API server answers /readyz.
# Why: in a small or slow guest (2 vCPUs under TCG, load average 25-30 while the stack
# starts) the kubelet may restart kube-apiserver in the middle of an install, and a single
# refused connection would fail the whole `sealer run`. Every command it wraps is idempotent,
# so running it again finishes the install. A command that keeps failing still fails, with
# its last exit code; each failed attempt is logged. (The KUBE_RETRY_* variables exist for
# its tests.)
# sealer runs APPCMDS in rootfs/application/apps/<app>/, so apps call it as
# `bash ../../../scripts/kube-retry.sh '...'`.
set -u
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: kube-retry.sh 'COMMAND'" >&2
	exit 2
fi
cmd=$1
attempts=${KUBE_RETRY_ATTEMPTS:-3}
ready_wait=${KUBE_RETRY_READY_SECONDS:-600}
poll=${KUBE_RETRY_POLL_SECONDS:-5}
pause=${KUBE_RETRY_PAUSE_SECONDS:-10}

wait_ready() {
	local start=$SECONDS refused=0
	until kubectl get --raw=/readyz >/dev/null 2>&1; do
		if [ $((SECONDS - start)) -ge "$ready_wait" ]; then
			echo "kube-retry: the API server did not answer /readyz within ${ready_wait}s" >&2
			return 1
		fi
		refused=$((refused + 1))
		sleep "$poll"
	done
	if [ "$refused" -gt 0 ]; then
		echo "kube-retry: the API server answered /readyz after $((SECONDS - start))s ($refused polls unanswered)" >&2
	fi
}

rc=1
for attempt in $(seq "$attempts"); do
	wait_ready || exit 1
	bash -c "$cmd" && exit 0
	rc=$?
	echo "kube-retry: attempt $attempt/$attempts failed (exit $rc): $cmd" >&2
	[ "$attempt" -lt "$attempts" ] && sleep "$pause"
done
exit "$rc"
