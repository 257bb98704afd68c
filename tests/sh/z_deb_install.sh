#!/usr/bin/env bash
# The Debian packages, installed for real on this machine in place of Debian's
# libaio1 and libaio-dev, then Debian's put back. Needs root and a throwaway
# machine (CI): for the minute it runs, the system's libaio is ours. Named z_*
# so that it runs after every test that needs Debian's libaio.
#
#   1. packages: $LIBAIO_RS_DEBS (a directory holding libaio1-rs_*.deb and
#      libaio-rs-dev_*.deb) or, by default, built with tools/build-debs.sh
#      (which also runs lintian and fails on any error);
#   2. Debian's libaio1 / libaio-dev .debs of the installed version are
#      fetched first (apt cache or `apt-get download`): without them the
#      original could not be restored, and the test skips;
#   3. `apt-get install ./ours.deb...` must replace Debian's (Conflicts/Replaces/Provides)
#      with apt's dependency check still clean (fio depends on libaio1);
#   4. with ours installed:
#      - fio (Debian's package, linked against libaio.so.1) runs two libaio
#        jobs with O_DIRECT (the second reading the ring in user space,
#        userspace_reap=1); the loader's trace shows it loaded
#        /usr/lib/.../libaio.so.1.0.2 and that file is ours (dpkg -S, md5);
#        under a seccomp filter that refuses kernel AIO, fio with
#        LIBAIO_RS_DEBUG=1 prints our library's explanation: our code ran;
#      - tests/c/installed_smoke.c built with the installed header and
#        `pkg-config --cflags --libs libaio`, statically against libaio.a,
#        and against the libaio.so.1t64 soname: each runs, and finds this
#        project's LIBAIO_RS_1 symbols in the library that serves it;
#      - dpkg-shlibdeps turns the symbols file into "libaio1 (>= 0.3.93)"
#        for such a program (so it also runs with Debian's libaio1);
#      - man finds the installed pages;
#   5. restore (also on any failure, from the exit trap): ours removed,
#      Debian's .debs installed; then dpkg -s shows Debian's versions, the
#      md5sum of /usr/lib/x86_64-linux-gnu/libaio.so.1.0.2 equals Debian's,
#      dpkg --verify is clean, the 1t64 files are gone, and fio runs on
#      Debian's library again.
set -eu
. "$(dirname "$0")/lib/common.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (it replaces the system's libaio packages)"
command -v dpkg >/dev/null 2>&1 || skip "not a Debian system"
[ "$(dpkg --print-architecture)" = amd64 ] || skip "the packages are built for amd64"
require_cmd apt-get apt
require_cmd fio fio
require_cmd gcc gcc
require_cmd pkg-config pkg-config
require_cmd python3 python3
export DEBIAN_FRONTEND=noninteractive

MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR=/usr/lib/$MA
SO=$LIBDIR/libaio.so.1.0.2

# Queried for the native architecture: with i386 added (tools/deps.sh, for
# tests/sh/i386.sh) a bare name matches libaio1:i386 too.
NATIVE=$(dpkg --print-architecture)
status_of() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "$1:$NATIVE" 2>/dev/null) || true
	echo "${s:-not-installed}"
}
version_of() { dpkg-query -W -f='${Version}' "$1:$NATIVE" 2>/dev/null || true; }

# --- 0. Where we start: Debian's packages installed, ours not.
if [ "$(status_of libaio1-rs)" = installed ]; then
	fail "libaio1-rs is already installed (a previous run did not restore Debian's libaio1?): restore it first, e.g. apt-get install --reinstall libaio1 libaio-dev"
fi
[ "$(status_of libaio1)" = installed ] || skip "Debian's libaio1 is not installed (apt-get install libaio1 fio)"
DEB_VER=$(version_of libaio1)
HAD_DEV=0
[ "$(status_of libaio-dev)" = installed ] && HAD_DEV=1
DEB_MD5=$(awk -v f="${SO#/}" '$2 == f {print $1}' "/var/lib/dpkg/info/libaio1:amd64.md5sums" 2>/dev/null || true)
[ -n "$DEB_MD5" ] || DEB_MD5=$(awk -v f="${SO#/}" '$2 == f {print $1}' /var/lib/dpkg/info/libaio1.md5sums)
[ "$(md5sum <"$SO" | cut -d' ' -f1)" = "$DEB_MD5" ] ||
	fail "$SO does not match Debian's libaio1 $DEB_VER (md5sum differs from dpkg's record): not a clean start"
note "start: Debian's libaio1 $DEB_VER$([ $HAD_DEV = 1 ] && echo " and libaio-dev") installed, md5 $DEB_MD5"

# --- 2. Debian's .debs, to put back.
mkdir -p "$TMP/debian-debs"
chown _apt "$TMP/debian-debs" 2>/dev/null || true
want_pkgs=(libaio1)
[ $HAD_DEV = 1 ] && want_pkgs+=(libaio-dev)
for p in "${want_pkgs[@]}"; do
	cached=$(ls /var/cache/apt/archives/"${p}_${DEB_VER//:/%3a}"_amd64.deb 2>/dev/null | head -n 1 || true)
	if [ -n "$cached" ]; then
		cp "$cached" "$TMP/debian-debs/"
	else
		(cd "$TMP/debian-debs" && apt-get download -q "$p=$DEB_VER") >"$TMP/download.log" 2>&1 ||
			skip "cannot fetch Debian's $p $DEB_VER to restore it afterwards (apt-get download failed: $(tail -n 1 "$TMP/download.log"))"
	fi
done
dpkg-deb --fsys-tarfile "$TMP"/debian-debs/libaio1_*.deb | tar -xOf - ".$SO" | md5sum | grep -q "^$DEB_MD5 " ||
	fail "the downloaded libaio1 $DEB_VER does not hold the installed $SO"
note "Debian's packages for restoring: $(cd "$TMP/debian-debs" && echo *.deb)"

# --- 1. Our packages.
if [ -n "${LIBAIO_RS_DEBS:-}" ]; then
	DEBS=$LIBAIO_RS_DEBS
else
	DEBS=$TMP/debs
	"$ROOT/tools/build-debs.sh" "$DEBS" >"$TMP/build-debs.log" 2>&1 ||
		fail_with_log "$TMP/build-debs.log" "tools/build-debs.sh failed"
	grep -E '^  [EWO]: ' "$TMP/build-debs.log" | sed 's/^/    /' || true
	note "built and lintian-checked: $(cd "$DEBS" && echo libaio*-rs*_*.deb)"
fi
RT=$(ls "$DEBS"/libaio1-rs_*_amd64.deb 2>/dev/null | head -n 1)
DEV=$(ls "$DEBS"/libaio-rs-dev_*_amd64.deb 2>/dev/null | head -n 1)
[ -n "$RT" ] && [ -n "$DEV" ] || fail "no libaio1-rs / libaio-rs-dev .deb in $DEBS"
OUR_VER=$(dpkg-deb -f "$RT" Version)
OUR_MD5=$(dpkg-deb --fsys-tarfile "$RT" | tar -xOf - ".$SO" | md5sum | cut -d' ' -f1)
[ "$OUR_MD5" != "$DEB_MD5" ] || fail "our $SO is byte-identical to Debian's"

# Helpers built now, while the compiler still sees Debian's header: they do
# not use libaio.
gcc -O1 -Wall -Werror "$ROOT/tests/c/seccomp_noaio.c" -o "$TMP/seccomp_noaio" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build seccomp_noaio"
odirect_dir

# --- 5 (armed now). Restore Debian's packages, whatever happens.
RESTORED=0
restore_debian() {
	[ "$RESTORED" = 0 ] || return 0
	RESTORED=1
	local rm=()
	[ "$(status_of libaio-rs-dev)" = not-installed ] || rm+=(libaio-rs-dev)
	[ "$(status_of libaio1-rs)" = not-installed ] || rm+=(libaio1-rs)
	if [ ${#rm[@]} -gt 0 ]; then
		# fio's dependency on libaio1 is unmet for the moment until the next line.
		dpkg --purge --force-depends "${rm[@]}" >"$TMP/restore.log" 2>&1 || true
	fi
	dpkg -i "$TMP"/debian-debs/*.deb >>"$TMP/restore.log" 2>&1 || {
		echo "z_deb_install: RESTORE FAILED: dpkg -i of Debian's packages:" >&2
		sed 's/^/    | /' "$TMP/restore.log" >&2
		return 1
	}
}
at_exit restore_debian

# --- 3. Install ours in place of Debian's.
# As an administrator would: apt works out that libaio1 and libaio-dev go.
apt-get install -y -q --no-install-recommends "$RT" "$DEV" >"$TMP/install.log" 2>&1 ||
	fail_with_log "$TMP/install.log" "apt-get install of our packages failed"
[ "$(status_of libaio1-rs)" = installed ] || fail_with_log "$TMP/install.log" "libaio1-rs is not installed after dpkg -i"
[ "$(status_of libaio-rs-dev)" = installed ] || fail_with_log "$TMP/install.log" "libaio-rs-dev is not installed after dpkg -i"
[ "$(status_of libaio1)" != installed ] || fail_with_log "$TMP/install.log" "Debian's libaio1 is still installed beside ours"
[ "$(status_of libaio-dev)" != installed ] || fail_with_log "$TMP/install.log" "Debian's libaio-dev is still installed beside ours"
awk '/will be REMOVED/ {on = 1; print; next} on && /^  / {print; next} {on = 0}' "$TMP/install.log" | sed 's/^/    /' || true
apt-get check -q >"$TMP/apt-check.log" 2>&1 || fail_with_log "$TMP/apt-check.log" "apt-get check: broken dependencies with ours installed"
dpkg --audit >"$TMP/audit.log" 2>&1 && [ ! -s "$TMP/audit.log" ] || fail_with_log "$TMP/audit.log" "dpkg --audit"
note "installed libaio1-rs and libaio-rs-dev $OUR_VER in place of libaio1 $DEB_VER; apt-get check clean (fio's 'Depends: libaio1' met by Provides)"

# The files, their owners, their sonames.
[ "$(dpkg -S "$SO" 2>/dev/null | cut -d: -f1)" = libaio1-rs ] || fail "$SO does not belong to libaio1-rs"
[ "$(md5sum <"$SO" | cut -d' ' -f1)" = "$OUR_MD5" ] || fail "$SO is not the file from our package"
[ "$(readlink "$LIBDIR/libaio.so.1")" = libaio.so.1.0.2 ] || fail "$LIBDIR/libaio.so.1 does not point to libaio.so.1.0.2"
[ "$(readlink "$LIBDIR/libaio.so.1t64")" = libaio.so.1t64.0.2 ] || fail "$LIBDIR/libaio.so.1t64 missing"
readelf -d "$LIBDIR/libaio.so.1t64.0.2" | grep -q 'SONAME.*\[libaio\.so\.1t64\]' || fail "libaio.so.1t64.0.2 has the wrong soname"
[ "$(readlink "$LIBDIR/libaio.so")" = libaio.so.1.0.2 ] || fail "$LIBDIR/libaio.so (dev link) does not point to libaio.so.1.0.2"
for f in /usr/include/libaio.h "$LIBDIR/libaio.a" "$LIBDIR/pkgconfig/libaio.pc"; do
	[ "$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)" = libaio-rs-dev ] || fail "$f does not belong to libaio-rs-dev"
done
ldconfig -p | grep -Eq "^[[:space:]]*libaio\.so\.1t64 .*=> (/usr)?/lib/$MA/libaio\.so\.1t64\$" || fail "ldconfig's cache has no libaio.so.1t64"
note "files: libaio.so.1.0.2 (ours, md5 $OUR_MD5), libaio.so.1 and libaio.so.1t64 links, header, libaio.a, libaio.pc from libaio-rs-dev"

# --- 4a. fio from Debian's archive, on our library.
OURS_REAL=$(readlink -f "$LIBDIR/libaio.so.1")
fio_job() { # TAG EXTRA_OPTIONS...
	local tag=$1
	shift
	run_traced "$tag" "" "$OURS_REAL" -- fio --name="$tag" --ioengine=libaio --direct=1 \
		--filename="$ODIRECT_DIR/$tag.dat" --size=8m --bs=4k --rw=randrw --iodepth=32 \
		--output-format=json --output="$TMP/$tag.json" "$@"
	[ "$RC" -eq 0 ] || fail_with_log "$TMP/$tag.err" "fio ($tag) exited $RC on our library"
	python3 - "$TMP/$tag.json" <<'PY' || fail_with_log "$TMP/$tag.json" "fio ($tag) did not do its I/O"
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
done = job["read"]["io_bytes"] + job["write"]["io_bytes"]
assert job["error"] == 0, job["error"]
assert done == 8 << 20, done
print(f"    fio {job['jobname']}: {job['read']['total_ios']} reads + {job['write']['total_ios']} writes, error 0")
PY
}
fio_job fio-ours
fio_job fio-ours-ureap --userspace_reap=1
note "fio $(fio --version) ran on $OURS_REAL (loader trace), which is libaio1-rs's file"

# Our code runs inside fio: without kernel AIO, our library explains why
# (LIBAIO_RS_ENGINE=kernel: errors as libaio's) ...
rc=0
LIBAIO_RS_DEBUG=1 LIBAIO_RS_ENGINE=kernel "$TMP/seccomp_noaio" fio --name=noaio --ioengine=libaio --direct=1 \
	--filename="$ODIRECT_DIR/noaio.dat" --size=1m --bs=4k >"$TMP/fio-noaio.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "fio succeeded without kernel AIO on LIBAIO_RS_ENGINE=kernel?"
grep -q '^libaio: io_setup: -ENOSYS: kernel AIO is not available here' "$TMP/fio-noaio.out" ||
	fail_with_log "$TMP/fio-noaio.out" "fio without kernel AIO: no LIBAIO_RS_DEBUG explanation from the installed library"
# ... and by default falls back to io_uring, or, with io_uring refused too,
# to its thread engine; fio runs and verifies on either.
for engine in io_uring threads; do
	wrap=("$TMP/seccomp_noaio")
	[ $engine = io_uring ] || wrap+=(--no-io-uring)
	rc=0
	LIBAIO_RS_DEBUG=1 "${wrap[@]}" fio --name=noaio-auto --ioengine=libaio --direct=1 \
		--filename="$ODIRECT_DIR/noaio-auto.dat" --size=1m --bs=4k --rw=randwrite --iodepth=8 --verify=crc32c --verify_state_save=0 >"$TMP/fio-auto.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || fail_with_log "$TMP/fio-auto.out" "fio without kernel AIO failed on the automatic fallback to $engine"
	grep -q "^libaio: io_setup: engine $engine: kernel AIO answered -ENOSYS" "$TMP/fio-auto.out" ||
		fail_with_log "$TMP/fio-auto.out" "fio without kernel AIO: the installed library did not fall back to $engine"
done
note "fio with LIBAIO_RS_DEBUG=1 and no kernel AIO: $(grep -m1 '^libaio:' "$TMP/fio-noaio.out" | cut -c1-90)..."

# --- 4b. A program built against the installed libaio-rs-dev.
PKG=$(pkg-config --cflags --libs libaio) || fail "pkg-config --cflags --libs libaio failed with libaio-rs-dev installed"
# shellcheck disable=SC2086
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/installed_smoke.c" -o "$TMP/smoke" $PKG -ldl 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "installed_smoke does not build with the installed header and pkg-config"
[ "$(header_used gcc "$ROOT/tests/c/installed_smoke.c")" = /usr/include/libaio.h ] || fail "the compiler did not use /usr/include/libaio.h"
cmp -s /usr/include/libaio.h "$ROOT/include/libaio.h" || fail "/usr/include/libaio.h is not our header"
run_traced smoke "" "$OURS_REAL" -- "$TMP/smoke" "$ODIRECT_DIR/smoke.dat"
[ "$RC" -eq 0 ] || fail_with_log "$TMP/smoke.err" "installed_smoke (dynamic) failed"
grep -qx 'libaio: ours' "$TMP/smoke.out" || fail_with_log "$TMP/smoke.out" "installed_smoke did not find our library"
grep -qx ok "$TMP/smoke.out" || fail_with_log "$TMP/smoke.out" "installed_smoke did not finish"
readelf -d "$TMP/smoke" | grep -q 'NEEDED.*\[libaio\.so\.1\]' || fail "installed_smoke does not need libaio.so.1"

# Static, against the installed libaio.a.
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/installed_smoke.c" -o "$TMP/smoke-static" \
	-Wl,-Bstatic -laio -Wl,-Bdynamic -ldl 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "installed_smoke does not link with libaio.a"
readelf -d "$TMP/smoke-static" | grep -q 'NEEDED.*libaio' && fail "the static build still needs a libaio.so"
"$TMP/smoke-static" "$ODIRECT_DIR/smoke-static.dat" >"$TMP/smoke-static.out" 2>&1 ||
	fail_with_log "$TMP/smoke-static.out" "installed_smoke (static, libaio.a) failed"
grep -qx ok "$TMP/smoke-static.out" || fail_with_log "$TMP/smoke-static.out" "installed_smoke (static) did not finish"

# As a program built on Debian 13 or Ubuntu 24.04 is: needing libaio.so.1t64.
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/installed_smoke.c" -o "$TMP/smoke-t64" \
	"$LIBDIR/libaio.so.1t64" -ldl 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "installed_smoke does not link with libaio.so.1t64"
readelf -d "$TMP/smoke-t64" | grep -q 'NEEDED.*\[libaio\.so\.1t64\]' || fail "smoke-t64 does not need libaio.so.1t64"
run_traced smoke-t64 "" "$(readlink -f "$LIBDIR/libaio.so.1t64")" -- "$TMP/smoke-t64" "$ODIRECT_DIR/smoke-t64.dat"
[ "$RC" -eq 0 ] || fail_with_log "$TMP/smoke-t64.err" "installed_smoke (libaio.so.1t64) failed"
grep -qx 'libaio: ours' "$TMP/smoke-t64.out" && grep -qx ok "$TMP/smoke-t64.out" ||
	fail_with_log "$TMP/smoke-t64.out" "installed_smoke (libaio.so.1t64) did not run on ours"
note "installed_smoke built with pkg-config ($PKG), with libaio.a, and against libaio.so.1t64: all ran on ours"

# The symbols file: what a package built with libaio-rs-dev would depend on.
mkdir -p "$TMP/shl/debian"
printf 'Source: x\n\nPackage: x\nArchitecture: any\n' >"$TMP/shl/debian/control"
deps=$(cd "$TMP/shl" && dpkg-shlibdeps -O "$TMP/smoke" 2>"$TMP/shlibdeps.err") ||
	fail_with_log "$TMP/shlibdeps.err" "dpkg-shlibdeps failed on a program linked against libaio-rs-dev"
case $deps in *"libaio1 (>= 0.3.93)"*) ;; *) fail "dpkg-shlibdeps gave '$deps', expected libaio1 (>= 0.3.93)" ;; esac
note "dpkg-shlibdeps: ${deps#shlibs:Depends=}"

# The man pages (unless dpkg is told not to install any, as in slim images).
if grep -Eqs '^path-exclude[= ]+/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/*; then
	note "dpkg is configured not to install man pages (path-exclude): man check not run"
elif ! command -v man >/dev/null 2>&1; then
	note "man-db not installed: man check not run"
else
	for n in io_setup io_submit io_getevents io_cancel io_prep_pwritev2 io_fdsync io_queue_run; do
		page=$(man -w 3 "$n" 2>/dev/null) || fail "man -w 3 $n finds no page"
		[ "$(dpkg -S "$(readlink -f "$page")" 2>/dev/null | cut -d: -f1)" = libaio-rs-dev ] || fail "man 3 $n is not from libaio-rs-dev ($page)"
	done
	MANWIDTH=80 man 7 libaio 2>"$TMP/man.err" | grep -q LIBAIO_RS_DEBUG || fail_with_log "$TMP/man.err" "man 7 libaio does not render"
	note "man pages installed and found by man(1)"
fi

# --- 5. Put Debian's packages back, and check that they are back.
restore_debian || fail "could not restore Debian's packages (see above)"
sed 's/^/    /' "$TMP/restore.log" | grep -E 'Removing|Purging|Unpacking|Setting up' || true
[ "$(status_of libaio1-rs)" = not-installed ] || fail "libaio1-rs still present after restore"
[ "$(status_of libaio-rs-dev)" = not-installed ] || fail "libaio-rs-dev still present after restore"
[ "$(status_of libaio1)" = installed ] && [ "$(version_of libaio1)" = "$DEB_VER" ] || fail "libaio1 $DEB_VER not reinstalled"
if [ $HAD_DEV = 1 ]; then
	[ "$(status_of libaio-dev)" = installed ] && [ "$(version_of libaio-dev)" = "$DEB_VER" ] || fail "libaio-dev $DEB_VER not reinstalled"
fi
[ "$(md5sum <"$SO" | cut -d' ' -f1)" = "$DEB_MD5" ] || fail "$SO is not Debian's after restore"
dpkg --verify libaio1 >"$TMP/verify.log" 2>&1 && [ ! -s "$TMP/verify.log" ] || fail_with_log "$TMP/verify.log" "dpkg --verify libaio1"
if [ $HAD_DEV = 1 ]; then
	dpkg --verify libaio-dev >"$TMP/verify.log" 2>&1 && [ ! -s "$TMP/verify.log" ] || fail_with_log "$TMP/verify.log" "dpkg --verify libaio-dev"
fi
[ ! -e "$LIBDIR/libaio.so.1t64" ] && [ ! -e "$LIBDIR/libaio.so.1t64.0.2" ] || fail "the libaio.so.1t64 files survived the restore"
apt-get check -q >"$TMP/apt-check.log" 2>&1 || fail_with_log "$TMP/apt-check.log" "apt-get check after restore"
DEB_REAL=$(readlink -f "$LIBDIR/libaio.so.1")
run_traced fio-debian "" "$DEB_REAL" -- fio --name=fio-debian --ioengine=libaio --direct=1 \
	--filename="$ODIRECT_DIR/fio-debian.dat" --size=4m --bs=4k --rw=randrw --iodepth=16 --output-format=terse
[ "$RC" -eq 0 ] || fail_with_log "$TMP/fio-debian.err" "fio fails on Debian's restored libaio"
rc=0
LIBAIO_RS_DEBUG=1 "$TMP/seccomp_noaio" fio --name=noaio --ioengine=libaio --direct=1 \
	--filename="$ODIRECT_DIR/noaio.dat" --size=1m --bs=4k >"$TMP/fio-noaio-deb.out" 2>&1 || rc=$?
grep -q '^libaio: ' "$TMP/fio-noaio-deb.out" && fail "our library's messages still appear after the restore"
note "restored: libaio1 $DEB_VER$([ $HAD_DEV = 1 ] && echo " and libaio-dev $DEB_VER"), md5sum of $SO = $DEB_MD5 (Debian's), dpkg --verify clean, fio runs on it"
note PASS
