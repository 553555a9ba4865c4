#!/bin/bash
# init-registry.sh <port> <registry data dir> <domain>: start the embedded registry
# that serves registry/ to the cluster (sealer's run contract, sealer-format.md §4.3).
set -euo pipefail
port=${1:-5000}; data=${2:-/var/lib/sealer/data/my-cluster/rootfs/registry}; domain=${3:-sea.hub}
exec registry serve --addr "0.0.0.0:${port}" --root "${data}" --name "${domain}"
