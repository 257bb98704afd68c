#!/bin/sh
# Prints the real path of Debian's libaio.so.1, the reference every test and
# benchmark compares against: $LIBAIO_RS_REFERENCE when set, else the one in
# the multiarch directory of $CC's target (Debian's libaio1 package). Exits
# 1, printing nothing, where there is none. The one lookup: tests/sh
# scripts, tests/ctests_support and bench/run.sh all ask here.
set -u
if [ -n "${LIBAIO_RS_REFERENCE:-}" ]; then
	[ -e "$LIBAIO_RS_REFERENCE" ] && readlink -f "$LIBAIO_RS_REFERENCE" && exit 0
	exit 1
fi
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null)
for d in ${multiarch:+/usr/lib/$multiarch /lib/$multiarch}; do
	[ -e "$d/libaio.so.1" ] && readlink -f "$d/libaio.so.1" && exit 0
done
exit 1
