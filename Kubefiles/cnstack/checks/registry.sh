#!/bin/bash
# Checked by `cnstack boot`: the embedded registry answers at sea.hub:5000.
set -euo pipefail
exec 3<>/dev/tcp/sea.hub/5000
printf 'GET /v2/ HTTP/1.0\r\nHost: sea.hub:5000\r\n\r\n' >&3
read -r status <&3
echo "sea.hub:5000/v2/ -> $status"
case "$status" in *" 200"*) ;; *) exit 1 ;; esac
