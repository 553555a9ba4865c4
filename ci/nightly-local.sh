#!/usr/bin/env bash
# make nightly: ci/nightly.sh on this machine, offline, on the sample stack with the embedded
# registry. State persists under out/nightly (the stack copy, the registry, a throw-away key,
# the reports), so running it twice shows the second night pushing and verifying nothing.
# Boots VMs when the machine can (root, QEMU, debootstrap); otherwise --no-boot, and the
# report says "not-run" (nothing is promoted). Extra arguments go to ci/nightly.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
state=${NIGHTLY_STATE:-$PWD/out/nightly}
export CNSTACK=${CNSTACK:-$PWD/bin/cnstack}
export CNSTACK_HOME=${CNSTACK_HOME:-$state/home}
export CNSTACK_OFFLINE=1
mkdir -p "$state"
if [[ ! -f $state/stack/stack.yaml ]]; then
	rm -rf "$state/stack"
	cp -r testdata/stack "$state/stack"
fi
# A throw-away key; its password (empty unless COSIGN_PASSWORD is set) is never printed.
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
if [[ ! -f $state/keys/cosign.key ]]; then
	"$CNSTACK" generate-key-pair --output-key-prefix "$state/keys/cosign" >/dev/null
fi
# Kubernetes images are installed by the real sealer in the VM (make tools builds it).
tools_bin=${CNSTACK_TOOLS_BIN:-$PWD/.cache/tools/bin}
if [[ -z ${CNSTACK_SEALER:-} && -x $tools_bin/sealer ]]; then export CNSTACK_SEALER=$tools_bin/sealer; fi
args=(--stack "$state/stack" --key "$state/keys/cosign.key" --state "$state" --report-dir "$state/reports" --serve-samples)
[[ -f $state/stack/cnstack.lock ]] || args+=(--update-lock)
if [[ $(id -u) != 0 ]] || ! command -v qemu-system-x86_64 >/dev/null || ! command -v debootstrap >/dev/null; then
	echo "nightly: no VM boots here (they need root, qemu-system-x86 and debootstrap: make deps): --no-boot"
	args+=(--no-boot)
fi
exec ci/nightly.sh "${args[@]}" "$@"
