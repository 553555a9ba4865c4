#!/usr/bin/env bash
# Builds the pinned third-party programs cnstack needs, from the Go module proxy.
#
#   tools/install.sh [TOOL...]                      host tools (default: all of them)
#   tools/install.sh payload [TOOL...]              payload tools for linux/amd64 and linux/arm64
#   tools/install.sh --platform OS/ARCH [TOOL...]   payload tools for one platform (repeatable,
#                                                   or comma-separated)
#
# Host tools (sealer cosign registry crane actionlint controller-gen) run on this machine for tests,
# CI and builds; they go
# to ${CNSTACK_TOOLS_BIN:-<repo>/.cache/tools/bin}.
# Payload tools (kubernetes etcd coredns containerd runc crictl cni flannel flannel-cni
# seautil lvscare registry pause helm; kruise node-exporter kube-state-metrics prometheus otelcol
# chaosblade dapr for the offline edition) are the binaries cluster images carry; they go to ${CNSTACK_TOOLS_DIR:-~/.cache/cnstack/tools}/payload/<os>-<arch>/<binary>.
# A payload-only name (kubernetes, etcd, ...) given without `payload` or --platform builds
# the payload for both platforms; `registry` alone means the host tool.
#
# Each tool has its own Go module under tools/<name>/ whose go.mod and go.sum pin the
# whole dependency graph. A tool is rebuilt only when its module (go.mod, go.sum, Go
# sources), its build recipe, the Go version, the platform or, for cgo, the C toolchain
# changed; the fingerprint is kept in a stamp file beside the binaries.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(dirname "$tools_dir")
bin_dir=${CNSTACK_TOOLS_BIN:-$repo_root/.cache/tools/bin}
payload_root=${CNSTACK_TOOLS_DIR:-${HOME:-/root}/.cache/cnstack/tools}/payload
host_tools=(sealer cosign registry crane actionlint controller-gen)
payload_tools=(kubernetes etcd coredns containerd runc crictl cni flannel flannel-cni seautil lvscare registry pause helm
	kruise node-exporter kube-state-metrics prometheus otelcol chaosblade dapr)
default_platforms=(linux/amd64 linux/arm64)

die() { echo "install.sh: $*" >&2; exit 1; }

# modver DIR MODULE prints the version of MODULE that DIR/go.mod selects (the replacement's
# version when the module is replaced), so the version stamped into a binary comes from
# the same pin as its source. Pure awk: a no-op run must stay instant.
modver() {
	local v
	v=$(awk -v m="$2" '
		{ sub(/^[ \t]*(require|replace)[ \t]+/, "") }
		$1 == m {
			if ($0 ~ /=>/) { if ($NF ~ /^v[0-9]/) rep = $NF }
			else if ($2 ~ /^v[0-9]/) req = $2
		}
		END { print (rep != "" ? rep : req) }' "$tools_dir/$1/go.mod")
	[[ -n $v ]] || die "no version of $2 in tools/$1/go.mod"
	printf '%s\n' "$v"
}

# host_recipe TOOL sets pkg, tags, ldflags and cgo for one host tool.
host_recipe() {
	tags="" ldflags="" cgo=0
	case $1 in
	sealer)
		pkg=github.com/sealerio/sealer/cmd/sealer
		# The tags drop graph drivers that need C headers and use the pure-Go
		# openpgp instead of gpgme, so sealer builds with cgo off and no -dev packages.
		tags="containers_image_openpgp exclude_graphdriver_devicemapper exclude_graphdriver_btrfs"
		ldflags="-X github.com/sealerio/sealer/version.gitVersion=v0.11.0"
		;;
	cosign)
		pkg=github.com/sigstore/cosign/v2/cmd/cosign
		ldflags="-X sigs.k8s.io/release-utils/version.gitVersion=v2.6.5"
		;;
	registry)
		pkg=github.com/distribution/distribution/v3/cmd/registry
		ldflags="-X github.com/distribution/distribution/v3/version.version=v3.1.2"
		;;
	actionlint)
		# Lints .github/workflows in make lint (make test).
		pkg=github.com/rhysd/actionlint/cmd/actionlint
		ldflags="-X github.com/rhysd/actionlint.version=v1.7.12"
		;;
	controller-gen)
		# Generates the offline edition's CRDs from the pinned modules' API packages
		# (ci/offline-edition.sh); nothing generated is committed.
		pkg=sigs.k8s.io/controller-tools/cmd/controller-gen
		ldflags="-X sigs.k8s.io/controller-tools/pkg/version.version=v0.23.0"
		;;
	crane)
		pkg=github.com/google/go-containerregistry/cmd/crane
		ldflags="-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v0.22.1"
		;;
	*)
		return 1
		;;
	esac
}

# c_toolchain ARCH sets cc, apt and cgo_env for a cgo build for ARCH: the native gcc, or
# Debian's cross gcc and the ARCH's libraries (dpkg multiarch) for another architecture.
c_toolchain() {
	local triplet
	case $1 in
	amd64) triplet=x86_64-linux-gnu ;;
	arm64) triplet=aarch64-linux-gnu ;;
	*) die "no C toolchain known for linux/$1" ;;
	esac
	if [[ $1 == "$host_arch" ]]; then
		cc=gcc apt="gcc"
	else
		cc=$triplet-gcc apt="gcc-$triplet"
	fi
	cgo_env="PKG_CONFIG_LIBDIR=/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"
}

# payload_recipe TOOL OS ARCH sets, for one payload tool on one platform:
#   mod       module directory under tools/
#   bins      NAME=PACKAGE pairs, one binary each
#   tags, ldflags, cgo (0|1), cc (C compiler when cgo=1), apt (Debian packages cgo needs)
#   cgo_env   extra environment for the cgo build (pkg-config search path)
# Every binary is stripped (-s -w) and built with -trimpath: images carry them.
payload_recipe() {
	local tool=$1 os=$2 arch=$3 v
	mod=$tool tags="" ldflags="" cgo=0 cc="" apt="" cgo_env=""
	case $tool in
	kubernetes)
		v=$(modver kubernetes k8s.io/kubernetes)
		local minor=${v#v1.}
		minor=${minor%%.*}
		bins="kubeadm=k8s.io/kubernetes/cmd/kubeadm kubelet=k8s.io/kubernetes/cmd/kubelet kubectl=k8s.io/kubernetes/cmd/kubectl"
		bins+=" kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
		bins+=" kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"
		# The tags upstream's hack/lib/golang.sh builds release binaries with.
		tags="selinux notest grpcnotrace"
		# What hack/lib/version.sh stamps; the module zip has no git metadata, so the commit
		# stays empty rather than upstream's "$Format:%H$" placeholder.
		local p
		for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ldflags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.gitCommit="
		done
		;;
	etcd)
		# The version is a constant in go.etcd.io/etcd/api/v3/version.
		bins="etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3"
		;;
	coredns)
		# The version is a constant in coremain.
		bins="coredns=github.com/coredns/coredns"
		;;
	containerd)
		v=$(modver containerd github.com/containerd/containerd/v2)
		bins="containerd=github.com/containerd/containerd/v2/cmd/containerd"
		bins+=" containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
		bins+=" ctr=github.com/containerd/containerd/v2/cmd/ctr"
		tags="urfave_cli_no_docs"
		ldflags="-X github.com/containerd/containerd/v2/version.Version=$v"
		;;
	runc)
		# runc needs cgo (libcontainer/nsenter) and libseccomp; link both statically, as
		# upstream's release binaries are. The version comes from runc's embedded VERSION file.
		bins="runc=github.com/opencontainers/runc"
		tags="seccomp urfave_cli_no_docs netgo osusergo"
		ldflags="-extldflags=-static"
		cgo=1
		c_toolchain "$arch"
		apt+=" libseccomp-dev:$arch pkg-config"
		;;
	helm)
		# sealer v0.11 runs `helm install` on master0 for helm-type apps.
		v=$(modver helm helm.sh/helm/v3)
		bins="helm=helm.sh/helm/v3/cmd/helm"
		ldflags="-X helm.sh/helm/v3/internal/version.version=$v"
		;;
	crictl)
		v=$(modver crictl sigs.k8s.io/cri-tools)
		bins="crictl=sigs.k8s.io/cri-tools/cmd/crictl"
		ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=$v"
		;;
	cni)
		v=$(modver cni github.com/containernetworking/plugins)
		local p=github.com/containernetworking/plugins/plugins
		bins="bridge=$p/main/bridge host-local=$p/ipam/host-local loopback=$p/main/loopback portmap=$p/meta/portmap"
		ldflags="-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v"
		;;
	flannel-cni)
		v=$(modver flannel-cni github.com/containernetworking/plugins)
		bins="flannel=github.com/containernetworking/plugins/plugins/meta/flannel"
		ldflags="-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v"
		;;
	flannel)
		v=$(modver flannel github.com/flannel-io/flannel)
		bins="flanneld=github.com/flannel-io/flannel"
		ldflags="-X github.com/flannel-io/flannel/pkg/version.Version=$v"
		# On amd64 the UDP backend is C (backend/udp/proxy_amd64.c): cgo, linked statically
		# with Go's resolver and user lookup so no glibc NSS is needed. Elsewhere it is Go.
		if [[ $arch == amd64 ]]; then
			cgo=1 tags="netgo osusergo" ldflags+=" -extldflags=-static"
			c_toolchain "$arch"
		fi
		;;
	seautil)
		# sealer's helper for workers (route, ipvs, cert), with sealer's own replace block.
		bins="seautil=github.com/sealerio/sealer/cmd/seautil"
		tags="containers_image_openpgp exclude_graphdriver_devicemapper exclude_graphdriver_btrfs"
		ldflags="-X github.com/sealerio/sealer/version.gitVersion=$(modver seautil github.com/sealerio/sealer)"
		;;
	lvscare)
		v=$(modver lvscare github.com/labring/lvscare)
		bins="lvscare=github.com/labring/lvscare"
		ldflags="-X github.com/labring/lvscare/cmd.Version=$v -X github.com/labring/lvscare/cmd.Githash=${v##*-}"
		;;
	registry)
		host_recipe registry
		bins="registry=$pkg"
		;;
	pause)
		bins="pause=github.com/cnstack/cnstack/tools/pause"
		;;
	kruise)
		# The offline edition's base layer: OpenKruise's manager (the module root) and
		# its node daemon, with kruise's own replace block (tools/kruise/go.mod).
		bins="kruise-manager=github.com/openkruise/kruise kruise-daemon=github.com/openkruise/kruise/cmd/daemon"
		;;
	node-exporter)
		v=$(modver node-exporter github.com/prometheus/node_exporter)
		bins="node_exporter=github.com/prometheus/node_exporter"
		ldflags="-X github.com/prometheus/common/version.Version=${v#v}"
		;;
	kube-state-metrics)
		v=$(modver kube-state-metrics k8s.io/kube-state-metrics/v2)
		bins="kube-state-metrics=k8s.io/kube-state-metrics/v2"
		ldflags="-X github.com/prometheus/common/version.Version=$v"
		;;
	prometheus)
		# Module v0.3MM.P is Prometheus v3.MM.P. No builtinassets tag: the UI's assets are
		# npm-built upstream; the HTTP API is complete without them.
		v=$(modver prometheus github.com/prometheus/prometheus)
		local m=${v#v0.}
		bins="prometheus=github.com/prometheus/prometheus/cmd/prometheus promtool=github.com/prometheus/prometheus/cmd/promtool"
		ldflags="-X github.com/prometheus/common/version.Version=${m:0:1}.${m:1}"
		;;
	otelcol)
		# Our collector distribution (tools/otelcol/main.go): the components the
		# offline edition configures, pinned at one collector release.
		v=$(modver otelcol go.opentelemetry.io/collector/otelcol)
		bins="otelcol=github.com/cnstack/cnstack/tools/otelcol"
		ldflags="-X main.version=${v#v}"
		;;
	chaosblade)
		# The offline edition's ha layer: the ChaosBlade operator (its pod experiments
		# run through the Kubernetes API; no chaosblade-tool DaemonSet is deployed).
		v=$(modver chaosblade github.com/chaosblade-io/chaosblade-operator)
		bins="chaosblade-operator=github.com/chaosblade-io/chaosblade-operator/cmd/manager"
		ldflags="-X github.com/chaosblade-io/chaosblade-operator/version.Version=${v#v}"
		;;
	dapr)
		# The offline edition's mesh layer: Dapr's control plane and the daprd sidecar,
		# with Dapr's replace block (tools/dapr/go.mod). daprd is built with the
		# stablecomponents flavour (upstream's release uses allcomponents, which adds the
		# alpha and beta components and their SDKs).
		v=$(modver dapr github.com/dapr/dapr)
		local c p=github.com/dapr/dapr/cmd
		bins=""
		bins="daprd=$p/daprd"
		for c in operator sentry injector placement scheduler; do bins+=" dapr-$c=$p/$c"; done
		tags="stablecomponents"
		ldflags="-X github.com/dapr/dapr/pkg/buildinfo.version=${v#v} -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$v"
		ldflags+=" -X github.com/dapr/kit/logger.DaprVersion=${v#v}"
		;;
	*)
		return 1
		;;
	esac
	ldflags="-s -w${ldflags:+ $ldflags}"
}

is_payload_tool() { local t; for t in "${payload_tools[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }
is_host_tool() { local t; for t in "${host_tools[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

usage() { sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# --- arguments -------------------------------------------------------------------------
platforms=() names=() payload_mode=0
while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--platform) (($# >= 2)) || die "--platform needs OS/ARCH"; IFS=, read -ra p <<<"$2"; platforms+=("${p[@]}"); payload_mode=1; shift 2 ;;
	--platform=*) IFS=, read -ra p <<<"${1#*=}"; platforms+=("${p[@]}"); payload_mode=1; shift ;;
	payload) payload_mode=1; shift ;;
	-*) die "unknown flag $1 (see --help)" ;;
	*) names+=("$1"); shift ;;
	esac
done
((${#platforms[@]})) || platforms=("${default_platforms[@]}")
for pl in "${platforms[@]}"; do
	[[ $pl =~ ^[a-z0-9]+/[a-z0-9]+$ ]] || die "bad platform '$pl': want OS/ARCH, e.g. linux/arm64"
done

host_list=() payload_list=()
if ((payload_mode)); then
	((${#names[@]})) || names=("${payload_tools[@]}")
	for t in "${names[@]}"; do
		is_payload_tool "$t" || die "unknown payload tool '$t' (known: ${payload_tools[*]})"
		payload_list+=("$t")
	done
else
	((${#names[@]})) || names=("${host_tools[@]}")
	for t in "${names[@]}"; do
		if is_host_tool "$t"; then host_list+=("$t")
		elif is_payload_tool "$t"; then payload_list+=("$t")
		else die "unknown tool '$t' (host: ${host_tools[*]}; payload: ${payload_tools[*]})"
		fi
	done
fi
command -v go >/dev/null || die "go not found in PATH"
go_version=$(go env GOVERSION)
host_arch=$(go env GOHOSTARCH)
# Reject recipes that cannot work before building anything.
for t in "${payload_list[@]}"; do
	for pl in "${platforms[@]}"; do payload_recipe "$t" "${pl%/*}" "${pl#*/}" || die "no recipe for $t"; done
done

export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"

tmp=""
heartbeat=""
cleanup() {
	[[ -n $heartbeat ]] && kill "$heartbeat" 2>/dev/null
	[[ -n $tmp ]] && rm -rf "$tmp"
	return 0
}
trap cleanup EXIT

# lock FD DIR serializes concurrent runs (parallel make, several test processes) on DIR.
lock() {
	mkdir -p "$2"
	if command -v flock >/dev/null; then
		eval "exec $1>\"\$2/.lock\""
		flock "$1"
	fi
}

# --- host tools ------------------------------------------------------------------------
if ((${#host_list[@]})); then
	lock 9 "$bin_dir"
	for tool in "${host_list[@]}"; do
		host_recipe "$tool"
		mod_dir=$tools_dir/$tool
		out=$bin_dir/$tool
		stamp_file=$bin_dir/.$tool.stamp
		stamp=$(
			printf 'tool=%s\ngo=%s\npkg=%s\ntags=%s\nldflags=%s\ncgo=%s\n' \
				"$tool" "$go_version" "$pkg" "$tags" "$ldflags" "$cgo"
			cat "$mod_dir/go.mod" "$mod_dir/go.sum" | sha256sum | cut -d' ' -f1
		)
		if [[ -x $out && -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
			printf '%-9s up to date (0s)  %s\n' "$tool" "$out"
			continue
		fi
		echo "$tool: building ..."
		start=$SECONDS
		tmp=$(mktemp "$bin_dir/.$tool.XXXXXX")
		if ! (cd "$mod_dir" && CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg"); then
			die "building $tool failed"
		fi
		chmod 0755 "$tmp"
		mv -f "$tmp" "$out"
		tmp=""
		printf '%s\n' "$stamp" >"$stamp_file.tmp"
		mv -f "$stamp_file.tmp" "$stamp_file"
		printf '%-9s built in %ds  %s\n' "$tool" $((SECONDS - start)) "$out"
	done
fi

((${#payload_list[@]})) || exit 0

# --- payload tools ---------------------------------------------------------------------

# ensure_cc CC APT_PACKAGES makes sure a cgo build's C toolchain and libraries are there.
# As root with apt-get (CI, these machines) it installs the missing Debian packages;
# otherwise it names them. CNSTACK_TOOLS_APT=0 turns the install off.
ensure_cc() {
	local cc=$1 missing=() p
	for p in $2; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	command -v "$cc" >/dev/null || [[ ${#missing[@]} -gt 0 ]] || missing+=("$cc")
	((${#missing[@]})) || return 0
	local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
	local arch_cmd=""
	[[ " ${missing[*]}" == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64 &&
		arch_cmd="dpkg --add-architecture arm64 && apt-get update && "
	if [[ ${CNSTACK_TOOLS_APT:-1} != 0 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "installing C build dependencies: ${missing[*]}"
		[[ -n $arch_cmd ]] && { dpkg --add-architecture arm64; apt-get update -qq; }
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
			die "could not install ${missing[*]}; run: ${arch_cmd}$cmd"
		return 0
	fi
	die "a cgo build needs ${missing[*]}; run as root: ${arch_cmd}$cmd"
}

# module_digest DIR hashes what decides a module's binaries: go.mod, go.sum and every
# non-test Go source in the module directory (tools.go, local stubs, our own pause).
module_digest() {
	(cd "$1" && find . -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) -print0 |
		LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

human() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# start_heartbeat LABEL prints a line every 30 s while a long build runs.
start_heartbeat() {
	local label=$1 t0=$SECONDS
	(
		# sleep in the background so that TERM interrupts `wait` at once.
		s=""
		trap 'kill $s 2>/dev/null; exit 0' TERM
		while :; do
			sleep 30 &
			s=$!
			wait "$s"
			printf '    ... %s still building (%ds)\n' "$label" $((SECONDS - t0))
		done
	) &
	heartbeat=$!
}
stop_heartbeat() {
	[[ -n $heartbeat ]] && { kill "$heartbeat" 2>/dev/null; wait "$heartbeat" 2>/dev/null || true; }
	heartbeat=""
}

lock 8 "$payload_root"
declare -A digest_of=()
total_start=$SECONDS
for tool in "${payload_list[@]}"; do
	for pl in "${platforms[@]}"; do
		os=${pl%/*} arch=${pl#*/}
		payload_recipe "$tool" "$os" "$arch"
		mod_dir=$tools_dir/$mod
		out_dir=$payload_root/$os-$arch
		stamp_file=$out_dir/.$tool.stamp
		[[ -n ${digest_of[$mod]:-} ]] || digest_of[$mod]=$(module_digest "$mod_dir")
		cc_id=""
		if ((cgo)); then
			ensure_cc "$cc" "$apt"
			cc_id=$("$cc" --version | head -1)
			[[ $tool == runc ]] && cc_id+="; libseccomp $(env $cgo_env pkg-config --modversion libseccomp)"
		fi
		stamp=$(printf 'tool=%s\nplatform=%s\ngo=%s\nmodule=%s\nbins=%s\ntags=%s\nldflags=%s\ncgo=%s\ncc=%s\ncgo_env=%s\n' \
			"$tool" "$pl" "$go_version" "${digest_of[$mod]}" "$bins" "$tags" "$ldflags" "$cgo" "$cc_id" "$cgo_env" | sha256sum | cut -d' ' -f1)
		names_only=""
		present=1
		for b in $bins; do
			names_only+=" ${b%%=*}"
			[[ -x $out_dir/${b%%=*} ]] || present=0
		done
		if ((present)) && [[ -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
			printf '%-12s %-12s up to date  %s/{%s}\n' "$tool" "$pl" "$out_dir" "$(echo $names_only | tr ' ' ,)"
			continue
		fi
		mkdir -p "$out_dir"
		tmp=$(mktemp -d "$out_dir/.$tool.XXXXXX")
		tool_start=$SECONDS
		n=0 count=$(wc -w <<<"$bins")
		for b in $bins; do
			name=${b%%=*} pkg=${b#*=}
			n=$((n + 1))
			printf '%-12s %-12s building %s (%d/%d) ...\n' "$tool" "$pl" "$name" "$n" "$count"
			start=$SECONDS
			start_heartbeat "$name ($pl)"
			if ! (cd "$mod_dir" && env GOOS="$os" GOARCH="$arch" CGO_ENABLED="$cgo" ${cc:+CC="$cc"} $cgo_env \
				go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp/$name" "$pkg"); then
				stop_heartbeat
				die "building $name ($tool) for $pl failed"
			fi
			stop_heartbeat
			printf '%-12s %-12s   %-24s %4ds  %s\n' "$tool" "$pl" "$name" $((SECONDS - start)) "$(human "$(stat -c %s "$tmp/$name")")"
		done
		for b in $bins; do
			chmod 0755 "$tmp/${b%%=*}"
			mv -f "$tmp/${b%%=*}" "$out_dir/${b%%=*}"
		done
		rmdir "$tmp"
		tmp=""
		printf '%s\n' "$stamp" >"$stamp_file.tmp"
		mv -f "$stamp_file.tmp" "$stamp_file"
		printf '%-12s %-12s built in %ds  %s\n' "$tool" "$pl" $((SECONDS - tool_start)) "$out_dir"
	done
done
printf 'payload: %s in %ds\n' "$payload_root" $((SECONDS - total_start))
