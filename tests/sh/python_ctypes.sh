#!/usr/bin/env bash
# Our exported helpers from Python's ctypes (tests/python/ctypes_helpers.py):
# 1. real I/O on build/libaio.so.1: io_setup, io_prep_pwrite + io_set_eventfd
#    + io_set_callback (eventfd signalled, io_queue_run calls back),
#    io_prep_pread and io_prep_preadv read back through io_getevents and
#    compared, io_fsync, -errno with errno untouched, io_destroy;
# 2. the iocb bytes our exported helpers write equal those of the static
#    inline helpers in Debian's libaio.h (tests/c/iocb_bytes.c), call by call.
set -eu
cd "${LIBAIO_RS_ROOT:-$(dirname "$0")/../..}"
root=$PWD build=$(realpath -m "${LIBAIO_RS_BUILD_DIR:-build}") tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: ${0##*/}: $*" >&2; exit 1; }
lib=$build/libaio.so.1
helper=$root/tests/python/ctypes_helpers.py
[ -f "$lib" ] || fail "$lib is missing: run 'make' first"
[ -f /usr/include/libaio.h ] || fail "/usr/include/libaio.h is missing: install Debian's libaio-dev"

# 1. Real I/O; the library loaded must be ours, not Debian's.
LD_DEBUG=files LD_DEBUG_OUTPUT=$tmp/ld python3 "$helper" "$lib" "$tmp" >"$tmp/io.out" 2>&1 || {
	cat "$tmp/io.out" >&2
	fail "ctypes real I/O failed"
}
cat "$tmp/io.out"
grep -qx 'ctypes: ok' "$tmp/io.out" || fail "the ctypes run did not finish"
cat "$tmp"/ld.* >"$tmp/ld"
grep -q "calling init: $lib\$" "$tmp/ld" || fail "python did not load $lib"
! grep -q 'x86_64-linux-gnu/libaio' "$tmp/ld" || fail "python loaded Debian's libaio"

# 2. Our exported helpers against Debian's static inline ones, byte for byte.
gcc -Wall -Wextra -Werror -o "$tmp/iocb_bytes" "$root/tests/c/iocb_bytes.c" -laio ||
	fail "cannot build tests/c/iocb_bytes.c against Debian's libaio-dev"
gcc -M "$root/tests/c/iocb_bytes.c" | grep -q ' /usr/include/libaio.h' || fail "iocb_bytes.c did not include Debian's header"
"$tmp/iocb_bytes" >"$tmp/debian.bytes" || fail "tests/c/iocb_bytes.c failed"
python3 "$helper" "$lib" --iocb-bytes >"$tmp/ours.bytes" || fail "ctypes_helpers.py --iocb-bytes failed"
[ "$(wc -l <"$tmp/debian.bytes")" -ge 15 ] || fail "iocb_bytes printed too little: $(cat "$tmp/debian.bytes")"
if ! diff -u "$tmp/debian.bytes" "$tmp/ours.bytes" >"$tmp/bytes.diff"; then
	cat "$tmp/bytes.diff" >&2
	fail "iocb bytes from our exported helpers differ from Debian's static inline ones (- Debian, + ours)"
fi
echo "iocb bytes equal to Debian's inline helpers for: $(cut -d' ' -f1 "$tmp/debian.bytes" | sort -u | tr '\n' ' ')"
echo "python_ctypes: ok"
