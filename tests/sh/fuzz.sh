#!/usr/bin/env bash
# Differential fuzzing of random libaio call sequences: fuzz/aiofuzz.c,
# built against Debian's libaio.h, turns a seed into a few hundred calls
# (every entry point, both symbol versions, hostile arguments, several
# contexts destroyed and set up again) and prints a transcript of what each
# call did. Each seed runs twice on Debian's libaio and once on ours:
#   - the two Debian runs differ, or Debian's crashed or hung: the seed is
#     "unstable" (counted, not compared);
#   - otherwise ours must print exactly Debian's transcript and exit as it
#     did; any difference is a divergence: the seed, a replay command and
#     the diff are printed, and the test fails.
# A run whose io_setup finds the machine-wide aio-nr used up by other
# processes stops (exit 4): Debian's runs then count as unstable, ours is
# tried again. Every run must have loaded the libaio it was meant to (the
# program names it on stderr). Too many unstable seeds fail too: the fuzzer
# would then compare nothing.
#
# make check runs a short round (FUZZ_SEEDS=150, about 40 s); `make fuzz` a
# long one (FUZZ_SEEDS=5000). Environment: FUZZ_SEEDS, FUZZ_START (first
# seed, to resume), FUZZ_OPS (calls per seed, 300), FUZZ_JOBS (seeds at once,
# 2), FUZZ_SHOW (divergences shown in full, 5), FUZZ_MAX_DIVERGENCES (stop
# after that many, 20), FUZZ_OURS_ENV (VAR=value words set for our runs
# only, e.g. LIBAIO_RS_ENGINE=threads to hold the thread engine to kernel
# AIO's behaviour: tests/sh/fuzz_engines.sh does so for each engine).
set -u
. "$(dirname "$0")/lib/common.sh"

SEEDS=${FUZZ_SEEDS:-150}
START=${FUZZ_START:-1}
OPS=${FUZZ_OPS:-300}
JOBS=${FUZZ_JOBS:-2}
SHOW=${FUZZ_SHOW:-5}
MAXDIV=${FUZZ_MAX_DIVERGENCES:-20}
read -r -a OURS_ENV <<<"${FUZZ_OURS_ENV:-}"
for v in SEEDS START OPS JOBS SHOW MAXDIV; do
	[[ ${!v} =~ ^[0-9]+$ ]] || fail "FUZZ_$v must be a number (got '${!v}')"
done
((JOBS >= 1)) || JOBS=1

require_cmd gcc gcc
require_cmd timeout coreutils
find_debian
OURS_LIB=$BUILD/libaio.so.1
[ -e "$OURS_LIB" ] || fail "$OURS_LIB is missing: run make first"
OURS_LIB=$(readlink -f "$OURS_LIB")
[ "$OURS_LIB" != "$DEB_LIB" ] || fail "$BUILD/libaio.so.1 is Debian's library"

# Built against Debian's header and linked by soname, so the same binary
# runs on either library through LD_LIBRARY_PATH.
PROG=$TMP/aiofuzz
gcc -O2 -g -Wall -Wextra -Werror -I"$DEB_INC" -o "$PROG" "$ROOT/fuzz/aiofuzz.c" -laio >"$TMP/cc.log" 2>&1 ||
	fail_with_log "$TMP/cc.log" "building fuzz/aiofuzz.c failed"
mkdir -p "$TMP/lib-debian" "$TMP/lib-ours" "$TMP/scratch"
ln -s "$DEB_LIB" "$TMP/lib-debian/libaio.so.1"
ln -s "$OURS_LIB" "$TMP/lib-ours/libaio.so.1"

# run_one SEED WHO OUT: the transcript, then how the process ended.
run_one() {
	local seed=$1 who=$2 out=$3 rc=0 lib extra=()
	if [ "$who" = ours ]; then lib=$OURS_LIB extra=("${OURS_ENV[@]}"); else lib=$DEB_LIB; fi
	env -u LD_PRELOAD LD_LIBRARY_PATH="$TMP/lib-$who" FUZZ_TMPDIR="$TMP/scratch" "${extra[@]}" \
		timeout -k 5 30 "$PROG" "$seed" "$OPS" </dev/null >"$out" 2>"$out.err" || rc=$?
	if ((rc == 124 || rc == 137)); then
		echo "hung: killed after 30 s" >>"$out"
	elif ((rc > 128)); then
		echo "killed by signal $((rc - 128))" >>"$out"
	else
		echo "exit $rc" >>"$out"
	fi
	grep -qxF "aiofuzz-loaded: $lib" "$out.err" || echo "DID-NOT-LOAD: $lib" >>"$out"
	if [ "$who" = ours ] && grep -qxF "aiofuzz-loaded: $DEB_LIB" "$out.err"; then
		echo "ALSO-LOADED-DEBIAN'S-LIBAIO" >>"$out"
	fi
	((rc == 0))
}

# worker J: seeds START+J, START+J+JOBS, ...; one result line per seed.
worker() {
	local j=$1 seed d
	for ((seed = START + j; seed < START + SEEDS; seed += JOBS)); do
		# A systematic bug diverges everywhere: enough examples, stop.
		(($(cat "$TMP"/results.* | grep -c ' diverges$') < MAXDIV)) || break
		d=$TMP/w$j
		mkdir -p "$d"
		if ! run_one "$seed" debian "$d/debian1" || ! run_one "$seed" debian "$d/debian2" ||
			! cmp -s "$d/debian1" "$d/debian2"; then
			echo "$seed unstable"
			mkdir -p "$TMP/unstable/$seed" && cp "$d/debian1" "$d/debian2" "$TMP/unstable/$seed/"
			continue
		fi
		# Exit 4: io_setup found aio-nr (machine-wide) used up by others.
		for try in 1 2 3; do
			run_one "$seed" ours "$d/ours" && break
			grep -qx 'exit 4' "$d/ours" || break
			sleep "$try"
		done
		if cmp -s "$d/debian1" "$d/ours"; then
			echo "$seed ok"
		else
			echo "$seed diverges"
			mkdir -p "$TMP/diverge/$seed" && cp "$d/debian1" "$d/ours" "$d/ours.err" "$TMP/diverge/$seed/"
		fi
	done >"$TMP/results.$j"
}

note "seeds $START..$((START + SEEDS - 1)), $OPS calls each, $JOBS at once; Debian $DEB_LIB, ours $OURS_LIB${FUZZ_OURS_ENV:+ with $FUZZ_OURS_ENV}"
t0=$SECONDS
pids=()
for ((j = 0; j < JOBS; j++)); do
	worker "$j" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

cat "$TMP"/results.* 2>/dev/null | sort -n >"$TMP/results"
run=$(wc -l <"$TMP/results")
unstable=$(grep -c ' unstable$' "$TMP/results")
diverged=$(grep ' diverges$' "$TMP/results" | cut -d' ' -f1)
ndiv=$(printf '%s' "$diverged" | grep -c .)

shown=0
for seed in $diverged; do
	if ((shown < SHOW)); then
		echo
		note "DIVERGENCE at seed $seed (- Debian's libaio, + ours):"
		# The first hunk or two: the first differing call is what matters.
		diff -U 3 "$TMP/diverge/$seed/debian1" "$TMP/diverge/$seed/ours" | sed -n '3,$p' | head -n 30 | cut -c 1-400
		sed 's/^/    ours stderr: /' "$TMP/diverge/$seed/ours.err" | grep -v aiofuzz-loaded | head -n 5
		envarg=
		[ -z "${FUZZ_OURS_ENV:-}" ] || envarg=" FUZZ_OURS_ENV=\"$FUZZ_OURS_ENV\""
		echo "  replay: make fuzz FUZZ_START=$seed FUZZ_SEEDS=1 FUZZ_OPS=$OPS$envarg"
		echo "     or:  gcc -O2 -o aiofuzz fuzz/aiofuzz.c -laio && mkdir -p ours && ln -sf $OURS_LIB ours/libaio.so.1 &&"
		echo "          FUZZ_TRACE=1 LD_LIBRARY_PATH=ours ${FUZZ_OURS_ENV:+$FUZZ_OURS_ENV }./aiofuzz $seed $OPS   (and without LD_LIBRARY_PATH for Debian's)"
		shown=$((shown + 1))
	fi
done
((ndiv > shown)) && note "... and $((ndiv - shown)) more divergent seeds: $(printf '%s\n' "$diverged" | tail -n +$((shown + 1)) | head -n 40 | tr '\n' ' ')"
if ((unstable)); then
	note "unstable seeds (Debian's two runs differ or it did not finish): $(grep ' unstable$' "$TMP/results" | cut -d' ' -f1 | head -n 20 | tr '\n' ' ')"
	first=$(grep -m1 ' unstable$' "$TMP/results" | cut -d' ' -f1)
	diff "$TMP/unstable/$first/debian1" "$TMP/unstable/$first/debian2" | head -n 6 | sed "s/^/    seed $first: /"
fi

note "$run seeds run, $unstable unstable, $ndiv divergences ($((SECONDS - t0)) s)"
((ndiv >= MAXDIV || run == SEEDS)) || fail "only $run of $SEEDS seeds have a result"
((ndiv == 0)) || fail "$ndiv seeds diverge from Debian's libaio"
# A fuzzer whose reference is not reproducible compares nothing.
((unstable * 10 <= run)) || fail "$unstable of $run seeds are unstable on Debian's libaio (more than 10%)"
exit 0
