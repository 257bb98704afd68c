#!/usr/bin/env bash
# The benchmark: Debian's libaio.so.1 against ours, in the same run
# (`make bench`). Not part of the tests.
#
# Both libraries are loaded into one process (dlopen, RTLD_LOCAL) and take
# turns in 50 ms slices, each on its own context, so both meet the same
# machine at the same moments; BENCH_RUNS such processes (which library goes
# first alternates) give the medians. Rows:
#   1. IO_CMD_POLL on an always-ready eventfd (completes inside io_submit),
#      batch 1, 4, 16, 32: submit a batch, reap it;
#   2. 4 KiB random O_DIRECT reads of a file on /dev/shm, QD 1, 32, 128;
#   3. the same from a loop device backed by a tmpfs file, QD 32 and 128
#      (real asynchronous completions; skipped where losetup cannot work);
#   3b. (arrays64) rows 1 and 2 reaping through 64 distinct event arrays in
#      turn, each in its own mapping like a thread's stack: poll batch 1
#      (one operation is one reap) and /dev/shm reads at QD 32;
#   4. fio (ioengine=libaio) 4 KiB randread QD 1 and 32 on /dev/shm: plain fio
#      (Debian's libaio) against LD_PRELOAD of ours, alternate runs; plus a
#      crc32c-verified write pass on ours.
#   5. (threads) ours on its user-space thread engine (LIBAIO_RS_ENGINE=threads
#      in aiobench's environment, read by ours when it is loaded; Debian's
#      libaio ignores it) against Debian's libaio on kernel AIO, in the same
#      process as above: poll batch 1 and 32, O_DIRECT reads at QD 1 and 32 on
#      /dev/shm and on the loop device; BENCH_THREADS_RUNS (5) runs each, in
#      a table of its own whose ratio is IOPS ours/libaio (target: 0.5 or more
#      for the reads). aiobench checks in every run where each context's ring
#      lies (the kernel's /[aio] mapping or not), so a row cannot silently
#      measure the wrong engine; its system call counts include the threads the
#      library starts (the engine's workers).
#   6. (uring) the same rows with ours on its io_uring engine
#      (LIBAIO_RS_ENGINE=io_uring; target 0.9 for the O_DIRECT reads), and
#      buffered 4 KiB random reads at QD 32 of a cold-cache file of
#      BENCH_COLD_GIB (4) GiB on the root file system, page cache dropped
#      before each run: fio's libaio engine on Debian's libaio (kernel AIO,
#      which reads inside io_submit), the same fio on ours with
#      LIBAIO_RS_ENGINE=io_uring (LD_PRELOAD), and fio's own io_uring engine;
#      BENCH_COLD_RUNS (3) runs of each, in turns (targets: 4x libaio, 0.8x
#      fio's io_uring).
#   7. (safe) the safe Rust API (feature std) against the C entry points of the
#      same crate, in one process (bench/safe_bench.rs, built with cargo): the
#      poll workload (batch 1 and 32) and the /dev/shm O_DIRECT reads (QD 1 and
#      32) of rows 1 and 2, in alternating 50 ms slices, BENCH_SAFE_RUNS (5)
#      runs alternating which goes first, medians. Twice: against the C calls
#      as aiobench makes them, and against the same C calls with every request
#      signalling an eventfd (IOCB_FLAG_RESFD), as the safe API's requests
#      always do; the second ratio is the safe layer's own cost (target 1.05).
# Then user-space instructions per call (valgrind --tool=callgrind) and a soak:
# BENCH_SOAK_SECONDS of QD 32 reads on ours (taking turns with libaio in 1 s
# slices, so that the machine's own ups and downs show in both columns), with
# the throughput of each 10 s and the count of -EAGAIN from io_submit.
#
# System calls per operation and per reap (io_getevents call) come from a
# separate pass, as counting slows system calls: aiobench counts its own
# (perf_event_open on the raw_syscalls:sys_enter tracepoint, on only during each
# library's slices), both libraries in turns in one process as above; where it
# cannot, perf stat (else strace -c -f) counts one library's process at N/10
# and N operations, the difference leaving set-up and warm-up out. Either way
# BENCH_COUNT_RUNS counts per library, alternating, and the medians shown.
# Where completions are asynchronous (the loop device) the count per operation
# depends on how many completions each reap finds, which scheduling decides: it
# swings by up to 10x from one count to the next, for either library, so a
# single count compares nothing (doc/benchmarks.md). Such rows get a note with the
# range and the ratio ours/libaio within each count.
#
# The markdown report goes to bench/out/bench-<date>.md (and bench/out/latest.md).
#
# Environment: BENCH_RUNS (9), BENCH_SECONDS per run (1), BENCH_SOAK_SECONDS
# (60), BENCH_FIO_SECONDS (3), BENCH_COLD_GIB, BENCH_COLD_RUNS, BENCH_COLD_DIR
# (where the cold file goes: /var/tmp), LIBAIO_RS_REFERENCE (Debian's libaio.so.1),
# LIBAIO_RS_BUILD_DIR (build), BENCH_COUNT_RUNS (BENCH_RUNS), BENCH_ONLY
# (space-separated row groups to run: poll shm loop arrays64 fio calls soak
# threads), which `--only GROUP...` on the command line sets too, e.g.
#   bench/run.sh --only arrays64     (about 1 minute)
#   bench/run.sh --only threads      (under 2 minutes)
set -u
if [ "${1:-}" = "--only" ]; then
	shift
	BENCH_ONLY="$*"
	set --
elif [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
	sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'
	exit 0
elif [ $# -gt 0 ]; then
	echo "usage: bench/run.sh [--only GROUP...]  (groups: poll shm loop arrays64 fio calls soak threads uring safe)" >&2
	exit 2
fi
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"

RUNS=${BENCH_RUNS:-9}
SECS=${BENCH_SECONDS:-1}
SOAK=${BENCH_SOAK_SECONDS:-60}
FIO_SECS=${BENCH_FIO_SECONDS:-3}
ONLY=${BENCH_ONLY:-poll shm loop arrays64 fio calls soak threads uring safe}
COUNT_RUNS=${BENCH_COUNT_RUNS:-$RUNS}
THREADS_RUNS=${BENCH_THREADS_RUNS:-5}
COLD_GIB=${BENCH_COLD_GIB:-4}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
COLD_DIR=${BENCH_COLD_DIR:-/var/tmp}
for g in $ONLY; do
	case $g in
	poll | shm | loop | arrays64 | fio | calls | soak | threads | uring | safe) ;;
	*) echo "bench: unknown row group '$g' (poll shm loop arrays64 fio calls soak threads uring safe)" >&2; exit 2 ;;
	esac
done
ours=$(realpath "${LIBAIO_RS_BUILD_DIR:-build}/libaio.so.1")
theirs=$(tools/debian-libaio.sh || true)
[ -f "$ours" ] || { echo "bench: $ours is missing: run make first" >&2; exit 1; }
[ -n "$theirs" ] || { echo "bench: Debian's libaio.so.1 is missing (apt-get install libaio1)" >&2; exit 1; }
# Ours must reap in user space, on kernel AIO (but in the threads rows),
# whatever the caller's environment says.
unset LIBAIO_RS_REAP LIBAIO_RS_DEBUG LIBAIO_RS_ENGINE LIBAIO_RS_FALLBACK_EAGAIN LD_PRELOAD

want() { [[ " $ONLY " == *" $1 "* ]]; }
note() { printf '%s\n' "$*" >&2; }

bin=$out/aiobench
${CC:-cc} -O2 -g -Wall -Wextra -I include -o "$bin" bench/aiobench.c -ldl || exit 1

work=$(mktemp -d /dev/shm/aiobench.XXXXXX)
loopdev=""
cleanup() {
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	rm -rf "$work"
	[ -z "${coldfile:-}" ] || rm -f "$coldfile"
}
trap cleanup EXIT

# ---- helpers ----

# Where each library's ring must lie (aiobench's a_ring/b_ring): libaio's in
# the kernel's /[aio] mapping, and ours too except in the threads rows (user).
RING_T=kernel RING_O=kernel
word() { sed -n "s/.*$1=\([a-z]*\).*/\1/p" | head -1; }
# rings_ok RESULT A_IS: whether the run's rings are where they must be (A_IS:
# which library was a, t or o).
rings_ok() {
	local want_a=$RING_T want_b=$RING_O
	[ "$2" = o ] && want_a=$RING_O want_b=$RING_T
	[ "$(word a_ring <<<"$1")" = "$want_a" ] && [ "$(word b_ring <<<"$1")" = "$want_b" ]
}

# What aiobench said on stderr before it failed (its "lib:" lines left out).
why() { grep -v '^lib: ' "$work/err" | tail -2 | tr '\n' ' '; }

per_second() { awk -v x="$1" 'BEGIN {if (x > 0) printf "%.0f", 1e9 / x; else print "n/a"}'; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }

# Counts the system calls of a command: all of them, or those named in $COUNT_ONLY.
# The command's own output goes to $work/cmd.out.
if perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
	counter="perf (raw_syscalls:sys_enter)"
	count_syscalls() {
		local ev=raw_syscalls:sys_enter
		if [ -n "${COUNT_ONLY:-}" ]; then
			ev=$(printf 'syscalls:sys_enter_%s,' ${COUNT_ONLY//,/ })
			ev=${ev%,}
		fi
		perf stat -x, -e "$ev" -o "$work/perf.txt" -- "$@" >"$work/cmd.out" 2>/dev/null || return 1
		awk -F, '$1 ~ /^[0-9]+$/ {s += $1} END {print s + 0}' "$work/perf.txt"
	}
elif command -v strace >/dev/null; then
	counter="strace -c -f"
	count_syscalls() {
		local filter=()
		[ -n "${COUNT_ONLY:-}" ] && filter=(-e "trace=$COUNT_ONLY")
		strace -f -c "${filter[@]}" -o "$work/strace.txt" -- "$@" >"$work/cmd.out" 2>/dev/null || return 1
		awk '$NF == "total" {print $4}' "$work/strace.txt"
	}
else
	counter=""
fi
# Preferred for aiobench's rows: aiobench counts its own system calls, per
# library, in the same alternating slices, so both meet the same conditions.
COUNT_SECS=${BENCH_COUNT_SECONDS:-0.5}
inproc=0
counted_with="${counter:-nothing (no perf or strace)} between N/10 and N operations, one process per count"
if "$bin" pair "$theirs" "$theirs" poll 1 -t 0.01 -c 1 >/dev/null 2>&1; then
	inproc=1
	counted_with="aiobench itself (perf_event_open on raw_syscalls:sys_enter, on during each library's slices), ${COUNT_SECS} s per library per count in alternating 50 ms slices"
fi

# One count of one library's workload at N/10 and N operations: prints the
# system calls per operation and per reap in between ("n/a n/a" on failure).
count_once() {
	local lib=$1 n=$2
	shift 2
	local c0 c1 o0 o1 r0 r1
	c0=$(count_syscalls "$bin" count "$lib" "$@" -n $((n / 10))) || { echo "n/a n/a"; return; }
	o0=$(field ops <"$work/cmd.out") r0=$(field reaps <"$work/cmd.out")
	c1=$(count_syscalls "$bin" count "$lib" "$@" -n "$n") || { echo "n/a n/a"; return; }
	o1=$(field ops <"$work/cmd.out") r1=$(field reaps <"$work/cmd.out")
	awk -v c0="$c0" -v c1="$c1" -v o0="$o0" -v o1="$o1" -v r0="$r0" -v r1="$r1" \
		'BEGIN {if (o1 > o0 && r1 > r0) printf "%.4f %.4f", (c1 - c0) / (o1 - o0), (c1 - c0) / (r1 - r0); else print "n/a n/a"}'
}

# COUNT_RUNS counts of each library, alternating which goes first: in one
# process taking turns with the other (aiobench pair -c 1) where it can count
# its own system calls, else one process per count (count_once). Sets sc_t/sc_o
# (median syscalls per op, libaio/ours), rp_t/rp_o (per reap) and spread (the
# range per op, when counts differ by more than 0.005 between runs).
count_pair() {
	local n=$1
	shift
	sc_t=n/a sc_o=n/a rp_t=n/a rp_o=n/a sc_oc=n/a rp_oc=n/a spread=""
	local t=() o=() tr=() orr=() pr=() oc=() ocr=() i x who r ta oa
	for ((i = 0; i < COUNT_RUNS; i++)); do
		if [ "$inproc" = 1 ]; then
			if ((i % 2)); then
				r=$("$bin" pair "$ours" "$theirs" "$@" -t "$COUNT_SECS" -c 1 2>"$work/err") ta=b oa=a
			else
				r=$("$bin" pair "$theirs" "$ours" "$@" -t "$COUNT_SECS" -c 1 2>"$work/err") ta=a oa=b
			fi
			rings_ok "$r" "$( [ $ta = a ] && echo t || echo o)" || {
				note "bench: aiobench pair ... $* -c 1 failed or ran on the wrong engine: ${r:-$(why)}"
				return
			}
			t+=("$(field ${ta}_syscalls_per_op <<<"$r")") tr+=("$(field ${ta}_syscalls_per_reap <<<"$r")")
			o+=("$(field ${oa}_syscalls_per_op <<<"$r")") orr+=("$(field ${oa}_syscalls_per_reap <<<"$r")")
			oc+=("$(field ${oa}_caller_syscalls_per_op <<<"$r")")
			ocr+=("$(field ${oa}_caller_syscalls_per_reap <<<"$r")")
			pr+=("$(awk -v t="${t[-1]}" -v o="${o[-1]}" 'BEGIN {if (t > 0) printf "%.3f", o / t}')")
			continue
		fi
		[ -n "$counter" ] || return
		for who in $( ((i % 2)) && echo "o t" || echo "t o"); do
			if [ "$who" = t ]; then
				read -r -a x <<<"$(count_once "$theirs" "$n" "$@")"
				t+=("${x[0]}") tr+=("${x[1]}")
			else
				read -r -a x <<<"$(count_once "$ours" "$n" "$@")"
				o+=("${x[0]}") orr+=("${x[1]}")
			fi
		done
	done
	[[ " ${t[*]} ${o[*]} ${tr[*]} ${orr[*]} " == *" n/a "* || " ${t[*]} ${o[*]} " == *"  "* ]] && return
	sc_t=$(printf '%s\n' "${t[@]}" | median | xargs printf '%.3f')
	sc_o=$(printf '%s\n' "${o[@]}" | median | xargs printf '%.3f')
	rp_t=$(printf '%s\n' "${tr[@]}" | median | xargs printf '%.3f')
	rp_o=$(printf '%s\n' "${orr[@]}" | median | xargs printf '%.3f')
	if [ ${#oc[@]} -gt 0 ] && [[ " ${oc[*]} ${ocr[*]} " != *"  "* ]]; then
		sc_oc=$(printf '%s\n' "${oc[@]}" | median | xargs printf '%.3f')
		rp_oc=$(printf '%s\n' "${ocr[@]}" | median | xargs printf '%.3f')
	fi
	spread=$(printf '%s\n' "${t[@]}" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (hi - lo > 0.005) printf "libaio %.3f to %.3f", lo, hi}')
	local so
	so=$(printf '%s\n' "${o[@]}" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (hi - lo > 0.005) printf "ours %.3f to %.3f", lo, hi}')
	[ -n "$so" ] && spread="${spread:+$spread, }$so"
	# Counted in one process, both libraries met the same conditions: their
	# ratio per count is steadier than either figure.
	if [ -n "$spread" ] && [ ${#pr[@]} -gt 0 ]; then
		spread="$spread; ours/libaio within each count: median $(printf '%s\n' "${pr[@]}" | median)"
		spread="$spread ($(printf '%s\n' "${pr[@]}" | sort -g | head -1) to $(printf '%s\n' "${pr[@]}" | sort -g | tail -1))"
	fi
}

rows=()
notes=()
# row NAME "libaio ns" "ours ns" "libaio ops/s" "ours ops/s" "libaio sc" "ours sc" ["libaio sc/reap" "ours sc/reap"]
row() {
	local ratio
	ratio=$(awk -v o="$3" -v t="$2" 'BEGIN {if (t > 0) printf "%.3f", o / t; else print "n/a"}')
	rows+=("| $1 | $2 | $3 | **$ratio** | $4 | $5 | $6 | $7 | ${8:-} | ${9:-} |")
	printf '%-28s libaio %8s ns/op  ours %8s ns/op  ratio %s  syscalls/op %s -> %s  per reap %s -> %s\n' \
		"$1" "$2" "$3" "$ratio" "$6" "$7" "${8:--}" "${9:--}" >&2
}

# RUNS paired processes of one workload: prints "ns_libaio ns_ours ops/s_libaio ops/s_ours".
interleave() {
	local t=() o=() i r a b
	for ((i = 0; i < RUNS; i++)); do
		if ((i % 2)); then
			r=$("$bin" pair "$ours" "$theirs" "$@" -t "$SECS" 2>"$work/err")
			a=$(field b_ns_per_op <<<"$r") b=$(field a_ns_per_op <<<"$r")
			rings_ok "$r" o || a="" b=""
		else
			r=$("$bin" pair "$theirs" "$ours" "$@" -t "$SECS" 2>"$work/err")
			a=$(field a_ns_per_op <<<"$r") b=$(field b_ns_per_op <<<"$r")
			rings_ok "$r" t || a="" b=""
		fi
		[ -n "$a" ] && [ -n "$b" ] || { note "bench: aiobench pair ... $* failed or ran on the wrong engine: ${r:-$(why)}"; a=0 b=0; }
		t+=("$a") o+=("$b")
	done
	local mt mo
	mt=$(printf '%s\n' "${t[@]}" | median)
	mo=$(printf '%s\n' "${o[@]}" | median)
	echo "$mt $mo $(per_second "$mt") $(per_second "$mo")"
}

# bench_row NAME N WORKLOAD...: the timed pairs, then the syscall counts.
bench_row() {
	local name=$1 n=$2
	shift 2
	local res
	read -r -a res <<<"$(interleave "$@")"
	count_pair "$n" "$@"
	row "$name" "${res[0]}" "${res[1]}" "${res[2]}" "${res[3]}" "$sc_t" "$sc_o" "$rp_t" "$rp_o"
	if [ -n "$spread" ]; then
		notes+=("$name: syscalls per operation ranged over the $COUNT_RUNS counts: $spread.")
		note "  ($spread)"
	fi
}

# The user-space engines' tables: ratio = IOPS ours/libaio (higher is
# better). ERows and ENotes name the arrays the rows and notes go to.
trows=()
tnotes=()
urows=()
unotes=()
ERows=trows ENotes=tnotes
# trow NAME "libaio ns" "ours ns" "libaio ops/s" "ours ops/s" "libaio sc" "ours sc" "ours sc, caller" "libaio sc/reap" "ours sc/reap, caller" TARGET
trow() {
	local ratio met="—"
	ratio=$(awk -v o="$3" -v t="$2" 'BEGIN {if (o > 0 && t > 0) printf "%.3f", t / o; else print "n/a"}')
	if [ -n "${11}" ] && [ "$ratio" != n/a ]; then
		met=$(awk -v r="$ratio" -v g="${11}" 'BEGIN {print (r >= g) ? "yes" : "**no**"}')
	fi
	local -n erows=$ERows
	erows+=("| $1 | $2 | $3 | **$ratio** | $met | $4 | $5 | $6 | $7 ($8) | $9 | ${10} |")
	printf '%-28s libaio %8s ns/op  engine %8s ns/op  IOPS ratio %s  syscalls/op %s -> %s (caller %s)  per reap %s -> %s\n' \
		"$1" "$2" "$3" "$ratio" "$6" "$7" "$8" "$9" "${10}" >&2
}

# bench_trow NAME N TARGET WORKLOAD...: bench_row for the thread engine.
bench_trow() {
	local name=$1 n=$2 target=$3
	shift 3
	local res
	read -r -a res <<<"$(RUNS=$THREADS_RUNS interleave "$@")"
	COUNT_RUNS=$THREADS_RUNS count_pair "$n" "$@"
	trow "$name" "${res[0]}" "${res[1]}" "${res[2]}" "${res[3]}" "$sc_t" "$sc_o" "$sc_oc" "$rp_t" "$rp_oc" "$target"
	if [ -n "$spread" ]; then
		local -n enotes=$ENotes
		enotes+=("$name: syscalls per operation ranged over the $THREADS_RUNS counts: $spread.")
		note "  ($spread)"
	fi
}

# ---- 1. pure overhead ----
if want poll; then
	for b in 1 4 16 32; do
		bench_row "poll, batch $b" 32000 poll "$b"
	done
fi

# ---- 2. /dev/shm file ----
shmfile=$work/data
if want shm || want fio || want loop || want soak || want arrays64 || want threads || want uring || want safe; then
	# 256 MiB of non-zero data.
	head -c $((256 << 20)) /dev/urandom >"$shmfile" 2>/dev/null || truncate -s 256M "$shmfile"
fi
direct=0
"$bin" count "$theirs" read 1 "$shmfile" -n 1 >/dev/null 2>&1 && direct=1
if want shm; then
	if [ "$direct" = 1 ]; then
		for qd in 1 32 128; do
			bench_row "/dev/shm read, QD $qd" 50000 read "$qd" "$shmfile"
		done
	else
		note "bench: O_DIRECT reads of a /dev/shm file fail here (tmpfs without O_DIRECT, Linux < 6.6): rows skipped"
		rows+=("| /dev/shm read | skipped: tmpfs refuses O_DIRECT here (Linux < 6.6) | | | | | | | | |")
	fi
fi

# ---- 3. loop device over a tmpfs file ----
if want loop || want soak || want threads || want uring; then
	if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
		loopdev=$(losetup -f --show --direct-io=on "$shmfile" 2>/dev/null ||
			losetup -f --show "$shmfile" 2>/dev/null) || loopdev=""
	fi
	if [ -n "$loopdev" ] && ! "$bin" count "$theirs" read 1 "$loopdev" -n 1 >/dev/null 2>&1; then
		losetup -d "$loopdev" 2>/dev/null
		loopdev=""
	fi
	[ -n "$loopdev" ] || note "bench: no loop device (needs root, losetup and the loop driver): loop rows skipped"
fi
if want loop; then
	if [ -n "$loopdev" ]; then
		for qd in 32 128; do
			bench_row "loop device read, QD $qd" 100000 read "$qd" "$loopdev"
		done
	else
		rows+=("| loop device read | skipped: no loop device here (needs root, losetup, the loop driver) | | | | | | | | |")
	fi
fi

# ---- 3b. 64 event arrays, reaped into in turn ----
# Programs that reap into one array per thread (on its stack) use many
# arrays; a library that must know an array before writing it from user space
# pays for each one it does not know.
if want arrays64; then
	bench_row "poll, batch 1, 64 event arrays" 32000 poll 1 -a 64
	if [ "$direct" = 1 ]; then
		bench_row "/dev/shm read, QD 32, 64 event arrays" 50000 read 32 "$shmfile" -a 64
	else
		rows+=("| /dev/shm read, 64 event arrays | skipped: tmpfs refuses O_DIRECT here (Linux < 6.6) | | | | | | | | |")
	fi
fi

# engine_rows ENGINE TARGET ROWS NOTES: the user-space engine ENGINE
# (LIBAIO_RS_ENGINE, read by ours when aiobench loads it; Debian's libaio
# ignores it) against Debian's libaio on kernel AIO: poll batch 1 and 32,
# O_DIRECT reads at QD 1 and 32 on /dev/shm and on the loop device (target
# TARGET), into the arrays named ROWS and NOTES. Sets ENGINE_CHECK to what
# ours said at io_setup.
engine_rows() {
	local engine=$1 target=$2 b qd
	ERows=$3 ENotes=$4
	local -n erows_=$3
	export LIBAIO_RS_ENGINE=$engine
	RING_O=user
	# Ours says which engine its context got (LIBAIO_RS_DEBUG); aiobench's
	# ring check then holds every run to it.
	ENGINE_CHECK=$(LIBAIO_RS_DEBUG=1 "$bin" pair "$theirs" "$ours" poll 1 -t 0.05 2>&1 >/dev/null |
		grep -m1 'io_setup: engine')
	if [[ "$ENGINE_CHECK" != *"engine $engine"* ]]; then
		note "bench: ours did not take the $engine engine (LIBAIO_RS_ENGINE=$engine): '${ENGINE_CHECK:-no io_setup line}'"
		erows_+=("| all | skipped: ours did not report \`engine $engine\` at io_setup | | | | | | | | | |")
		ENGINE_CHECK=""
	else
		note "bench: $ENGINE_CHECK"
		for b in 1 32; do
			bench_trow "poll, batch $b" 32000 "" poll "$b"
		done
		if [ "$direct" = 1 ]; then
			for qd in 1 32; do
				bench_trow "/dev/shm O_DIRECT read, QD $qd" 50000 "$target" read "$qd" "$shmfile"
			done
		else
			erows_+=("| /dev/shm O_DIRECT read | skipped: tmpfs refuses O_DIRECT here (Linux < 6.6) | | | | | | | | | |")
		fi
		if [ -n "$loopdev" ]; then
			for qd in 1 32; do
				bench_trow "loop device O_DIRECT read, QD $qd" 50000 "$target" read "$qd" "$loopdev"
			done
		else
			erows_+=("| loop device O_DIRECT read | skipped: no loop device here (needs root, losetup, the loop driver) | | | | | | | | | |")
		fi
	fi
	unset LIBAIO_RS_ENGINE
	RING_O=kernel ERows=trows ENotes=tnotes
}

# ---- 5. the thread engine against kernel AIO ----
threads_check=""
if want threads; then
	engine_rows threads 0.5 trows tnotes
	threads_check=$ENGINE_CHECK
fi

# ---- 6. the io_uring engine against kernel AIO ----
uring_check=""
cold_rows=()
cold_note=""
if want uring; then
	engine_rows io_uring 0.9 urows unotes
	uring_check=$ENGINE_CHECK
	# Buffered reads of a cold page cache: where kernel AIO reads inside
	# io_submit, one request at a time, whatever the queue depth.
	if [ "$(id -u)" = 0 ] && command -v fio >/dev/null && [ -w /proc/sys/vm/drop_caches ]; then
		coldfile=$COLD_DIR/libaio-rs-cold.$$
		note "bench: writing a ${COLD_GIB} GiB file at $coldfile for the cold-cache rows"
		if fio --name=fill --filename="$coldfile" --size="${COLD_GIB}G" --rw=write --bs=1M --direct=1 \
			--ioengine=psync --refill_buffers --output-format=terse >/dev/null 2>&1; then
			cold_iops() { # PRELOAD ENGINE: IOPS of one 5 s run on a cold cache
				local pre=(env)
				[ -n "$1" ] && pre=(env "LD_PRELOAD=$1" LIBAIO_RS_ENGINE=io_uring)
				sync
				echo 3 >/proc/sys/vm/drop_caches
				"${pre[@]}" fio --name=cold --filename="$coldfile" --rw=randread --bs=4k --direct=0 \
					--ioengine="$2" --iodepth=32 --runtime=5 --time_based --norandommap \
					--output-format=terse --terse-version=3 2>&1 |
					awk -F';' '$1 == "3" && NF > 100 {print $8; exit}'
			}
			ct=() co=() cu=()
			for ((i = 0; i < COLD_RUNS; i++)); do
				for who in $( ((i % 2)) && echo "u o t" || echo "t o u"); do
					case $who in
					t) ct+=("$(cold_iops "" libaio)") ;;
					o) co+=("$(cold_iops "$ours" libaio)") ;;
					u) cu+=("$(cold_iops "" io_uring)") ;;
					esac
				done
			done
			mt=$(printf '%s
' "${ct[@]}" | median) mo=$(printf '%s
' "${co[@]}" | median)
			mu=$(printf '%s
' "${cu[@]}" | median)
			r_t=$(awk -v o="$mo" -v t="$mt" 'BEGIN {if (t > 0) printf "%.2f", o / t; else print "n/a"}')
			r_u=$(awk -v o="$mo" -v u="$mu" 'BEGIN {if (u > 0) printf "%.2f", o / u; else print "n/a"}')
			met_t=$(awk -v r="$r_t" 'BEGIN {print (r + 0 >= 4) ? "yes" : "**no**"}')
			met_u=$(awk -v r="$r_u" 'BEGIN {print (r + 0 >= 0.8) ? "yes" : "**no**"}')
			cold_rows+=("| 4 KiB random buffered reads, QD 32, cold cache | $mt | $mo | $mu | **$r_t** ($met_t) | **$r_u** ($met_u) |")
			cold_note="each run: $(printf '%s ' "${ct[@]}")(libaio), $(printf '%s ' "${co[@]}")(ours), $(printf '%s ' "${cu[@]}")(fio io_uring) IOPS"
			note "bench: cold cache: libaio $mt, ours io_uring $mo, fio io_uring $mu IOPS; ours/libaio $r_t, ours/fio-io_uring $r_u ($cold_note)"
		else
			cold_rows+=("| cold cache | skipped: could not write the ${COLD_GIB} GiB file in $COLD_DIR | | | | |")
		fi
		rm -f "$coldfile"
	else
		cold_rows+=("| cold cache | skipped: needs root (drop_caches) and fio | | | | |")
	fi
fi

# ---- 7. the safe Rust API against the C entry points ----
srows=()
SAFE_RUNS=${BENCH_SAFE_RUNS:-5}
if want safe; then
	sbin=${CARGO_TARGET_DIR:-$root/target}/release/examples/safe_bench
	if ! cargo build -q --release --features std --example safe_bench 2>"$work/err"; then
		note "bench: cargo build of bench/safe_bench.rs failed: $(tail -3 "$work/err" | tr '\n' ' ')"
		srows+=("| all | skipped: safe_bench did not build | | | | | |")
	else
		# safe_interleave WORKLOAD...: SAFE_RUNS runs of each variant (plain C,
		# C with an eventfd) in turn, the side that goes first alternating;
		# prints the medians "c safe c_efd safe_efd" (ns/op).
		safe_interleave() {
			local c=() s=() ce=() se=() i r first
			for ((i = 0; i < SAFE_RUNS; i++)); do
				first=safe
				((i % 2)) && first=c
				r=$("$sbin" "$@" -t "$SECS" -f $first 2>"$work/err")
				c+=("$(field c_ns_per_op <<<"$r")") s+=("$(field safe_ns_per_op <<<"$r")")
				r=$("$sbin" "$@" -t "$SECS" -f $first -e 1 2>"$work/err")
				ce+=("$(field c_ns_per_op <<<"$r")") se+=("$(field safe_ns_per_op <<<"$r")")
			done
			if [[ " ${c[*]} ${s[*]} ${ce[*]} ${se[*]} " == *"  "* ]]; then
				note "bench: safe_bench $* failed: $(why)"
				echo "0 0 0 0"
				return
			fi
			echo "$(printf '%s\n' "${c[@]}" | median) $(printf '%s\n' "${s[@]}" | median)" \
				"$(printf '%s\n' "${ce[@]}" | median) $(printf '%s\n' "${se[@]}" | median)"
		}
		srow() { # NAME WORKLOAD...
			local name=$1 x r1 r2
			shift
			read -r -a x <<<"$(safe_interleave "$@")"
			r1=$(awk -v a="${x[0]}" -v b="${x[1]}" 'BEGIN {if (a > 0) printf "%.3f", b / a; else print "n/a"}')
			r2=$(awk -v a="${x[2]}" -v b="${x[3]}" 'BEGIN {if (a > 0) printf "%.3f", b / a; else print "n/a"}')
			srows+=("| $name | ${x[0]} | ${x[1]} | $r1 | ${x[2]} | ${x[3]} | **$r2** |")
			printf '%-28s C %8s  safe %8s ns/op  ratio %s;  C+eventfd %8s  safe %8s  ratio %s\n' \
				"$name" "${x[0]}" "${x[1]}" "$r1" "${x[2]}" "${x[3]}" "$r2" >&2
		}
		for b in 1 32; do
			srow "poll, batch $b" poll "$b"
		done
		if [ "$direct" = 1 ]; then
			for qd in 1 32; do
				srow "/dev/shm O_DIRECT read, QD $qd" read "$qd" "$shmfile"
			done
		else
			srows+=("| /dev/shm O_DIRECT read | skipped: tmpfs refuses O_DIRECT here (Linux < 6.6) | | | | | |")
		fi
	fi
fi

# ---- 4. fio ----
fio_iops() { # LIB_PRELOAD QD SECONDS: IOPS (three tries: fio now and then prints nothing)
	local pre=() try iops
	[ -n "$1" ] && pre=(env "LD_PRELOAD=$1")
	for try in 1 2 3; do
		"${pre[@]}" fio --name=r --filename="$shmfile" --rw=randread --bs=4k --direct=$direct \
			--ioengine=libaio --iodepth="$2" --runtime="$3" --time_based --ramp_time=0.2 \
			--output-format=terse --terse-version=3 >"$work/fio.out" 2>&1
		iops=$(awk -F';' '$1 == "3" && NF > 100 {print $8; exit}' "$work/fio.out")
		[ -n "$iops" ] && { echo "$iops"; return; }
		note "bench: fio printed no result (try $try): $(head -c 300 "$work/fio.out")"
	done
	echo 0
}
fio_syscalls() { # LIB_PRELOAD QD IOS
	local pre=()
	[ -n "$1" ] && pre=(env "LD_PRELOAD=$1")
	COUNT_ONLY=io_submit,io_getevents,io_pgetevents count_syscalls "${pre[@]}" fio --name=r \
		--filename="$shmfile" --rw=randread --bs=4k --direct=$direct --ioengine=libaio \
		--iodepth="$2" --number_ios="$3" --size=256M --output-format=terse
}
fio_verified=""
if want fio; then
	if command -v fio >/dev/null; then
		for qd in 1 32; do
			t=() o=()
			for ((i = 0; i < RUNS; i++)); do
				if ((i % 2)); then
					o+=("$(fio_iops "$ours" "$qd" "$FIO_SECS")")
					t+=("$(fio_iops "" "$qd" "$FIO_SECS")")
				else
					t+=("$(fio_iops "" "$qd" "$FIO_SECS")")
					o+=("$(fio_iops "$ours" "$qd" "$FIO_SECS")")
				fi
			done
			it=$(printf '%s\n' "${t[@]}" | median)
			io=$(printf '%s\n' "${o[@]}" | median)
			sct=n/a sco=n/a
			if [ -n "$counter" ]; then
				a=$(fio_syscalls "" "$qd" 20000) b=$(fio_syscalls "" "$qd" 40000)
				sct=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", (b - a) / 20000}')
				a=$(fio_syscalls "$ours" "$qd" 20000) b=$(fio_syscalls "$ours" "$qd" 40000)
				sco=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", (b - a) / 20000}')
			fi
			row "fio randread, QD $qd" "$(per_second "$it")" "$(per_second "$io")" "$it" "$io" "$sct¹" "$sco¹"
		done
		# Write pass with crc32c verification, on ours: nothing lost or corrupted.
		vlog=$work/verify.txt
		if LD_PRELOAD=$ours fio --name=v --filename="$work/verify" --size=64M --rw=randwrite --bs=4k \
			--direct=$direct --ioengine=libaio --iodepth=32 --verify=crc32c --do_verify=1 \
			--verify_fatal=1 --verify_state_save=0 --output-format=terse --terse-version=3 >"$vlog" 2>&1; then
			err=$(awk -F';' '{print $5; exit}' "$vlog")
			rkb=$(awk -F';' '{print $6; exit}' "$vlog")
			wkb=$(awk -F';' '{print $47; exit}' "$vlog")
			fio_verified="fio randwrite 64 MiB, QD 32, --verify=crc32c on ours: exit 0, error=$err, ${wkb} KiB written, ${rkb} KiB read back and verified"
		else
			fio_verified="fio verify pass on ours FAILED: $(tail -3 "$vlog" | tr '\n' ' ')"
		fi
		rm -f "$work/verify"
		note "$fio_verified"
	else
		note "bench: fio is not installed (apt-get install fio): fio rows skipped"
		rows+=("| fio | skipped: fio not installed | | | | | | | | |")
	fi
fi

# ---- user-space instructions per call (callgrind) ----
calls_lines=()
if want calls; then
	if command -v valgrind >/dev/null; then
		for lib in "$theirs" "$ours"; do
			who=libaio
			[ "$lib" = "$ours" ] && who=ours
			for f in io_submit io_getevents; do
				n=20000
				c=$(valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
					--toggle-collect="$f*" "$bin" calls "$lib" 1 -n "$n" 2>&1 |
					sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
				calls_lines+=("$who $f $(awk -v c="$c" -v n="$n" 'BEGIN {printf "%.1f", c / n}')")
			done
		done
	else
		note "bench: valgrind is not installed: no instruction counts"
	fi
fi

# ---- soak ----
soak_lines=()
if want soak; then
	target=${loopdev:-$shmfile}
	soak_target="loop device"
	[ -n "$loopdev" ] || soak_target="/dev/shm file"
	note "bench: soak, ${SOAK} s at QD 32 on ours ($soak_target), in turns with libaio"
	mapfile -t soak_lines < <("$bin" pair "$ours" "$theirs" soak 32 "$target" -t "$SOAK" 2>/dev/null)
fi

# etable ENGINE TARGET CHECK ROWS NOTES: an engine's table and its notes.
etable() {
	local -n rows_=$4 notes_=$5
	[ -n "$3" ] && echo "Engine check: ours said \`$3\` (LIBAIO_RS_DEBUG=1); in every run aiobench found ours' ring outside the kernel's /[aio] mapping, libaio's inside it."
	echo
	echo "| workload | libaio ns/op | ours-$1 ns/op | IOPS ours/libaio | ≥ $2? | libaio ops/s | ours ops/s | libaio syscalls/op | ours syscalls/op (caller) | libaio syscalls/reap | ours syscalls/reap (caller) |"
	echo "| --- | ---: | ---: | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	printf '%s\n' "${rows_[@]}"
	echo
	if [ ${#notes_[@]} -gt 0 ]; then
		printf '* %s\n' "${notes_[@]}"
		echo
	fi
}

# ---- report ----
date=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report=$out/bench-$(date -u +%Y%m%d-%H%M%S).md
{
	echo "### Benchmark: Debian's libaio 0.3.113 against ours"
	echo
	echo "$date; $(nproc) CPUs ($cpu); Linux $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")."
	echo "Medians of $RUNS runs, each ${SECS} s per library in alternating 50 ms slices in one process"
	echo "(fio: $RUNS alternating runs of ${FIO_SECS} s each). System calls counted by"
	echo "$counted_with; medians of $COUNT_RUNS counts"
	echo "(fio: ${counter:-nothing}, one count at 20000 and 40000 I/Os). A reap is one io_getevents call."
	echo "An operation is one I/O. Lower ns/op is better; **ours/libaio** below 1 means faster."
	echo
	if [ ${#rows[@]} -gt 0 ]; then
		echo "| workload | libaio ns/op | ours ns/op | ours/libaio | libaio ops/s | ours ops/s | libaio syscalls/op | ours syscalls/op | libaio syscalls/reap | ours syscalls/reap |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		printf '%s\n' "${rows[@]}"
		echo
	fi
	if [ ${#srows[@]} -gt 0 ]; then
		echo "Safe Rust API (\`Context\`, \`Request\`, feature std) against the C entry points of the same"
		echo "crate, in one process taking turns in 50 ms slices (bench/safe_bench.rs), medians of $SAFE_RUNS runs"
		echo "of ${SECS} s each. The safe API's requests always signal the context's eventfd (IOCB_FLAG_RESFD);"
		echo "\"C+eventfd\" makes the C calls do the same, so its ratio is the safe layer's own cost (target 1.05)."
		echo
		echo "| workload | C ns/op | safe ns/op | safe/C | C+eventfd ns/op | safe ns/op | **safe/(C+eventfd)** |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
		printf '%s\n' "${srows[@]}"
		echo
	fi
	if [ ${#trows[@]} -gt 0 ]; then
		echo "Thread engine: ours with LIBAIO_RS_ENGINE=threads (requests checked in user space, O_DIRECT"
		echo "reads carried out by its worker threads with preadv2, polls answered inside io_submit) against"
		echo "Debian's libaio on kernel AIO, in the same process, medians of $THREADS_RUNS runs (counts) as above."
		echo "Here the ratio is **IOPS ours/libaio**: higher is better, the target for the reads is 0.5."
		echo "Ours' system calls include its worker threads'; those of the calling thread alone in brackets."
		etable threads 0.5 "$threads_check" trows tnotes
	fi
	if [ ${#urows[@]} -gt 0 ] || [ ${#cold_rows[@]} -gt 0 ]; then
		echo "io_uring engine: ours with LIBAIO_RS_ENGINE=io_uring (requests checked in user space, carried"
		echo "out by the process's io_uring; completions taken by the thread waiting in io_getevents, else"
		echo "by the completer thread) against Debian's libaio on kernel AIO, in the same process, medians of"
		echo "$THREADS_RUNS runs (counts). Ratio **IOPS ours/libaio**, the target for the O_DIRECT reads is 0.9."
		echo "Ours' system calls include the completer thread's; those of the calling thread alone in brackets."
		[ ${#urows[@]} = 0 ] || etable io_uring 0.9 "$uring_check" urows unotes
		if [ ${#cold_rows[@]} -gt 0 ]; then
			echo "Buffered reads, cold cache: fio $(fio --version 2>/dev/null) randread, bs 4k, iodepth 32, 5 s per run on a"
			echo "${COLD_GIB} GiB file in $COLD_DIR, \`echo 3 > drop_caches\` before each run; medians of $COLD_RUNS runs of each, in turns."
			echo "libaio: fio's libaio engine on Debian's libaio; ours: the same with LD_PRELOAD of ours and"
			echo "LIBAIO_RS_ENGINE=io_uring; fio io_uring: fio's own io_uring engine. Targets: 4x libaio, 0.8x fio io_uring."
			echo
			echo "| workload | libaio IOPS | ours (io_uring) IOPS | fio io_uring IOPS | ours/libaio (≥ 4?) | ours/fio io_uring (≥ 0.8?) |"
			echo "| --- | ---: | ---: | ---: | ---: | ---: |"
			printf '%s\n' "${cold_rows[@]}"
			[ -z "$cold_note" ] || { echo; echo "Runs: $cold_note."; }
			echo
		fi
	fi
	if [ ${#notes[@]} -gt 0 ]; then
		echo "System calls per operation that vary from count to count: completions arrive while the"
		echo "program runs, and how many each reap finds (so how many operations share one io_submit"
		echo "and one io_getevents) depends on scheduling. The table shows medians:"
		echo
		printf '* %s\n' "${notes[@]}"
		echo
	fi
	if want arrays64; then
		echo "64 event arrays: each io_getevents call writes into the next of 64 arrays, each in its"
		echo "own mapping behind a guard page (as with one array per thread, on its stack)."
		echo
	fi
	if want fio; then
		echo "¹ fio: only io_submit, io_getevents and io_pgetevents are counted (fio's helper threads make other calls)."
		[ -n "$fio_verified" ] && echo "Verify pass: $fio_verified."
		echo
	fi
	if [ ${#calls_lines[@]} -gt 0 ]; then
		echo "User-space instructions per call (valgrind --tool=callgrind, IO_CMD_POLL batch 1; ours"
		echo "io_getevents takes the event from the ring, libaio's makes the system call):"
		echo
		echo "| call | libaio | ours |"
		echo "| --- | ---: | ---: |"
		for f in io_submit io_getevents; do
			a=$(printf '%s\n' "${calls_lines[@]}" | awk -v f="$f" '$1 == "libaio" && $2 == f {print $3}')
			b=$(printf '%s\n' "${calls_lines[@]}" | awk -v f="$f" '$1 == "ours" && $2 == f {print $3}')
			echo "| $f | $a | $b |"
		done
		echo
	fi
	if [ ${#soak_lines[@]} -gt 0 ]; then
		echo "Soak: ${SOAK} s of QD 32 reads on ours ($soak_target), reaping in user space, in 1 s turns"
		echo "with libaio; throughput of each 10 s of each library's own running time:"
		echo
		echo "| window | ours ops/s | libaio ops/s | ours/libaio |"
		echo "| ---: | ---: | ---: | ---: |"
		printf '%s\n' "${soak_lines[@]}" | awk '
			/^window=/ {
				split($1, w, "="); split($2, o, "="); split($3, t, "=")
				r = o[2] / t[2]
				printf "| %d | %.0f | %.0f | %.3f |\n", w[2], o[2], t[2], r
				n++; if (n == 1) {first = r; lo = r; hi = r}; last = r
				if (r < lo) lo = r; if (r > hi) hi = r
			}
			/^a_eagain=/ {split($1, e, "="); eagain = e[2]}
			END {
				printf "\nours/libaio: first window %.3f, last %.3f, lowest %.3f, highest %.3f", first, last, lo, hi
				printf " (the machine'"'"'s own swings move both columns). io_submit -EAGAIN on ours: %s.\n", eagain
			}'
		echo
	fi
} >"$report"
cp "$report" "$out/latest.md"
echo
cat "$report"
echo "(written to $report)"
