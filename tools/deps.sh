#!/usr/bin/env bash
# Installs the Debian packages the tests need (as root; otherwise prints the
# command). Idempotent: does nothing when everything is there.
set -eu
PACKAGES=(
	make gcc g++ pkg-config python3 binutils dpkg-dev
	libaio1 libaio-dev                          # the reference, side by side
	libgoogle-glog-dev libgflags-dev            # the C++ seed sample
	# header layout: -m32 and -mx32 (gcc-12-multilib, not gcc-multilib, which
	# conflicts with the cross compilers), s390x (big-endian 64-bit), armhf and
	# powerpc (32-bit, both byte orders)
	gcc-12-multilib gcc-s390x-linux-gnu gcc-arm-linux-gnueabihf gcc-powerpc-linux-gnu
	e2fsprogs                                   # libaio's harness: an ext2 image
	valgrind strace fio                         # fio: verify passes on every engine
	qemu-utils                                  # qemu-io / qemu-img bench -i native
	sysbench                                    # fileio in async mode on every engine
	debhelper fakeroot lintian                  # Debian packages: build and check
	mandoc man-db groff-base                    # man pages: lint and render
	libaio1:i386                                # i386, natively: the reference (tests/sh/i386.sh)
)
# The i386 reference needs the foreign architecture (as root; the test
# skips without it), and the i686 Rust target (rustup, best effort).
if [ "$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx i386; then
	dpkg --add-architecture i386
fi
command -v rustup >/dev/null 2>&1 && rustup target add i686-unknown-linux-gnu >/dev/null 2>&1 || true
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# libaio's own test harness comes from its source package (deb-src), wanted
# even when every package is already there.
has_src() { grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src' /etc/apt/sources.list; }
need_src=0
has_src || need_src=1
[ ${#missing[@]} -eq 0 ] && [ $need_src = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	[ ${#missing[@]} -eq 0 ] && exit 0 # deb-src only: the harness test skips
	echo "missing packages; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ $need_src = 1 ]; then
	sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
	if ! has_src; then
		echo "deps: no deb-src entry could be added; libaio's harness test will skip" >&2
		[ ${#missing[@]} -eq 0 ] && exit 0
	fi
fi
apt-get -o DPkg::Lock::Timeout=600 update -qq
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
