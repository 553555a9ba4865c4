#!/usr/bin/env bash
# make kube-base: build the Kubernetes base cluster image (Kubefiles/kubernetes) from
# pinned sources only — Go modules (tools/install.sh) and Debian packages
# (tools/debs.sh) — with no container registry on the internet:
#   1. build the payload binaries for each platform (cached: a second run is instant);
#   2. put them into the layer's build context (payload/<arch>/, git-ignored);
#   3. assemble the container images kubeadm, flannel and the boot checks need
#      (cnstack assemble, images.yaml) and serve them on 127.0.0.1;
#   4. cnstack build the layer, collecting those images into its registry/ tree.
# Environment: PLATFORMS (default linux/amd64,linux/arm64), KUBE_BASE_REF, CNSTACK
# (the cnstack binary), CNSTACK_HOME (the store), CNSTACK_TOOLS_DIR (the payload cache),
# IGNORED_IMAGES (space-separated references to leave out of registry/: the negative
# boot test builds a base that lacks one image a pod needs), KUBE_LAYER (the layer
# directory, default Kubefiles/kubernetes), SKIP_PAYLOAD=1 (use the payload directory as
# it is: the fast test builds the base from stub binaries).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
cnstack=${CNSTACK:-$repo/bin/cnstack}
platforms=${PLATFORMS:-linux/amd64,linux/arm64}
ref=${KUBE_BASE_REF:-registry.cnstack.local/cnstack/kubernetes:v1.34.4}
layer=${KUBE_LAYER:-Kubefiles/kubernetes}
tools_root=${CNSTACK_TOOLS_DIR:-${HOME:-/root}/.cache/cnstack/tools}
work=$(mktemp -d "${TMPDIR:-/tmp}/cnstack-kube-base.XXXXXX")
regpid=""
cleanup() {
	[ -n "$regpid" ] && { kill "$regpid" 2>/dev/null; wait "$regpid" 2>/dev/null; }
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The payload: what the base's bin/ and cri/ directories and its images are made of.
bin_tools=(kubeadm kubelet kubectl seautil registry helm)
cri_tools=(containerd containerd-shim-runc-v2 ctr runc crictl)
cni_tools=(bridge host-local loopback portmap flannel)

if [ "${SKIP_PAYLOAD:-}" != 1 ]; then
	step "payload binaries for $platforms (built from pinned Go modules once per machine)"
	tools/install.sh --platform "$platforms" kubernetes etcd coredns containerd runc crictl cni flannel flannel-cni seautil lvscare registry pause helm
	tools/debs.sh --platform "$platforms"
fi

step "build context: $layer/payload/<arch>/{bin,cri} (links to the payload cache)"
IFS=, read -r -a plats <<<"$platforms"
for pl in "${plats[@]}"; do
	arch=${pl#*/} src=$tools_root/payload/${pl%%/*}-$arch dst=$layer/payload/$arch
	rm -rf "$dst"
	mkdir -p "$dst/bin" "$dst/cri/bin" "$dst/cri/cni"
	link() { ln -f "$src/$1" "$2/$1" 2>/dev/null || cp -p "$src/$1" "$2/$1"; }
	for b in "${bin_tools[@]}"; do link "$b" "$dst/bin"; done
	for b in "${cri_tools[@]}"; do link "$b" "$dst/cri/bin"; done
	for b in "${cni_tools[@]}"; do link "$b" "$dst/cri/cni"; done
	echo "$dst: $(du -sh --apparent-size "$dst" | cut -f1)"
done

step "assemble the base's container images and serve them on 127.0.0.1"
"$cnstack" registry serve --addr 127.0.0.1:0 --addr-file "$work/addr" --root "$work/registry" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 200); do [ -s "$work/addr" ] && break; sleep 0.1; done
[ -s "$work/addr" ] || { cat "$work/registry.log" >&2; echo "kube-base: the registry did not start" >&2; exit 1; }
reg=$(cat "$work/addr")
"$cnstack" assemble -f "$layer/images.yaml" --platform "$platforms" --var PAYLOAD="$tools_root/payload/\${OS}-\${ARCH}" --push "$reg" >/dev/null

step "build $ref"
ignored=()
if [ -n "${IGNORED_IMAGES:-}" ]; then
	printf '%s\n' $IGNORED_IMAGES >"$work/ignored"
	ignored=(--ignored-image-list "$work/ignored")
fi
"$cnstack" build -t "$ref" --platform "$platforms" "${ignored[@]}" \
	--registry-mirror "registry.k8s.io=$reg,registry.cnstack.local=$reg,docker.io=$reg" "$layer"
"$cnstack" images | awk 'NR == 1 || /cnstack\/kubernetes/'
