#!/usr/bin/env bash
# The three ways of using our libaio as a drop-in (issue 2), each running
# tests/c/roundtrip.c (write, io_queue_run callback, read back and compare,
# io_getevents, and the LIBAIO_0.1 io_getevents bound with .symver):
# (a) built with `gcc prog.c -I<our include> -L<our build> -laio`;
# (b) built against Debian's libaio-dev (system header, system -laio), run
#     with LD_PRELOAD=<our libaio.so.1>;
# (c) the same program, with our library copied as libaio.so.1 into a
#     directory on LD_LIBRARY_PATH.
# For each run, LD_DEBUG=files,bindings must show our file loaded and
# serving the calls (both io_getevents versions), and Debian's never loaded.
set -eu
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT"
[ -f "$BUILD/libaio.so.1.0.2" ] || fail "$BUILD/libaio.so.1.0.2 is missing: run 'make' first"
[ -f /usr/include/libaio.h ] || fail "/usr/include/libaio.h is missing: install Debian's libaio-dev"

# Runs a program as `env ARGS... prog`; requires that the libaio file $lib
# (as the dynamic loader names it) was loaded and served the calls.
run_on() {
	local label=$1 lib=$2 exe=$3 out=$TMP/$1
	shift 3
	env LD_DEBUG=files,bindings LD_DEBUG_OUTPUT="$out.debug" "$@" "$exe" "$TMP/$label.data" >"$out.out" 2>&1 || {
		cat "$out.out" >&2
		fail "($label) the program failed"
	}
	cat "$out.debug".* >"$out.debug"
	grep -qx 'roundtrip: ok' "$out.out" || fail "($label) roundtrip did not finish: $(cat "$out.out")"
	grep -qx 'old io_getevents@LIBAIO_0.1: ok' "$out.out" || fail "($label) the LIBAIO_0.1 io_getevents was not exercised"
	grep -qx "served-by: $lib" "$out.out" || fail "($label) io_submit was not served by $lib: $(grep served-by "$out.out")"
	grep -q "calling init: $lib\$" "$out.debug" || fail "($label) LD_DEBUG=files: $lib was not loaded"
	if grep -q 'x86_64-linux-gnu/libaio' "$out.debug"; then
		fail "($label) Debian's libaio was loaded: $(grep 'x86_64-linux-gnu/libaio' "$out.debug" | head -3)"
	fi
	readelf --dyn-syms -W "$lib" | grep -q '@@LIBAIO_RS_1' || fail "($label) $lib is not our library"
	local name ver
	while read -r name ver; do
		grep -qF "binding file $exe [0] to $lib [0]: normal symbol \`$name' [$ver]" "$out.debug" ||
			fail "($label) LD_DEBUG=bindings: $name@$ver not bound to $lib"
	done <<-EOF
		io_queue_init LIBAIO_0.1
		io_submit LIBAIO_0.1
		io_queue_run LIBAIO_0.1
		io_getevents LIBAIO_0.4
		io_getevents LIBAIO_0.1
		io_queue_release LIBAIO_0.1
	EOF
	echo "($label) real I/O ok; loaded and bound: $lib (io_getevents@LIBAIO_0.4 and @LIBAIO_0.1 included); Debian's libaio not loaded"
}

# (a) Our header, our library.
gcc -Wall -Wextra -Werror -DOLD_GETEVENTS -o "$TMP/ours_built" "$ROUNDTRIP" \
	-I"$ROOT/include" -L"$BUILD" -laio || fail "(a) gcc prog.c -I include -L build -laio failed"
gcc -M -I"$ROOT/include" "$ROUNDTRIP" | grep -q "$ROOT/include/libaio.h" || fail "(a) our libaio.h was not the one included"
run_on a "$BUILD/libaio.so.1" "$TMP/ours_built" LD_LIBRARY_PATH="$BUILD"

# A program built against Debian's libaio-dev only.
gcc -Wall -Wextra -Werror -DOLD_GETEVENTS -o "$TMP/debian_built" "$ROUNDTRIP" -laio ||
	fail "cannot build against Debian's libaio-dev"
gcc -M "$ROUNDTRIP" | grep -q ' /usr/include/libaio.h' || fail "Debian's /usr/include/libaio.h was not the one included"
objdump -T "$TMP/debian_built" | grep -q '(LIBAIO_0.1) io_getevents$' ||
	fail "the program does not reference io_getevents@LIBAIO_0.1"
# Sanity: on its own it runs on Debian's library.
"$TMP/debian_built" "$TMP/sanity.data" >"$TMP/sanity.out" 2>&1 || fail "the program fails on Debian's libaio: $(cat "$TMP/sanity.out")"
grep -q '^served-by: .*x86_64-linux-gnu/libaio.so.1$' "$TMP/sanity.out" ||
	fail "without LD_PRELOAD the program is not served by Debian's libaio: $(cat "$TMP/sanity.out")"

# (b) LD_PRELOAD.
run_on b "$BUILD/libaio.so.1" "$TMP/debian_built" LD_PRELOAD="$BUILD/libaio.so.1"

# (c) Ours as libaio.so.1, ahead of the system's on LD_LIBRARY_PATH.
mkdir "$TMP/lib"
cp "$BUILD/libaio.so.1.0.2" "$TMP/lib/libaio.so.1"
run_on c "$TMP/lib/libaio.so.1" "$TMP/debian_built" LD_LIBRARY_PATH="$TMP/lib"
echo "three_ways: ok"
