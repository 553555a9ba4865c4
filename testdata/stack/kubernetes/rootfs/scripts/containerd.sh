#!/bin/bash
# containerd.sh: install and start containerd from the image's files.
set -euo pipefail
command -v containerd >/dev/null || { echo "containerd is not installed on this host" >&2; exit 1; }
systemctl enable --now containerd
