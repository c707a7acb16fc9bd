#!/usr/bin/env bash
# Kernel coding style: checkpatch.pl from Debian's linux-source-6.1 over the module's
# sources. Only the compat header may test LINUX_VERSION_CODE.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}
srcver=$(dpkg-query -W -f '${Version}' linux-source-6.1)
tools=$CACHE/checkpatch-$srcver
if [ ! -e "$tools/.ready" ]; then
	rm -rf "$tools"
	mkdir -p "$tools"
	tar -C "$tools" --strip-components=1 -xf /usr/src/linux-source-6.1.tar.xz \
		linux-source-6.1/scripts/checkpatch.pl linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	touch "$tools/.ready"
fi
checkpatch=("$tools/scripts/checkpatch.pl" --no-tree --terse --strict --show-types -f)
status=0
"${checkpatch[@]}" kernel/xpmem_*.c kernel/xpmem_private.h include/xpmem_ioctl.h include/xpmem_fabric.h || status=1
"${checkpatch[@]}" --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON kernel/xpmem_compat.h || status=1
exit $status
