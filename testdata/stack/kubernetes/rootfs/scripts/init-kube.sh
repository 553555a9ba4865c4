#!/bin/bash
# init-kube.sh: put the image's binaries on PATH.
set -euo pipefail
install -m 0755 ../bin/* /usr/bin/
