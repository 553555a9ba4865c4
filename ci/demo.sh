#!/usr/bin/env bash
# make demo: the main job end to end on the embedded defaults — the sample stack
# in testdata/stack built into the default store, listed and inspected.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cnstack=${CNSTACK:-$PWD/bin/cnstack}
stack=${STACK:-testdata/stack}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "lint the stack"
"$cnstack" lint "$stack"

step "plan the stack (nothing is written)"
"$cnstack" stack plan "$stack"

step "build the stack into ${CNSTACK_HOME:-~/.local/share/cnstack}/store"
"$cnstack" stack build "$stack"

step "rebuild: every layer comes from the cache"
"$cnstack" stack build "$stack"

step "images in the store"
"$cnstack" images

top=$("$cnstack" images -q | grep '/cnstack:' | head -n1)
step "inspect $top (sealer inspect's JSON, shown as a table)"
"$cnstack" inspect -o table "$top"
