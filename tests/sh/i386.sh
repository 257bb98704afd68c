#!/usr/bin/env bash
# The i386 build, natively (an x86_64 kernel runs 32-bit programs, with
# kernel AIO and io_uring through its compat path): `make TARGET=i686-...`,
# then every program of the C suite built with gcc -m32 and run on Debian's
# libaio1:i386 over kernel AIO and on ours on each engine, stdout compared
# as tests/ctests.rs compares it on amd64 (the same kernel-only exclusions,
# tests/kernel_only.tsv). Skips where gcc -m32, the i686 Rust target or
# Debian's libaio1:i386 is missing (tools/deps.sh installs them).
set -eu
KEEP=${LIBAIO_RS_KEEP_TMP:-}
. "$(dirname "$0")/lib/common.sh"
T=i686-unknown-linux-gnu
DEB32=/usr/lib/i386-linux-gnu/libaio.so.1
[ -e "$DEB32" ] || skip "Debian's libaio1:i386 is not installed (dpkg --add-architecture i386; apt-get install libaio1:i386)"
rustup target list --installed 2>/dev/null | grep -qx $T || skip "the Rust target $T is not installed (rustup target add $T)"
# gcc-12-multilib (not gcc-multilib, which conflicts with the cross
# compilers) has no /usr/include/asm: the kernel's x86 headers serve both
# widths, so they are taken from the amd64 directory.
M32=(-m32 -idirafter /usr/include/x86_64-linux-gnu)
printf '#include <errno.h>\nint main(void){return 0;}\n' >"$TMP/m32.c"
gcc "${M32[@]}" "$TMP/m32.c" -o "$TMP/m32" 2>/dev/null && "$TMP/m32" || skip "gcc -m32 cannot build and run here (apt-get install gcc-12-multilib)"
make -s -C "$ROOT" TARGET=$T >"$TMP/make.log" 2>&1 || fail_with_log "$TMP/make.log" "make TARGET=$T failed"
B32=$ROOT/build/$T
file -L "$B32/libaio.so.1" | grep -q 'ELF 32-bit LSB shared object, Intel 80386' || fail "$B32/libaio.so.1 is not an i386 object"
mkdir -p "$TMP/deb" "$TMP/ours" "$TMP/bin"
ln -s "$(readlink -f "$DEB32")" "$TMP/deb/libaio.so.1"
ln -s "$(readlink -f "$B32/libaio.so.1")" "$TMP/ours/libaio.so.1"
# What a user-space engine cannot show as kernel AIO does (tests/kernel_only.tsv).
declare -A WHOLE=() DROP=()
while IFS=$'\t' read -r kind name lines _; do
	[ "$kind" = ctest ] || continue
	if [ "$lines" = - ]; then WHOLE[$name]=1; else DROP[$name]=$lines; fi
done <"$ROOT/tests/kernel_only.tsv"
norm() { awk -v p="${DROP[$1]:-}" 'p == "" || index($0, p) != 1' "$2"; }
run() { # TAG LIBDIR ENGINE PROGRAM
	mkdir -p "$TMP/run/$1"
	RC=0
	env CTEST_TMPDIR="$TMP/run/$1" LD_LIBRARY_PATH="$2" ${3:+LIBAIO_RS_ENGINE=$3} timeout -k 5 60 "$4" \
		</dev/null >"$TMP/$1.out" 2>"$TMP/$1.err" || RC=$?
}
pass=0 bad=()
for src in "$ROOT"/ctests/*.c; do
	name=$(basename "$src" .c)
	gcc "${M32[@]}" -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_FILE_OFFSET_BITS=64 -I "$ROOT/include" -I "$ROOT/ctests" \
		-o "$TMP/bin/$name" "$src" -L"$B32" -laio -lpthread -ldl 2>"$TMP/cc.log" ||
		fail_with_log "$TMP/cc.log" "cannot build ctests/$name.c for i386"
	run "$name-deb" "$TMP/deb" "" "$TMP/bin/$name"
	[ "$RC" = 0 ] || { bad+=("$name: fails with Debian's libaio1:i386 (exit $RC)"); continue; }
	for e in kernel threads io_uring; do
		run "$name-$e" "$TMP/ours" "$e" "$TMP/bin/$name"
		if [ "$e" != kernel ] && [ -n "${WHOLE[$name]:-}" ]; then
			continue
		fi
		if [ "$RC" != 0 ]; then
			bad+=("$name on $e: exit $RC: $(tail -n 2 "$TMP/$name-$e.err" | tr '\n' ' ')")
		elif [ "$e" = kernel ] && ! cmp -s "$TMP/$name-deb.out" "$TMP/$name-$e.out"; then
			bad+=("$name on kernel: output differs from Debian's")
		elif [ "$e" != kernel ] && ! cmp -s <(norm "$name" "$TMP/$name-deb.out") <(norm "$name" "$TMP/$name-$e.out"); then
			bad+=("$name on $e: output differs from Debian's over kernel AIO")
		else
			pass=$((pass + 1))
		fi
	done
done
note "i386: $pass runs the same as Debian's libaio1:i386 over kernel AIO (kernel, threads, io_uring; kernel-only programs left out on the engines)"
if [ ${#bad[@]} -gt 0 ]; then
	printf '    %s\n' "${bad[@]}" >&2
	fail "${#bad[@]} runs not as Debian's"
fi
note "stripped size: $(strip -o "$TMP/s.so" "$B32/libaio.so.1.0.2" && stat -c %s "$TMP/s.so") bytes"
note "PASS"
