#!/usr/bin/env bash
# A stand-in verifier for tests that cannot boot VMs: ci/nightly.sh --verifier runs it as
#   fake-verifier.sh REF DIGEST REPORT_DIR
# It boots nothing. It writes a pkg/verify Report to REPORT_DIR/report.json that says so
# (installer "fake-verifier", accel "none"), passing unless the layer of REF is named in
# $FAKE_VERIFIER_FAIL (space-separated), and appends the layer (and $NIGHTLY_BASE, the
# cluster an app-installer goes onto) to $FAKE_VERIFIER_LOG.
set -euo pipefail
ref=$1 digest=$2 dir=$3
layer=${ref##*/}
layer=${layer%%:*}
[[ -z ${FAKE_VERIFIER_LOG:-} ]] || printf '%s %s%s\n' "$layer" "$digest" "${NIGHTLY_BASE:+ base=$NIGHTLY_BASE}" >>"$FAKE_VERIFIER_LOG"
passed=true status=passed error=""
for f in ${FAKE_VERIFIER_FAIL:-}; do
	if [[ $f == "$layer" ]]; then passed=false status=failed error="pods not Running: chaos-operator-0 CrashLoopBackOff (planted by the fake verifier)"; fi
done
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$dir"
printf 'fake serial console of %s\n' "$ref" >"$dir/serial-node0.log"
cat >"$dir/report.json" <<JSON
{
  "image": "$ref", "digest": "$digest", "platform": "linux/amd64", "vmImage": "none (fake verifier)",
  "installer": "fake-verifier", "accel": "none",${NIGHTLY_BASE:+ \"base\": \"$NIGHTLY_BASE\",} "nodes": 1, "started": "$now", "duration": 1500000000,
  "phases": [
    {"name": "boot", "node": "node0", "start": "$now", "duration": 500000000},
    {"name": "install", "node": "node0", "start": "$now", "duration": 700000000}
  ],
  "assertions": [
    {"name": "pods Running", "node": "node0", "status": "$status", "evidence": "${error:-every pod Running}", "duration": 200000000}
  ],
  "logs": {"serial-node0": "serial-node0.log"}, "figures": {}, "passed": $passed${error:+, \"error\": \"$error\"}
}
JSON
[[ $passed == true ]]
