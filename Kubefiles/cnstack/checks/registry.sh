#!/bin/bash
# Checked by `cnstack boot`: the embedded registry at sea.hub:5000 serves what
# the cluster runs. On a node containerd pulls one of its sea.hub:5000 images
# again, as a pod would, over the registry's TLS (a plain-HTTP probe would get
# "400 Bad Request" there); without containerd the registry is asked directly.
set -euo pipefail
if command -v crictl >/dev/null && [ -S /run/containerd/containerd.sock ]; then
	export CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock
	image=$(crictl images | awk '$1 ~ /^sea\.hub:5000\// && $2 != "<none>" { print $1 ":" $2; exit }')
	[ -n "$image" ] || { echo "containerd holds no image from sea.hub:5000"; exit 1; }
	crictl pull "$image"
	exit 0
fi
exec 3<>/dev/tcp/sea.hub/5000
printf 'GET /v2/ HTTP/1.0\r\nHost: sea.hub:5000\r\n\r\n' >&3
read -r status <&3
echo "sea.hub:5000/v2/ -> $status"
case "$status" in *" 200"*) ;; *) exit 1 ;; esac
