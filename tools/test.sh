#!/usr/bin/env bash
# `make test`: the quick tier, under a minute on 2 CPUs once built; no root,
# no network, no Debian libaio needed (comparisons with it are skipped, and
# say so, where it is missing). `make check` runs everything.
#   1. the Rust unit tests (protocols on fake rings, the iocb checks, the
#      configuration, the diagnostics' words);
#   2. the committed header is the generated one;
#   3. the safe Rust API's tests on every engine;
#   4. tests/sh/settings.sh: the library built from these sources, run as C
#      programs see it (settings, banner, engine query, the doctor).
set -u
cd "$(dirname "$0")/.."
export LIBAIO_RS_ROOT=$PWD LIBAIO_RS_BUILD_DIR=$PWD/build
pass=0 fail=0 failed=()
step() {
	local name=$1 start=$SECONDS
	shift
	printf '\n=== %s\n' "$name"
	if "$@"; then
		pass=$((pass + 1))
		printf -- '--- PASS %s (%ss)\n' "$name" $((SECONDS - start))
	else
		fail=$((fail + 1)) failed+=("$name")
		printf -- '--- FAIL %s\n' "$name"
	fi
}
step "unit tests" cargo test -q --lib
step "header" cargo test -q --test header
step "safe API" cargo test -q --features std --lib safe::
step "safe API on every engine" cargo test -q --features std --test safe_api
step "tests/sh/settings.sh" bash tests/sh/settings.sh
echo
((fail)) && printf 'failed: %s\n' "${failed[@]}"
echo "test: $pass passed, $fail failed ($SECONDS s)"
((fail == 0))
