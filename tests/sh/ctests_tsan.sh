#!/usr/bin/env bash
# Runs ctests/stress_reap.c and ctests/threads.c (many threads reaping one
# context every way, io_destroy racing blocked reapers, fork) under
# ThreadSanitizer against OUR library with user-space reaping ON; stdout must
# be what the same program built without TSan prints on Debian's libaio
# (tests/ctests.rs's contract). Then the same two on the io_uring engine
# (LIBAIO_RS_ENGINE=io_uring): its token, completer thread and CQ draining
# (TSan cannot see the kernel's CQE writes either: user space reads them
# after an acquire load of the CQ tail).
#
# - The library: the staticlib built by nightly rustc with -Zsanitizer=thread
#   (core too, with -Zbuild-std, when rust-src is installed) into target/tsan,
#   linked into a libaio.so.1 by the Makefile's own rule (STATICLIB and B
#   overridden), with gcc's libtsan as the only runtime. gcc 12's libtsan
#   predates the __tsan_memcpy/memmove/memset entry points that newer LLVM
#   emits; where they are missing, a three-line shim maps them to memcpy &c.,
#   which libtsan intercepts (what LLVM's own runtime does).
# - Reaping is proved on, and the library proved instrumented, by a control:
#   another thread reads the event array with no synchronisation while
#   io_getevents fills it. The library's own copy must be reported as a race
#   with the default environment, and nothing with LIBAIO_RS_REAP=0, where the
#   kernel writes the array (TSan cannot see the kernel).
# What TSan cannot see: the kernel's writes (events, tail, and head when the
# kernel reaps). User space only reads the ring's events and moves its head
# with atomics, so a kernel-invisible write would show as a race only if user
# space wrote the same memory non-atomically.
# What TSan models wrongly: descriptor tables. It keeps one per process, but
# the engines' threads live in tables of their own (src/engine/channel.rs),
# where a number names another file than in the program's; a descriptor
# received there and one the program opens under the same number look to
# TSan like one descriptor used by two threads unsynchronised. Such reports
# are suppressed, and only those: every one has a stack through the one
# system-call layer's descriptor calls (src/sys/fd.rs), which touch no
# memory but the buffers handed to the kernel. For the same reason TSan's
# own synchronisation through descriptors is off (io_sync=0: its record of a
# number closed in one table and used in another crashed TSan itself); the
# library hands records over with release/acquire atomics, never through a
# descriptor. The control below runs with the same options and must still
# be reported.
# Fails on any report, unclean exit, or output that differs from Debian's.
# Skips (77) when the nightly toolchain is not installed.
set -u
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT" || exit 1

require_cmd gcc gcc
find_debian
sanitized_staticlib thread
staticlib=$STATICLIB_SAN
what=$SAN_WHAT

ldflags=-fsanitize=thread
libtsan=$(readlink -f "$(gcc -print-file-name=libtsan.so)")
[ -f "$libtsan" ] || fail "gcc has no libtsan.so (apt-get install libtsan2)"
if ! nm -D --defined-only "$libtsan" | grep -q ' __tsan_memcpy$'; then
	cat >"$TMP/tsan_mem.c" <<'EOF'
#include <string.h>
void *__tsan_memcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }
void *__tsan_memmove(void *d, const void *s, size_t n) { return memmove(d, s, n); }
void *__tsan_memset(void *d, int c, size_t n) { return memset(d, c, n); }
EOF
	gcc -O2 -fPIC -fno-builtin -c -o "$TMP/tsan_mem.o" "$TMP/tsan_mem.c" || fail "cannot compile the __tsan_mem* shim"
	ldflags+=" $TMP/tsan_mem.o"
fi
lib=$TMP/lib
make -s -C "$ROOT" -o "$staticlib" STATICLIB="$staticlib" B="$lib" LDFLAGS="$ldflags" \
	"$lib/libaio.so.1.0.2" >"$TMP/link.log" 2>&1 || fail_with_log "$TMP/link.log" "linking the instrumented libaio.so.1 failed"
ours=$(readlink -f "$lib/libaio.so.1")
nm -D --undefined-only "$ours" | grep -q ' __tsan_write' || fail "$ours calls no __tsan_write*: not instrumented"
mkdir -p "$TMP/debian"
ln -s "$DEB_LIB" "$TMP/debian/libaio.so.1"

bin=$TMP/bin
mkdir -p "$bin"
cat >"$TMP/control.c" <<'EOF'
/* A thread reads ev[] with no synchronisation while io_getevents fills it:
 * only a copy made by the library in user space can be reported. Warm-up
 * rounds first: the library writes only arrays the kernel has written. */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

static struct io_event ev[2];
static atomic_int go;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&go, memory_order_relaxed))
		sched_yield();
	return (void *)(long)ev[1].res; /* plain read, on purpose */
}

static void two_ready(io_context_t ctx, int efd, struct iocb *cb)
{
	struct iocb *p[2] = { &cb[0], &cb[1] };
	io_prep_poll(&cb[0], efd, POLLIN);
	io_prep_poll(&cb[1], efd, POLLIN);
	CHECK(io_submit(ctx, 2, p) == 2);
	wait_ring_ready(ctx, 2);
}

int main(void)
{
	io_context_t ctx = 0;
	CHECK(io_setup(8, &ctx) == 0);
	int efd = eventfd(1, 0);
	CHECK(efd >= 0);
	struct iocb cb[2];
	for (int i = 0; i < 3; i++) {
		two_ready(ctx, efd, cb);
		CHECK(io_getevents(ctx, 2, 2, ev, NULL) == 2);
	}
	two_ready(ctx, efd, cb);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, reader, NULL) == 0);
	int r = io_getevents(ctx, 2, 2, ev, NULL);
	atomic_store_explicit(&go, 1, memory_order_relaxed); /* relaxed: no happens-before */
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(r == 2);
	printf("control: reaped %d\n", r);
	CHECK(io_destroy(ctx) == 0);
	return 0;
}
EOF
printf '%s\n' 'race:src/sys/fd.rs' >"$TMP/tsan.supp"
for src in ctests/stress_reap.c ctests/threads.c ctests/reapers.c ctests/churn.c ctests/submitters_exit.c ctests/wakeups.c \
	"$TMP/control.c"; do
	out=$bin/$(basename "$src" .c)
	gcc -std=gnu11 -O1 -g -fsanitize=thread -Wall -Wextra -Wno-unused-parameter \
		-I "$ROOT/include" -I "$ROOT/ctests" -o "$out" "$src" -L "$lib" -laio -lpthread -ldl \
		>"$out.log" 2>&1 || fail_with_log "$out.log" "gcc -fsanitize=thread failed for $src"
	# The reference run on Debian's libaio needs no checker (and TSan's
	# signal handling does not suit the SIGSEGV it takes on purpose).
	[ "$src" = "$TMP/control.c" ] ||
		gcc -std=gnu11 -O1 -g -Wall -Wextra -Wno-unused-parameter -I "$ROOT/include" \
			-I "$ROOT/ctests" -o "$out.ref" "$src" -laio -lpthread -ldl >>"$out.log" 2>&1 ||
		fail_with_log "$out.log" "gcc failed for $src"
done

# gcc 12's TSan cannot map its shadow on kernels that randomise mmap with
# more bits than it knows; without address randomisation it can.
prefix=()
if ! env -u LD_PRELOAD LD_LIBRARY_PATH="$lib" "$bin/control" >"$TMP/probe.log" 2>&1 </dev/null &&
	grep -q 'FATAL: ThreadSanitizer' "$TMP/probe.log"; then
	prefix=(setarch "$(uname -m)" -R)
	note "TSan cannot start with address randomisation here: running under setarch -R"
fi

report_re='WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|FATAL: ThreadSanitizer|SUMMARY: ThreadSanitizer'
# run_one TAG PROG LIBDIR [VAR=VALUE...]: stdout to $TMP/TAG.out, stderr to
# $TMP/TAG.err, reaping left at its default (on) unless a VAR says otherwise;
# RC holds the exit status.
run_one() {
	local tag=$1 prog=$2 libdir=$3
	shift 3
	rm -rf "$TMP/scratch" && mkdir -p "$TMP/scratch"
	RC=0
	env -u LD_PRELOAD -u LIBAIO_RS_REAP -u LIBAIO_RS_DEBUG CTEST_TMPDIR="$TMP/scratch" \
		LD_LIBRARY_PATH="$libdir" TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 io_sync=0 suppressions=$TMP/tsan.supp" "$@" \
		timeout 300 "${prefix[@]}" "$prog" >"$TMP/$tag.out" 2>"$TMP/$tag.err" </dev/null || RC=$?
}

run_one control-on "$bin/control" "$lib"
grep -q 'WARNING: ThreadSanitizer: data race' "$TMP/control-on.err" ||
	fail_with_log "$TMP/control-on.err" "control: no race reported on the array the library fills: user-space reaping is off, or the library is not instrumented"
where=$(grep -oE ' src/[a-z_/]+\.rs:[0-9]+' "$TMP/control-on.err" | head -n 1 | tr -d ' ')
[ -n "$where" ] || fail_with_log "$TMP/control-on.err" "control: the report has no frame in the library's src/*.rs"
run_one control-off "$bin/control" "$lib" LIBAIO_RS_REAP=0
if [ "$RC" -ne 0 ] || grep -qE "$report_re" "$TMP/control-off.err"; then
	fail_with_log "$TMP/control-off.err" "control with LIBAIO_RS_REAP=0: expected a clean run (the kernel writes the array)"
fi
note "control: user-space reaping is on (the library's copy reported racing at $where); no report with LIBAIO_RS_REAP=0"

# why TAG LIB: what is wrong with the run TAG on LIB, or nothing.
why() {
	if grep -qE "$report_re" "$TMP/$1.err"; then
		echo "$(grep -c 'WARNING: ThreadSanitizer' "$TMP/$1.err") ThreadSanitizer report(s)"
	elif [ "$RC" -ne 0 ]; then
		echo "exit status $RC"
	elif ! grep -qxF "ctest-loaded: $2" "$TMP/$1.err"; then
		echo "did not load $2"
	fi
}

pass=0 nfail=0 failed=()
# Kernel AIO (reaping on), then the user-space engines (io_uring's token,
# service and CQ draining; the thread pool) against the same programs, and
# the shapes of multi-threaded programs (many reapers with idle gaps,
# descriptors reused under requests, submitters that exit) on both.
runs=(stress_reap:kernel threads:kernel)
for e in io_uring threads; do
	runs+=("stress_reap:$e" "threads:$e" "reapers:$e" "churn:$e" "submitters_exit:$e" "wakeups:$e")
done
for run in "${runs[@]}"; do
	name=${run%%:*} engine=${run#*:}
	start=$SECONDS
	# The engines' threads have no stderr in their tables: TSan's reports
	# go to a file (opened by the first thread that reports).
	rm -f "$TMP"/report.*
	run_one ours "$bin/$name" "$lib" LIBAIO_RS_ENGINE="$engine" \
		TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 io_sync=0 suppressions=$TMP/tsan.supp log_path=$TMP/report"
	cat "$TMP"/report.* >>"$TMP/ours.err" 2>/dev/null
	problem=$(why ours "$ours")
	log=$TMP/ours.err
	if [ -z "$problem" ]; then
		run_one debian "$bin/$name.ref" "$TMP/debian"
		problem=$(why debian "$DEB_LIB")
		log=$TMP/debian.err
		if [ -n "$problem" ]; then
			problem="with Debian's libaio: $problem"
		elif ! cmp -s "$TMP/debian.out" "$TMP/ours.out"; then
			problem="stdout differs from Debian's libaio"
			diff "$TMP/debian.out" "$TMP/ours.out" >"$TMP/diff.log"
			log=$TMP/diff.log
		fi
	fi
	if [ -z "$problem" ]; then
		pass=$((pass + 1))
		printf 'ok      %s on %s (%ss)\n' "$name" "$engine" $((SECONDS - start))
	else
		nfail=$((nfail + 1))
		failed+=("$name:$engine")
		printf 'FAILED  %s on %s: %s\n' "$name" "$engine" "$problem"
		tail -n 150 "$log" | sed 's/^/    /'
	fi
done

note "instrumented: $what (nightly $(rustup run nightly rustc -V | cut -d' ' -f2)), and the C programs (gcc $(gcc -dumpversion)); runtime: gcc's libtsan"
((nfail)) && note "failed under TSan: ${failed[*]}"
echo "tsan: $pass passed, $nfail failed"
((nfail == 0))
