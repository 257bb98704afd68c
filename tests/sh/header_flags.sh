#!/usr/bin/env bash
# Our libaio.h under the compiler settings libaio programs use, and binaries
# that cross from one library to the other:
#   1. tests/sh/c/every_name.c, which uses every name libaio.h 0.3.113 gives
#      a program (types, every struct field, IO_CMD_*, all prototypes, every
#      static inline helper), must build against our installed header with
#      -O2 -Wall -Wextra -Werror under each C and C++ mode below, both as a
#      POSIX program and as a strict ISO C one (no feature-test macro), and
#      each build must run with our library and report no failure. The same
#      builds against Debian's header are shown for comparison (not required).
#   2. The program built against our header runs with Debian's libaio, and the
#      one built against Debian's header runs with ours, doing real I/O (reads,
#      writes, vectors, RWF_APPEND, fsync, poll, eventfd, cancel,
#      io_pgetevents): the four header/library pairs print the same transcript.
set -eu
. "$(dirname "$0")/lib/common.sh"

SRC=$(cd "$(dirname "$0")" && pwd)/c/every_name.c
[ -f "$SRC" ] || fail "$SRC is missing"
require_cmd gcc gcc
require_cmd g++ g++

install_ours "$TMP/prefix"
find_debian

C_MODES=("-std=c99" "-std=c99 -pedantic" "-std=c11" "-std=c11 -pedantic" "-std=gnu99" "-std=gnu11 -pedantic" "-std=gnu17 -pedantic")
CXX_MODES=("" "-pedantic" "-std=c++11 -pedantic" "-std=c++14 -pedantic" "-std=c++17 -pedantic" "-std=gnu++17 -pedantic" "-std=c++20 -pedantic")
WARN=(-O2 -Wall -Wextra -Werror)

mkdir -p "$TMP/bin" "$TMP/scratch"
rows=() bad=() deb_notes=()
n=0

# compile TAG HEADER(ours|debian) LANG MODE VARIANT_FLAGS: 0 if it built.
compile() {
	local tag=$1 which=$2 lang=$3 mode=$4 variant=$5 cc=gcc inc=() lib=() extra=()
	[ "$lang" = c ] || cc=g++
	if [ "$which" = ours ]; then
		inc=(-I"$OURS_INC") lib=(-L"$OURS_LIBDIR") extra=(-DLIBAIO_TEST_QUEUE_WAIT)
	fi
	# shellcheck disable=SC2086 # MODE and VARIANT are lists of flags
	$cc "${WARN[@]}" $mode $variant "${extra[@]}" "${inc[@]}" -x "$lang" "$SRC" -x none "${lib[@]}" -laio \
		-o "$TMP/bin/$tag" >"$TMP/$tag.build" 2>&1
}

first_error() { grep -m1 -E 'error|warning' "$1" | sed "s|$TMP/prefix/usr/include/||; s|^.*/every_name.c:||" | cut -c1-110; }

# --- 1. The flag matrix.
for lang in c c++; do
	if [ "$lang" = c ]; then modes=("${C_MODES[@]}") cc=gcc; else modes=("${CXX_MODES[@]}") cc=g++; fi
	for mode in "${modes[@]}"; do
		for variant in "" "-DLIBAIO_TEST_STRICT"; do
			n=$((n + 1))
			tag=m$n
			label="$cc ${WARN[*]} ${mode:-(default std)}${variant:+ $variant}"
			ours_state=PASS deb_state=ok
			if ! compile "$tag" ours "$lang" "$mode" "$variant"; then
				ours_state=FAIL
				[ ${#bad[@]} != 0 ] || sed 's/^/    | /' "$TMP/$tag.build" | head -n 20 >&2
				bad+=("$label: $(first_error "$TMP/$tag.build")")
			else
				[ "$(header_used "$cc" -I"$OURS_INC" -x "$lang" "$SRC")" = "$(readlink -f "$OURS_INC/libaio.h")" ] ||
					fail "$label: did not compile with our installed libaio.h"
				run_traced "$tag" "$OURS_LIBDIR" "$OURS_LIB" -- "$TMP/bin/$tag" "$TMP/scratch"
				if [ "$RC" != 0 ] || ! grep -qx 'done, 0 failures' "$TMP/$tag.out"; then
					ours_state="FAIL(run)"
					bad+=("$label: run with our library: exit $RC, $(grep -m1 FAIL "$TMP/$tag.out" || true)")
				fi
			fi
			if ! compile "$tag-deb" debian "$lang" "$mode" "$variant"; then
				deb_state=fails
				deb_notes+=("$label: $(first_error "$TMP/$tag-deb.build")")
			fi
			rows+=("$(printf '%-9s %-9s %s' "$ours_state" "$deb_state" "$label")")
		done
	done
done
printf '%-9s %-9s %s\n' ours "Debian's" "compiler and flags (ours must PASS; Debian's header only for comparison)"
printf '%s\n' "${rows[@]}"
[ ${#deb_notes[@]} = 0 ] || printf "Debian's header %s\n" "${deb_notes[@]}"
[ ${#bad[@]} = 0 ] || {
	printf '    %s\n' "${bad[@]}" >&2
	fail "our libaio.h does not build cleanly (or the program fails) under ${#bad[@]} of $n settings"
}

# --- 2. Cross-binary compatibility, with real I/O.
gcc "${WARN[@]}" -std=gnu11 -DLIBAIO_TEST_QUEUE_WAIT -I"$OURS_INC" "$SRC" -laio -o "$TMP/bin/ours-header" \
	>"$TMP/x1.build" 2>&1 || fail_with_log "$TMP/x1.build" "building every_name.c against our header failed"
gcc -O2 -Wall -Wextra -std=gnu11 "$SRC" -laio -o "$TMP/bin/debian-header" \
	>"$TMP/x2.build" 2>&1 || fail_with_log "$TMP/x2.build" "building every_name.c against Debian's header failed"
[ "$(header_used gcc -I"$OURS_INC" "$SRC")" = "$(readlink -f "$OURS_INC/libaio.h")" ] || fail "ours-header build did not use our header"
[ "$(header_used gcc "$SRC")" = "$(readlink -f "$DEB_INC/libaio.h")" ] || fail "debian-header build did not use Debian's header"

ref=
for bin in debian-header ours-header; do
	for lib in debian ours; do
		tag=$bin-run-$lib
		if [ $lib = ours ]; then
			run_traced "$tag" "$OURS_LIBDIR" "$OURS_LIB" -- "$TMP/bin/$bin" "$TMP/scratch"
		else
			run_traced "$tag" "" "$DEB_LIB" -- "$TMP/bin/$bin" "$TMP/scratch"
		fi
		[ "$RC" = 0 ] && grep -qx 'done, 0 failures' "$TMP/$tag.out" ||
			fail_with_log "$TMP/$tag.out" "$tag: built against the $bin, run with $lib's library: exit $RC"
		[ ! -s "$TMP/$tag.err" ] || fail "$tag: unexpected stderr: $(head -c 300 "$TMP/$tag.err")"
		if [ -z "$ref" ]; then
			ref=$tag
		else
			diff -u "$TMP/$ref.out" "$TMP/$tag.out" >"$TMP/$tag.diff" ||
				fail_with_log "$TMP/$tag.diff" "$tag: transcript differs from $ref (- $ref, + $tag)"
		fi
		printf 'built against %-14s run with %-7s PASS (%d transcript lines, same as %s)\n' \
			"$bin" "$lib" "$(wc -l <"$TMP/$tag.out")" "$ref"
	done
done
note "our header builds cleanly in all $n settings; binaries cross between the two libraries"
