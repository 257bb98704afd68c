#!/usr/bin/env bash
# libaio 0.3.113 answers io_getevents/io_pgetevents with a {0,0} timeout on
# an empty ring without a system call (it reads the ring's head and tail), and
# so must ours. Runs ctests/empty_ring under strace with Debian's libaio and
# with ours, and checks that the main thread makes no io_getevents or
# io_pgetevents system call inside the sections the program marks (the
# program's output itself is compared by tests/ctests.rs). Skips (77) when
# strace is missing or cannot trace here.
set -u
cd "${LIBAIO_RS_ROOT:-$(dirname "$0")/../..}" || exit 1

command -v strace >/dev/null 2>&1 || { echo "strace is not installed: skipped"; exit 77; }
strace -f -qq -o /dev/null true 2>/dev/null || { echo "strace cannot trace here: skipped"; exit 77; }
build=${LIBAIO_RS_BUILD_DIR:-build}
[ -e "$build/libaio.so.1" ] || { echo "$build/libaio.so.1 is missing: run make first" >&2; exit 1; }
ref=$("${LIBAIO_RS_ROOT:-.}/tools/debian-libaio.sh" || true)
[ -n "$ref" ] || { echo "Debian's libaio.so.1 is not installed (apt-get install libaio1)" >&2; exit 1; }

json=$(cargo test --no-run --test ctests --message-format=json 2>/dev/null) || {
	cargo test --no-run --test ctests >&2
	exit 1
}
out=$(printf '%s\n' "$json" | grep '"reason":"build-script-executed"' |
	grep '"package_id":"path+file://[^"]*#libaio@' |
	sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)
prog=$out/ctests/empty_ring
[ -x "$prog" ] || { echo "cannot find ctests/empty_ring (OUT_DIR '$out')" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for who in debian ours; do
	if [ "$who" = debian ]; then lib=$ref; else lib=$(realpath "$build/libaio.so.1"); fi
	mkdir -p "$tmp/$who"
	ln -s "$lib" "$tmp/$who/libaio.so.1"
	CTEST_TMPDIR=$tmp LD_LIBRARY_PATH=$tmp/$who strace -f -qq -s 200 -o "$tmp/$who.trace" \
		-e trace=write,io_getevents,io_pgetevents "$prog" >"$tmp/$who.out" 2>"$tmp/$who.err"
	rc=$?
	if [ "$rc" -ne 0 ] || ! grep -qxF "ctest-loaded: $lib" "$tmp/$who.err"; then
		echo "$who: empty_ring failed under strace (exit $rc)"
		cat "$tmp/$who.err"
		status=1
		continue
	fi
	# Lines are "PID syscall(...)"; the main thread's PID is the first one.
	read -r sections calls < <(awk '
		NR == 1 { main = $1 }
		$1 != main { next }
		/write\(1, "\[no-syscall section begins\]/ { inside = 1; sections++ }
		/write\(1, "\[no-syscall section ends\]/ { inside = 0 }
		inside && $2 ~ /^(io_getevents|io_pgetevents)\(/ { calls++; print > "/dev/stderr" }
		END { print sections + 0, calls + 0 }' "$tmp/$who.trace")
	echo "$who: $sections sections, $calls io_getevents/io_pgetevents system calls in them"
	if [ "$sections" -ne 3 ] || [ "$calls" -ne 0 ]; then
		status=1
	fi
done
((status == 0)) && echo "no-syscall: 2 passed, 0 failed"
exit $status
