#!/usr/bin/env bash
# Builds the Debian packages from this repository, then checks them with lintian:
#
#   tools/build-debs.sh [OUTDIR]        (default: build/debs)
#
# Produces in OUTDIR:
#   libaio1-rs_VERSION_amd64.deb        libaio.so.1.0.2 + libaio.so.1, and the
#                                       libaio.so.1t64 twin; replaces libaio1
#                                       and libaio1t64
#   libaio-rs-dev_VERSION_amd64.deb     libaio.h, libaio.so, libaio.a,
#                                       pkgconfig/libaio.pc, man pages;
#                                       replaces libaio-dev
#   libaio1-rs-dbgsym_VERSION_amd64.deb debug symbols
#   the .changes and .buildinfo files, and lintian.txt (lintian's report)
#
# How: the repository's files (those git tracks or would track) are copied to
# a temporary directory and built there with `dpkg-buildpackage -d -us -uc -b`,
# so the build leaves nothing behind in the checkout. `-d` because the Rust
# toolchain is rustup's cargo, which debian/control cannot name (Debian 12's
# rustc is too old); this script checks for it instead. cargo's output is kept
# in target/deb to make rebuilds fast.
#
# Needs: dpkg-dev, debhelper, make, gcc, binutils, cargo (rustup), and lintian
# for the check (skipped with a note when it is not installed, or with
# LINTIAN=0). Exits non-zero if the build fails or lintian reports an error.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build/debs}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

die() {
	echo "build-debs: $*" >&2
	exit 1
}
for c in dpkg-buildpackage:dpkg-dev dh:debhelper make:make gcc:gcc readelf:binutils; do
	command -v "${c%%:*}" >/dev/null 2>&1 || die "'${c%%:*}' not found: apt-get install ${c#*:}"
done
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs), then retry"

work=$(mktemp -d "${TMPDIR:-/tmp}/libaio-rs-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"

# The source tree: what git tracks plus new files it does not ignore.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
		(cd "$ROOT" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$work/src" -xf -
else
	tar -C "$ROOT" --exclude=./target --exclude=./build --exclude=./.git -cf - . | tar -C "$work/src" -xf -
fi
[ -x "$work/src/debian/rules" ] || die "no debian/ directory in $ROOT"

version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
echo "build-debs: building libaio-rs $version in $work/src"
(
	cd "$work/src"
	export CARGO_TARGET_DIR=$ROOT/target/deb
	dpkg-buildpackage -d -us -uc -b
) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	die "dpkg-buildpackage failed (log above)"
}

mkdir -p "$OUT"
shopt -s nullglob
products=("$work"/*.deb "$work"/*.changes "$work"/*.buildinfo)
[ ${#products[@]} -gt 0 ] || die "dpkg-buildpackage produced no package"
for f in "$OUT"/libaio1-rs*_*.deb "$OUT"/libaio-rs-dev_*.deb "$OUT"/libaio-rs_*.changes "$OUT"/libaio-rs_*.buildinfo; do
	rm -f "$f"
done
cp "${products[@]}" "$OUT/"
cp "$work/build.log" "$OUT/build.log"
echo "build-debs: packages in $OUT:"
(cd "$OUT" && ls -1 ./*.deb | sed 's|^\./|  |')

if [ "${LINTIAN:-1}" = 0 ]; then
	echo "build-debs: lintian skipped (LINTIAN=0)"
	exit 0
fi
if ! command -v lintian >/dev/null 2>&1; then
	echo "build-debs: lintian not installed (apt-get install lintian): packages not checked"
	exit 0
fi
changes=$(ls "$work"/*.changes)
# --info and --pedantic show everything; only errors fail the build.
lintian --display-info --pedantic --show-overrides --tag-display-limit 0 "$changes" >"$OUT/lintian.txt" 2>&1 || true
echo "build-debs: lintian (full report in $OUT/lintian.txt):"
sed 's/^/  /' "$OUT/lintian.txt"
if grep -q '^E: ' "$OUT/lintian.txt"; then
	die "lintian reports errors"
fi
echo "build-debs: lintian: no errors"
