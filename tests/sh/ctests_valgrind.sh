#!/usr/bin/env bash
# Runs every program of the C conformance suite (ctests/*.c and
# ctests/differ/*.c) under valgrind's memcheck against OUR library, and fails
# on any report (invalid reads or writes, uninitialised values reaching a
# branch or a system call, definite leaks) or on any program that does not
# finish cleanly. Skips (77) only when valgrind is not installed.
#
# Programs see CTEST_UNDER_VALGRIND=1 and leave out the few cases that
# valgrind itself cannot run (see under_valgrind() and have_pgetevents() in
# ctests/common.h). Deliberately bad arguments to the io_* system calls are
# suppressed (ctests_valgrind.supp). Run from the repository root, after
# `make all`; $LIBAIO_RS_BUILD_DIR (default build) holds our libaio.so.1.
set -u
cd "${LIBAIO_RS_ROOT:-$(dirname "$0")/../..}" || exit 1

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind is not installed: skipped"
	exit 77
fi
build=${LIBAIO_RS_BUILD_DIR:-build}
if [ ! -e "$build/libaio.so.1" ]; then
	echo "$build/libaio.so.1 is missing: run make first" >&2
	exit 1
fi
ours=$(realpath "$build/libaio.so.1")
libdir=$(cd "$build" && pwd)

# Build the test programs, and ask cargo where it put them (the OUT_DIR of
# this package's build script).
json=$(cargo test --no-run --test ctests --test differences --message-format=json 2>/dev/null) || {
	echo "cargo could not build the C test programs:" >&2
	cargo test --no-run --test ctests --test differences >&2
	exit 1
}
out=$(printf '%s\n' "$json" | grep '"reason":"build-script-executed"' |
	grep '"package_id":"path+file://[^"]*#libaio@' |
	sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$out" ] || [ ! -d "$out/ctests" ]; then
	echo "cannot find the compiled C test programs (OUT_DIR '$out')" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 failed=()
for prog in "$out"/ctests/* "$out"/ctests-differ/*; do
	if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then continue; fi
	name=${prog#"$out"/}
	log=$tmp/log
	mkdir -p "$tmp/scratch"
	start=$SECONDS
	CTEST_UNDER_VALGRIND=1 CTEST_TMPDIR=$tmp/scratch LD_LIBRARY_PATH=$libdir \
		timeout 600 valgrind -q --error-exitcode=99 \
		--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
		--suppressions=tests/sh/ctests_valgrind.supp \
		"$prog" >"$log" 2>&1 </dev/null
	rc=$?
	why=
	if [ "$rc" -eq 99 ] || grep -q '^==[0-9]*== ' "$log"; then
		why="valgrind report"
	elif [ "$rc" -ne 0 ]; then
		why="exit status $rc"
	elif ! grep -qxF "ctest-loaded: $ours" "$log"; then
		why="did not load $ours"
	fi
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		printf 'ok      %s (%ss)\n' "$name" $((SECONDS - start))
	else
		fail=$((fail + 1))
		failed+=("$name")
		printf 'FAILED  %s: %s\n' "$name" "$why"
		grep -v '^--[0-9]*-- Warning: unhandled io_' "$log" | tail -n 60 | sed 's/^/    /'
	fi
done

((fail)) && printf 'failed under valgrind: %s\n' "${failed[*]}"
echo "valgrind: $pass passed, $fail failed"
((fail == 0))
