#!/usr/bin/env bash
# Unpacks the Debian 12 packages the Kubernetes base's container images carry, for
# each platform, next to the Go payload (see install.sh):
#
#   tools/debs.sh [--platform OS/ARCH[,...]]      default: linux/amd64 and linux/arm64
#
# Sets, each a root filesystem tree under
# ${CNSTACK_TOOLS_DIR:-~/.cache/cnstack/tools}/payload/<os>-<arch>/debs/<set>/:
#   iptables  iptables (nft and legacy backends, with the alternatives links Debian's
#             postinst would make), conntrack, their C libraries and /etc/protocols:
#             what kube-proxy (iptables mode) and flanneld execute inside their images
#   busybox   busybox-static and links for its applets: the toolbox image the boot
#             assertions run, and the shell tools of flannel's install-cni step
# Packages come from the machine's apt sources (`apt-get download PKG:ARCH`; arm64
# needs `dpkg --add-architecture arm64`, done here when root). Downloads are kept in
# ${CNSTACK_TOOLS_DIR}/debs; a set is unpacked again only when its .deb files change
# (the stamp lists them, name and version), so a second run is instant.
set -euo pipefail

tools_root=${CNSTACK_TOOLS_DIR:-${HOME:-/root}/.cache/cnstack/tools}
payload_root=$tools_root/payload
deb_cache=$tools_root/debs
platforms=(linux/amd64 linux/arm64)

die() { echo "debs.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--platform) IFS=, read -r -a platforms <<<"${2:?--platform needs OS/ARCH}"; shift 2 ;;
	--platform=*) IFS=, read -r -a platforms <<<"${1#*=}"; shift ;;
	-h | --help) sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

# set_packages SET prints the packages of a set.
set_packages() {
	case $1 in
	iptables) echo "iptables libip4tc2 libip6tc2 libxtables12 libmnl0 libnetfilter-conntrack3 libnfnetlink0 libnftnl11 conntrack libc6 libgcc-s1 netbase" ;;
	busybox) echo "busybox-static" ;;
	*) die "unknown set $1" ;;
	esac
}
sets=(iptables busybox)

# Applets linked in the busybox tree: a fixed list, so the tree does not depend on
# running the (possibly foreign-architecture) binary.
applets="sh ash cat cp mv rm ln ls mkdir rmdir chmod chown touch echo printf sleep true false test [
  env id hostname uname date cut head tail tr wc sort uniq grep sed awk find xargs tee dd du df
  ps kill wget nc nslookup ping ip ifconfig route httpd timeout watch which vi mount umount stat"

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb (a Debian-family machine)"
mkdir -p "$deb_cache"

ensure_arch() {
	local arch=$1
	[ "$arch" = "$(dpkg --print-architecture)" ] && return 0
	if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		[ "$(id -u)" -eq 0 ] || die "Debian packages for $arch need 'dpkg --add-architecture $arch && apt-get update' (as root)"
		echo "debs: adding the $arch architecture to apt"
		dpkg --add-architecture "$arch"
		apt-get update -qq
	fi
	if ! apt-cache show "libc6:$arch" >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || die "apt knows no $arch packages: run 'apt-get update' as root"
		apt-get update -qq
	fi
}

for pl in "${platforms[@]}"; do
	os=${pl%%/*} arch=${pl#*/}
	[ "$os" = linux ] || die "platform $pl: only linux"
	ensure_arch "$arch"
	for set in "${sets[@]}"; do
		start=$SECONDS
		pkgs=$(set_packages "$set")
		# Candidate versions decide the file names; download only what is missing,
		# in one apt-get call. Architecture-independent packages (netbase) have no
		# :ARCH candidate and are asked for by name.
		specs=()
		for p in $pkgs; do specs+=("$p:$arch"); done
		declare -A cand=()
		while read -r name ver; do cand[$name]=$ver; done < <(apt-cache policy "${specs[@]}" ${pkgs} 2>/dev/null |
			awk '/^[^ ].*:$/ {n=$1; sub(/:$/, "", n)} /Candidate:/ {print n, $2}')
		files=() want=()
		for p in $pkgs; do
			spec=$p:$arch v=${cand[$p:$arch]:-}
			if [ -z "$v" ] || [ "$v" = "(none)" ]; then
				spec=$p v=${cand[$p]:-}
			fi
			[ -n "$v" ] && [ "$v" != "(none)" ] || die "no candidate version of $p for $arch in apt's lists"
			f=$(cd "$deb_cache" && compgen -G "${p}_${v//:/%3a}_*.deb" | grep -E "_(${arch}|all)\.deb$" | head -n1 || true)
			if [ -z "$f" ]; then
				want+=("$spec=$v")
			else
				files+=("$f")
			fi
		done
		unset cand
		if [ ${#want[@]} -gt 0 ]; then
			(cd "$deb_cache" && apt-get download -qq "${want[@]}" 2>/dev/null) || die "apt-get download ${want[*]} failed"
			for w in "${want[@]}"; do
				p=${w%%=*} p=${p%%:*} v=${w#*=}
				f=$(cd "$deb_cache" && compgen -G "${p}_${v//:/%3a}_*.deb" | grep -E "_(${arch}|all)\.deb$" | head -n1 || true)
				[ -n "$f" ] || die "apt-get download $w left no .deb in $deb_cache"
				files+=("$f")
			done
		fi
		out=$payload_root/$os-$arch/debs/$set
		stamp_file=$payload_root/$os-$arch/debs/.$set.stamp
		stamp=$(printf 'set=%s\nrecipe=2\n' "$set"; printf '%s\n' "${files[@]}" | sort)
		if [ -d "$out" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
			printf 'debs %-9s %-12s up to date (0s)  %s\n' "$set" "$pl" "$out"
			continue
		fi
		tmp=$(mktemp -d "$payload_root/$os-$arch/.debs-$set.XXXXXX" 2>/dev/null || { mkdir -p "$payload_root/$os-$arch"; mktemp -d "$payload_root/$os-$arch/.debs-$set.XXXXXX"; })
		trap 'rm -rf "$tmp"' EXIT
		for f in "${files[@]}"; do dpkg-deb -x "$deb_cache/$f" "$tmp"; done
		# Documentation and locales are dead weight in an image.
		rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/man" "$tmp/usr/share/info" "$tmp/usr/share/lintian" "$tmp/usr/share/locale"
		case $set in
		iptables)
			# What update-alternatives would link in Debian's postinst: the nft backend.
			for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
				ln -sfn xtables-nft-multi "$tmp/usr/sbin/$t"
			done
			;;
		busybox)
			for a in $applets; do
				[ -e "$tmp/bin/$a" ] || ln -s busybox "$tmp/bin/$a"
			done
			;;
		esac
		mkdir -p "$(dirname "$out")"
		rm -rf "$out"
		mv "$tmp" "$out"
		trap - EXIT
		printf '%s\n' "$stamp" >"$stamp_file"
		printf 'debs %-9s %-12s unpacked %d packages in %ds  %s\n' "$set" "$pl" "${#files[@]}" $((SECONDS - start)) "$out"
	done
done
