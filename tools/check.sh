#!/usr/bin/env bash
# The whole test suite (`make check` runs it after `make all`):
#   1. formatting and clippy (with and without the `std` feature), 2. cargo
#   test (Rust unit tests, the header check, the C conformance suite against
#   Debian's libaio and ours), then the safe Rust API's own tests with
#   `--features std` (its unit tests, tests/safe_*.rs, the doctests, the
#   copy_direct example), 3. every tests/sh/*.sh script (exit 0 pass, 77 skip, anything else fail).
# Ends with one line "check: N passed, M failed, K skipped".
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

pass=0 fail=0 skip=0 failed=() times=()
step() {
	local name=$1
	shift
	printf '\n=== %s\n' "$name"
	local start=$SECONDS rc
	"$@"
	rc=$?
	times+=("$(printf '%5ss  %s' $((SECONDS - start)) "$name")")
	case $rc in
	0) pass=$((pass + 1)); printf -- '--- PASS %s (%ss)\n' "$name" $((SECONDS - start)) ;;
	77) skip=$((skip + 1)); printf -- '--- SKIP %s\n' "$name" ;;
	*) fail=$((fail + 1)); failed+=("$name"); printf -- '--- FAIL %s (exit %s)\n' "$name" "$rc" ;;
	esac
}

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
	step "$t" bash "$t"
done

echo
echo "step times (longest first), $SECONDS s in all:"
printf '%s\n' "${times[@]}" | sort -rn | sed 's/^/  /'
((fail)) && printf 'failed: %s\n' "${failed[@]}"
echo "check: $pass passed, $fail failed, $skip skipped"
((fail == 0))
