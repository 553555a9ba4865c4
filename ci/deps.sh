#!/usr/bin/env bash
# make deps: the Debian packages the tests and the demo need beyond Go, gcc and
# git — QEMU, debootstrap and friends for the VM image and the VM boots,
# util-linux for the no-network check (unshare), libseccomp for the pinned runc
# build. Installs what is missing when run as root (or with passwordless sudo);
# otherwise prints the command to run and carries on: the tests that need a
# missing package skip and say so.
set -euo pipefail

pkgs=(ca-certificates jq util-linux qemu-system-x86 qemu-utils debootstrap e2fsprogs busybox-static cpio openssh-client libseccomp-dev)
pkgs+=(${CNSTACK_EXTRA_DEBS:-})

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} Debian packages present"
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "deps: not a Debian-family machine; install the equivalents of: ${missing[*]}" >&2
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		echo "deps: missing Debian packages: ${missing[*]}" >&2
		echo "deps: run as root:  apt-get install -y --no-install-recommends ${missing[*]}" >&2
		echo "deps: (or: sudo make deps). Until then the VM tests skip and say why." >&2
		exit 0
	fi
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} packages in $((SECONDS - start))s"
