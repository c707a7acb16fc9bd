#!/usr/bin/env bash
# make demo: boot the Debian 6.1 guest, load the module, and show an exporter, a
# read-write and a read-only attacher, and a recall.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
bash tests/lab/install-deps.sh
dir=$(XPMEM_KERNELS=6.1 bash tests/lab/fetch-kernels.sh | awk '{print $2}')
krel=$(cat "$dir/kdir/include/config/kernel.release")
make -s user module KDIR="$dir/kdir" BUILD="$BUILD"
echo "Booting Debian $krel in QEMU (TCG); the demo runs inside the guest."
bash tests/lab/run-guest.sh "$dir" --timeout 600 -- "
	set -e
	insmod $BUILD/kmod/$krel/xpmem.ko
	echo '--- /dev/xpmem:'; ls -l /dev/xpmem
	echo '--- demo'
	$BUILD/tests/xpmem_demo $BUILD/tools/xpmemctl
	echo '--- /proc/xpmem/stats'; cat /proc/xpmem/stats
	echo '--- /proc/xpmem/global_pages'; cat /proc/xpmem/global_pages
	rmmod xpmem && echo '--- module unloaded'"
