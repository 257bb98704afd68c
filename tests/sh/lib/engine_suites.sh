#!/usr/bin/env bash
# The user-space engines, measured against Debian's libaio over kernel AIO;
# sourced by the tests/sh/engine_*.sh scripts, which set MODE:
#   threads        every program with ours under LIBAIO_RS_ENGINE=threads;
#   uring          the same under LIBAIO_RS_ENGINE=io_uring;
#   noaio          the engine left to choose (auto) under tests/c/seccomp_noaio,
#                  a seccomp filter that answers ENOSYS to the io_* calls (and
#                  EPERM, for all but the seeds and the harness): ours must
#                  fall back to io_uring; Debian's libaio is shown failing
#                  under it once per tool;
#   noaio-nouring  the same with io_uring refused too (--no-io-uring, as
#                  Docker's default profile does): ours must fall back to the
#                  thread engine, and say why io_uring could not serve.
# Either way Debian's libaio over kernel AIO is the reference, run in the
# same test.
#
# Every run with ours has LIBAIO_RS_DEBUG=1 and must print the library's line
# "libaio: io_setup: engine ENGINE" (and no other engine): a run that cannot
# tell which engine it used proves nothing, so the script fails loudly when
# the library has not run the engine under test.
#   1. a probe: io_setup, the ring header at the io_context_t address, one
#      request reaped from that ring in user space (as QEMU and fio do); and
#      O_DIRECT reads of a hole and at end of file, which the kernel completes
#      inside io_submit, complete there with ours too;
#   2. ctests (noaio modes only: cargo test's tests/ctests.rs runs the suite
#      on threads and io_uring): the C conformance suite (the programs cargo
#      built from ctests/*.c), stdout identical to Debian's;
#   3. seeds and harness: seeds.sh and libaio_harness.sh, with
#      LIBAIO_RS_OURS_WRAP and LIBAIO_RS_OURS_ENGINE;
#   4. fio: verify passes (crc32c, O_DIRECT, with and without
#      userspace_reap), each file verified by the other library too, and a
#      corrupted block caught;
#   5. qemu: qemu-io patterns (sync, vectored, aio_* with aio_flush) and
#      qemu-img bench writes and reads, -t none -i native: output (timings
#      taken out) and image identical to Debian's;
#   6. sysbench: fileio with --file-io-mode=async (O_DIRECT, backlog 64) in
#      each of its modes, run to the end with no error and every kind of
#      operation of the mode done, as with Debian's (sysbench 1.0.20's own
#      --validate does not work in async mode, Debian's libaio included: the
#      data are checked by fio's verify passes).
# LIBAIO_RS_ENGINE_SUITES="ctests fio" (say) runs only those of 2-6.
set -eu
. "$(dirname "$0")/lib/common.sh"

case ${MODE:-} in
threads | noaio-nouring) ENGINE=threads ;;
uring | noaio) ENGINE=io_uring ;;
*) fail "unknown MODE '${MODE:-}'" ;;
esac
# noaio and noaio-nouring: the filter decides, not LIBAIO_RS_ENGINE.
NOAIO_MODE=0
case $MODE in noaio*) NOAIO_MODE=1 ;; esac
unset LIBAIO_RS_ENGINE LIBAIO_RS_DEBUG LD_PRELOAD LD_LIBRARY_PATH
# The C suite on threads and io_uring is tests/ctests.rs's (cargo test): run
# once per engine, here only where the filter, not LIBAIO_RS_ENGINE, decides.
case $MODE in
noaio*) SUITES=${LIBAIO_RS_ENGINE_SUITES:-ctests seeds harness fio qemu sysbench} ;;
*) SUITES=${LIBAIO_RS_ENGINE_SUITES:-seeds harness fio qemu sysbench} ;;
esac

# What only the kernel's AIO does: run and shown, not counted. The one list
# is tests/kernel_only.tsv (tests/ctests.rs reads it too; doc/differences.md
# explains each).
KERNEL_ONLY_CASES=
declare -A CTEST_KERNEL_ONLY=() CTEST_NOAIO_ONLY=() CTEST_DROP=() CTEST_DROP_WHY=()
while IFS=$'\t' read -r kind name lines why; do
	case $kind in
	'#'* | '') continue ;;
	harness) KERNEL_ONLY_CASES="$KERNEL_ONLY_CASES $name" ;;
	ctest-noaio) CTEST_NOAIO_ONLY[$name]=$why ;;
	ctest)
		if [ "$lines" = - ]; then
			CTEST_KERNEL_ONLY[$name]=$why
		else
			CTEST_DROP[$name]=$lines CTEST_DROP_WHY[$name]=$why
		fi
		;;
	*) fail "tests/kernel_only.tsv: unknown kind '$kind'" ;;
	esac
done <"$ROOT/tests/kernel_only.tsv"
# Per-run time limits: Debian's runs take a few seconds each.
T_CTEST=${LIBAIO_RS_ENGINE_CTEST_TIMEOUT:-30}
T_TOOL=60

require_cmd gcc gcc
require_cmd timeout coreutils
require_cmd python3 python3
require_cmd fio fio
require_cmd qemu-io qemu-utils
require_cmd qemu-img qemu-utils
require_cmd sysbench sysbench
case $TMP in *[[:space:]]*) fail "the temp dir '$TMP' has a space: the wrapper is passed as words" ;; esac

START=$SECONDS
install_ours "$TMP/prefix"
find_debian
note "ours:     $OURS_LIB"
note "Debian's: $DEB_LIB (over kernel AIO: the reference)"
# A directory holding only Debian's libaio.so.1, for LD_LIBRARY_PATH.
mkdir -p "$TMP/deblib"
ln -s "$DEB_LIB" "$TMP/deblib/libaio.so.1"

gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/seccomp_noaio.c" -o "$TMP/seccomp_noaio" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build seccomp_noaio"
NOAIO=$TMP/seccomp_noaio
if [ $NOAIO_MODE = 1 ]; then
	"$NOAIO" true || fail "seccomp filters cannot be installed here: no way to take kernel AIO away"
	NOURING=()
	[ "$MODE" = noaio ] || NOURING=(--no-io-uring)
	OURS_PRE=("$NOAIO" "${NOURING[@]}")                # auto: must fall back to $ENGINE
	EPERM_PRE=("$NOAIO" --errno=EPERM "${NOURING[@]}") # the same with EPERM
	LABEL="ours, auto, io_*${NOURING:+ and io_uring_*} -> ENOSYS"
else
	OURS_PRE=(env LIBAIO_RS_ENGINE=$ENGINE)
	EPERM_PRE=()
	LABEL="ours, LIBAIO_RS_ENGINE=$ENGINE"
fi
note "ours runs as: ${OURS_PRE[*]} PROGRAM (with LIBAIO_RS_DEBUG=1)"

failures=() SKIPPED=()

# engine_error STDERR_FILE: prints why that run does not prove the engine
# under test (nothing when it does). With io_uring refused, the library must
# also have said why io_uring could not serve.
engine_error() {
	local lines
	lines=$(grep '^libaio: io_setup: engine ' "$1" || true)
	if ! grep -Eq "^libaio: io_setup: engine $ENGINE(:|\$)" <<<"$lines"; then
		echo "no 'libaio: io_setup: engine $ENGINE' line on stderr"
	elif grep -Evq "^libaio: io_setup: engine $ENGINE(:|\$)" <<<"$lines"; then
		echo "another engine too: $(grep -Ev "^libaio: io_setup: engine $ENGINE(:|\$)" <<<"$lines" | head -n 1)"
	elif [ "$MODE" = noaio-nouring ] && [ "${ENGINE_FORCED:-0}" = 0 ] &&
		! grep -q '^libaio: io_setup: io_uring unavailable: io_uring_setup answered' "$1"; then
		echo "no 'libaio: io_setup: io_uring unavailable: ...' line: was io_uring tried?"
	fi
}

# run_plain TAG LIBDIR CMD...: stdout/stderr in $TMP/TAG.out/.err, RC the status.
run_plain() {
	local tag=$1 libdir=$2
	shift 2
	RC=0
	LD_LIBRARY_PATH=$libdir "$@" </dev/null >"$TMP/$tag.out" 2>"$TMP/$tag.err" || RC=$?
}

# --- 1. The probe: compared with Debian's over kernel AIO; fatal if it fails.
cat >"$TMP/probe.c" <<'EOF'
/* io_setup, the ring header at the context address, one write reaped from
 * the ring by user space the way QEMU and fio do it, then io_getevents. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
struct ring { unsigned id, nr, head, tail, magic, compat, incompat, header; struct io_event ev[]; };
static const char *e(long r) { static char b[32]; if (r >= 0) snprintf(b, sizeof b, "%ld", r); else snprintf(b, sizeof b, "-%s", strerrorname_np((int)-r)); return b; }
int main(int argc, char **argv)
{
	io_context_t ctx = 0;
	int r = io_setup(8, &ctx);
	printf("io_setup = %s\n", e(r));
	if (r) return 0;
	struct ring *ring = (struct ring *)ctx;
	printf("ring: magic=%#x compat=%u incompat=%u header=%u head=%u tail=%u nr>=8:%d\n", ring->magic,
	       ring->compat, ring->incompat, ring->header, ring->head, ring->tail, ring->nr >= 8);
	static char buf[4096] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof buf);
	int fd = open(argv[argc - 1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct iocb cb, *cbs[1] = {&cb};
	io_prep_pwrite(&cb, fd, buf, sizeof buf, 0);
	printf("io_submit = %s\n", e(io_submit(ctx, 1, cbs)));
	unsigned tail = ring->head;
	for (int i = 0; i < 5000 && tail == ring->head; i++) {
		tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
		if (tail == ring->head) usleep(1000);
	}
	struct io_event ev = ring->ev[ring->head];
	printf("ring: tail moved:%d obj is the iocb:%d res=%ld res2=%ld\n", tail != ring->head, ev.obj == &cb,
	       (long)ev.res, (long)ev.res2);
	__atomic_store_n(&ring->head, (ring->head + 1) % ring->nr, __ATOMIC_RELEASE);
	struct timespec zero = {0, 0};
	struct io_event evs[1];
	printf("io_getevents after the user-space reap = %s\n", e(io_getevents(ctx, 0, 1, evs, &zero)));
	printf("io_destroy = %s\n", e(io_destroy(ctx)));
	close(fd);
	return 0;
}
EOF
gcc -Wall -O1 "$TMP/probe.c" -laio -o "$TMP/probe" 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "cannot build the probe"

run_plain probe-deb "$TMP/deblib" "$TMP/probe" "$TMP/probe-deb.dat"
if [ "$RC" != 0 ] || ! grep -qx 'io_destroy = 0' "$TMP/probe-deb.out"; then
	fail_with_log "$TMP/probe-deb.out" "the probe failed with Debian's libaio over kernel AIO"
fi
run_plain probe-ours "$OURS_LIBDIR" env LIBAIO_RS_DEBUG=1 "${OURS_PRE[@]}" "$TMP/probe" "$TMP/probe-ours.dat"
why=$(engine_error "$TMP/probe-ours.err")
if [ -n "$why" ]; then
	cat "$TMP/probe-ours.out" >>"$TMP/probe-ours.err"
	fail_with_log "$TMP/probe-ours.err" "THE $ENGINE ENGINE DID NOT RUN ($LABEL): $why"
fi
note "ours' io_setup says: $(grep -m 1 '^libaio: io_setup: engine' "$TMP/probe-ours.err")"
diff -u "$TMP/probe-deb.out" "$TMP/probe-ours.out" >"$TMP/probe.diff" ||
	fail_with_log "$TMP/probe.diff" "the probe's output differs (- Debian's over kernel AIO, + $LABEL)"
cmp -s "$TMP/probe-deb.dat" "$TMP/probe-ours.dat" || fail "the probe's written file differs from Debian's"
sed 's/^/    /' "$TMP/probe-ours.out"
if [ $NOAIO_MODE = 1 ]; then
	grep -q "^libaio: io_setup: engine $ENGINE: .*ENOSYS" "$TMP/probe-ours.err" ||
		fail_with_log "$TMP/probe-ours.err" "the fallback's reason does not name ENOSYS"
	run_plain probe-ours-eperm "$OURS_LIBDIR" env LIBAIO_RS_DEBUG=1 "${EPERM_PRE[@]}" "$TMP/probe" "$TMP/probe-eperm.dat"
	why=$(engine_error "$TMP/probe-ours-eperm.err")
	[ -z "$why" ] || fail_with_log "$TMP/probe-ours-eperm.err" "with EPERM, THE $ENGINE ENGINE DID NOT RUN: $why"
	grep -q "^libaio: io_setup: engine $ENGINE: .*EPERM" "$TMP/probe-ours-eperm.err" ||
		fail_with_log "$TMP/probe-ours-eperm.err" "the fallback's reason does not name EPERM"
	diff -u "$TMP/probe-deb.out" "$TMP/probe-ours-eperm.out" >"$TMP/probe.diff" ||
		fail_with_log "$TMP/probe.diff" "the probe's output differs (- Debian's over kernel AIO, + ours under EPERM)"
	note "with EPERM, ours' io_setup says: $(grep -m 1 '^libaio: io_setup: engine' "$TMP/probe-ours-eperm.err")"
	# Without the filter, auto keeps kernel AIO.
	run_plain probe-auto "$OURS_LIBDIR" env LIBAIO_RS_DEBUG=1 "$TMP/probe" "$TMP/probe-auto.dat"
	grep -Eq '^libaio: io_setup: engine kernel$' "$TMP/probe-auto.err" ||
		fail_with_log "$TMP/probe-auto.err" "auto without the filter did not choose the kernel engine"
	for e in ENOSYS EPERM; do
		w=("$NOAIO")
		[ $e = ENOSYS ] || w+=(--errno=EPERM)
		run_plain "probe-deb-$e" "$TMP/deblib" "${w[@]}" "$TMP/probe" "$TMP/probe-deb-$e.dat"
		grep -qx "io_setup = -$e" "$TMP/probe-deb-$e.out" ||
			fail_with_log "$TMP/probe-deb-$e.out" "Debian's libaio under the filter: expected io_setup = -$e"
		note "Debian's libaio under the filter ($e): $(head -n 1 "$TMP/probe-deb-$e.out")"
	done
fi

# Reads that the kernel completes inside io_submit (O_DIRECT reads of a hole,
# and at end of file: no device I/O) must be complete when ours returns too:
# programs such as the C seed count completions with an eventfd read right
# after io_submit and reap exactly that many. Compared only where Debian's run
# shows the kernel doing so every time (it depends on the file system).
cat >"$TMP/inline.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <libaio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int rounds = 20, full = 0;
	void *buf;
	if (argc != 2 || posix_memalign(&buf, 4096, 4096)) return 1;
	for (int round = 0; round < rounds; round++) {
		int efd = eventfd(0, EFD_NONBLOCK), fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
		if (efd < 0 || fd < 0 || ftruncate(fd, 127 * 1024)) return 1;
		io_context_t ctx = 0;
		if (io_setup(256, &ctx)) return 1;
		struct iocb cbs[128], *p[128];
		for (int i = 0; i < 128; i++) { /* 127 hole reads, the last at end of file */
			io_prep_pread(&cbs[i], fd, buf, 1024, i * 1024);
			io_set_eventfd(&cbs[i], efd);
			p[i] = &cbs[i];
		}
		if (io_submit(ctx, 128, p) != 128) return 1;
		uint64_t n = 0;
		if (read(efd, &n, sizeof n) == sizeof n && n == 128) full++;
		struct io_event ev[128];
		for (int got = 0; got < 128;) {
			int r = io_getevents(ctx, 1, 128, ev, NULL);
			if (r < 0) return 1;
			got += r;
		}
		io_destroy(ctx);
		close(fd);
		close(efd);
	}
	printf("128 reads of a hole and at end of file complete inside io_submit: %d of %d rounds\n", full, rounds);
	return 0;
}
EOF
gcc -Wall -O1 "$TMP/inline.c" -laio -o "$TMP/inline" 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "cannot build inline.c"
odirect_dir
run_plain inline-deb "$TMP/deblib" "$TMP/inline" "$ODIRECT_DIR/inline.dat"
[ "$RC" = 0 ] || fail_with_log "$TMP/inline-deb.err" "inline.c failed with Debian's libaio"
if grep -q ': 20 of 20 rounds$' "$TMP/inline-deb.out"; then
	run_plain inline-ours "$OURS_LIBDIR" env LIBAIO_RS_DEBUG=1 "${OURS_PRE[@]}" "$TMP/inline" "$ODIRECT_DIR/inline.dat"
	why=$(engine_error "$TMP/inline-ours.err")
	[ "$RC" = 0 ] || why="exit status $RC"
	if [ -n "$why" ] || ! cmp -s "$TMP/inline-deb.out" "$TMP/inline-ours.out"; then
		failures+=("inline completions with $LABEL: ${why:-$(cat "$TMP/inline-ours.out")} (Debian's: $(cat "$TMP/inline-deb.out"))")
	fi
	note "with $LABEL: $(cat "$TMP/inline-ours.out")"
else
	note "not compared here: with Debian's libaio, $(cat "$TMP/inline-deb.out")"
fi

# --- 2. The C conformance suite.
# The newest set of ctests binaries cargo built (by their newest file).
ctests_dir() {
	local d best='' t bt=0
	for d in "$ROOT"/target/*/build/libaio-*/out/ctests; do
		[ -d "$d" ] || continue
		t=$(stat -c %Y "$d"/* 2>/dev/null | sort -n | tail -n 1)
		[ "${t:-0}" -le "$bt" ] || { bt=$t best=$d; }
	done
	echo "$best"
}
# Stale: a ctests/*.c without a binary, or newer than it.
ctests_stale() {
	local src
	[ -n "$1" ] || return 0
	for src in "$ROOT"/ctests/*.c; do
		[ "$1/$(basename "$src" .c)" -nt "$src" ] || return 0
	done
	return 1
}

# ctest TAG LIBDIR PROGRAM [WRAPPER...]: run as tests/ctests_support runs it.
ctest() {
	local tag=$1 libdir=$2 prog=$3
	shift 3
	mkdir -p "$TMP/ct/$tag.tmp"
	RC=0
	# (The outer 2> takes bash's own "Segmentation fault" notices.)
	{ CTEST_TMPDIR=$TMP/ct/$tag.tmp LD_LIBRARY_PATH=$libdir "$@" timeout -k 5 "$T_CTEST" "$prog" \
		</dev/null >"$TMP/ct/$tag.out" 2>"$TMP/ct/$tag.err"; } 2>>"$TMP/ct/$tag.shell" || RC=$?
	rm -rf "$TMP/ct/$tag.tmp"
}

# ct_norm NAME FILE: the output without NAME's kernel-specific lines.
ct_norm() { awk -v p="${CTEST_DROP[$1]:-}" 'p == "" || index($0, p) != 1' "$2"; }

# ctest_ours TAG PROG WRAPPER...: runs ours and prints its verdict against
# Debian's run; what went wrong goes to $TMP/ct/TAG.why.
ctest_ours() {
	local tag=$1 prog=$2 name why
	shift 2
	name=$(basename "$prog")
	ctest "$tag" "$OURS_LIBDIR" "$prog" env LIBAIO_RS_DEBUG=1 "$@"
	why=$(engine_error "$TMP/ct/$tag.err")
	if [ "$RC" != 0 ]; then
		echo "FAIL($RC)"
		{
			echo "exit status $RC$([ "$RC" != 124 ] || echo " (timed out after ${T_CTEST}s)"); the last line of stdout: $(tail -n 1 "$TMP/ct/$tag.out")"
			grep -v -e '^libaio: ' -e '^ctest-loaded: ' "$TMP/ct/$tag.err" | tail -n 8
		} >"$TMP/ct/$tag.why"
	elif ! grep -qxF "ctest-loaded: $OURS_LIB" "$TMP/ct/$tag.err"; then
		echo "NOT-OURS"
		echo "no 'ctest-loaded: $OURS_LIB' on stderr" >"$TMP/ct/$tag.why"
	elif [ -n "$why" ]; then
		echo "NO-ENGINE"
		echo "$why" >"$TMP/ct/$tag.why"
	elif ! ct_norm "$name" "$TMP/ct/$tag.out" | diff -u "$TMP/ct/$name-deb.norm" - >"$TMP/ct/$tag.diff"; then
		echo "DIFFERS"
		{
			echo "stdout (- Debian's over kernel AIO, + ours):"
			sed -n '3,$p' "$TMP/ct/$tag.diff" | grep '^[-+]' | head -n 12
		} >"$TMP/ct/$tag.why"
	else
		echo same
	fi
}

suite_ctests() {
	local ct prog name i why cols tags rows=() notes=() bad=() konly=() deb_same=()
	ct=$(ctests_dir)
	if ctests_stale "$ct"; then
		note "building the C suite (cargo test --no-run --test ctests)"
		(cd "$ROOT" && cargo test -q --no-run --test ctests) >"$TMP/cargo.log" 2>&1 ||
			fail_with_log "$TMP/cargo.log" "cargo could not build the C suite"
		ct=$(ctests_dir)
		! ctests_stale "$ct" || fail "no up-to-date ctests binaries after cargo test --no-run (newest: ${ct:-none})"
	fi
	printf '\n=== the C suite (%s) with %s\n' "$ct" "$LABEL"
	mkdir -p "$TMP/ct"
	for prog in "$ct"/*; do
		[ -f "$prog" ] || continue
		name=$(basename "$prog")
		if ref_get "ctest-$name" "$TMP/ct/$name-deb.out" "$TMP/ct/$name-deb.err" "$TMP/ct/$name-deb.rc"; then
			RC=$(cat "$TMP/ct/$name-deb.rc")
		else
			ctest "$name-deb" "$TMP/deblib" "$prog"
			echo "$RC" >"$TMP/ct/$name-deb.rc"
			[ "$RC" != 0 ] || ref_put "ctest-$name" "$TMP/ct/$name-deb.out" "$TMP/ct/$name-deb.err" "$TMP/ct/$name-deb.rc"
		fi
		[ "$RC" = 0 ] || fail_with_log "$TMP/ct/$name-deb.err" "ctest $name fails with Debian's libaio over kernel AIO (exit $RC)"
		grep -qxF "ctest-loaded: $DEB_LIB" "$TMP/ct/$name-deb.err" || fail "ctest $name: Debian's run did not load $DEB_LIB"
		ct_norm "$name" "$TMP/ct/$name-deb.out" >"$TMP/ct/$name-deb.norm"
		cols=("$(ctest_ours "$name-ours" "$prog" "${OURS_PRE[@]}")")
		tags=("$name-ours")
		if [ $NOAIO_MODE = 1 ]; then
			cols+=("$(ctest_ours "$name-eperm" "$prog" "${EPERM_PRE[@]}")")
			tags+=("$name-eperm")
			# Debian's under the filter: fails, or prints something else.
			ctest "$name-debnoaio" "$TMP/deblib" "$prog" "$NOAIO"
			if [ "$RC" != 0 ]; then
				cols+=("fails($RC)")
			elif ! cmp -s "$TMP/ct/$name-deb.out" "$TMP/ct/$name-debnoaio.out"; then
				cols+=("differs")
			else
				cols+=("UNAFFECTED")
				deb_same+=("$name")
			fi
			notes+=("$name: $(grep -m 1 -E ' = -E(NOSYS|PERM)$' "$TMP/ct/$name-debnoaio.out" ||
				grep -v '^ctest-loaded' "$TMP/ct/$name-debnoaio.err" | head -n 1)")
		fi
		for i in "${!tags[@]}"; do
			[ "${cols[i]}" != same ] || continue
			why=${CTEST_KERNEL_ONLY[$name]:-}
			[ $NOAIO_MODE = 0 ] || why=${why:-${CTEST_NOAIO_ONLY[$name]:-}}
			if [ -n "$why" ]; then
				cols[i]="${cols[i]}(k)"
				konly+=("$name (${tags[i]#"$name"-}, $(head -n 1 "$TMP/ct/${tags[i]}.why")): $why")
			else
				bad+=("${tags[i]}: $(head -c 2000 "$TMP/ct/${tags[i]}.why")")
			fi
		done
		rows+=("$(printf '%-20s %-8s' "$name" same)$(printf ' %-13s' "${cols[@]}")")
	done
	[ ${#rows[@]} -gt 0 ] || fail "no ctests programs in $ct"
	if [ $NOAIO_MODE = 1 ]; then
		printf '%-20s %-8s %-13s %-13s %-13s\n' program Debian "ours ENOSYS" "ours EPERM" "Debian ENOSYS"
	else
		printf '%-20s %-8s %-13s\n' program Debian "ours $ENGINE"
	fi
	printf '%s\n' "${rows[@]}"
	[ ${#konly[@]} = 0 ] || printf '%s\n' "(k) kernel-only, not counted:" "${konly[@]/#/    }"
	for name in "${!CTEST_DROP_WHY[@]}"; do
		printf "compared without the lines of %s starting '%s': %s\n" "$name" "${CTEST_DROP[$name]}" "${CTEST_DROP_WHY[$name]}"
	done
	if [ $NOAIO_MODE = 1 ]; then
		printf "Debian's libaio under the filter, what each program saw first:\n"
		printf '    %s\n' "${notes[@]}"
		[ ${#deb_same[@]} -lt ${#rows[@]} ] || fail "Debian's libaio passed every ctest under the filter: the filter does not work"
	fi
	if [ ${#bad[@]} != 0 ]; then
		printf -- '--- %s\n' "${bad[@]}" | sed 's/^/    | /'
		failures+=("C suite with $LABEL: ${#bad[@]} runs not as Debian's: $(printf '%s ' "${bad[@]%%:*}")")
	fi
}

# --- 3. Seeds and libaio's harness, through their own scripts.
sub_script() {
	local name=$1 rc
	shift
	printf '\n=== %s.sh with %s\n' "$name" "$LABEL"
	set +e
	env LIBAIO_RS_OURS_WRAP="${OURS_PRE[*]}" LIBAIO_RS_OURS_ENGINE=$ENGINE "$@" \
		bash "$ROOT/tests/sh/$name.sh" 2>&1 | sed 's/^/    /'
	rc=${PIPESTATUS[0]}
	set -e
	case $rc in
	0) ;;
	77) SKIPPED+=("$name") ;;
	*) failures+=("$name.sh with $LABEL: exit $rc (its output above)") ;;
	esac
}
suite_seeds() { sub_script seeds; }
suite_harness() {
	sub_script libaio_harness LIBAIO_RS_HARNESS_KERNEL_ONLY="$KERNEL_ONLY_CASES" LIBAIO_RS_CASE_TIMEOUT=120
}

# --- 4. fio verify passes.
fio_cmd() { # NAME FILE REAP [EXTRA...]: sets FIO
	local name=$1 file=$2 reap=$3
	shift 3
	FIO=(timeout "$T_TOOL" fio --output-format=json --name="$name" --filename="$file" --size=32M --ioengine=libaio
		--direct=1 --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --userspace_reap="$reap" "$@")
}
# fio_check TAG: exit 0, no error, 32 MiB written and 32 MiB read back and
# verified; prints that, or what is wrong and returns 1.
fio_check() {
	local tag=$1 got
	if [ "$RC" != 0 ]; then
		echo "exit status $RC: $(grep -h -m 1 -E 'err=|verify failed|error' "$TMP/$tag.err" "$TMP/$tag.out" | head -n 1)"
		return 1
	fi
	got=$(python3 -c '
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    print("err=%d written=%d verified=%d" % (j["error"], j["write"]["io_bytes"], j["read"]["io_bytes"]))
' "$TMP/$tag.out" 2>&1) || { echo "no JSON report: $(head -c 200 "$TMP/$tag.out")"; return 1; }
	echo "$got"
	[ "$got" = "err=0 written=33554432 verified=33554432" ] && ! grep -q 'verify failed' "$TMP/$tag.err"
}
# fio_ours TAG PRE...: runs FIO with ours; sets R_OURS, or records a failure.
fio_ours() {
	local tag=$1 why
	shift
	run_traced "$tag" "$OURS_LIBDIR" "$OURS_LIB" -- env LIBAIO_RS_DEBUG=1 "$@" "${FIO[@]}"
	why=$(engine_error "$TMP/$tag.err")
	if [ -n "$why" ]; then
		failures+=("$tag ($LABEL): $why")
		R_OURS="FAIL: $why"
	elif ! R_OURS=$(fio_check "$tag"); then
		failures+=("$tag ($LABEL): $R_OURS")
		R_OURS="FAIL: $R_OURS"
	fi
}
# fio_latency TAG: "IOS P99 MAX" (total latency, microseconds) of a
# --group_reporting read job, or what is wrong and returns 1.
fio_latency() {
	local tag=$1
	if [ "$RC" != 0 ]; then
		echo "exit status $RC: $(grep -h -m 1 -E 'err=|error' "$TMP/$tag.err" "$TMP/$tag.out" | head -n 1)"
		return 1
	fi
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print("%d %d %d" % (r["total_ios"], r["lat_ns"]["percentile"]["99.000000"] // 1000, r["lat_ns"]["max"] // 1000))
' "$TMP/$tag.out" 2>&1 || { echo "no JSON report: $(head -c 200 "$TMP/$tag.out")"; return 1; }
}
# fio_latency_step FILE: latency of threads each waiting on a context of
# their own with idle gaps (fio --thread: one process, a context per job),
# paced at 50 IOPS each, O_DIRECT and buffered, reading FILE (written first
# when missing): ours must have no stall (no I/O over 500 ms) and a 99th
# percentile within 5x Debian's, or 10 ms. Run where the machine is not
# otherwise loaded: the bound is on time.
fio_latency_step() {
	local file=$1 direct tag lat_deb lat_ours ios p99 worst bound p99_deb rows=()
	if [ ! -f "$file" ]; then
		fio_cmd lat-data "$file" 0 --rw=write --bs=64k --iodepth=8
		run_traced fio-lat-data "" "$DEB_LIB" -- "${FIO[@]}"
		[ "$RC" = 0 ] || fail_with_log "$TMP/fio-lat-data.err" "fio could not write $file"
	fi
	for direct in 1 0; do
		FIO=(timeout "$T_TOOL" fio --output-format=json --name=lat --filename="$file" --size=32M
			--ioengine=libaio --direct="$direct" --rw=randread --bs=4k --iodepth=1 --thread --numjobs=3
			--rate_iops=50 --runtime=3 --time_based --group_reporting --lat_percentiles=1)
		tag=fio-lat$direct
		run_traced "$tag-deb" "" "$DEB_LIB" -- "${FIO[@]}"
		lat_deb=$(fio_latency "$tag-deb") || fail_with_log "$TMP/$tag-deb.err" "fio latency with Debian's libaio: $lat_deb"
		run_traced "$tag-ours" "$OURS_LIBDIR" "$OURS_LIB" -- env LIBAIO_RS_DEBUG=1 "${OURS_PRE[@]}" "${FIO[@]}"
		why=$(engine_error "$TMP/$tag-ours.err")
		[ -z "$why" ] || failures+=("$tag ($LABEL): $why")
		if lat_ours=$(fio_latency "$tag-ours"); then
			read -r _ p99_deb _ <<<"$lat_deb"
			read -r ios p99 worst <<<"$lat_ours"
			bound=$((p99_deb * 5 > 10000 ? p99_deb * 5 : 10000))
			if ((ios < 400 || worst > 500000 || p99 > bound)); then
				failures+=("$tag ($LABEL): $ios I/Os, p99 $p99 us (bound $bound), worst $worst us")
			fi
		else
			failures+=("$tag ($LABEL): $lat_ours")
		fi
		rows+=("$(printf 'latency, 3 threads x 50 IOPS, direct=%s: Debian ios/p99/max us %s; ours %s' "$direct" "$lat_deb" "$lat_ours")")
	done
	printf '    %s\n' "${rows[@]}"
}
suite_latency() {
	odirect_dir
	printf '\n=== fio latency with %s\n' "$LABEL"
	fio_latency_step "$ODIRECT_DIR/lat.dat"
}

suite_fio() {
	local d job name reap extra r_deb rows=() why ios p99 worst bound p99_deb
	odirect_dir
	d=$ODIRECT_DIR
	printf '\n=== fio (%s) with %s: 32 MiB per job, O_DIRECT, crc32c verify\n' "$(fio --version)" "$LABEL"
	# 4 KiB random writes at depth 32 reaped in user space (fio reads the
	# ring itself when its minimum is 0), and 64 KiB sequential at depth 8.
	for job in "rand4k 1 --rw=randwrite --bs=4k --iodepth=32 --iodepth_batch_complete_min=0" \
		"seq64k 0 --rw=write --bs=64k --iodepth=8"; do
		read -r name reap extra <<<"$job"
		read -ra extra <<<"$extra"
		fio_cmd "$name" "$d/$name-deb.dat" "$reap" "${extra[@]}"
		run_traced "fio-$name-deb" "" "$DEB_LIB" -- "${FIO[@]}"
		r_deb=$(fio_check "fio-$name-deb") || fail_with_log "$TMP/fio-$name-deb.err" "fio $name with Debian's libaio: $r_deb"
		fio_cmd "$name" "$d/$name-ours.dat" "$reap" "${extra[@]}"
		fio_ours "fio-$name-ours" "${OURS_PRE[@]}"
		rows+=("$(printf '%-7s userspace_reap=%s  Debian: %s' "$name" "$reap" "$r_deb")")
		rows+=("$(printf '%-7s userspace_reap=%s  ours:   %s' "$name" "$reap" "$R_OURS")")
		# Each library verifies the file the other one wrote.
		fio_cmd "$name" "$d/$name-deb.dat" "$reap" "${extra[@]}" --verify_only=1
		fio_ours "fio-$name-x1" "${OURS_PRE[@]}"
		rows+=("$(printf "%-7s ours verifying Debian's file: %s" "$name" "$R_OURS")")
		if [ -f "$d/$name-ours.dat" ]; then
			fio_cmd "$name" "$d/$name-ours.dat" "$reap" "${extra[@]}" --verify_only=1
			run_traced "fio-$name-x2" "" "$DEB_LIB" -- "${FIO[@]}"
			if r_deb=$(fio_check "fio-$name-x2"); then
				rows+=("$(printf "%-7s Debian's verifying ours' file: %s" "$name" "$r_deb")")
			else
				failures+=("fio $name: Debian's libaio finds ours' file wrong: $r_deb")
			fi
		fi
		if [ $NOAIO_MODE = 1 ]; then
			fio_cmd "$name" "$d/$name-eperm.dat" "$reap" "${extra[@]}"
			fio_ours "fio-$name-eperm" "${EPERM_PRE[@]}"
			rows+=("$(printf '%-7s ours under EPERM: %s' "$name" "$R_OURS")")
		fi
	done
	# A corrupted block must be caught when ours reads the file back.
	if [ -f "$d/rand4k-deb.dat" ]; then
		printf 'XXXX' | dd of="$d/rand4k-deb.dat" bs=1 seek=$((4096 * 100 + 200)) conv=notrunc status=none
		fio_cmd rand4k "$d/rand4k-deb.dat" 1 --rw=randwrite --bs=4k --iodepth=32 --verify_only=1
		run_traced fio-corrupt "$OURS_LIBDIR" "$OURS_LIB" -- env LIBAIO_RS_DEBUG=1 "${OURS_PRE[@]}" "${FIO[@]}"
		if [ "$RC" != 0 ] && grep -q 'verify failed at file .* offset 409600' "$TMP/fio-corrupt.err"; then
			rows+=("corrupted block at 409600: caught with ours ($(grep -m 1 -o 'verify failed at file .*' "$TMP/fio-corrupt.err" | sed 's/ at file [^ ]*//'))")
		else
			failures+=("fio with ours did not catch a corrupted block at 409600 (exit $RC)")
		fi
	fi
	# The latency step (timing-bound): here, unless make check runs it
	# alone at the end (LIBAIO_RS_SKIP_LATENCY=1, tests/sh/latency.sh).
	[ "${LIBAIO_RS_SKIP_LATENCY:-0}" = 1 ] || fio_latency_step "$d/seq64k-deb.dat"
	if [ $NOAIO_MODE = 1 ]; then
		fio_cmd rand4k "$d/x.dat" 0 --rw=write --bs=4k
		run_traced fio-debnoaio "" "$DEB_LIB" -- "$NOAIO" "${FIO[@]}"
		[ "$RC" != 0 ] || fail "fio with Debian's libaio passed under the filter: the filter does not work"
		rows+=("Debian's libaio under the filter: exit $RC, $(grep -h -m 1 -o 'err=.*' "$TMP/fio-debnoaio.err" "$TMP/fio-debnoaio.out" | head -n 1)")
	fi
	printf '    %s\n' "${rows[@]}"
	rm -f "$d"/*.dat
}

# --- 5. QEMU.
QEMU_IO=(-c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'
	-c 'write -P 0x5a 4096 64k' -c 'read -P 0xab 0 4k' -c 'read -P 0x5a 4096 64k'
	-c 'writev -P 0x77 1M 4k 8k 512' -c 'readv -P 0x77 1M 4k 8k 512'
	-c 'aio_write -P 0x11 2M 128k' -c 'aio_write -P 0x12 3M 64k' -c 'aio_write -P 0x13 4M 4M' -c aio_flush
	-c 'aio_read -P 0x11 2M 128k' -c 'aio_read -P 0x12 3M 64k' -c 'aio_read -P 0x13 4M 4M' -c aio_flush
	-c flush -c 'read -P 0 8M 1M')
# Timings out; aio_* completions may come in any order, so lines are sorted.
qnorm() {
	sed -E -e 's/ops; [0-9:.]+ sec \(.* ops\/sec\)$/ops; TIME/' \
		-e 's/^Run completed in [0-9.]+ seconds\.$/Run completed in TIME seconds./' "$1" | sort
}
# qemu_runs WHO LIBDIR LIB: qemu-io's commands; one wrong pattern; bench -w
# with a pattern (20000 x 4 KiB wrap round the 16 MiB image: all of it) and
# its check; bench reads. PRE goes in front of each; outputs in q-STEP-WHO.*.
qemu_runs() {
	local who=$1 libdir=$2 lib=$3 f=$QDIR/qemu-$1.raw t
	shift 3
	rm -f "$f"
	truncate -s 16M "$f"
	for t in io iobad benchw check benchr; do
		case $t in
		io) set -- qemu-io -f raw -t none -i native "${QEMU_IO[@]}" "$f" ;;
		iobad) set -- qemu-io -f raw -t none -i native -c 'read -P 0xcd 0 4k' "$f" ;;
		benchw) set -- qemu-img bench -f raw -t none -i native -c 20000 -d 32 -w --pattern=0x3c "$f" ;;
		check) set -- qemu-io -f raw -t none -i native -c 'read -P 0x3c 0 16M' "$f" ;;
		benchr) set -- qemu-img bench -f raw -t none -i native -c 20000 -d 32 "$f" ;;
		esac
		run_traced "q-$t-$who" "$libdir" "$lib" -- "${PRE[@]}" timeout "$T_TOOL" "$@"
		qnorm "$TMP/q-$t-$who.out" >"$TMP/q-$t-$who.norm"
		echo "exit $RC" >>"$TMP/q-$t-$who.norm"
	done
}
# qemu_ours WHO LABEL PRE...: ours' runs, each compared with Debian's.
qemu_ours() {
	local who=$1 label=$2 t why broke=0
	shift 2
	PRE=(env LIBAIO_RS_DEBUG=1 "$@")
	qemu_runs "$who" "$OURS_LIBDIR" "$OURS_LIB"
	for t in io iobad benchw check benchr; do
		why=$(engine_error "$TMP/q-$t-$who.err")
		! grep -q 'Unable to use' "$TMP/q-$t-$who.err" || why="QEMU gave up on native AIO: $(grep -m 1 'Unable to use' "$TMP/q-$t-$who.err")"
		if [ -n "$why" ]; then
			failures+=("qemu $t with $label: $why")
			broke=1
		elif ! diff -u "$TMP/q-$t-deb.norm" "$TMP/q-$t-$who.norm" >"$TMP/q-$t-$who.diff"; then
			failures+=("qemu $t with $label: output differs from Debian's (diff above)")
			printf '    qemu %s with %s (- Debian, + ours; stderr: %s)\n' "$t" "$label" \
				"$(grep -v '^libaio: ' "$TMP/q-$t-$who.err" | head -n 2 | tr '\n' ' ')"
			sed 's/^/    | /' "$TMP/q-$t-$who.diff"
			broke=1
		fi
	done
	if ! cmp "$QDIR/qemu-deb.raw" "$QDIR/qemu-$who.raw" >"$TMP/cmp.log" 2>&1; then
		failures+=("qemu with $label: the image differs from Debian's ($(cat "$TMP/cmp.log"))")
		broke=1
	fi
	[ $broke = 1 ] || rows+=("$label: output as Debian's, image identical ($(grep -c '^wrote\|^read' "$TMP/q-io-$who.norm") qemu-io transfers, 2 x 20000 bench requests)")
}
suite_qemu() {
	local t msg rows=()
	odirect_dir
	QDIR=$ODIRECT_DIR
	printf '\n=== QEMU %s with %s: -f raw -t none -i native\n' "$(qemu-io --version | head -n 1 | awk '{print $3}')" "$LABEL"
	PRE=()
	qemu_runs deb "" "$DEB_LIB"
	for t in io benchw check benchr; do
		grep -qx 'exit 0' "$TMP/q-$t-deb.norm" || fail_with_log "$TMP/q-$t-deb.err" "qemu $t with Debian's libaio failed"
	done
	grep -q '^Pattern verification failed at offset 0, 4096 bytes$' "$TMP/q-iobad-deb.norm" ||
		fail_with_log "$TMP/q-iobad-deb.norm" "qemu-io did not report the wrong pattern with Debian's libaio"
	if [ $NOAIO_MODE = 1 ]; then
		# QEMU imports no io_getevents (it reads the ring): where kernel AIO
		# is refused, auto gives it the kernel's answer, as Debian's libaio
		# does (doc/engines.md, "Who falls back")... (on an image of its own:
		# Debian's is the reference the forced runs are compared with).
		truncate -s 16M "$QDIR/qemu-scratch.raw"
		for t in io benchr; do
			case $t in
			io) set -- qemu-io -f raw -t none -i native -c 'write -P 0xab 0 4k' "$QDIR/qemu-scratch.raw" ;;
			benchr) set -- qemu-img bench -f raw -t none -i native -c 100 -d 4 "$QDIR/qemu-scratch.raw" ;;
			esac
			run_traced "q-$t-oursauto" "$OURS_LIBDIR" "$OURS_LIB" -- "${OURS_PRE[@]}" timeout "$T_TOOL" "$@"
			grep -Eq 'Unable to use (native|Linux) AIO' "$TMP/q-$t-oursauto.err" ||
				failures+=("qemu $t with ours, auto, under the filter: QEMU did not get the kernel's refusal")
			grep -q 'io_setup: engine' "$TMP/q-$t-oursauto.err" &&
				failures+=("qemu $t with ours, auto, under the filter: a user-space engine served a program that imports no io_getevents")
			rows+=("ours, auto, under the filter, $1: exit $RC: $(grep -m 1 'Unable to use' "$TMP/q-$t-oursauto.err" || head -n 1 "$TMP/q-$t-oursauto.err")")
		done
		# ... and a ring reader asks for the engine by name.
		ENGINE_FORCED=1
		qemu_ours ours "$LABEL, LIBAIO_RS_ENGINE=$ENGINE" env LIBAIO_RS_ENGINE=$ENGINE "${OURS_PRE[@]}"
		qemu_ours eperm "${LABEL/ENOSYS/EPERM}, LIBAIO_RS_ENGINE=$ENGINE" env LIBAIO_RS_ENGINE=$ENGINE "${EPERM_PRE[@]}"
		ENGINE_FORCED=0
		# Debian's under the filter: QEMU cannot use Linux AIO (and says so).
		for t in io benchr; do
			case $t in
			io) set -- qemu-io -f raw -t none -i native -c 'write -P 0xab 0 4k' "$QDIR/qemu-scratch.raw" ;;
			benchr) set -- qemu-img bench -f raw -t none -i native -c 100 -d 4 "$QDIR/qemu-scratch.raw" ;;
			esac
			run_traced "q-$t-debnoaio" "" "$DEB_LIB" -- "$NOAIO" timeout "$T_TOOL" "$@"
			msg=$(grep -m 1 -E 'AIO|aio' "$TMP/q-$t-debnoaio.err" || true)
			[ -n "$msg" ] || [ "$RC" != 0 ] || fail "$1 with Debian's libaio used native AIO under the filter"
			rows+=("Debian's libaio under the filter, $1: exit $RC: ${msg:-$(head -n 1 "$TMP/q-$t-debnoaio.err")}")
		done
	else
		qemu_ours ours "$LABEL" "${OURS_PRE[@]}"
	fi
	[ ${#rows[@]} = 0 ] || printf '    %s\n' "${rows[@]}"
	rm -f "$QDIR"/*.raw
}

# --- 6. sysbench fileio, asynchronous.
# sb_check TAG MODE: exit 0, no FATAL or error line, and the operations MODE
# makes all done; prints "reads/s writes/s fsyncs/s" or what is wrong.
sb_check() {
	local tag=$1 mode=$2 r w f
	# The library's own lines (LIBAIO_RS_DEBUG) are engine_error's to judge.
	if [ "$RC" != 0 ] || grep -hv '^libaio: ' "$TMP/$tag.out" "$TMP/$tag.err" | grep -qiE 'FATAL|error'; then
		echo "exit $RC: $(grep -hv '^libaio: ' "$TMP/$tag.out" "$TMP/$tag.err" | grep -iE 'FATAL|error' | head -n 1)"
		return 1
	fi
	r=$(awk '/reads\/s:/ {print $2}' "$TMP/$tag.out") w=$(awk '/writes\/s:/ {print $2}' "$TMP/$tag.out")
	f=$(awk '/fsyncs\/s:/ {print $2}' "$TMP/$tag.out")
	echo "reads/s ${r:-?} writes/s ${w:-?} fsyncs/s ${f:-?}"
	case $mode in
	*rd) awk -v x="${r:-0}" 'BEGIN {exit !(x > 0)}' ;;
	*wr) awk -v x="${w:-0}" -v y="${f:-0}" 'BEGIN {exit !(x > 0 && y > 0)}' ;;
	rndrw) awk -v x="${r:-0}" -v y="${w:-0}" -v z="${f:-0}" 'BEGIN {exit !(x > 0 && y > 0 && z > 0)}' ;;
	esac
}
suite_sysbench() {
	local d mode res why rows=()
	odirect_dir
	d=$ODIRECT_DIR/sysbench
	mkdir -p "$d"
	printf '\n=== sysbench %s fileio, async, O_DIRECT, with %s\n' "$(sysbench --version | awk '{print $2}')" "$LABEL"
	# Whole files after the seqwr runs: seqwr writes them anew for its
	# second, and how far it gets depends on the machine's load, while the
	# other modes refuse files shorter than prepared.
	sb_prepare() {
		(cd "$d" && sysbench fileio --file-num=4 --file-total-size=32M prepare >/dev/null 2>&1) ||
			fail "sysbench fileio prepare failed in $d"
	}
	sb_prepare
	cd "$d"
	for mode in seqwr seqrewr rndwr rndrw rndrd seqrd; do
		set -- sysbench fileio --file-num=4 --file-total-size=32M --file-test-mode=$mode \
			--file-io-mode=async --file-extra-flags=direct --file-async-backlog=64 --time=1 --events=0 run
		[ "$mode" != seqrewr ] || sb_prepare
		run_traced "sb-$mode-deb" "" "$DEB_LIB" -- timeout "$T_TOOL" "$@"
		res=$(sb_check "sb-$mode-deb" "$mode") ||
			fail_with_log "$TMP/sb-$mode-deb.out" "sysbench $mode with Debian's libaio: $res"
		rows+=("$(printf '%-8s Debian: %s' "$mode" "$res")")
		run_traced "sb-$mode-ours" "$OURS_LIBDIR" "$OURS_LIB" -- env LIBAIO_RS_DEBUG=1 "${OURS_PRE[@]}" \
			timeout "$T_TOOL" "$@"
		why=$(engine_error "$TMP/sb-$mode-ours.err")
		if ! res=$(sb_check "sb-$mode-ours" "$mode"); then
			failures+=("sysbench $mode ($LABEL): $res")
			res="FAIL: $res"
		elif [ -n "$why" ]; then
			failures+=("sysbench $mode ($LABEL): $why")
			res="FAIL: $why"
		fi
		rows+=("$(printf '%-8s ours:   %s' "$mode" "$res")")
	done
	cd "$ROOT"
	printf '    %s\n' "${rows[@]}"
	rm -rf "$d"
}

for s in $SUITES; do
	case $s in ctests | seeds | harness | fio | latency | qemu | sysbench) ;; *) fail "unknown suite '$s' in LIBAIO_RS_ENGINE_SUITES" ;; esac
	"suite_$s"
	note "$s done ($((SECONDS - START))s)"
done

printf '\n'
if [ ${#failures[@]} != 0 ]; then
	for f in "${failures[@]}"; do printf '%s: FAIL: %s\n' "$ME" "$f"; done >&2
	exit 1
fi
# A step that skipped (the seeds, without the seed document) is named; the
# rest passed, and the suite says so rather than SKIP for the whole.
[ ${#SKIPPED[@]} = 0 ] || note "skipped step(s): ${SKIPPED[*]} (see above); every other step passed with $LABEL"
note "$SUITES: each prints with $LABEL what it prints with Debian's libaio over kernel AIO"
