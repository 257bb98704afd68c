#!/usr/bin/env bash
# The seed document's two sample programs, built unchanged against our
# installed tree and against Debian's libaio, each run with both libraries:
#   - the C++ one (glog + gflags) writes and reads 1000 O_DIRECT blocks and
#     must print "Successfully calculated that the sum of integers from 0 to
#     999 is 499500", with every write and read logged as completed;
#   - the C one (eventfd + epoll) must run its 128 callbacks (requests 1..127
#     read 1024 bytes, request 128 starts at end of file and reads 0) and
#     print "end".
# Every run proves through the loader's trace which libaio.so.1 it used.
#
# The programs are taken at test time from the fenced code blocks of the
# project's seed document, *.txt in $LIBAIO_RS_SEEDS (default: ../shared/seeds
# beside the repository, as in the development tree and its CI). A clone
# without it skips this test; a LIBAIO_RS_SEEDS that names no directory fails.
#
# For the engine tests (tests/sh/engine_*.sh); unset, nothing changes:
#   LIBAIO_RS_OURS_WRAP    command words put before each program run with ours
#   LIBAIO_RS_OURS_ENGINE  the engine every run with ours must report: it runs
#                          with LIBAIO_RS_DEBUG=1, its stderr must have the line
#                          "libaio: io_setup: engine NAME" and no other engine;
#                          the library's "libaio: " lines are then taken out of
#                          stderr before the usual checks
set -eu
. "$(dirname "$0")/lib/common.sh"

read -ra OURS_WRAP <<<"${LIBAIO_RS_OURS_WRAP:-}"
OURS_ENGINE=${LIBAIO_RS_OURS_ENGINE:-}
[ ${#OURS_WRAP[@]} = 0 ] || [ -n "$OURS_ENGINE" ] ||
	fail "LIBAIO_RS_OURS_WRAP without LIBAIO_RS_OURS_ENGINE: the run could not prove which engine it used"

if [ -n "${LIBAIO_RS_SEEDS:-}" ]; then
	SEEDS=$LIBAIO_RS_SEEDS
	[ -d "$SEEDS" ] || fail "LIBAIO_RS_SEEDS=$SEEDS is not a directory"
else
	SEEDS=$ROOT/../shared/seeds
	[ -d "$SEEDS" ] || skip "no seed document: $(realpath -m "$SEEDS") is absent (set LIBAIO_RS_SEEDS to the directory of the seed document's *.txt)"
fi

require_cmd gcc gcc
require_cmd g++ g++
require_cmd timeout coreutils
for h in glog/logging.h gflags/gflags.h; do
	[ -f "/usr/include/$h" ] || fail "/usr/include/$h is missing: apt-get install libgoogle-glog-dev libgflags-dev"
done

# --- 1. Extract the fenced blocks of every seed document and pick the two programs.
mkdir -p "$TMP/blocks" "$TMP/src"
found=0
for doc in "$SEEDS"/*.txt; do
	[ -f "$doc" ] || continue
	found=1
	# A fence is a line of three or more backticks or tildes (an info string
	# such as "c" may follow the opening one); blocks are numbered per document.
	awk -v out="$TMP/blocks/$(basename "$doc" .txt)" '
		!inside && /^[ \t]*(```|~~~)/ { inside = 1; n++; file = out "." n; printf "" > file; next }
		inside && /^[ \t]*(```|~~~)[ \t]*$/ { inside = 0; close(file); next }
		inside { print > file }
	' "$doc"
done
[ "$found" = 1 ] || fail "no *.txt seed document in $SEEDS"

cxx_prog='' c_prog=''
for b in "$TMP"/blocks/*; do
	[ -f "$b" ] || continue
	grep -Eq '^[[:space:]]*int[[:space:]]+main[[:space:]]*\(' "$b" || continue
	grep -q '#include <libaio.h>' "$b" || continue
	if grep -Eq '#include <(glog|gflags)/' "$b"; then
		[ -z "$cxx_prog" ] || fail "two C++ (glog) programs in the seeds: $cxx_prog and $b"
		cxx_prog=$b
	else
		[ -z "$c_prog" ] || fail "two C programs in the seeds: $c_prog and $b"
		c_prog=$b
	fi
done
[ -n "$cxx_prog" ] || fail "no fenced C++ program using glog and libaio found in $SEEDS"
[ -n "$c_prog" ] || fail "no fenced C program using libaio found in $SEEDS"
grep -q 'eventfd' "$c_prog" || fail "the C seed program ($c_prog) is not the eventfd+epoll one"
cp "$c_prog" "$TMP/src/aio.c"
cp "$cxx_prog" "$TMP/src/aio_adder.cc"
note "C program: $(basename "$c_prog") ($(wc -l <"$c_prog") lines), C++ program: $(basename "$cxx_prog") ($(wc -l <"$cxx_prog") lines)"

# --- 2. Our library into a temp prefix; Debian's from the system.
install_ours "$TMP/prefix"
find_debian
note "ours:     $OURS_LIB (header $OURS_INC/libaio.h)"
note "Debian's: $DEB_LIB (header $DEB_INC/libaio.h)"

# --- 3. Build each program twice, unchanged: against our tree and against Debian's.
# The compiler is asked which libaio.h it resolves, so a wrong -I cannot pass.
# shellcheck disable=SC2034 # used through the nameref below
{
	c_ours=(gcc -I"$OURS_INC" -L"$OURS_LIBDIR" aio.c -laio)
	c_deb=(gcc aio.c -laio)
	cxx_ours=(g++ -I"$OURS_INC" -L"$OURS_LIBDIR" aio_adder.cc -lglog -lgflags -laio)
	cxx_deb=(g++ aio_adder.cc -lglog -lgflags -laio)
}

for v in c_ours c_deb cxx_ours cxx_deb; do
	declare -n cmd=$v
	(cd "$TMP/src" && "${cmd[@]}" -o "../$v") >"$TMP/build-$v.log" 2>&1 ||
		fail_with_log "$TMP/build-$v.log" "building the seed program failed: ${cmd[*]}"
	case $v in
	c_ours) hdr=$(header_used gcc -I"$OURS_INC" "$TMP/src/aio.c") want=$OURS_INC/libaio.h ;;
	cxx_ours) hdr=$(header_used g++ -I"$OURS_INC" "$TMP/src/aio_adder.cc") want=$OURS_INC/libaio.h ;;
	c_deb) hdr=$(header_used gcc "$TMP/src/aio.c") want=$DEB_INC/libaio.h ;;
	cxx_deb) hdr=$(header_used g++ "$TMP/src/aio_adder.cc") want=$DEB_INC/libaio.h ;;
	esac
	[ "$hdr" = "$(readlink -f "$want")" ] || fail "$v was compiled with ${hdr:-no libaio.h}, expected $want"
	readelf -d "$TMP/$v" | grep -q 'NEEDED.*\[libaio\.so\.1\]' || fail "$v does not need libaio.so.1"
	note "built $v: ${cmd[*]}"
	unset -n cmd
done

# --- 4. Run: every binary with our library and with Debian's.
results=()
expected_sum_line='Successfully calculated that the sum of integers from 0 to 999 is 499500'

check_cxx_run() { # TAG DATAFILE
	local tag=$1 data=$2 out=$TMP/$1.out err=$TMP/$1.err
	[ "$RC" = 0 ] || fail_with_log "$err" "$tag: exit status $RC, expected 0"
	[ "$(cat "$out")" = "$expected_sum_line" ] ||
		fail "$tag: stdout is '$(head -c 300 "$out")', expected exactly '$expected_sum_line'"
	# glog writes to stderr here (the program never calls InitGoogleLogging).
	local writes reads
	writes=$(sed -n 's/.*\] Write of \([0-9]*\) completed$/\1/p' "$err" | sort -n | uniq | wc -l)
	reads=$(sed -n 's/.*\] Read of \([0-9]*\) completed$/\1/p' "$err" | sort -n | uniq | wc -l)
	[ "$writes" = 1000 ] || fail "$tag: $writes distinct 'Write of N completed' log lines, expected 1000"
	[ "$reads" = 1000 ] || fail "$tag: $reads distinct 'Read of N completed' log lines, expected 1000"
	grep -q '\] AIO is complete$' "$err" || fail "$tag: no 'AIO is complete' log line"
	! grep -Eq '^[EF][0-9]{8} ' "$err" || fail "$tag: glog ERROR/FATAL lines: $(grep -E '^[EF][0-9]{8} ' "$err" | head -3)"
	# The data really reached the file: block i starts with the int i.
	[ "$(stat -c %s "$data")" = 4096000 ] || fail "$tag: $data is $(stat -c %s "$data") bytes, expected 4096000"
	local i v
	for i in 0 1 500 998 999; do
		v=$(od -An -t d4 -j $((i * 4096)) -N 4 "$data" | tr -d ' ')
		[ "$v" = "$i" ] || fail "$tag: block $i of $data starts with $v, expected $i"
	done
}

check_c_run() { # TAG RUNDIR
	local tag=$1 dir=$2 out=$TMP/$1.out err=$TMP/$1.err
	[ "$RC" = 0 ] || fail_with_log "$out" "$tag: exit status $RC, expected 0 (stderr: $(head -c 300 "$err"))"
	[ ! -s "$err" ] || fail "$tag: unexpected stderr: $(head -c 300 "$err")"
	[ "$(tail -n 1 "$out")" = end ] || fail "$tag: last line is '$(tail -n 1 "$out")', expected 'end'"
	grep -Eq '^buf: 0x[0-9a-f]+$' "$out" || fail "$tag: no 'buf: 0x...' line"
	# The 128 callback lines, in any order, exactly as the program prints them.
	local n want=$TMP/$tag.want got=$TMP/$tag.got
	for ((n = 1; n <= 128; n++)); do
		printf 'nth_request: %d, request_type: READ, offset: %d, length: 1024, res: %d, res2: 0\n' \
			"$n" $(((n - 1) * 1024)) $((n < 128 ? 1024 : 0))
	done | sort >"$want"
	grep '^nth_request: ' "$out" | sort >"$got"
	diff -u "$want" "$got" >"$TMP/$tag.diff" ||
		fail_with_log "$TMP/$tag.diff" "$tag: the 128 callback lines differ from the expected ones (- expected, + got)"
	local total
	total=$(sed -n 's/^finished io number: \([0-9]*\)$/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
	[ "$total" = 128 ] || fail "$tag: eventfd reported $total completions in all, expected 128"
	! grep -q '^finished_aio:' "$out" || fail "$tag: io_getevents found nothing after the eventfd fired ('finished_aio:' line)"
	[ ! -e "$dir/aio_test_file" ] || fail "$tag: the program did not remove its aio_test_file"
	# Same set of lines whatever the library: keep it for the comparison.
	grep -v -e '^buf: ' -e '^finished io number: ' "$out" | sort >"$TMP/$tag.norm"
}

# check_engine TAG: the run with ours said it used OURS_ENGINE, and only it;
# then the library's own lines leave stderr.
engine_seen=
check_engine() {
	local err=$TMP/$1.err lines
	lines=$(grep '^libaio: io_setup: engine ' "$err" || true)
	grep -Eq "^libaio: io_setup: engine $OURS_ENGINE(:|\$)" <<<"$lines" ||
		fail_with_log "$err" "$1: no 'libaio: io_setup: engine $OURS_ENGINE' line on stderr"
	! grep -Evq "^libaio: io_setup: engine $OURS_ENGINE(:|\$)" <<<"$lines" ||
		fail_with_log "$err" "$1: an io_setup reported another engine than $OURS_ENGINE"
	engine_seen=$(head -n 1 <<<"$lines")
	grep -v '^libaio: ' "$err" >"$err.rest" || true
	mv "$err.rest" "$err"
}

for bin in cxx_ours cxx_deb c_ours c_deb; do
	for lib in ours deb; do
		tag=${bin}-run-$lib
		pre=()
		if [ $lib = ours ]; then
			libdir=$OURS_LIBDIR want=$OURS_LIB pre=("${OURS_WRAP[@]}")
			[ -z "$OURS_ENGINE" ] || pre=(env LIBAIO_RS_DEBUG=1 "${pre[@]}")
		else
			libdir='' want=$DEB_LIB
		fi
		odirect_dir
		case $bin in
		cxx_*)
			run_traced "$tag" "$libdir" "$want" -- "${pre[@]}" timeout 300 "$TMP/$bin" --path="$ODIRECT_DIR/testfile"
			[ $lib != ours ] || [ -z "$OURS_ENGINE" ] || check_engine "$tag"
			check_cxx_run "$tag" "$ODIRECT_DIR/testfile"
			;;
		c_*)
			# shellcheck disable=SC2016 # expanded by the inner sh
			run_traced "$tag" "$libdir" "$want" -- "${pre[@]}" sh -c 'cd "$1" && exec timeout 120 "$2"' sh "$ODIRECT_DIR" "$TMP/$bin"
			[ $lib != ours ] || [ -z "$OURS_ENGINE" ] || check_engine "$tag"
			check_c_run "$tag" "$ODIRECT_DIR"
			;;
		esac
		results+=("$(printf '%-9s built against %-8s run with %-8s PASS' "${bin%%_*}" "${bin#*_}" "$lib")")
	done
done

# The C program's output (less the buffer address and the eventfd batching)
# is the same whichever header and library it ran with.
for t in c_ours-run-ours c_ours-run-deb c_deb-run-ours; do
	diff -u "$TMP/c_deb-run-deb.norm" "$TMP/$t.norm" >"$TMP/cmp.diff" ||
		fail_with_log "$TMP/cmp.diff" "the C program's output with $t differs from Debian's build run with Debian's library"
done

[ ${#OURS_WRAP[@]} = 0 ] || note "ours ran as: ${OURS_WRAP[*]} PROGRAM"
[ -z "$OURS_ENGINE" ] || note "ours' engine, as its io_setup reported it: $engine_seen"
printf '%s\n' "${results[@]}"
note "both seed programs pass with our library and with Debian's"
