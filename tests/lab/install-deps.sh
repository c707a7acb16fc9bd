#!/usr/bin/env bash
# Install what the test lab needs from Debian (as root), only if something is missing.
set -euo pipefail

PACKAGES="make gcc libc6-dev pkg-config libcmocka-dev libsmartcols-dev libjson-c-dev qemu-system-x86 busybox-static cpio
kmod zstd xz-utils dwarves flex bison bc libelf-dev libssl-dev python3 python3-matplotlib linux-source-6.1
clang libclang-rt-14-dev libfabric-dev
openmpi-bin libopenmpi-dev mpich libmpich-dev libucx-dev libucx0 ucx-utils netpipe-openmpi netpipe-mpich2
python3-mpi4py python3-numpy dpkg-dev autoconf automake libtool libnuma-dev"

missing=()
for p in $PACKAGES; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
apt-get update >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
