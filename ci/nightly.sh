#!/usr/bin/env bash
# ci/nightly.sh: the nightly pipeline over a stack. For every layer, parents first:
#   build (cached when nothing changed) → sign + SBOM/provenance attestations → push by
#   digest to a staging repository (skipped when the registry already holds the signed
#   digest) → boot-verify each image (an app-installer on the stack's last verified
#   kube-installer image, as operators install it; skipped when a signed verification
#   attestation of that digest exists) → attest the verdict → promote the verified digest
#   by retagging it (never by rebuilding).
# A failed layer (any step, verification included) stops its dependents and nothing else;
# the exit code is 1 when anything failed. The run's report (report.html, run.json,
# junit.xml, boot reports and per-layer logs) goes to REPORT_DIR/<run id>/.
#
# Usage: ci/nightly.sh [flags]   (every flag also has an environment variable)
#   --stack DIR            NIGHTLY_STACK          stack directory (default testdata/stack)
#   --registry HOST:PORT   NIGHTLY_REGISTRY       registry to push to (default: start the
#                                                 embedded one on 127.0.0.1, data in --state)
#   --staging PREFIX       NIGHTLY_STAGING        staging repositories: REGISTRY/PREFIX/<layer> (default cnstack-staging)
#   --promote-to PREFIX    NIGHTLY_PROMOTE_TO     where verified digests are tagged (default: the staging prefix)
#   --promote-tag TAG      NIGHTLY_PROMOTE_TAG    default: the git tag on a tag build
#                                                 (GITHUB_REF_TYPE=tag, CI_COMMIT_TAG), else stable
#   --promote-suffix S     NIGHTLY_PROMOTE_SUFFIX appended to the tag (a per-platform job of a
#                                                 multi-platform stack: stable-linux-arm64)
#   --key FILE             NIGHTLY_KEY            cosign private key (password: $COSIGN_PASSWORD,
#   --key-password-file F  NIGHTLY_KEY_PASSWORD_FILE  or this file; never printed)
#   --pub FILE             NIGHTLY_PUB            public key (default: the key's .pub sibling)
#   --platforms LIST       NIGHTLY_PLATFORMS      os/arch,... (default: the stack's)
#   --build-arg K=V        (repeatable)           passed to every build
#   --vm-image DIR|FILE    NIGHTLY_VM_IMAGE       VM image for cnstack boot (default: built-in debian12)
#   --no-boot              NIGHTLY_NO_BOOT=1      no VM here: verification is "not-run", nothing is promoted
#   --verifier CMD         NIGHTLY_VERIFIER       run CMD REF DIGEST REPORT_DIR instead of cnstack boot;
#                                                 it writes REPORT_DIR/report.json (pkg/verify's Report);
#                                                 NIGHTLY_BASE names the cluster an app-installer goes onto
#   --report-dir DIR       NIGHTLY_REPORT_DIR     reports, one directory per run (default out/nightly/reports)
#   --state DIR            NIGHTLY_STATE          the embedded registry's data (default out/nightly)
#   --update-lock          NIGHTLY_UPDATE_LOCK=1  refresh cnstack.lock instead of checking it
#   --serve-samples        NIGHTLY_SERVE_SAMPLES=1  serve the sample stack's container images on
#                                                 127.0.0.1 and mirror docker.io/registry.k8s.io to it
#   --id ID                NIGHTLY_ID             run id (default: UTC time, 20261207T020000Z)
#   --layer NAME           NIGHTLY_LAYERS         only these layers (repeatable; a CI matrix job runs one,
#                                                 its parents already in the store or built from the cache)
#   --merge                NIGHTLY_MERGE=1        the last job of a multi-platform CI matrix: builds
#                                                 nothing; for each layer (or --layer), tags TAG with the
#                                                 index over the images its platform jobs promoted as
#                                                 TAG-<os>-<arch> and signs it (cnstack merge); a platform
#                                                 not promoted (not verified) is left out, and said
#   --digests DIR          NIGHTLY_DIGESTS        with --layer: the registry is the cache. DIR holds one file
#                                                 per layer built by an earlier job (its digest in staging);
#                                                 the layers this job builds on are pulled from staging by
#                                                 those digests, never rebuilt, and each layer this job pushes
#                                                 adds its own file (pass DIR on to the jobs built on it).
#                                                 Only those layers are pulled (and, for an app-installer,
#                                                 the kube-installers it may be booted onto), whatever else
#                                                 DIR holds
# Environment: CNSTACK (the cnstack binary; default bin/cnstack, else cnstack on PATH),
# CNSTACK_HOME (the store). Registry credentials come from the docker config (cnstack login).
set -euo pipefail
umask 022
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'nightly: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

stack=${NIGHTLY_STACK:-$repo_root/testdata/stack}
registry=${NIGHTLY_REGISTRY:-}
staging=${NIGHTLY_STAGING:-cnstack-staging}
promote_to=${NIGHTLY_PROMOTE_TO:-}
promote_tag=${NIGHTLY_PROMOTE_TAG:-}
promote_suffix=${NIGHTLY_PROMOTE_SUFFIX:-}
key=${NIGHTLY_KEY:-}
key_password_file=${NIGHTLY_KEY_PASSWORD_FILE:-}
pub=${NIGHTLY_PUB:-}
platforms=${NIGHTLY_PLATFORMS:-}
vm_image=${NIGHTLY_VM_IMAGE:-}
no_boot=${NIGHTLY_NO_BOOT:-0}
verifier=${NIGHTLY_VERIFIER:-}
report_root=${NIGHTLY_REPORT_DIR:-$repo_root/out/nightly/reports}
state=${NIGHTLY_STATE:-$repo_root/out/nightly}
update_lock=${NIGHTLY_UPDATE_LOCK:-0}
serve_samples=${NIGHTLY_SERVE_SAMPLES:-0}
run_id=${NIGHTLY_ID:-}
only=" ${NIGHTLY_LAYERS:-} "
digests=${NIGHTLY_DIGESTS:-}
merge=${NIGHTLY_MERGE:-0}
build_args=()

need() { (($# >= 2)) || die "$1 needs a value (see --help)"; }
while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--stack) need "$@"; stack=$2; shift 2 ;;
	--registry) need "$@"; registry=$2; shift 2 ;;
	--staging) need "$@"; staging=$2; shift 2 ;;
	--promote-to) need "$@"; promote_to=$2; shift 2 ;;
	--promote-tag) need "$@"; promote_tag=$2; shift 2 ;;
	--promote-suffix) need "$@"; promote_suffix=$2; shift 2 ;;
	--key) need "$@"; key=$2; shift 2 ;;
	--key-password-file) need "$@"; key_password_file=$2; shift 2 ;;
	--pub) need "$@"; pub=$2; shift 2 ;;
	--platforms) need "$@"; platforms=$2; shift 2 ;;
	--build-arg) need "$@"; build_args+=(--build-arg "$2"); shift 2 ;;
	--vm-image) need "$@"; vm_image=$2; shift 2 ;;
	--no-boot) no_boot=1; shift ;;
	--verifier) need "$@"; verifier=$2; shift 2 ;;
	--report-dir) need "$@"; report_root=$2; shift 2 ;;
	--state) need "$@"; state=$2; shift 2 ;;
	--update-lock) update_lock=1; shift ;;
	--merge) merge=1; shift ;;
	--serve-samples) serve_samples=1; shift ;;
	--id) need "$@"; run_id=$2; shift 2 ;;
	--layer) need "$@"; only+="$2 "; shift 2 ;;
	--digests) need "$@"; digests=$2; shift 2 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

cnstack=${CNSTACK:-}
if [[ -z $cnstack ]]; then
	if [[ -x $repo_root/bin/cnstack ]]; then cnstack=$repo_root/bin/cnstack
	else cnstack=$(command -v cnstack) || die "no cnstack: run make build, or set CNSTACK"
	fi
fi
command -v jq >/dev/null || die "jq is needed (apt-get install jq; make deps installs it)"
[[ -f $stack/stack.yaml ]] || die "--stack $stack has no stack.yaml"
[[ -n $key ]] || die "--key FILE (a cosign private key; cnstack generate-key-pair makes one) is required"
[[ -r $key ]] || die "--key $key: not readable"
[[ -n $pub ]] || pub=${key%.key}.pub
[[ -r $pub ]] || die "public key $pub: not readable (--pub FILE)"
# The key password: from a file outside the repository, or COSIGN_PASSWORD from the CI's
# secret store. It is exported for cnstack only and never printed.
if [[ -n $key_password_file ]]; then
	[[ -r $key_password_file ]] || die "--key-password-file: not readable"
	COSIGN_PASSWORD=$(<"$key_password_file")
fi
[[ -v COSIGN_PASSWORD ]] || die "set COSIGN_PASSWORD (from the CI's secret store) or --key-password-file"
export COSIGN_PASSWORD
if [[ -z $promote_tag ]]; then
	if [[ ${GITHUB_REF_TYPE:-} == tag ]]; then promote_tag=$GITHUB_REF_NAME
	elif [[ -n ${CI_COMMIT_TAG:-} ]]; then promote_tag=$CI_COMMIT_TAG
	else promote_tag=stable
	fi
fi
promote_tag+=$promote_suffix
[[ $promote_tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "promotion tag '$promote_tag' is not a valid tag"
[[ -n $promote_to ]] || promote_to=$staging
parents_flags=()
if [[ -n $digests ]]; then
	[[ -n ${only// /} ]] || die "--digests needs --layer: it passes parents between the jobs of a CI matrix"
	mkdir -p "$digests"
	digests=$(cd "$digests" && pwd)
	parents_flags=(--parents-from-store)
fi
stack=$(cd "$stack" && pwd)
mkdir -p "$report_root"
report_root=$(cd "$report_root" && pwd)
[[ -n $run_id ]] || run_id=$(date -u +%Y%m%dT%H%M%SZ)
run_dir=$report_root/$run_id
[[ ! -e $run_dir ]] || die "report directory $run_dir exists already (--id)"
mkdir -p "$run_dir/logs" "$state"
steps=$run_dir/steps.tsv
: >"$steps"
work=$(mktemp -d "${TMPDIR:-/tmp}/cnstack-nightly.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The boot verification attestation's predicate type (pkg/verify.PredicateType).
boot_type=https://cnstack.dev/attestations/boot/v1
run_start=$(date +%s.%N)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
say() { printf '%s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
oneline() { tr '\t\n\r' '   ' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-400; }
# record LAYER STEP STATUS START DETAIL: one line of the step log the report is made from.
record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(since "$4")" "$(printf '%s' "${5:-}" | oneline)" >>"$steps"
	printf '  %-14s %-8s %-17s %s\n' "$1" "$2" "$3" "$(printf '%s' "${5:-}" | oneline | cut -c1-120)"
}
wait_file() { local i; for i in $(seq 300); do [[ -s $1 ]] && return 0; sleep 0.1; done; return 1; }

# --- services: the embedded registry and, for the sample stack, its container images ----
if [[ -z $registry ]]; then
	"$cnstack" registry serve --addr 127.0.0.1:0 --addr-file "$work/registry.addr" --root "$state/registry" >"$run_dir/logs/registry.log" 2>&1 &
	pids+=($!)
	wait_file "$work/registry.addr" || die "the embedded registry did not start (see $run_dir/logs/registry.log)"
	registry=$(<"$work/registry.addr")
fi
if [[ $serve_samples == 1 ]]; then
	"$cnstack" dev serve-samples --listen 127.0.0.1:0 --addr-file "$work/samples.addr" >"$run_dir/logs/samples.log" 2>&1 &
	pids+=($!)
	wait_file "$work/samples.addr" || die "the sample image server did not start"
	samples=$(<"$work/samples.addr")
	export CNSTACK_REGISTRY_MIRRORS="docker.io=$samples,registry.k8s.io=$samples"
fi
say "nightly $run_id: stack $stack, staging $registry/$staging, promotion :$promote_tag, report $run_dir"

platform_flags=()
[[ -z $platforms ]] || platform_flags=(--platform "$platforms")

# --- merge (--merge): the last job of a multi-platform CI matrix -------------------------
# Each platform's job promoted its verified image as TAG-<os>-<arch> (one job cannot name
# another's digest). TAG becomes the index over them, in the stack's platform order: the
# index one machine building every platform writes (cnstack merge), signed. Only what was
# promoted, and carries the key's signature, goes in: a platform whose image was not
# verified (no VM for it, or it failed) is left out, and the line says so.
if [[ $merge == 1 ]]; then
	[[ -z $promote_suffix ]] || die "--merge tags the index itself: it takes no --promote-suffix"
	failed=0
	"$cnstack" ci matrix "$stack" >"$work/matrix.json" 2>"$run_dir/logs/matrix.log" ||
		die "cnstack ci matrix $stack failed: $(tail -n 2 "$run_dir/logs/matrix.log" | oneline)"
	layers=() # in the stack's order
	declare -A slugs=()
	while IFS=$'\t' read -r layer platform; do
		[[ -z ${only// /} || $only == *" $layer "* ]] || continue
		[[ -v slugs[$layer] ]] || layers+=("$layer")
		slugs[$layer]+="${platform//\//-} "
	done < <(jq -r '.include[] | [.layer, .platform] | @tsv' "$work/matrix.json")
	for layer in $only; do
		[[ -v slugs[$layer] ]] || die "--layer $layer: the stack has no such layer (layers: $(jq -r '[.include[].layer] | unique | join(", ")' "$work/matrix.json"))"
	done
	if [[ -n $platforms ]]; then # --platforms: these, in this order, for every layer
		for layer in "${layers[@]}"; do
			slugs[$layer]=""
			for p in ${platforms//,/ }; do slugs[$layer]+="${p//\//-} "; done
		done
	fi
	for layer in "${layers[@]}"; do
		t=$(now)
		log=$run_dir/logs/$layer.log
		target=$registry/$promote_to/$layer:$promote_tag
		srcs=() left=()
		for slug in ${slugs[$layer]}; do
			src=$target-$slug
			if "$cnstack" verify --remote --key "$pub" "$src" >>"$log" 2>&1; then
				srcs+=("$src")
			else
				left+=("${slug/-//}")
			fi
		done
		why=""
		((${#left[@]} == 0)) || why="; left out, not promoted as :$promote_tag-<os>-<arch> with a signature of the key: ${left[*]} (logs/$layer.log says why)"
		if ((${#srcs[@]} == 0)); then
			record "$layer" merge skipped "$t" "no platform image to merge${why}"
		elif out=$("$cnstack" merge --remote "$target" "${srcs[@]}" 2>>"$log") &&
			printf '%s\n' "$out" >>"$log" && "$cnstack" sign --remote --key "$key" "$target" >>"$log" 2>&1; then
			record "$layer" merge merged "$t" "$promote_to/$layer:$promote_tag@${out##*@} over ${#srcs[@]} platform(s), signed${why}"
		else
			record "$layer" merge failed "$t" "$(tail -n 2 "$log")"
			failed=1
		fi
	done
	((failed == 0)) || { say "nightly $run_id: merging FAILED (logs: $run_dir/logs)"; exit 1; }
	say "nightly $run_id: merged (logs: $run_dir/logs)"
	exit 0
fi

# --- lock ------------------------------------------------------------------------------
t=$(now)
if [[ $update_lock == 1 ]]; then
	if "$cnstack" lock "${platform_flags[@]}" "${build_args[@]}" "$stack" >"$run_dir/logs/lock.log" 2>&1; then
		record - lock passed "$t" "cnstack.lock refreshed"
	else
		record - lock failed "$t" "$(tail -n 3 "$run_dir/logs/lock.log")"
	fi
elif "$cnstack" lock --check "${platform_flags[@]}" "${build_args[@]}" "$stack" >"$run_dir/logs/lock.log" 2>&1; then
	record - lock passed "$t" "cnstack.lock is up to date"
else
	record - lock failed "$t" "cnstack.lock is missing or out of date (run with --update-lock): $(tail -n 3 "$run_dir/logs/lock.log")"
fi
lock_ok=1
grep -q "^-	lock	failed" "$steps" && lock_ok=0

# --- plan: the layers in dependency order, and why each rebuilds -------------------------
t=$(now)
if ! "$cnstack" stack plan -o json "${platform_flags[@]}" "${build_args[@]}" "$stack" >"$run_dir/plan.json" 2>"$run_dir/logs/plan.log"; then
	record - plan failed "$t" "$(tail -n 3 "$run_dir/logs/plan.log")"
	lock_ok=0
else
	record - plan passed "$t" ""
fi

# --digests: the layers this job pulls from staging. The ones its layers build on (parent,
# grandparent, ...), and, when it builds an app-installer, every kube-installer (the last
# verified one is the cluster the app goes onto); never a sibling or a descendant, which a
# shared digests directory may also hold.
declare -A pull_set=()
if [[ -n $digests && -s $run_dir/plan.json ]]; then
	while IFS= read -r l; do pull_set[$l]=1; done < <(jq -r --arg only "$only" '
		(.layers | map({key: .name, value: (.parent // "")}) | from_entries) as $parent
		| ($only | split(" ") | map(select(. != ""))) as $sel
		| ([.layers[] | select(.type == "app-installer") | .name]) as $apps
		| [ ($sel[] | recurse($parent[.] // ""; . != "")),
		    (if any($sel[]; . as $s | $apps | index($s) != null)
		     then (.layers[] | select(.type == "kube-installer") | .name) else empty end) ]
		| unique[]' "$run_dir/plan.json")
fi

# The previous run's plan, to say which input of a rebuilt layer changed.
prev_plan=""
[[ -f $report_root/latest/plan.json ]] && prev_plan=$report_root/latest/plan.json
# changed_inputs LAYER: the inputs (FROM, each COPY's files, the instructions, the image
# list) whose digest differs from the previous run's plan, comma-separated.
changed_inputs() {
	[[ -n $prev_plan ]] || return 0
	jq -rn --slurpfile a "$prev_plan" --slurpfile b "$run_dir/plan.json" --arg l "$1" '
		($a[0].layers[] | select(.name == $l) | .inputs // {}) as $old |
		($b[0].layers[] | select(.name == $l) | .inputs // {}) as $new |
		[$new | to_entries[] | .key as $p | .value | to_entries[] | select($old[$p][.key] != .value) | .key] | unique | join(", ")' 2>/dev/null || true
}

# pull_earlier LAYER TYPE IMAGE: a layer an earlier job built and pushed (--digests): pull it
# from staging by that digest into the store under the layer's name, for this job's layers
# to build on. A verified kube-installer is the cluster this job's app-installers go onto.
# A digest that is not one, or a pull that fails, stops the layers built on it.
pull_earlier() {
	local layer=$1 type=$2 image=$3 d src t log=$run_dir/logs/$1.log
	t=$(now)
	d=$(<"$digests/$layer")
	if [[ ! $d =~ ^sha256:[0-9a-f]{64}$ ]]; then
		blocked[$layer]="$layer's digest file is not a digest"
		say "  $layer: $digests/$layer holds '$(printf '%s' "$d" | oneline | cut -c1-80)', not a sha256 digest"
		failed=1
		return
	fi
	src=$registry/$staging/$layer@$d
	if "$cnstack" pull "$src" >>"$log" 2>&1 && "$cnstack" tag "$src" "$image" >>"$log" 2>&1; then
		say "  $layer: pulled $staging/$layer@${d:0:19} (built by an earlier job) in $(since "$t")s"
	else
		blocked[$layer]="$layer could not be pulled from staging"
		say "  $layer: pulling $src failed: $(tail -n 2 "$log" | oneline)"
		failed=1
		return
	fi
	if [[ $type == kube-installer ]] && "$cnstack" verify --remote --key "$pub" --attestations --root-only --type "$boot_type" "$src" >>"$log" 2>&1; then
		cluster_image=$image
	fi
}

# Layers in the plan's order (parents first), app-installers last: they are booted
# onto the cluster of the stack's last verified kube-installer image.
declare -A blocked=()  # layer → why its dependents stop
cluster_image="" # the last verified kube-installer image: app-installers are booted onto it
failed=0
((lock_ok)) || failed=1
build_total=$(now)
if ((lock_ok)); then
	while IFS=$'\x1f' read -r layer parent type image rebuild reason; do
		if [[ -n ${only// /} && $only != *" $layer "* ]]; then
			# Another job's layer. With --digests, a layer this job builds on is pulled from
			# staging by the digest its job pushed; without, it is built on demand from the cache.
			[[ -n ${pull_set[$layer]:-} && -e $digests/$layer ]] && pull_earlier "$layer" "$type" "$image"
			continue
		fi
		log=$run_dir/logs/$layer.log
		: >"$log"
		if [[ -n $parent && -n ${blocked[$parent]:-} ]]; then
			blocked[$layer]=${blocked[$parent]}
			why="not run: layer ${blocked[$parent]} (this layer builds on it)"
			for s in build sign push verify promote; do record "$layer" "$s" skipped "$(now)" "$why"; done
			continue
		fi
		fail() { # STEP START DETAIL
			record "$layer" "$1" failed "$2" "$3"
			blocked[$layer]="$layer failed $1"
			failed=1
		}

		# build: parents come from the cache (or were just built by their own turn).
		t=$(now)
		if ! "$cnstack" stack build --locked --layer "$layer" "${parents_flags[@]}" "${platform_flags[@]}" "${build_args[@]}" "$stack" >>"$log" 2>&1; then
			fail build "$t" "$(grep -v '^LAYER' "$log" | tail -n 3)"
			continue
		fi
		row=$(awk -v l="$layer" '$1 == l { print $2 "\t" $4 }' "$log" | tail -n 1)
		status=${row%%$'\t'*} digest=${row#*$'\t'}
		[[ $digest == sha256:* ]] || { fail build "$t" "no digest for $layer in the build output"; continue; }
		why="cache key unchanged"
		if [[ $status == built ]]; then
			changed=$(changed_inputs "$layer")
			if [[ -n $changed ]]; then
				why="changed since the last run: $changed"
				[[ $reason != "base layer "* ]] || why+=" ($reason)"
			else why=${reason:-inputs changed or not built yet}
			fi
		fi
		record "$layer" build "$status" "$t" "$why"

		# sign + SBOM and provenance attestations, in the store (nothing added when present).
		t=$(now)
		if ! out=$("$cnstack" sign --key "$key" --attest "$image" 2>>"$log"); then
			fail sign "$t" "$(tail -n 2 "$log")"
			continue
		fi
		printf '%s\n' "$out" >>"$log"
		if grep -q ': added (' <<<"$out"; then
			record "$layer" sign signed "$t" "signature, SPDX SBOM and SLSA provenance by the key"
		else
			record "$layer" sign present "$t" "signature, SBOM and provenance by the key were there already"
		fi

		# push by digest to staging, unless the registry already holds it, signed and attested.
		dest=$registry/$staging/$layer
		t=$(now)
		if "$cnstack" verify --remote --key "$pub" --attestations "$dest@$digest" >>"$log" 2>&1; then
			record "$layer" push present "$t" "already in staging, signed and attested: nothing sent"
		elif out=$("$cnstack" push "$image" "$dest@$digest" 2>>"$log"); then
			printf '%s\n' "$out" >>"$log"
			record "$layer" push pushed "$t" "to $staging/$layer by digest: $(printf '%s' "$out" | sed -n 's/^pushed [^ ]* (\(.*\))$/\1/p')"
		else
			fail push "$t" "$(tail -n 2 "$log")"
			continue
		fi
		# Staging holds this digest now: the jobs built on this layer pull it by it (--digests).
		[[ -z $digests ]] || printf '%s\n' "$digest" >"$digests/$layer"

		# verify: once per digest; the signed verdict is attached to the staging image.
		t=$(now)
		verdict=""
		boot_dir=$run_dir/boot/$layer
		base_flags=()
		if [[ $type == app-installer ]]; then
			# An app goes onto a running cluster: the stack's last verified
			# kube-installer image (sealer run installs it, then the app).
			base_flags=(--base "$cluster_image")
		fi
		if [[ $type != kube-installer && -z $cluster_image ]]; then
			record "$layer" verify not-run "$t" "$type: no verified kube-installer layer before it in this stack to install it onto"
		elif "$cnstack" verify --remote --key "$pub" --attestations --root-only --type "$boot_type" "$dest@$digest" >>"$log" 2>&1; then
			record "$layer" verify verified-earlier "$t" "this digest carries a verification attestation signed by the key"
			verdict=ok
		elif [[ $no_boot == 1 ]]; then
			record "$layer" verify not-run "$t" "--no-boot: no VM on this runner"
		else
			mkdir -p "$boot_dir"
			if [[ -n $verifier ]]; then
				NIGHTLY_BASE=${base_flags[1]:-} $verifier "$image" "$digest" "$boot_dir" >>"$log" 2>&1 && rc=0 || rc=$?
			else
				"$cnstack" boot "$image" --report "$boot_dir" "${base_flags[@]}" ${vm_image:+--vm-image "$vm_image"} >>"$log" 2>&1 && rc=0 || rc=$?
			fi
			if [[ ! -s $boot_dir/report.json ]]; then
				fail verify "$t" "the verifier wrote no report.json (exit $rc): $(tail -n 2 "$log")"
				continue
			fi
			passed=$(jq -r '.passed' "$boot_dir/report.json")
			if [[ $rc == 0 && $passed == true ]]; then
				if ! "$cnstack" sign --remote --key "$key" --predicate "$boot_dir/report.json" --type "$boot_type" "$dest@$digest" >>"$log" 2>&1; then
					fail verify "$t" "booted, but attaching the verdict failed: $(tail -n 2 "$log")"
					continue
				fi
				record "$layer" verify passed "$t" "$(jq -r '"verified by " + (if .installer == "fake-verifier" then "the fake verifier (no VM)" else "booting (" + (.installer // "?") + ", " + (.accel // "?") + ")" end) + ": " + ([.assertions[] | select(.status == "passed")] | length | tostring) + " assertions passed"' "$boot_dir/report.json")"
				verdict=ok
			else
				fail verify "$t" "$(jq -r 'if (.error // "") != "" then .error else ([.assertions[] | select(.status == "failed") | .name + ": " + (.evidence | split("\n")[0])] | join("; ")) end' "$boot_dir/report.json" | head -c 400)"
				record "$layer" promote skipped "$(now)" "verification failed: not promoted"
				continue
			fi
		fi

		[[ $verdict == ok && $type == kube-installer ]] && cluster_image=$image

		# promote: retag the verified digest; never rebuild.
		t=$(now)
		target=$registry/$promote_to/$layer:$promote_tag
		if [[ -z $verdict ]]; then
			record "$layer" promote skipped "$t" "not verified: only verified digests are promoted"
			continue
		fi
		current=$("$cnstack" verify --remote --key "$pub" "$target" 2>/dev/null | sed -n 's/^verified [^@]*@\(sha256:[0-9a-f]*\) .*/\1/p' || true)
		if [[ $current == "$digest" ]]; then
			record "$layer" promote promoted "$t" ":$promote_tag already names this digest"
		elif "$cnstack" tag --remote "$dest@$digest" "$target" >>"$log" 2>&1; then
			record "$layer" promote promoted "$t" "retagged as $promote_to/$layer:$promote_tag"
		else
			fail promote "$t" "$(tail -n 2 "$log")"
		fi
	done < <(jq -r '.layers | sort_by(.type == "app-installer") | .[] | [.name, (.parent // ""), .type, .image, (.rebuild | tostring), (.reason // "")] | join("\u001f")' "$run_dir/plan.json")
fi
record - layers "$( ((failed)) && echo failed || echo passed)" "$build_total" ""

# --- report ----------------------------------------------------------------------------
duration=$(awk -v a="$run_start" -v b="$(now)" 'BEGIN { printf "%.3fs", b - a }')
if ! "$cnstack" report collect "$stack" --steps "$steps" --output "$run_dir" --history "$report_root" --key "$pub" \
	--id "$run_id" --started "$started" --duration "$duration" --staging "$registry/$staging" --promote-tag "$promote_tag"; then
	say "nightly: writing the report failed" >&2
	failed=1
fi
ln -sfn "$run_id" "$report_root/latest"
if ((failed)); then
	say "nightly $run_id: FAILED in $duration (report: $run_dir/report.html)"
	exit 1
fi
say "nightly $run_id: passed in $duration (report: $run_dir/report.html)"
