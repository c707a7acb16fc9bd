#!/bin/sh
# version-check.sh: the one version in VERSION (MAJOR.MINOR.PATCH) must be the version
# everywhere else: the library and xpmemctl (lib/lib.mk reads VERSION), the module
# (MODULE_VERSION: XPMEM_VERSION_STRING, which Kbuild takes from VERSION), the interface
# version xpmem_version() returns (XPMEM_INTERFACE_VERSION = MAJOR << 16 | MINOR << 12 |
# PATCH, the existing XPMEM encoding: 2.6.5 is 0x00026005), dkms.conf and the upstream
# part of debian/changelog. Run from the top of the checkout; exit 1 on any mismatch.
set -u
cd "$(dirname "$0")/../.."
fail=0
bad() { echo "version-check: $*" >&2; fail=1; }

v=$(cat VERSION 2>/dev/null)
if ! echo "$v" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+'; then
	echo "version-check: VERSION must hold MAJOR.MINOR.PATCH, not '$v'" >&2
	exit 1
fi
major=${v%%.*} rest=${v#*.}
minor=${rest%%.*} patch=${rest#*.}
[ "$minor" -le 15 ] && [ "$patch" -le 4095 ] || bad "$v does not fit the interface encoding (minor <= 15, patch <= 4095)"

# Library and tools: lib.mk must take VERSION, not a literal of its own.
grep -Eq '^LIBXPMEM_VERSION := \$\(shell cat VERSION\)' lib/lib.mk || bad "lib/lib.mk: LIBXPMEM_VERSION is not VERSION ($v)"

# Module.
mv=$(sed -n 's/^MODULE_VERSION(\(.*\));.*/\1/p' kernel/xpmem_main.c)
[ "$mv" = XPMEM_VERSION_STRING ] || bad "kernel/xpmem_main.c: MODULE_VERSION($mv), not XPMEM_VERSION_STRING"
grep -q 'XPMEM_VERSION_STRING=.*xpmem-version' kernel/Kbuild || bad "kernel/Kbuild does not define XPMEM_VERSION_STRING"

# Interface version returned by XPMEM_CMD_VERSION / xpmem_version().
want=$(printf '0x%08x' $(((major << 16) | (minor << 12) | patch)))
have=$(sed -n 's/^#define XPMEM_INTERFACE_VERSION[[:space:]]*\(0x[0-9a-fA-F]*\).*/\1/p' include/xpmem_ioctl.h)
[ "$(printf '0x%08x' "$have" 2>/dev/null)" = "$want" ] ||
	bad "include/xpmem_ioctl.h: XPMEM_INTERFACE_VERSION is $have, VERSION $v encodes as $want"

# DKMS.
pv=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
[ "$pv" = "#MODULE_VERSION#" ] || [ "$pv" = "$v" ] || bad "dkms.conf: PACKAGE_VERSION=$pv"

# Debian: the changelog's upstream version (native: the whole version).
if [ -e debian/changelog ]; then
	dv=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' debian/changelog)
	dv=${dv#*:}
	dv=${dv%-*}
	[ "$dv" = "$v" ] || bad "debian/changelog: upstream version $dv, VERSION $v"
fi

[ $fail -eq 0 ] && echo "version-check: $v (interface $want) everywhere"
exit $fail
