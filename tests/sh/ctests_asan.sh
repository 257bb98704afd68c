#!/usr/bin/env bash
# Runs every program of the C conformance suite (ctests/*.c and
# ctests/differ/*.c) under AddressSanitizer against OUR library with
# user-space reaping ON (ctests_valgrind.sh runs with it off: valgrind turns
# it off), so the ring-copy code runs under a memory checker.
#
# - The library: the staticlib built by nightly rustc with
#   -Zsanitizer=address (core too, with -Zbuild-std, when rust-src is
#   installed) into target/asan, then linked into a libaio.so.1 by the
#   Makefile's own rule (STATICLIB and B overridden). It calls __asan_*
#   entry points and has no sanitizer runtime of its own: gcc's libasan, which
#   the programs link, is the only runtime in the process.
# - The programs: the ctests compiled by gcc with -fsanitize=address, each
#   also run on Debian's libaio: stdout must be the same (tests/ctests.rs's
#   contract; ctests/differ/*.c differ by design and run on ours only).
# - Reaping is proved on: a control program whose event array has a poisoned
#   second slot must get a report from the library's own copy (frames in
#   src/*.rs) with the default environment, and none with LIBAIO_RS_REAP=0,
#   where the kernel writes the array. This also proves the library is
#   instrumented.
# Fails on any sanitizer report, unclean exit, or output that differs from
# Debian's. Skips (77) when the nightly toolchain is not installed. Limits:
# the ring is a kernel mapping with no redzones, so reads past its end are not
# caught; the kernel's writes are invisible.
set -u
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT" || exit 1

require_cmd gcc gcc
find_debian
sanitized_staticlib address
staticlib=$STATICLIB_SAN
what=$SAN_WHAT

# The Makefile's link, with the staticlib above (-o: never rebuilt by make).
lib=$TMP/lib
make -s -C "$ROOT" -o "$staticlib" STATICLIB="$staticlib" B="$lib" LDFLAGS=-fsanitize=address \
	"$lib/libaio.so.1.0.2" >"$TMP/link.log" 2>&1 || fail_with_log "$TMP/link.log" "linking the instrumented libaio.so.1 failed"
ours=$(readlink -f "$lib/libaio.so.1")
nm -D --undefined-only "$ours" | grep -q ' __asan_report_store' || fail "$ours calls no __asan_report_*: not instrumented"
mkdir -p "$TMP/debian"
ln -s "$DEB_LIB" "$TMP/debian/libaio.so.1"

# The programs: build.rs's flags (without -Werror: sanitizer builds may warn).
bin=$TMP/bin
mkdir -p "$bin/differ"
cat >"$TMP/control.c" <<'EOF'
/* Two completions ready, io_getevents(ctx, 2, 2, ev) with ev[1] poisoned:
 * only a copy made by the library in user space can be reported. Warm-up
 * rounds first: the library writes only arrays the kernel has written. */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sanitizer/asan_interface.h>

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
	struct io_event *ev = calloc(2, sizeof(*ev));
	CHECK(ev != NULL);
	for (int i = 0; i < 3; i++) {
		two_ready(ctx, efd, cb);
		CHECK(io_getevents(ctx, 2, 2, ev, NULL) == 2);
	}
	two_ready(ctx, efd, cb);
	ASAN_POISON_MEMORY_REGION(&ev[1], sizeof(ev[1]));
	int r = io_getevents(ctx, 2, 2, ev, NULL);
	ASAN_UNPOISON_MEMORY_REGION(&ev[1], sizeof(ev[1]));
	CHECK(r == 2 && ev[1].res == POLLIN);
	printf("control: reaped %d\n", r);
	free(ev);
	CHECK(io_destroy(ctx) == 0);
	return 0;
}
EOF
compile() {
	local src=$1 out=$2
	gcc -std=gnu11 -O1 -g -fsanitize=address -fno-omit-frame-pointer -Wall -Wextra \
		-Wno-unused-parameter -I "$ROOT/include" -I "$ROOT/ctests" -o "$out" "$src" \
		-L "$lib" -laio -lpthread -ldl >"$out.log" 2>&1
}
par=$(nproc 2>/dev/null || echo 2)
for src in ctests/*.c ctests/differ/*.c "$TMP/control.c"; do
	case $src in ctests/differ/*) out=$bin/differ/$(basename "$src" .c) ;; *) out=$bin/$(basename "$src" .c) ;; esac
	while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n; done
	compile "$src" "$out" &
done
wait
for log in "$bin"/*.log "$bin"/differ/*.log; do
	[ -x "${log%.log}" ] || fail_with_log "$log" "gcc -fsanitize=address failed for ${log%.log}"
done

asan_options=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1
report_re='ERROR: (Address|Leak)Sanitizer|SUMMARY: (Address|Leak)Sanitizer'
# run_one TAG PROG LIBDIR [VAR=VALUE...]: stdout to $TMP/TAG.out, stderr to
# $TMP/TAG.err, reaping left at its default (on) unless a VAR says otherwise;
# RC holds the exit status.
run_one() {
	local tag=$1 prog=$2 libdir=$3
	shift 3
	rm -rf "$TMP/scratch" && mkdir -p "$TMP/scratch"
	RC=0
	env -u LD_PRELOAD -u LIBAIO_RS_REAP -u LIBAIO_RS_DEBUG CTEST_TMPDIR="$TMP/scratch" \
		LD_LIBRARY_PATH="$libdir" ASAN_OPTIONS=$asan_options "$@" \
		timeout 300 "$prog" >"$TMP/$tag.out" 2>"$TMP/$tag.err" </dev/null || RC=$?
}

# The control, both ways.
run_one control-on "$bin/control" "$lib"
if ! grep -q 'ERROR: AddressSanitizer' "$TMP/control-on.err"; then
	fail_with_log "$TMP/control-on.err" "control: no report for the library's copy into a poisoned slot: user-space reaping is off, or the library is not instrumented"
elif ! grep -q 'ERROR: AddressSanitizer: use-after-poison' "$TMP/control-on.err"; then
	fail_with_log "$TMP/control-on.err" "control: a report, but not the expected write into the poisoned slot: a bug?"
fi
where=$(grep -oE ' in [^ ]+ src/[a-z_/]+\.rs:[0-9]+' "$TMP/control-on.err" | head -n 1 | sed 's/.* //')
[ -n "$where" ] || fail_with_log "$TMP/control-on.err" "control: the report has no frame in the library's src/*.rs"
run_one control-off "$bin/control" "$lib" LIBAIO_RS_REAP=0
if [ "$RC" -ne 0 ] || grep -qE "$report_re" "$TMP/control-off.err"; then
	fail_with_log "$TMP/control-off.err" "control with LIBAIO_RS_REAP=0: expected a clean run (the kernel writes the array)"
fi
note "control: user-space reaping is on (the library's copy reported at $where); no report with LIBAIO_RS_REAP=0"

# why TAG LIB: what is wrong with the run TAG on LIB, or nothing.
why() {
	if grep -qE "$report_re" "$TMP/$1.err"; then
		echo "sanitizer report"
	elif [ "$RC" -ne 0 ]; then
		echo "exit status $RC"
	elif ! grep -qxF "ctest-loaded: $2" "$TMP/$1.err"; then
		echo "did not load $2"
	fi
}

pass=0 nfail=0 failed=()
for prog in "$bin"/* "$bin"/differ/*; do
	case $prog in *.log | */control) continue ;; esac
	[ -f "$prog" ] || continue
	name=${prog#"$bin"/}
	extra=()
	# Its seccomp filter kills for getpid, which LeakSanitizer's exit-time
	# scan calls; the rest of ASan stays on.
	[ "$name" != sandbox ] || extra=("ASAN_OPTIONS=${asan_options/detect_leaks=1/detect_leaks=0}")
	start=$SECONDS
	run_one ours "$prog" "$lib" "${extra[@]}"
	problem=$(why ours "$ours")
	log=$TMP/ours.err
	if [ -z "$problem" ] && [ "${name#differ/}" = "$name" ]; then
		run_one debian "$prog" "$TMP/debian" "${extra[@]}"
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
		printf 'ok      %s (%ss)\n' "$name" $((SECONDS - start))
	else
		nfail=$((nfail + 1))
		failed+=("$name")
		printf 'FAILED  %s: %s\n' "$name" "$problem"
		tail -n 80 "$log" | sed 's/^/    /'
	fi
done

note "instrumented: $what (nightly $(rustup run nightly rustc -V | cut -d' ' -f2)), and the C programs (gcc $(gcc -dumpversion)); runtime: gcc's libasan"
((nfail)) && note "failed under ASan: ${failed[*]}"
echo "asan: $pass passed, $nfail failed"
((nfail == 0))
