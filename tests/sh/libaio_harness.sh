#!/usr/bin/env bash
# libaio 0.3.113's own test cases (harness/cases/*.t), each built by the
# harness's Makefile (harness/main.c with -DTEST_NAME) twice: against our
# installed header and library, and against Debian's /usr/include/libaio.h and
# system library. Each case runs with both, the loader's trace proving which
# libaio each process used; a per-case table is printed. The script fails if
# any case that passes with Debian's libaio does not pass with ours.
#
# Sources: $LIBAIO_SRC (an unpacked libaio source tree) if set, otherwise
# `apt-get source libaio` (needs deb-src entries, which tools/deps.sh adds)
# into the test's temp dir, removed at exit like the rest of it; set
# LIBAIO_RS_CACHE to a directory to keep the download there for later runs
# instead. Both must be outside the repository. Exit 77 only when the sources
# cannot be had. The harness is copied into a temp dir for each build, so the
# source tree is never written to.
#
# Special cases, as in harness/Makefile: 10.t needs testdir.enospc (the
# harness's ext2-enospc.img, loop-mounted), 8.t needs testdir.ext2 (a fresh
# ext2 image, loop-mounted); both need root and loop devices and are
# reported SKIP when that is not possible. 23.t is built but not run by
# Debian's package (it fails on several architectures); it is run here too.
#
# For the engine tests (tests/sh/engine_*.sh); unset, nothing changes:
#   LIBAIO_RS_OURS_WRAP    command words put before each case run with ours
#                          (e.g. "env LIBAIO_RS_ENGINE=threads", or seccomp_noaio)
#   LIBAIO_RS_OURS_ENGINE  the engine every run with ours must report: it runs
#                          with LIBAIO_RS_DEBUG=1, and its stderr must have the
#                          line "libaio: io_setup: engine NAME" and no other engine
#   LIBAIO_RS_HARNESS_KERNEL_ONLY  case numbers that test kernel-only behaviour:
#                          a failure with ours there is shown, not a regression
set -eu
. "$(dirname "$0")/lib/common.sh"

read -ra OURS_WRAP <<<"${LIBAIO_RS_OURS_WRAP:-}"
OURS_ENGINE=${LIBAIO_RS_OURS_ENGINE:-}
KERNEL_ONLY=" ${LIBAIO_RS_HARNESS_KERNEL_ONLY:-} "
[ ${#OURS_WRAP[@]} = 0 ] || [ -n "$OURS_ENGINE" ] ||
	fail "LIBAIO_RS_OURS_WRAP without LIBAIO_RS_OURS_ENGINE: the run could not prove which engine it used"

CASE_TIMEOUT=${LIBAIO_RS_CASE_TIMEOUT:-600}
require_cmd gcc gcc
require_cmd make make
require_cmd timeout coreutils

# --- 1. The sources.
if [ -n "${LIBAIO_SRC:-}" ]; then
	SRC=$LIBAIO_SRC
	[ -d "$SRC/harness/cases" ] || fail "LIBAIO_SRC=$SRC has no harness/cases"
else
	CACHE=${LIBAIO_RS_CACHE:-$TMP/libaio-source}
	SRC=$CACHE/libaio-0.3.113
	if [ ! -d "$SRC/harness/cases" ]; then
		command -v apt-get >/dev/null 2>&1 || skip "no LIBAIO_SRC and no apt-get to fetch libaio's sources"
		command -v dpkg-source >/dev/null 2>&1 || skip "apt-get source needs dpkg-source: apt-get install dpkg-dev"
		mkdir -p "$CACHE" || skip "cannot create $CACHE"
		note "fetching libaio's sources with apt-get source into $CACHE"
		if ! (
			cd "$CACHE" &&
				flock -w 600 9 &&
				{ [ -d "$SRC/harness/cases" ] || apt-get source -qq libaio; }
		) 9>"$CACHE/.lock" >"$TMP/apt-source.log" 2>&1; then
			sed 's/^/    | /' "$TMP/apt-source.log" | tail -n 15 >&2
			skip "apt-get source libaio failed (deb-src entries in the apt sources and 'apt-get update' are needed)"
		fi
		[ -d "$SRC/harness/cases" ] ||
			fail "apt-get source libaio did not give $SRC (got: $(cd "$CACHE" && ls -d libaio-* 2>/dev/null | tr '\n' ' '))"
	fi
fi
SRC=$(cd "$SRC" && pwd -P)
case $SRC/ in "$(cd "$ROOT" && pwd -P)"/*) fail "libaio's sources ($SRC) must stay outside the repository" ;; esac
[ -f "$SRC/harness/Makefile" ] && [ -f "$SRC/harness/main.c" ] || fail "$SRC/harness is incomplete"
note "libaio sources: $SRC"

install_ours "$TMP/prefix"
find_debian

# Every case, in numeric order.
CASES=$(cd "$SRC/harness/cases" && ls -- *.t | sed 's/\.t$//' | sort -n)
# Cases that use what the whole machine shares (20.t allocates every event
# left under fs.aio-max-nr): make check defers them while two lanes run
# (LIBAIO_RS_HARNESS_DEFER) and runs them alone at the end
# (LIBAIO_RS_HARNESS_ONLY).
DEFER=" ${LIBAIO_RS_HARNESS_DEFER:-} " ONLY=" ${LIBAIO_RS_HARNESS_ONLY:-} "
CASES=$(for n in $CASES; do
	[[ $DEFER == *" $n "* ]] && continue
	[ "$ONLY" = "  " ] || [[ $ONLY == *" $n "* ]] || continue
	echo "$n"
done)
[ "$DEFER" = "  " ] || note "deferred to a run of its own (what the machine shares):$DEFER"

describe() {
	case $1 in
	2) echo "io_setup argument errors" ;;
	3) echo "io_submit/io_getevents with bad addresses" ;;
	4) echo "fds without read/write permission, O_APPEND" ;;
	5) echo "write from an mmap of the same file" ;;
	6) echo "huge reads and writes" ;;
	7) echo "writes at the file-size rlimit" ;;
	8) echo "writes at ext2's largest file size" ;;
	10) echo "writes that run out of space (ENOSPC)" ;;
	11) echo "one page read and written many times" ;;
	12) echo "context used across fork" ;;
	13) echo "writes larger than aio-max-size" ;;
	14) echo "fork with large I/O in flight" ;;
	15) echo "preadv and pwritev" ;;
	16) echo "eventfd notification" ;;
	17) echo "more requests than the ring holds" ;;
	18) echo "io_destroy waits for I/O (100 threads)" ;;
	19) echo "completion ring moved by mremap" ;;
	20) echo "aio-max-nr requests can be allocated" ;;
	21) echo "RWF_NOWAIT" ;;
	22) echo "poll and io_pgetevents with signals" ;;
	23) echo "poll wakeups under splice (Debian skips)" ;;
	*) echo "" ;;
	esac
}

# --- 2. Two copies of the harness, each built by its own Makefile.
# setup_tree DIR: the files and mounts the cases expect in the harness dir.
# Sets ENOSPC_OK / EXT2_OK (empty when the mount could not be made: why).
setup_tree() {
	local h=$1/harness f mode
	mkdir -p "$h/testdir" "$h/testdir.enospc" "$h/testdir.ext2"
	for f in rofile:400 wofile:200 rwfile:600; do
		mode=${f#*:} f=${f%:*}
		rm -f "$h/testdir/$f"
		echo test >"$h/testdir/$f"
		chmod "$mode" "$h/testdir/$f"
	done
	ENOSPC_WHY='' EXT2_WHY=''
	if [ "$(id -u)" != 0 ]; then
		ENOSPC_WHY="needs root to loop-mount an ext2 image" EXT2_WHY=$ENOSPC_WHY
		return
	fi
	cp "$SRC/harness/ext2-enospc.img" "$1/enospc.img"
	if mount -o loop -t ext2 "$1/enospc.img" "$h/testdir.enospc" 2>"$1/mount-enospc.log"; then
		at_exit "umount '$h/testdir.enospc' || umount -l '$h/testdir.enospc'"
	else
		ENOSPC_WHY="cannot loop-mount ext2-enospc.img: $(head -n 1 "$1/mount-enospc.log")"
	fi
	if ! command -v mke2fs >/dev/null 2>&1; then
		EXT2_WHY="mke2fs not found (apt-get install e2fsprogs)"
	elif dd if=/dev/zero of="$1/ext2.img" bs=1M count=10 status=none &&
		mke2fs -q -F -b 4096 "$1/ext2.img" >"$1/mke2fs.log" 2>&1 &&
		mount -o loop -t ext2 "$1/ext2.img" "$h/testdir.ext2" 2>"$1/mount-ext2.log"; then
		at_exit "umount '$h/testdir.ext2' || umount -l '$h/testdir.ext2'"
	else
		EXT2_WHY="cannot make and loop-mount an ext2 image: $(cat "$1/mke2fs.log" "$1/mount-ext2.log" 2>/dev/null | head -n 1)"
	fi
}

# build_tree FLAVOUR LIBAIO CPPFLAGS: copy the harness and build every case.
build_tree() {
	local w=$TMP/$1
	mkdir -p "$w"
	cp -R "$SRC/harness" "$w/harness"
	chmod -R u+w "$w/harness"
	# The Makefile puts -I../src first: there must be no ../src/libaio.h.
	[ ! -e "$w/src" ] || fail "internal: $w/src exists"
	make -k -C "$w/harness" -j2 all LIBAIO="$2" CPPFLAGS="$3" >"$w/build.log" 2>&1 || true
}

build_tree debian "-laio" ""
build_tree ours "-L$OURS_LIBDIR -laio" "-I$OURS_INC"

# The header each build really used.
for flavour in debian ours; do
	if [ $flavour = ours ]; then inc=(-I"$OURS_INC") want=$OURS_INC/libaio.h; else inc=() want=$DEB_INC/libaio.h; fi
	got=$(cd "$TMP/$flavour/harness" && header_used gcc -I../src "${inc[@]}" -DTEST_NAME='"cases/2.t"' main.c)
	[ "$got" = "$(readlink -f "$want")" ] || fail "the $flavour harness build used ${got:-no libaio.h}, expected $want"
done

setup_tree "$TMP/debian"
deb_enospc=$ENOSPC_WHY deb_ext2=$EXT2_WHY
setup_tree "$TMP/ours"
ours_enospc=$ENOSPC_WHY ours_ext2=$EXT2_WHY

# --- 3. Run every case with Debian's library, then with ours.
# run_case FLAVOUR N: sets STATUS (PASS, FAIL(rc), TIMEOUT, SKIP or NOT BUILT);
# a case whose mount could not be made is a SKIP, with the reason noted.
run_case() {
	local flavour=$1 n=$2 h=$TMP/$1/harness why='' libdir='' lib=$DEB_LIB
	if [ "$flavour" = ours ]; then libdir=$OURS_LIBDIR lib=$OURS_LIB; fi
	case $n in
	10) if [ "$flavour" = ours ]; then why=$ours_enospc; else why=$deb_enospc; fi ;;
	8) if [ "$flavour" = ours ]; then why=$ours_ext2; else why=$deb_ext2; fi ;;
	esac
	if [ ! -x "$h/cases/$n.p" ]; then
		STATUS="NOT BUILT"
		return
	fi
	if [ -n "$why" ]; then
		STATUS="SKIP"
		SKIP_NOTES+=("$n.t with $flavour: $why")
		return
	fi
	local pre=()
	if [ "$flavour" = ours ]; then
		pre=("${OURS_WRAP[@]}")
		[ -z "$OURS_ENGINE" ] || pre=(env LIBAIO_RS_DEBUG=1 "${pre[@]}")
	fi
	# Debian's run of a case is the same in every script of a make check run.
	if [ "$flavour" = debian ] && ref_get "harness-$n" "$TMP/$flavour-$n.out" "$TMP/$flavour-$n.err" "$TMP/$flavour-$n.rc"; then
		RC=$(cat "$TMP/$flavour-$n.rc")
	else
		cd "$h"
		run_traced "$flavour-$n" "$libdir" "$lib" -- timeout -k 10 "$CASE_TIMEOUT" "${pre[@]}" "./cases/$n.p"
		cd "$ROOT"
		if [ "$flavour" = debian ] && [ "$RC" = 0 ]; then
			# Only a pass is shared: a failure may be the moment's.
			echo "$RC" >"$TMP/$flavour-$n.rc"
			ref_put "harness-$n" "$TMP/$flavour-$n.out" "$TMP/$flavour-$n.err" "$TMP/$flavour-$n.rc"
		fi
	fi
	RCS[$flavour-$n]=$RC
	[ "$flavour" != ours ] || [ -z "$OURS_ENGINE" ] || check_engine "$n" "$TMP/$flavour-$n.err"
	case $RC in
	0) STATUS=PASS ;;
	3) STATUS=SKIP ;;
	124 | 137) STATUS=TIMEOUT ;;
	*) STATUS="FAIL($RC)" ;;
	esac
}

# check_engine N STDERR: every case sets up a context, so each run with ours
# must say it used OURS_ENGINE, and no io_setup may report another engine;
# except a case that imports none of the reaping entry points, which in auto
# mode gets the kernel's refusal (doc/engines.md, "Who falls back"): its
# stderr must say so, and its binary must indeed import none of them. Such a
# case is compared with Debian's libaio under the same filter, which refuses
# too: shown, not counted (NO_FALLBACK).
declare -A NO_FALLBACK=()
check_engine() {
	local lines
	lines=$(grep '^libaio: io_setup: engine ' "$2" || true)
	if [ -z "$lines" ] && grep -q '^libaio: io_setup: .*no fallback: this program imports no io_getevents' "$2"; then
		if nm -D --undefined-only "$TMP/ours/harness/cases/$1.p" |
			grep -Eq ' (io_getevents|io_pgetevents|io_queue_run|io_queue_wait)(@|$)'; then
			ENGINE_ERRORS+=("$1.t: refused a fallback, yet the binary imports a reaping entry point")
		else
			NO_FALLBACK[$1]=1
		fi
		sed -i '/^libaio: io_setup: /d' "$2"
		return
	fi
	if ! grep -Eq "^libaio: io_setup: engine $OURS_ENGINE(:|\$)" <<<"$lines"; then
		ENGINE_ERRORS+=("$1.t: no 'libaio: io_setup: engine $OURS_ENGINE' line on stderr")
	elif grep -Evq "^libaio: io_setup: engine $OURS_ENGINE(:|\$)" <<<"$lines"; then
		ENGINE_ERRORS+=("$1.t: $(grep -Ev "^libaio: io_setup: engine $OURS_ENGINE(:|\$)" <<<"$lines" | head -n 1)")
	fi
	[ -z "$lines" ] || ENGINE_SEEN=$(head -n 1 <<<"$lines")
	sed -i '/^libaio: io_setup: engine /d' "$2" # checked: out of the reports' way
}

SKIP_NOTES=() RETRY_NOTES=() ENGINE_ERRORS=() KERNEL_ONLY_NOTES=() ENGINE_SEEN=
declare -A RCS=()
rows=() regressions=() npass_deb=0 npass_ours=0 ncases=0
start=$SECONDS
for n in $CASES; do
	ncases=$((ncases + 1))
	t0=$SECONDS
	run_case debian "$n"
	deb=$STATUS
	run_case ours "$n"
	ours=$STATUS
	# One more run when only ours failed: some cases (20.t counts the events
	# of every context on the machine) fail when another process uses AIO
	# meanwhile. The first failure stays in the report either way.
	if [ "$deb" = PASS ] && [ "$ours" != PASS ] && [[ $KERNEL_ONLY != *" $n "* ]] && [ -z "${NO_FALLBACK[$n]:-}" ]; then
		first=$ours
		tail -n 5 "$TMP/ours-$n.out" "$TMP/ours-$n.err" >"$TMP/ours-$n.first" 2>/dev/null || true
		run_case ours "$n"
		RETRY_NOTES+=("$n.t with ours: $first on the first run, $STATUS on the second; first run's output ends:")
		RETRY_NOTES+=("$(sed 's/^/    | /' "$TMP/ours-$n.first")")
		[ "$STATUS" != PASS ] || STATUS="PASS*"
		ours=$STATUS
	fi
	[ "$deb" != PASS ] || npass_deb=$((npass_deb + 1))
	[ "${ours%\*}" != PASS ] || npass_ours=$((npass_ours + 1))
	mark=
	if [ -n "${NO_FALLBACK[$n]:-}" ]; then
		mark="  (imports no reaping entry point: the kernel's refusal, as Debian's under the filter; not counted)"
	elif [ "$deb" = PASS ] && [ "${ours%\*}" != PASS ] && [[ $KERNEL_ONLY == *" $n "* ]]; then
		mark="  (kernel-only behaviour: not counted)"
		KERNEL_ONLY_NOTES+=("$n.t ($(cat "$TMP/ours-$n.out" "$TMP/ours-$n.err" | grep -v -e '^libaio: ' -e 'completed FAILED' | tail -n 1))")
	elif [ "$deb" = PASS ] && [ "${ours%\*}" != PASS ]; then
		mark="  <-- REGRESSION"
		regressions+=("$n.t")
	elif [ "$deb" != PASS ] && [ "$ours" = PASS ]; then
		mark="  (passes only with ours)"
	fi
	rows+=("$(printf '%-6s %-10s %-10s %-45s %4ss%s' "$n.t" "$deb" "$ours" "$(describe "$n")" $((SECONDS - t0)) "$mark")")
	printf '%s\n' "${rows[-1]}" >>"$TMP/progress"
done

[ ${#OURS_WRAP[@]} = 0 ] || note "ours ran as: ${OURS_WRAP[*]} CASE"
[ -z "$OURS_ENGINE" ] || note "ours' engine, as its io_setup reported it: ${ENGINE_SEEN:-none}"
printf '%-6s %-10s %-10s %-45s %5s\n' case Debian ours "what it tests" time
printf '%s\n' "${rows[@]}"
printf 'passed: Debian %d of %d, ours %d of %d (%ss)\n' "$npass_deb" "$ncases" "$npass_ours" "$ncases" $((SECONDS - start))
[ ${#SKIP_NOTES[@]} = 0 ] || printf 'skipped: %s\n' "${SKIP_NOTES[@]}"
[ ${#RETRY_NOTES[@]} = 0 ] || printf '%s\n' "PASS* = passed with ours only when run a second time:" "${RETRY_NOTES[@]}"
[ ${#KERNEL_ONLY_NOTES[@]} = 0 ] || printf '%s\n' "failed with ours, listed as kernel-only:" "${KERNEL_ONLY_NOTES[@]/#/    }"
[ ${#ENGINE_ERRORS[@]} = 0 ] || printf '%s\n' "runs with ours not proved to use engine $OURS_ENGINE:" "${ENGINE_ERRORS[@]/#/    }" >&2

if [ ${#regressions[@]} != 0 ]; then
	for n in "${regressions[@]}"; do
		n=${n%.t}
		printf '\n--- %s.t with our library (exit status %s): last lines of its output\n' "$n" "${RCS[ours-$n]:-none}" >&2
		tail -n 15 "$TMP/ours-$n.out" "$TMP/ours-$n.err" 2>/dev/null | sed 's/^/    | /' >&2 || true
		grep -E "cases/$n\.(t|p)" "$TMP/ours/build.log" | head -n 10 | sed 's/^/    | /' >&2 || true
	done
	fail "cases passing with Debian's libaio but not with ours: ${regressions[*]}"
fi
[ "$npass_deb" -gt 0 ] || fail "no case passed even with Debian's libaio: the harness setup is broken"
[ ${#ENGINE_ERRORS[@]} = 0 ] || fail "${#ENGINE_ERRORS[@]} runs with ours did not prove the $OURS_ENGINE engine (listed above)"
note "every case that passes with Debian's libaio passes with ours"
