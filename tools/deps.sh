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
	valgrind strace fio
	debhelper fakeroot lintian                  # Debian packages: build and check
	mandoc man-db groff-base                    # man pages: lint and render
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# libaio's own test harness comes from its source package (deb-src).
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
	sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
fi
echo "installing: ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
