#!/usr/bin/env bash
# make demo: first one Debian 6.1 guest: an exporter, a read-write and a read-only
# attacher, and a recall; then two guests as fabric nodes: node 1 exports, attachers
# on node 1 and node 2 (through its window onto node 1's RAM), a live recall of node
# 2's mapping with its latency, and xpmemctl on both nodes (tests/fabric/demo_fabric.py).
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

echo
echo "Booting two Debian $krel guests as fabric nodes (each sees the other's RAM through an ivshmem window)."
mkdir -p "$BUILD/fabric"
key=$(cd "$BUILD/fabric" && pwd)/key
rm -f "$key"
(umask 077; head -c 32 /dev/urandom >"$key")
bash tests/lab/run-fabric.sh "$dir" --nodes 2 --mem 512 --timeout 600 -- \
	python3 tests/fabric/demo_fabric.py --build "$BUILD" --ko "$BUILD/kmod/$krel/xpmem.ko" --key "$key"
