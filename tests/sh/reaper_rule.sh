#!/usr/bin/env bash
# The fallback makes no program worse than Debian's libaio (doc/engines.md,
# "Who falls back"). tests/c/raw_reaper.c submits through libaio but reaps
# with the io_getevents system call itself, as MariaDB's InnoDB did, and
# falls back to synchronous I/O when io_setup fails.
#   1. Where kernel AIO is refused (tests/c/seccomp_noaio: ENOSYS, then
#      EPERM), Debian's libaio fails io_setup and the program's own fallback
#      runs; ours, in auto mode, must print exactly the same, and say why
#      with LIBAIO_RS_DEBUG=1.
#   2. A program that imports io_getevents (tests/c/roundtrip.c) still gets
#      a user-space engine there.
#   3. With a user-space engine forced, ours says on stderr, without
#      LIBAIO_RS_DEBUG, that a program reaping with the system call cannot
#      work so.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd gcc gcc
[ "$(uname -m)" = x86_64 ] || skip "tests/c/seccomp_noaio.c filters the x86_64 system-call ABI only"
find_debian
DEB_DIR=$(dirname "$DEB_LIB")
gcc -O1 -Wall -Werror -o "$TMP/noaio" "$ROOT/tests/c/seccomp_noaio.c" || fail "cannot build seccomp_noaio"
"$TMP/noaio" true || skip "seccomp filters cannot be installed here"
gcc -O1 -Wall -Werror -I"$ROOT/include" -o "$TMP/raw_reaper" "$ROOT/tests/c/raw_reaper.c" -L"$BUILD" -laio -lpthread ||
	fail "cannot build raw_reaper.c"
gcc -O1 -Wall -Werror -I"$ROOT/include" -o "$TMP/roundtrip" "$ROOT/tests/c/roundtrip.c" -L"$BUILD" -laio -ldl ||
	fail "cannot build roundtrip.c"
nm -D "$TMP/raw_reaper" | grep -q ' io_getevents' && fail "raw_reaper imports io_getevents: it proves nothing"

for errno_opt in --errno=ENOSYS --errno=EPERM; do
	LD_LIBRARY_PATH=$DEB_DIR "$TMP/noaio" "$errno_opt" "$TMP/raw_reaper" "$TMP/f" >"$TMP/deb.out" 2>&1 ||
		fail_with_log "$TMP/deb.out" "raw_reaper failed with Debian's libaio ($errno_opt)"
	rc=0
	LD_LIBRARY_PATH=$BUILD LIBAIO_RS_DEBUG=1 "$TMP/noaio" "$errno_opt" "$TMP/raw_reaper" "$TMP/f" \
		>"$TMP/ours.out" 2>"$TMP/ours.err" || rc=$?
	[ $rc = 0 ] || fail_with_log "$TMP/ours.err" "raw_reaper failed with ours ($errno_opt): exit $rc"
	cmp -s "$TMP/deb.out" "$TMP/ours.out" || {
		diff "$TMP/deb.out" "$TMP/ours.out" >&2
		fail "raw_reaper prints otherwise with ours than with Debian's ($errno_opt)"
	}
	grep -q 'no fallback: this program imports no io_getevents' "$TMP/ours.err" ||
		fail_with_log "$TMP/ours.err" "LIBAIO_RS_DEBUG did not say why there was no fallback"
	note "ok   $errno_opt: raw_reaper falls back on its own, as with Debian's: $(head -n 1 "$TMP/ours.out")"
done

rc=0
LD_LIBRARY_PATH=$BUILD LIBAIO_RS_DEBUG=1 "$TMP/noaio" "$TMP/roundtrip" "$TMP/g" >"$TMP/rt.out" 2>"$TMP/rt.err" || rc=$?
[ $rc = 0 ] || fail_with_log "$TMP/rt.err" "roundtrip failed with ours under the filter"
grep -Eq 'io_setup: engine (io_uring|threads)' "$TMP/rt.err" ||
	fail_with_log "$TMP/rt.err" "roundtrip, which imports io_getevents, got no user-space engine"
note "ok   roundtrip (imports io_getevents) gets $(grep -Eo 'engine (io_uring|threads)' "$TMP/rt.err" | head -n 1)"

for engine in io_uring threads; do
	rc=0
	(LD_LIBRARY_PATH=$BUILD LIBAIO_RS_ENGINE=$engine exec timeout 20 "$TMP/raw_reaper" "$TMP/h") >"$TMP/f.out" 2>"$TMP/f.err" || rc=$?
	grep -q "LIBAIO_RS_ENGINE=$engine: this program imports no io_getevents" "$TMP/f.err" ||
		fail_with_log "$TMP/f.err" "no warning with LIBAIO_RS_ENGINE=$engine"
	note "ok   LIBAIO_RS_ENGINE=$engine: said on stderr (the program then $(tail -n 1 "$TMP/f.out"), exit $rc)"
done
note "PASS"
