#!/bin/bash
# init-registry.sh <port> <registry data dir> <domain>: start the embedded registry
# that serves registry/ to the cluster (sealer's run contract, sealer-format.md §4.3).
# It runs `cnstack registry serve` read-only over the image's registry tree, detached
# from the installer's session, and leaves its log in the rootfs.
set -euo pipefail
port=${1:-5000}
data=${2:-/var/lib/sealer/data/my-cluster/rootfs/registry}
domain=${3:-sea.hub}
log="$(dirname "$data")/registry.log"
if ! command -v cnstack >/dev/null 2>&1; then
	echo "init-registry.sh: cnstack is not on PATH; it serves ${domain}:${port}" >&2
	exit 1
fi
if [ ! -d "$data/docker/registry/v2" ]; then
	echo "init-registry.sh: $data holds no registry tree" >&2
	exit 1
fi
setsid nohup cnstack registry serve --read-only --allow-remote --root "$data" --addr "0.0.0.0:${port}" >"$log" 2>&1 < /dev/null &
echo "started the registry for ${domain}:${port} (pid $!), log $log"
