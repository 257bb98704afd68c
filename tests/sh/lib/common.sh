# shellcheck shell=bash disable=SC2034 # sets RC, ODIRECT_DIR, ... for the scripts
# Shared by the tests/sh/*.sh scripts (sourced, never run on its own; the
# check runner only runs tests/sh/*.sh, so this file is not a test).
#
# Gives each script: ROOT and BUILD, a temp dir ($TMP) removed on exit with
# any cleanup the script registered, our library installed into a temp
# prefix, Debian's library located, and a way to run a program and prove
# which libaio.so.1 the dynamic loader really gave it.

ROOT=${LIBAIO_RS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BUILD=${LIBAIO_RS_BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

# The program install_tree.sh and three_ways.sh build and run: real I/O,
# an io_queue_run callback, io_getevents@LIBAIO_0.1 with -DOLD_GETEVENTS;
# prints "served-by: FILE" (where io_submit was found) and "roundtrip: ok".
ROUNDTRIP=$ROOT/tests/c/roundtrip.c

# Scripts name themselves in every message.
ME=$(basename "$0" .sh)

note() { printf '%s: %s\n' "$ME" "$*"; }
fail() {
	printf '%s: FAIL: %s\n' "$ME" "$*" >&2
	exit 1
}
skip() {
	printf '%s: SKIP: %s\n' "$ME" "$*" >&2
	exit 77
}

# Cleanup commands run in reverse order of registration, then $TMP goes.
CLEANUPS=()
at_exit() { CLEANUPS+=("$1"); }
run_cleanups() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}" || true
	done
	if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then rm -rf "$TMP"; fi
}
trap run_cleanups EXIT
trap 'exit 130' INT TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/libaio-rs-$ME.XXXXXX")

# Prints the log of a failed step, then fails with the message.
fail_with_log() {
	local log=$1
	shift
	sed 's/^/    | /' "$log" | tail -n 60 >&2
	fail "$*"
}

# require_cmd CMD PACKAGE: fails naming the Debian package that provides CMD.
require_cmd() {
	command -v "$1" >/dev/null 2>&1 || fail "'$1' not found: apt-get install $2"
}

# install_ours DESTDIR: `make install` of the repository into DESTDIR with
# PREFIX=/usr; sets OURS_INC, OURS_LIBDIR and OURS_LIB (the real file).
install_ours() {
	local dest=$1
	make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr B="$BUILD" >"$TMP/make-install.log" 2>&1 ||
		fail_with_log "$TMP/make-install.log" "make install DESTDIR=$dest PREFIX=/usr failed"
	OURS_INC=$dest/usr/include
	OURS_LIBDIR=$dest/usr/lib
	[ -f "$OURS_INC/libaio.h" ] || fail "make install put no libaio.h in $OURS_INC"
	[ -e "$OURS_LIBDIR/libaio.so.1" ] || fail "make install put no libaio.so.1 in $OURS_LIBDIR"
	[ -e "$OURS_LIBDIR/libaio.so" ] || fail "make install put no libaio.so link in $OURS_LIBDIR"
	OURS_LIB=$(readlink -f "$OURS_LIBDIR/libaio.so.1")
}

# header_used COMPILER FLAGS... SOURCE: prints the real path of the libaio.h
# that the compiler resolves for SOURCE with those flags.
header_used() {
	local h
	h=$("$@" -M 2>/dev/null | tr ' \\' '\n\n' | grep '/libaio\.h$' | head -n 1) || true
	[ -z "$h" ] || readlink -f "$h"
}

# find_debian: Debian's libaio1 and libaio-dev; sets DEB_INC and DEB_LIB.
find_debian() {
	DEB_INC=/usr/include
	[ -f "$DEB_INC/libaio.h" ] || fail "Debian's /usr/include/libaio.h is missing: apt-get install libaio-dev"
	DEB_LIB=$("$ROOT/tools/debian-libaio.sh") || fail "Debian's libaio.so.1 is missing: apt-get install libaio1"
	[ "$DEB_LIB" != "${OURS_LIB:-}" ] || fail "the system libaio.so.1 ($DEB_LIB) is ours, not Debian's"
	dpkg -S "$DEB_LIB" >/dev/null 2>&1 ||
		fail "$DEB_LIB does not belong to a Debian package (is our library installed over it?)"
}

# run_traced TAG LIBDIR EXPECTED_LIB -- CMD...: runs CMD with LD_LIBRARY_PATH
# set to LIBDIR (empty: unset, so the system's library is found), stdout and
# stderr to $TMP/TAG.out and $TMP/TAG.err; RC holds the exit status. The
# loader's own trace (LD_DEBUG=files, one file per process, so forked
# children count too) must show EXPECTED_LIB, and only it, as the libaio
# that every process initialised.
run_traced() {
	local tag=$1 libdir=$2 expected=$3
	shift 4
	local trace=$TMP/ld-$tag
	rm -f "$trace".*
	RC=0
	(
		unset LD_PRELOAD LD_LIBRARY_PATH
		[ -z "$libdir" ] || export LD_LIBRARY_PATH=$libdir
		export LD_DEBUG=files LD_DEBUG_OUTPUT=$trace
		exec "$@"
	) >"$TMP/$tag.out" 2>"$TMP/$tag.err" || RC=$?
	assert_loaded "$tag" "$expected" "$trace"
}

# assert_loaded TAG EXPECTED_LIB TRACE_PREFIX
assert_loaded() {
	local tag=$1 expected=$2 trace=$3 f libs lib n=0
	for f in "$trace".*; do
		[ -e "$f" ] || fail "$tag: the loader wrote no LD_DEBUG trace (is the program dynamic?)"
		libs=$(sed -n 's/.*calling init: \(.*libaio\.so[^ ]*\).*/\1/p' "$f")
		[ -n "$libs" ] || continue
		while IFS= read -r lib; do
			n=$((n + 1))
			[ "$(readlink -f "$lib")" = "$expected" ] ||
				fail "$tag: process loaded $lib, expected $expected (trace $f)"
		done <<<"$libs"
	done
	[ "$n" -gt 0 ] || fail "$tag: no libaio.so was loaded at all (expected $expected)"
}

# odirect_dir: sets ODIRECT_DIR to a new temp dir (removed on exit) in which
# O_DIRECT reads and writes of 512 bytes work (tmpfs has O_DIRECT only from
# Linux 6.6); tries $TMPDIR, /var/tmp, /dev/shm and the build directory.
odirect_dir() {
	local base d
	for base in "${TMPDIR:-/tmp}" /var/tmp /dev/shm "$BUILD"; do
		[ -d "$base" ] && [ -w "$base" ] || continue
		d=$(mktemp -d "$base/libaio-rs-$ME-odirect.XXXXXX") || continue
		if dd if=/dev/zero of="$d/probe" bs=512 count=8 oflag=direct status=none 2>/dev/null &&
			dd if="$d/probe" of=/dev/null bs=512 count=8 iflag=direct status=none 2>/dev/null; then
			rm -f "$d/probe"
			at_exit "rm -rf '$d'"
			ODIRECT_DIR=$d
			return 0
		fi
		rm -rf "$d"
	done
	fail "no directory supports O_DIRECT (tried ${TMPDIR:-/tmp}, /var/tmp, /dev/shm, $BUILD)"
}

# sanitized_staticlib KIND (address or thread): builds our staticlib with
# nightly's -Zsanitizer=KIND into target/asan or target/tsan (a cache that
# leaves the normal build alone), core too where rust-src is installed. Skips
# the test when the nightly toolchain is missing. Sets STATICLIB_SAN (the
# archive) and SAN_WHAT (what was instrumented, for the summary).
sanitized_staticlib() {
	local kind=$1 dir
	case $kind in address) dir=asan ;; thread) dir=tsan ;; *) fail "sanitized_staticlib: unknown kind $kind" ;; esac
	# Listed first: `rustup run` may offer to install a missing toolchain.
	if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list 2>/dev/null | grep -q '^nightly-' ||
		! rustup run nightly rustc -V >/dev/null 2>&1; then
		skip "the nightly Rust toolchain is not installed (-Zsanitizer needs it)"
	fi
	local host sysroot rustflags="-Zsanitizer=$kind -Cforce-frame-pointers=yes" build_std=()
	host=$(rustup run nightly rustc -vV | sed -n 's/^host: //p')
	sysroot=$(rustup run nightly rustc --print sysroot)
	# Without rust-src, core's non-inlined code stays uninstrumented, which
	# rustc accepts only when told to (TSan insists on it).
	if [ -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ]; then
		build_std=(-Zbuild-std=core)
		SAN_WHAT="our crates, their dependencies and core"
	else
		rustflags+=" -Cunsafe-allow-abi-mismatch=sanitizer"
		SAN_WHAT="our crates and their dependencies (core is not: rust-src is not installed)"
	fi
	note "building the instrumented staticlib (target/$dir)"
	(
		unset CARGO_ENCODED_RUSTFLAGS
		export LIBAIO_RS_NO_CTESTS=1 CARGO_TARGET_DIR=$ROOT/target/$dir RUSTFLAGS=$rustflags \
			CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
		rustup run nightly cargo build --release -p libaio-so --target "$host" "${build_std[@]}"
	) >"$TMP/cargo.log" 2>&1 || fail_with_log "$TMP/cargo.log" "nightly cargo build with -Zsanitizer=$kind failed"
	STATICLIB_SAN=$ROOT/target/$dir/$host/release/libaio_so.a
}

# ctest_programs: builds the C conformance suite (cargo builds it with the
# package's build script) and sets CTESTS_OUT to the directory holding
# ctests/ and ctests-differ/.
ctest_programs() {
	local json
	json=$(cd "$ROOT" && cargo test --no-run --test ctests --test differences --message-format=json 2>/dev/null) ||
		fail "cargo could not build the C test programs (cargo test --no-run --test ctests)"
	CTESTS_OUT=$(printf '%s\n' "$json" | grep '"reason":"build-script-executed"' |
		grep '"package_id":"path+file://[^"]*#libaio@' |
		sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)
	[ -n "$CTESTS_OUT" ] && [ -d "$CTESTS_OUT/ctests" ] ||
		fail "cannot find the compiled C test programs (OUT_DIR '$CTESTS_OUT')"
}

# Debian's reference runs, computed once per `make check`: tools/check.sh
# points LIBAIO_RS_REF_CACHE at a directory of its run, and every script that
# runs the same program on Debian's libaio over kernel AIO takes the result
# from there after the first. Outside make check, or with the variable unset,
# each script runs its own reference.
# ref_get KEY DEST...: copies the cached files of KEY (in order) to DEST...;
# fails (status 1) when KEY is not cached.
ref_get() {
	local key=$1 i=0 f
	shift
	[ -n "${LIBAIO_RS_REF_CACHE:-}" ] && [ -d "$LIBAIO_RS_REF_CACHE/$key.d" ] || return 1
	for f in "$@"; do
		cp "$LIBAIO_RS_REF_CACHE/$key.d/$i" "$f" || return 1
		i=$((i + 1))
	done
}
# ref_put KEY SRC...: caches SRC... as KEY's files (no-op outside make
# check). Written in a directory of this process, then renamed whole: two
# scripts may cache the same KEY at once (the first rename wins).
ref_put() {
	local key=$1 i=0 f tmp
	shift
	[ -n "${LIBAIO_RS_REF_CACHE:-}" ] || return 0
	mkdir -p "$LIBAIO_RS_REF_CACHE"
	tmp=$(mktemp -d "$LIBAIO_RS_REF_CACHE/.put.XXXXXX") || return 0
	for f in "$@"; do
		cp "$f" "$tmp/$i" || { rm -rf "$tmp"; return 0; }
		i=$((i + 1))
	done
	mv -T "$tmp" "$LIBAIO_RS_REF_CACHE/$key.d" 2>/dev/null || rm -rf "$tmp"
}
