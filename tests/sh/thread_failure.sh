#!/usr/bin/env bash
# Every thread-start failure is survivable: with pthread_create refusing
# every thread the library would start (tests/c/no_library_threads.c, an
# LD_PRELOAD shim, as RLIMIT_NPROC or a pids cgroup would), on each
# user-space engine:
#   1. the C conformance programs that need no poll to wait print exactly
#      what Debian's libaio prints over kernel AIO (their requests are done
#      inside io_submit), with no hang;
#   2. tests/c/thread_failure.c: a poll that must wait gets -EAGAIN, a ready
#      one completes, io_destroy returns at once, and once threads can start
#      again the engine uses them.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd gcc gcc
find_debian
ctest_programs
gcc -shared -fPIC -O1 -Wall -Werror -o "$TMP/no_threads.so" "$ROOT/tests/c/no_library_threads.c" -ldl ||
	fail "cannot build the shim"
gcc -O1 -Wall -Werror -I"$ROOT/include" -o "$TMP/thread_failure" "$ROOT/tests/c/thread_failure.c" \
	-L"$BUILD" -laio -ldl || fail "cannot build thread_failure.c"
DEB_DIR=$(dirname "$DEB_LIB")

# Programs whose every poll is ready when submitted.
PROGRAMS="direct_ring errors queue rw stress_reap sync vectors"
fails=0
for p in $PROGRAMS; do
	prog=$CTESTS_OUT/ctests/$p
	mkdir -p "$TMP/scratch"
	CTEST_TMPDIR=$TMP/scratch LD_LIBRARY_PATH=$DEB_DIR timeout 120 "$prog" >"$TMP/$p.deb" 2>"$TMP/$p.deb.err" ||
		fail_with_log "$TMP/$p.deb.err" "$p failed with Debian's libaio"
	for engine in threads io_uring; do
		rc=0
		CTEST_TMPDIR=$TMP/scratch LD_PRELOAD=$TMP/no_threads.so LD_LIBRARY_PATH=$BUILD LIBAIO_RS_ENGINE=$engine \
			timeout 120 "$prog" >"$TMP/$p.$engine" 2>"$TMP/$p.$engine.err" || rc=$?
		if [ $rc -ne 0 ]; then
			note "FAIL $p on $engine, no thread can start: exit $rc"
			sed 's/^/    | /' "$TMP/$p.$engine.err" | tail -n 5
			fails=$((fails + 1))
		elif ! cmp -s "$TMP/$p.deb" "$TMP/$p.$engine"; then
			note "FAIL $p on $engine, no thread can start: output differs from Debian's"
			diff "$TMP/$p.deb" "$TMP/$p.$engine" | head -n 10 | sed 's/^/    | /'
			fails=$((fails + 1))
		else
			note "ok   $p on $engine, no thread can start: same as Debian's over kernel AIO"
		fi
	done
done
for engine in threads io_uring; do
	rc=0
	LD_PRELOAD=$TMP/no_threads.so LD_LIBRARY_PATH=$BUILD LIBAIO_RS_ENGINE=$engine \
		timeout 60 "$TMP/thread_failure" "$TMP/scratch/tf-$engine" >"$TMP/tf.$engine" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		note "FAIL thread_failure on $engine: exit $rc"
		sed 's/^/    | /' "$TMP/tf.$engine"
		fails=$((fails + 1))
	else
		note "ok   thread_failure on $engine:"
		sed 's/^/    /' "$TMP/tf.$engine"
	fi
done
[ $fails -eq 0 ] || fail "$fails runs failed"
note "PASS"
