#!/usr/bin/env bash
# The whole test suite (`make check` runs it after `make all`):
#   1. formatting and clippy (with and without the `std` feature), 2. cargo
#   test (Rust unit tests, the header check, the C conformance suite against
#   Debian's libaio and ours on every engine), then the safe Rust API's own
#   tests with `--features std` (its unit tests, tests/safe_*.rs, the
#   doctests, the copy_direct example), 3. every tests/sh/*.sh script (exit 0
#   pass, 77 skip, anything else fail).
#
# Two lanes run at once (this machine has 2 CPUs, and much of the engine
# suites is waiting): the lane below in the foreground, printed as it goes,
# and BACKGROUND, whose steps share no state with it (no system setting, no
# install, each its own temporary directory), printed when it is done.
# EXCLUSIVE steps change the machine (fs.aio-max-nr; the system's libaio
# packages), or bound time, and run alone after both lanes. CHECK_JOBS=1 runs everything
# in one lane.
# Ends with the step times, longest first, and one line "check: N passed,
# M failed, K skipped".
set -u
cd "$(dirname "$0")/.."
export LIBAIO_RS_ROOT=$PWD LIBAIO_RS_BUILD_DIR=$PWD/build
# Work done once per run and shared by the scripts: libaio's sources
# (apt-get source), and Debian's reference runs of the programs several
# scripts compare against (tests/sh/lib/common.sh, ref_get). Debian's
# library must be there: a missing reference fails the run, not skips it.
RUN_CACHE=$(mktemp -d /tmp/libaio-rs-check.XXXXXX)
trap 'rm -rf "$RUN_CACHE"' EXIT
export LIBAIO_RS_CACHE=$RUN_CACHE/libaio-source LIBAIO_RS_REF_CACHE=$RUN_CACHE/reference
export LIBAIO_RS_REQUIRE_REFERENCE=1

BACKGROUND=" tests/sh/miri.sh tests/sh/fuzz.sh tests/sh/fuzz_engines.sh tests/sh/engine_noaio.sh tests/sh/engine_noaio_nouring.sh tests/sh/ctests_valgrind.sh tests/sh/header_layout.sh tests/sh/header_flags.sh "
EXCLUSIVE=" tests/sh/latency.sh tests/sh/diagnostics.sh tests/sh/z_deb_install.sh "
[ "${CHECK_JOBS:-2}" -gt 1 ] || BACKGROUND=" "
# While the lanes run, what depends on the machine being otherwise idle or
# on what it shares waits for the end: the latency bounds (latency.sh) and
# libaio's harness case 20.t, which takes every event left under
# fs.aio-max-nr (and would take them from the other lane).
export LIBAIO_RS_SKIP_LATENCY=1 LIBAIO_RS_HARNESS_DEFER=20

# step NAME CMD...: runs CMD, prints its verdict and time, and records them
# in $RUN_CACHE/results (one line: rc seconds name).
step() {
	local name=$1
	shift
	printf '\n=== %s\n' "$name"
	local start=$SECONDS rc
	"$@"
	rc=$?
	case $rc in
	0) printf -- '--- PASS %s (%ss)\n' "$name" $((SECONDS - start)) ;;
	77) printf -- '--- SKIP %s\n' "$name" ;;
	*) printf -- '--- FAIL %s (exit %s)\n' "$name" "$rc" ;;
	esac
	printf '%s %s %s\n' "$rc" $((SECONDS - start)) "$name" >>"$RUN_CACHE/results"
}

# The background lane: its steps one after another, each into a log of its
# own, printed below once the foreground is done.
background() {
	local t i=0
	for t in $BACKGROUND; do
		i=$((i + 1))
		step "$t" bash "$t" >"$RUN_CACHE/bg.$i.log" 2>&1
	done
}
if [ "$BACKGROUND" != " " ]; then
	background &
	BG_PID=$!
fi

step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
step "cargo clippy --all-features -D warnings" cargo clippy --all-targets --all-features -- -D warnings
step "cargo test" cargo test
# The safe API (feature std; the shared object is built without it).
safe_api() {
	cargo test --features std --lib safe:: &&
		cargo test --features std --test 'safe_*' &&
		cargo test --features std --doc &&
		cargo run --features std --example copy_direct
}
step "cargo test --features std (safe API)" safe_api
# Scripts run in name order; those that replace system packages are named z*.
for t in tests/sh/*.sh; do
	[ -e "$t" ] || continue
	case "$BACKGROUND$EXCLUSIVE" in *" $t "*) continue ;; esac
	step "$t" bash "$t"
done
if [ "$BACKGROUND" != " " ]; then
	printf '\n=== waiting for the background lane (%s)\n' "$(echo $BACKGROUND)"
	wait "$BG_PID"
	for f in "$RUN_CACHE"/bg.*.log; do
		[ -e "$f" ] && cat "$f"
	done
fi
unset LIBAIO_RS_SKIP_LATENCY LIBAIO_RS_HARNESS_DEFER
step "libaio's harness, case 20 alone" env LIBAIO_RS_HARNESS_ONLY=20 bash tests/sh/libaio_harness.sh
for t in $EXCLUSIVE; do
	[ -e "$t" ] && step "$t" bash "$t"
done

pass=0 fail=0 skip=0 failed=()
while read -r rc secs name; do
	case $rc in
	0) pass=$((pass + 1)) ;;
	77) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) failed+=("$name") ;;
	esac
done <"$RUN_CACHE/results"
echo
echo "step times (longest first; $SECONDS s in all, two lanes):"
sort -k2,2 -rn "$RUN_CACHE/results" | awk '{ t = $2; $1 = ""; $2 = ""; sub(/^  /, ""); printf "  %5ss  %s\n", t, $0 }'
((fail)) && printf 'failed: %s\n' "${failed[@]}"
echo "check: $pass passed, $fail failed, $skip skipped"
((fail == 0))
