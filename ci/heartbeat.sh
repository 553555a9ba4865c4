#!/usr/bin/env bash
# heartbeat.sh LABEL CMD...: run CMD; if it takes longer than 20 s, say every
# 30 s that LABEL is still running, so a cold compile is never a silent wait.
set -uo pipefail
label=$1; shift
start=$SECONDS
"$@" &
pid=$!
(
	sleep 20
	while kill -0 "$pid" 2>/dev/null; do
		echo "  … $label: still running ($((SECONDS - start))s)" >&2
		sleep 30
	done
) &
beat=$!
wait "$pid"; rc=$?
kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null
exit $rc
