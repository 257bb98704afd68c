#!/usr/bin/env bash
# `make install` the way libaio's own does it:
# 1. `make install DESTDIR=D PREFIX=/usr`: the files and links under D/usr,
#    relative links, modes, a libaio.pc that names /usr (not D);
# 2. after `make`, `make install prefix=P libdir=P/lib64 INCLUDEDIR=P/inc`:
#    the tree there, `pkg-config --cflags --libs libaio` giving those paths, a
#    program built with them running on the installed library (LD_DEBUG=files
#    and dladdr say which), and a static link with the installed libaio.a
#    doing real I/O;
# 3. CC, CFLAGS and LDFLAGS from the environment reaching the final link
#    (a CC wrapper's log, and marks on the linked library).
set -eu
cd "${LIBAIO_RS_ROOT:-$(dirname "$0")/../..}"
root=$PWD build=$(realpath -m "${LIBAIO_RS_BUILD_DIR:-build}") tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: ${0##*/}: $*" >&2; exit 1; }
prog=$root/tests/c/roundtrip.c
make_quiet() {
	make -s B="$build" "$@" >"$tmp/make.log" 2>&1 || {
		cat "$tmp/make.log" >&2
		fail "make $* failed"
	}
}
# The files of an installed tree: libdir and includedir.
check_tree() {
	local lib=$1 inc=$2 f
	for f in "$lib/libaio.so.1.0.2" "$lib/libaio.a" "$inc/libaio.h" "$lib/pkgconfig/libaio.pc"; do
		[ -f "$f" ] && [ ! -L "$f" ] || fail "$f is missing or not a regular file"
	done
	for f in libaio.so.1 libaio.so; do
		[ -L "$lib/$f" ] || fail "$lib/$f is not a symbolic link"
		[ "$(readlink "$lib/$f")" = libaio.so.1.0.2 ] ||
			fail "$lib/$f points to '$(readlink "$lib/$f")', want libaio.so.1.0.2 (relative)"
	done
	[ "$(stat -c %a "$lib/libaio.so.1.0.2")" = 755 ] || fail "$lib/libaio.so.1.0.2 is not mode 755"
	for f in "$lib/libaio.a" "$inc/libaio.h" "$lib/pkgconfig/libaio.pc"; do
		[ "$(stat -c %a "$f")" = 644 ] || fail "$f is not mode 644"
	done
	cmp -s "$inc/libaio.h" include/libaio.h || fail "$inc/libaio.h is not include/libaio.h"
	cmp -s "$lib/libaio.so.1.0.2" "$build/libaio.so.1.0.2" || fail "$lib/libaio.so.1.0.2 is not the built library"
	cmp -s "$lib/libaio.a" "$build/libaio.a" || fail "$lib/libaio.a is not the built archive"
}
pc() { PKG_CONFIG_PATH=$1 PKG_CONFIG_LIBDIR=$1 pkg-config "${@:2}" libaio; }

# 1. DESTDIR + PREFIX.
dest=$tmp/dest
make_quiet install DESTDIR="$dest" PREFIX=/usr
check_tree "$dest/usr/lib" "$dest/usr/include"
extra=$(cd "$dest" && find . ! -type d | sort | grep -vxE './usr/lib/(libaio\.(so(\.1(\.0\.2)?)?|a)|pkgconfig/libaio\.pc)|./usr/include/libaio\.h|./usr/share/man/man[37]/(io|io_[a-z0-9_]+|libaio)\.[37]' || true)
[ -z "$extra" ] || fail "unexpected files installed under DESTDIR: $extra"
pcdir=$dest/usr/lib/pkgconfig
for v in prefix=/usr libdir=/usr/lib includedir=/usr/include; do
	got=$(pc "$pcdir" --variable="${v%%=*}")
	[ "$got" = "${v#*=}" ] || fail "DESTDIR install: libaio.pc has ${v%%=*}='$got', want '${v#*=}'"
done
[ "$(pc "$pcdir" --modversion)" = 0.3.113 ] || fail "libaio.pc version is not 0.3.113"
echo "DESTDIR=\$tmp PREFIX=/usr: $(cd "$dest" && find . ! -type d | sort | tr '\n' ' ')"

# 2. prefix, libdir, INCLUDEDIR, after a plain `make` (so a stale libaio.pc would show).
make_quiet all
p=$tmp/p
make_quiet install prefix="$p" libdir="$p/lib64" INCLUDEDIR="$p/inc"
check_tree "$p/lib64" "$p/inc"
[ ! -e "$p/lib" ] || fail "files went to $p/lib although libdir=$p/lib64"
flags=$(pc "$p/lib64/pkgconfig" --cflags --libs | sed "s/ *$//")
[ "$flags" = "-I$p/inc -L$p/lib64 -laio" ] ||
	fail "pkg-config --cflags --libs libaio gives '$flags', want '-I$p/inc -L$p/lib64 -laio'"
echo "pkg-config --cflags --libs libaio: $flags"

# A program built with those flags includes the installed header and runs on
# the installed library.
# shellcheck disable=SC2086 # $flags is a list of compiler arguments
gcc -Wall -Werror -DOLD_GETEVENTS -o "$tmp/dyn" "$prog" $flags -Wl,-rpath,"$p/lib64" ||
	fail "cannot build against the installed tree"
# shellcheck disable=SC2086
gcc -M "$prog" $(pc "$p/lib64/pkgconfig" --cflags) | grep -q "$p/inc/libaio.h" ||
	fail "the program did not include $p/inc/libaio.h"
LD_DEBUG=files "$tmp/dyn" "$tmp/data" >"$tmp/dyn.out" 2>"$tmp/dyn.debug" || {
	cat "$tmp/dyn.out" "$tmp/dyn.debug" >&2
	fail "the program built with pkg-config's flags failed"
}
grep -q "calling init: $p/lib64/libaio.so.1\$" "$tmp/dyn.debug" ||
	fail "LD_DEBUG=files: $p/lib64/libaio.so.1 was not loaded: $(grep -i libaio "$tmp/dyn.debug")"
! grep -q 'x86_64-linux-gnu/libaio' "$tmp/dyn.debug" || fail "LD_DEBUG=files: the system libaio was loaded"
grep -qx "served-by: $p/lib64/libaio.so.1" "$tmp/dyn.out" || fail "io_submit not served by the installed library: $(cat "$tmp/dyn.out")"
grep -qx 'roundtrip: ok' "$tmp/dyn.out" || fail "roundtrip did not finish: $(cat "$tmp/dyn.out")"
echo "dynamic program: real I/O and io_getevents@LIBAIO_0.1 ok, served by $p/lib64/libaio.so.1"

# A static link with the installed libaio.a (libc stays dynamic).
# shellcheck disable=SC2086
gcc -Wall -Werror -DOLD_GETEVENTS -o "$tmp/static" "$prog" $(pc "$p/lib64/pkgconfig" --cflags) \
	-L"$p/lib64" -Wl,-Bstatic -laio -Wl,-Bdynamic || fail "cannot link statically with $p/lib64/libaio.a"
! readelf -d "$tmp/static" | grep -q 'NEEDED.*libaio' || fail "the static link still needs libaio.so"
nm "$tmp/static" | grep -q ' T io_submit$' || fail "io_submit is not defined in the static program"
"$tmp/static" "$tmp/data" >"$tmp/static.out" 2>&1 || {
	cat "$tmp/static.out" >&2
	fail "the statically linked program failed"
}
grep -qx "served-by: $tmp/static" "$tmp/static.out" || fail "static program: io_submit not in the program: $(cat "$tmp/static.out")"
grep -qx 'roundtrip: ok' "$tmp/static.out" || fail "static roundtrip did not finish"
echo "static program: real I/O ok, io_submit linked into the executable"

# 3. CC, CFLAGS, LDFLAGS from the environment reach the final link.
cat >"$tmp/cc" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$tmp/cc.log"
exec gcc "\$@"
EOF
chmod +x "$tmp/cc"
readelf -n "$build/libaio.so.1.0.2" | grep -q 'Build ID' || fail "the default build has no build-id: the LDFLAGS mark would prove nothing"
! readelf -d "$build/libaio.so.1.0.2" | grep -q 'NODELETE' || fail "the default build is NODELETE: the CFLAGS mark would prove nothing"
b2=$tmp/b2
CC=$tmp/cc CFLAGS='-O2 -Wl,-z,nodelete' LDFLAGS='-Wl,--build-id=none' \
	make -s B="$b2" install prefix="$tmp/q" >"$tmp/make.log" 2>&1 || {
	cat "$tmp/make.log" >&2
	fail "make install with CC/CFLAGS/LDFLAGS failed"
}
grep -- '-shared' "$tmp/cc.log" | grep -- '-Wl,-z,nodelete' | grep -q -- '-Wl,--build-id=none' ||
	fail "no link through \$CC with \$CFLAGS and \$LDFLAGS; \$CC saw: $(cat "$tmp/cc.log" 2>/dev/null)"
so=$tmp/q/lib/libaio.so.1.0.2
! readelf -n "$so" | grep -q 'Build ID' || fail "LDFLAGS=-Wl,--build-id=none did not reach the link: $so has a build-id"
readelf -d "$so" | grep -q 'NODELETE' || fail "CFLAGS=-Wl,-z,nodelete did not reach the link: $so is not NODELETE"
echo "CC/CFLAGS/LDFLAGS: link ran through \$CC; result has no build-id (LDFLAGS) and is NODELETE (CFLAGS)"
echo "install_tree: ok"
