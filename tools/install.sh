#!/usr/bin/env bash
# Builds the pinned third-party tools that cnstack's tests and CI run.
#
#   tools/install.sh [TOOL...]      TOOL: sealer cosign registry crane (default: all)
#
# Each tool has its own Go module under tools/<name>/ whose go.mod and go.sum pin
# the exact dependency graph. Binaries go to ${CNSTACK_TOOLS_BIN:-<repo>/.cache/tools/bin}.
# A tool is rebuilt only when its go.mod, go.sum, build recipe or Go version
# changed; the fingerprint is kept in <bin>/.<tool>.stamp.
# Needs only Go (and the module proxy, or a module cache that already has the modules).
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(dirname "$tools_dir")
bin_dir=${CNSTACK_TOOLS_BIN:-$repo_root/.cache/tools/bin}
all_tools=(sealer cosign registry crane)

# recipe TOOL sets pkg, tags, ldflags and cgo for one tool.
recipe() {
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
	crane)
		pkg=github.com/google/go-containerregistry/cmd/crane
		ldflags="-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v0.22.1"
		;;
	*)
		echo "install.sh: unknown tool '$1' (known: ${all_tools[*]})" >&2
		return 2
		;;
	esac
}

usage() {
	sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

case ${1:-} in -h | --help) usage; exit 0 ;; esac
if (($# == 0)); then set -- "${all_tools[@]}"; fi
for t in "$@"; do recipe "$t"; done # reject unknown names before building anything

command -v go >/dev/null || { echo "install.sh: go not found in PATH" >&2; exit 1; }
mkdir -p "$bin_dir"

# Serialize concurrent runs (parallel make, several test processes) on one bin dir.
if command -v flock >/dev/null; then
	exec 9>"$bin_dir/.lock"
	flock 9
fi

tmp=""
trap 'rm -f "$tmp"' EXIT # a half-written binary from an interrupted build

go_version=$(go env GOVERSION)
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"

for tool in "$@"; do
	recipe "$tool"
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
	start=$SECONDS
	tmp=$(mktemp "$bin_dir/.$tool.XXXXXX")
	if ! (cd "$mod_dir" && CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		echo "install.sh: building $tool failed" >&2
		exit 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$out"
	tmp=""
	printf '%s\n' "$stamp" >"$stamp_file.tmp"
	mv -f "$stamp_file.tmp" "$stamp_file"
	printf '%-9s built in %ds  %s\n' "$tool" $((SECONDS - start)) "$out"
done
