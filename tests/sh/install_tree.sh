#!/usr/bin/env bash
# `make install` the way libaio's own does it, and `make uninstall`:
# 1. `make install DESTDIR=D PREFIX=/usr`: the files and links under D/usr
#    (libaio.so.1t64 too, which libaio(7) says is installed), relative
#    links, modes, a libaio.pc that names /usr (not D); `make uninstall` with
#    the same variables leaves no file behind;
# 2. after `make`, `make install prefix=P libdir=P/lib64 INCLUDEDIR=P/inc`:
#    the tree there, `pkg-config --cflags --libs libaio` giving those paths, a
#    program built with them and the rpath the README shows running on the
#    installed library (LD_DEBUG=files, ldd and dladdr say which), and a
#    static link with the installed libaio.a doing real I/O;
# 3. CC, CFLAGS and LDFLAGS from the environment reaching the final link
#    (a CC wrapper's log, and marks on the linked library);
#    (and `make install prefix=P` as root leaves the loader's cache alone);
# 4. the default prefix is /usr/local (nothing goes to /usr, whose libaio
#    files dpkg owns); as root, a real `make install` with no variables, in a
#    private mount namespace (a tmpfs on /usr/local, the loader's cache in a
#    temp file): it runs ldconfig, after which plain `gcc prog.c -laio`
#    compiles with the installed header and runs on the installed library
#    (the README's claim); `make uninstall` then leaves nothing in /usr/local
#    and the program runs on Debian's library again.
set -eu
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT"
# Every make here logs its ldconfig instead of running it (step 4 runs it
# for real, in its own namespace): a test must not rewrite the system's cache.
make_quiet() {
	make -s B="$BUILD" LDCONFIG="echo ldconfig >>'$TMP/ldconfig.log'" "$@" >"$TMP/make.log" 2>&1 ||
		fail_with_log "$TMP/make.log" "make $* failed"
}
# ran_ldconfig WANT(yes|no) WHAT: whether the last make ran $(LDCONFIG).
ran_ldconfig() {
	local got=no
	[ ! -s "$TMP/ldconfig.log" ] || got=yes
	rm -f "$TMP/ldconfig.log"
	[ "$got" = "$1" ] || fail "$2: ldconfig run: $got, expected $1"
}
# The files of an installed tree: libdir and includedir.
check_tree() {
	local lib=$1 inc=$2 f
	for f in "$lib/libaio.so.1.0.2" "$lib/libaio.a" "$inc/libaio.h" "$lib/pkgconfig/libaio.pc"; do
		[ -f "$f" ] && [ ! -L "$f" ] || fail "$f is missing or not a regular file"
	done
	for f in libaio.so.1:libaio.so.1.0.2 libaio.so:libaio.so.1.0.2 libaio.so.1t64:libaio.so.1t64.0.2; do
		[ -L "$lib/${f%:*}" ] || fail "$lib/${f%:*} is not a symbolic link"
		[ "$(readlink "$lib/${f%:*}")" = "${f#*:}" ] ||
			fail "$lib/${f%:*} points to '$(readlink "$lib/${f%:*}")', want ${f#*:} (relative)"
	done
	for f in libaio.so.1.0.2 libaio.so.1t64.0.2; do
		[ -f "$lib/$f" ] && [ ! -L "$lib/$f" ] || fail "$lib/$f is missing or not a regular file"
		[ "$(stat -c %a "$lib/$f")" = 755 ] || fail "$lib/$f is not mode 755"
	done
	# The twin libaio(7) promises: same code, the soname libaio.so.1t64.
	readelf -d "$lib/libaio.so.1t64.0.2" | grep -q 'SONAME.*\[libaio\.so\.1t64\]' ||
		fail "$lib/libaio.so.1t64.0.2 does not have the soname libaio.so.1t64"
	cmp -s <(readelf --dyn-syms -W "$lib/libaio.so.1t64.0.2" | awk '$7 != "UND" {print $8}' | sort) \
		<(readelf --dyn-syms -W "$lib/libaio.so.1.0.2" | awk '$7 != "UND" {print $8}' | sort) ||
		fail "libaio.so.1t64.0.2 does not export the same versioned symbols as libaio.so.1.0.2"
	for f in "$lib/libaio.a" "$inc/libaio.h" "$lib/pkgconfig/libaio.pc"; do
		[ "$(stat -c %a "$f")" = 644 ] || fail "$f is not mode 644"
	done
	cmp -s "$inc/libaio.h" include/libaio.h || fail "$inc/libaio.h is not include/libaio.h"
	cmp -s "$lib/libaio.so.1.0.2" "$BUILD/libaio.so.1.0.2" || fail "$lib/libaio.so.1.0.2 is not the built library"
	cmp -s "$lib/libaio.a" "$BUILD/libaio.a" || fail "$lib/libaio.a is not the built archive"
}
pc() { PKG_CONFIG_PATH=$1 PKG_CONFIG_LIBDIR=$1 pkg-config "${@:2}" libaio; }

# 1. DESTDIR + PREFIX.
dest=$TMP/dest
make_quiet install DESTDIR="$dest" PREFIX=/usr
ran_ldconfig no "make install DESTDIR=..."
check_tree "$dest/usr/lib" "$dest/usr/include"
extra=$(cd "$dest" && find . ! -type d | sort | grep -vxE './usr/lib/(libaio\.(so(\.1(t64)?(\.0\.2)?)?|a)|pkgconfig/libaio\.pc)|./usr/include/libaio\.h|./usr/share/man/man[37]/(io|io_[a-z0-9_]+|libaio|libaio_rs_version)\.[37]' || true)
[ -z "$extra" ] || fail "unexpected files installed under DESTDIR: $extra"
pcdir=$dest/usr/lib/pkgconfig
for v in prefix=/usr libdir=/usr/lib includedir=/usr/include; do
	got=$(pc "$pcdir" --variable="${v%%=*}")
	[ "$got" = "${v#*=}" ] || fail "DESTDIR install: libaio.pc has ${v%%=*}='$got', want '${v#*=}'"
done
[ "$(pc "$pcdir" --modversion)" = 0.3.113 ] || fail "libaio.pc version is not 0.3.113"
rs=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
[ "$(pc "$pcdir" --variable=libaio_rs_version)" = "$rs" ] || fail "libaio.pc: libaio_rs_version is not $rs"
echo "DESTDIR=\$TMP PREFIX=/usr: $(cd "$dest" && find . ! -type d | sort | tr '\n' ' ')"
make_quiet uninstall DESTDIR="$dest" PREFIX=/usr
ran_ldconfig no "make uninstall DESTDIR=..."
left=$(cd "$dest" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall DESTDIR=... PREFIX=/usr left: $left"
echo "make uninstall with the same variables: no file left"

# 2. prefix, libdir, INCLUDEDIR, after a plain `make` (so a stale libaio.pc would show).
make_quiet all
p=$TMP/p
make_quiet install prefix="$p" libdir="$p/lib64" INCLUDEDIR="$p/inc"
# No DESTDIR, but a private prefix: no ldconfig, even as root (the
# system's loader cache is not rewritten for a tree it does not serve).
ran_ldconfig no "make install prefix=$p (private) as uid $(id -u)"
check_tree "$p/lib64" "$p/inc"
[ ! -e "$p/lib" ] || fail "files went to $p/lib although libdir=$p/lib64"
flags=$(pc "$p/lib64/pkgconfig" --cflags --libs | sed "s/ *$//")
[ "$flags" = "-I$p/inc -L$p/lib64 -laio" ] ||
	fail "pkg-config --cflags --libs libaio gives '$flags', want '-I$p/inc -L$p/lib64 -laio'"
echo "pkg-config --cflags --libs libaio: $flags"

# A program built with those flags includes the installed header and runs on
# the installed library.
# shellcheck disable=SC2086 # $flags is a list of compiler arguments
gcc -Wall -Werror -DOLD_GETEVENTS -o "$TMP/dyn" "$ROUNDTRIP" $flags -Wl,-rpath,"$p/lib64" ||
	fail "cannot build against the installed tree"
# shellcheck disable=SC2046 # pkg-config's output is a list of arguments
gcc -M "$ROUNDTRIP" $(pc "$p/lib64/pkgconfig" --cflags) | grep -q "$p/inc/libaio.h" ||
	fail "the program did not include $p/inc/libaio.h"
LD_DEBUG=files "$TMP/dyn" "$TMP/data" >"$TMP/dyn.out" 2>"$TMP/dyn.debug" || {
	cat "$TMP/dyn.out" "$TMP/dyn.debug" >&2
	fail "the program built with pkg-config's flags failed"
}
grep -q "calling init: $p/lib64/libaio.so.1\$" "$TMP/dyn.debug" ||
	fail "LD_DEBUG=files: $p/lib64/libaio.so.1 was not loaded: $(grep -i libaio "$TMP/dyn.debug")"
! grep -q 'x86_64-linux-gnu/libaio' "$TMP/dyn.debug" || fail "LD_DEBUG=files: the system libaio was loaded"
grep -qx "served-by: $p/lib64/libaio.so.1" "$TMP/dyn.out" || fail "io_submit not served by the installed library: $(cat "$TMP/dyn.out")"
grep -qx 'roundtrip: ok' "$TMP/dyn.out" || fail "roundtrip did not finish: $(cat "$TMP/dyn.out")"
ldd "$TMP/dyn" | grep -q "libaio\.so\.1 => $p/lib64/libaio\.so\.1 " ||
	fail "ldd does not show $p/lib64/libaio.so.1: $(ldd "$TMP/dyn" | grep libaio)"
echo "dynamic program: real I/O and io_getevents@LIBAIO_0.1 ok, served by $p/lib64/libaio.so.1 (ldd agrees)"
# Without the rpath the same build runs on whatever libaio.so.1 the loader
# finds in its cache, not on the installed one: why the README shows the rpath.
# shellcheck disable=SC2086
gcc -Wall -Werror -DOLD_GETEVENTS -o "$TMP/norpath" "$ROUNDTRIP" $flags || fail "cannot build without the rpath"
if sys=$(ldconfig -p | awk '$1 == "libaio.so.1" && /x86-64/ {print $NF; exit}') && [ -n "$sys" ]; then
	"$TMP/norpath" "$TMP/data" >"$TMP/norpath.out" 2>&1 || fail "the program without rpath failed: $(cat "$TMP/norpath.out")"
	grep -qx "served-by: $sys" "$TMP/norpath.out" ||
		fail "without the rpath, expected the system's $sys: $(grep served-by "$TMP/norpath.out")"
	echo "the same program without the rpath: served by the system's $sys"
fi

# A static link with the installed libaio.a (libc stays dynamic).
# shellcheck disable=SC2046
gcc -Wall -Werror -DOLD_GETEVENTS -o "$TMP/static" "$ROUNDTRIP" $(pc "$p/lib64/pkgconfig" --cflags) \
	-L"$p/lib64" -Wl,-Bstatic -laio -Wl,-Bdynamic || fail "cannot link statically with $p/lib64/libaio.a"
! readelf -d "$TMP/static" | grep -q 'NEEDED.*libaio' || fail "the static link still needs libaio.so"
nm "$TMP/static" | grep -q ' T io_submit$' || fail "io_submit is not defined in the static program"
"$TMP/static" "$TMP/data" >"$TMP/static.out" 2>&1 || {
	cat "$TMP/static.out" >&2
	fail "the statically linked program failed"
}
grep -qx "served-by: $TMP/static" "$TMP/static.out" || fail "static program: io_submit not in the program: $(cat "$TMP/static.out")"
grep -qx 'roundtrip: ok' "$TMP/static.out" || fail "static roundtrip did not finish"
echo "static program: real I/O ok, io_submit linked into the executable"

# 3. CC, CFLAGS, LDFLAGS from the environment reach the final link.
cat >"$TMP/cc" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$TMP/cc.log"
exec gcc "\$@"
EOF
chmod +x "$TMP/cc"
readelf -n "$BUILD/libaio.so.1.0.2" | grep -q 'Build ID' || fail "the default build has no build-id: the LDFLAGS mark would prove nothing"
! readelf -d "$BUILD/libaio.so.1.0.2" | grep -q 'NODUMP' || fail "the default build is NODUMP: the CFLAGS mark would prove nothing"
b2=$TMP/b2
CC=$TMP/cc CFLAGS='-O2 -Wl,-z,nodump' LDFLAGS='-Wl,--build-id=none' \
	make -s B="$b2" install prefix="$TMP/q" LDCONFIG=: >"$TMP/make.log" 2>&1 || {
	cat "$TMP/make.log" >&2
	fail "make install with CC/CFLAGS/LDFLAGS failed"
}
grep -- '-shared' "$TMP/cc.log" | grep -- '-Wl,-z,nodump' | grep -q -- '-Wl,--build-id=none' ||
	fail "no link through \$CC with \$CFLAGS and \$LDFLAGS; \$CC saw: $(cat "$TMP/cc.log" 2>/dev/null)"
so=$TMP/q/lib/libaio.so.1.0.2
! readelf -n "$so" | grep -q 'Build ID' || fail "LDFLAGS=-Wl,--build-id=none did not reach the link: $so has a build-id"
readelf -d "$so" | grep -q 'NODUMP' || fail "CFLAGS=-Wl,-z,nodump did not reach the link: $so is not NODUMP"
echo "CC/CFLAGS/LDFLAGS: link ran through \$CC; result has no build-id (LDFLAGS) and is NODUMP (CFLAGS)"

# 4. The default prefix: /usr/local, nothing under /usr.
def=$TMP/def
make_quiet install DESTDIR="$def"
check_tree "$def/usr/local/lib" "$def/usr/local/include"
[ -f "$def/usr/local/share/man/man3/io_setup.3" ] || fail "default prefix: no man page under usr/local/share/man"
outside=$(cd "$def" && find . ! -type d ! -path './usr/local/*')
[ -z "$outside" ] || fail "the default make install put files outside /usr/local: $outside"
[ "$(pc "$def/usr/local/lib/pkgconfig" --variable=prefix)" = /usr/local ] || fail "default libaio.pc prefix is not /usr/local"
echo "default prefix: /usr/local (lib, include, share/man); nothing else"

# The README's path, for real: `make install` as root, then plain
# `gcc prog.c -laio`. In a private mount namespace: a tmpfs hides the real
# /usr/local, and ldconfig writes its cache to a temp file that the namespace
# sees as /etc/ld.so.cache, so the system is untouched.
if [ "$(id -u)" != 0 ]; then
	note "not root: the live make install in a namespace is not run"
elif ! unshare -m true 2>/dev/null; then
	note "unshare -m is not permitted here: the live make install in a namespace is not run"
else
	cp /etc/ld.so.cache "$TMP/ld.so.cache"
	cat >"$TMP/live.sh" <<'EOF_LIVE'
set -eu
mount -t tmpfs -o mode=755 libaio-rs-test /usr/local
mount --bind "$TMP/ld.so.cache" /etc/ld.so.cache
# ldconfig replaces its file by renaming; the bound file must be rewritten in place.
ldc="ldconfig -C '$TMP/ld.so.cache.new' && cat '$TMP/ld.so.cache.new' >'$TMP/ld.so.cache' && echo ran >>'$TMP/live-ldconfig.log'"
step() { echo "== $*"; }
step make install
make -s -C "$ROOT" B="$BUILD" install LDCONFIG="$ldc"
[ -s "$TMP/live-ldconfig.log" ] || { echo "make install did not run ldconfig"; exit 1; }
find /usr/local ! -type d | sort
step build
gcc -Wall -Werror -DOLD_GETEVENTS -o "$TMP/live" "$ROUNDTRIP" -laio
gcc -M "$ROUNDTRIP" | grep -q ' /usr/local/include/libaio\.h' || { echo "not compiled with /usr/local/include/libaio.h"; exit 1; }
step ldd
ldd "$TMP/live" | grep libaio
ldd "$TMP/live" | grep -q 'libaio\.so\.1 => /usr/local/lib/libaio\.so\.1 ' || { echo "ldd: not /usr/local/lib/libaio.so.1"; exit 1; }
step run
LD_DEBUG=files LD_DEBUG_OUTPUT="$TMP/live.debug" "$TMP/live" "$TMP/live.data"
grep -q 'calling init: /usr/local/lib/libaio\.so\.1$' "$TMP"/live.debug.* || { echo "LD_DEBUG=files: /usr/local/lib/libaio.so.1 not loaded"; exit 1; }
rm -f "$TMP"/live.debug.* "$TMP/live-ldconfig.log"
step make uninstall
make -s -C "$ROOT" B="$BUILD" uninstall LDCONFIG="$ldc"
[ -s "$TMP/live-ldconfig.log" ] || { echo "make uninstall did not run ldconfig"; exit 1; }
left=$(find /usr/local ! -type d)
[ -z "$left" ] || { echo "make uninstall left: $left"; exit 1; }
step run after uninstall
"$TMP/live" "$TMP/live.data"
EOF_LIVE
	env TMP="$TMP" ROOT="$ROOT" BUILD="$BUILD" ROUNDTRIP="$ROUNDTRIP" unshare -m --propagation private \
		bash "$TMP/live.sh" >"$TMP/live.log" 2>&1 || fail_with_log "$TMP/live.log" "live make install in a mount namespace failed"
	served=$(sed -n '/^== run$/,/^== make uninstall$/s/^served-by: //p' "$TMP/live.log")
	[ "$served" = /usr/local/lib/libaio.so.1 ] || fail_with_log "$TMP/live.log" "after make install: served by '$served'"
	after=$(sed -n '/^== run after uninstall$/,$s/^served-by: //p' "$TMP/live.log")
	[ -n "$after" ] && [ "${after#/usr/local/}" = "$after" ] ||
		fail_with_log "$TMP/live.log" "after make uninstall: served by '$after', expected the system's libaio"
	echo "as root, make install (prefix /usr/local) ran ldconfig; plain gcc prog.c -laio: header and library from /usr/local (ldd and LD_DEBUG agree)"
	echo "make uninstall: /usr/local empty again, ldconfig run, the program back on $after"
fi
note ok
