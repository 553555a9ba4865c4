# Shared by the install scripts (sourced, not run). sealer v0.11 runs each script
# with bash from <rootfs>/scripts or as `bash <rootfs>/scripts/X.sh`, as root, with
# PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/bin and the cluster env exported.
set -euo pipefail

scripts_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rootfs=$(dirname "$scripts_dir")
# R prefixes every host path; only the tests set it (a scratch directory
# standing in for /, with stub systemctl, modprobe, ... first on PATH).
R=${CNSTACK_TEST_ROOT:-}

log() { printf '[cnstack-kubernetes] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# os_family prints debian or rhel (OpenAnolis, Alibaba Cloud Linux, CentOS, Rocky, ...).
os_family() {
	local id="" like=""
	if [ -r "$R/etc/os-release" ]; then
		# shellcheck disable=SC1091
		id=$(. "$R/etc/os-release" && echo "${ID:-}")
		like=$(. "$R/etc/os-release" && echo "${ID_LIKE:-}")
	fi
	case " $id $like " in
	*" debian "* | *" ubuntu "*) echo debian ;;
	*" rhel "* | *" centos "* | *" fedora "* | *" anolis "* | *" alinux "*) echo rhel ;;
	*) echo unknown ;;
	esac
}

# registry_url is where containerd pulls every image from: the cluster's embedded
# registry (sealer exports RegistryURL, default sea.hub:5000).
registry_url() { echo "${RegistryURL:-${LocalRegistryURL:-sea.hub:5000}}"; }
registry_domain() { local u; u=$(registry_url); echo "${RegistryDomain:-${u%%:*}}"; }

# install_unit NAME CONTENT writes a systemd unit where both families look.
install_unit() {
	mkdir -p "$R/etc/systemd/system"
	printf '%s\n' "$2" >"$R/etc/systemd/system/$1"
}

# wait_for DESCRIPTION SECONDS CMD... polls CMD until it succeeds.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 2; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.5
	done
	die "$what did not come up within ${secs}s"
}
