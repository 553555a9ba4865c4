#!/usr/bin/env bash
# make demo: the main job end to end on the embedded defaults — the sample stack
# in testdata/stack built into the default store, signed, pushed to the embedded
# registry, saved as an offline bundle and checked with no network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cnstack=${CNSTACK:-$PWD/bin/cnstack}
stack=${STACK:-testdata/stack}
home=${CNSTACK_HOME:-$HOME/.local/share/cnstack}
work=$(mktemp -d "${TMPDIR:-/tmp}/cnstack-demo.XXXXXX")
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
regpid=""
cleanup() {
	[ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

step "start the embedded registry (cnstack registry serve) on 127.0.0.1"
"$cnstack" registry serve --addr 127.0.0.1:0 --addr-file "$work/addr" --root "$work/registry" &
regpid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
reg=$(cat "$work/addr")
echo "registry at $reg"

step "lint the stack"
"$cnstack" lint "$stack"

step "plan the stack (nothing is written)"
"$cnstack" stack plan "$stack"

step "build the stack into $home/store"
"$cnstack" stack build "$stack"

step "rebuild: every layer comes from the cache"
"$cnstack" stack build "$stack"

step "images in the store"
"$cnstack" images

top=$("$cnstack" images -q | grep '/cnstack:' | head -n1)
step "inspect $top (sealer inspect's JSON, shown as a table)"
"$cnstack" inspect -o table "$top"

step "generate a cosign key pair and sign $top (signatures + SBOM and provenance attestations)"
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
"$cnstack" generate-key-pair --output-key-prefix "$work/cosign"
"$cnstack" sign --key "$work/cosign.key" --attest "$top"
"$cnstack" verify --key "$work/cosign.pub" --attestations "$top"

dest="$reg/cnstack/cnstack:v0.1.0"
step "push to $dest (then again: nothing is sent twice)"
"$cnstack" push "$top" "$dest"
"$cnstack" push "$top" "$dest"
"$cnstack" verify --key "$work/cosign.pub" "$dest"

step "save an offline bundle (zstd, split into 1 MiB parts) and check it"
"$cnstack" save -o "$work/cnstack.tar.zst" --compress zstd --split 1M "$top"
ls -l "$work" | grep cnstack.tar.zst
"$cnstack" check --key "$work/cosign.pub" "$work/cnstack.tar.zst"

step "done: $top is built, signed, pushed to $reg and bundled"
