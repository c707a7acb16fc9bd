#!/usr/bin/env bash
# make fabric-lab-check: the multi-guest lab on the Debian 6.1 kernel (and the
# module's node test once more on 6.12, which maps remote huge pages). First the
# window proof (fabric-window-probe): 2 nodes with fencing through the fabric
# manager (stop, cont, device_del), then 3 nodes with each guest's RAM split around
# 4 GiB (--low 384: 384 MiB below 4 GiB, 128 MiB above, of which early boot takes
# ~50 MiB; the probe locks up to 192 MiB so that it gets sample pages on both sides).
# Then the module with xpmemd on 2 and on 3 (split) nodes: membership, proven
# windows, kernel round trips, refused forgeries and replays, daemon restart, death
# and fencing (tests/fabric/fabric_nodes.py). Ends with "N passed, N failed".
#   BUILD (default build), FABRIC_ITERS (default 100000), XPMEM_CACHE,
#   FABRIC_DEBUG_KERNEL (a build-debug-kernel.sh directory: the 2-node test once
#   more under KASAN and lockdep; check.sh sets it unless XPMEM_DEBUG_KERNEL=0)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
ITERS=${FABRIC_ITERS:-100000}
probe=$BUILD/tests/fabric-window-probe

bash tests/lab/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
dir=$(XPMEM_KERNELS=6.1 bash tests/lab/fetch-kernels.sh | awk '{print $2}')
[ -n "$dir" ] || { echo "fabric-lab-check: fetching the 6.1 kernel failed"; echo "0 passed, 1 failed"; exit 1; }
# 6.12 maps 2 MiB PFN entries: remote huge mappings are checked there.
dir612=$(XPMEM_KERNELS=6.12 bash tests/lab/fetch-kernels.sh | awk '{print $2}')
[ -n "$dir612" ] || { echo "fabric-lab-check: fetching the 6.12 kernel failed"; echo "0 passed, 1 failed"; exit 1; }
for f in "$probe" "$BUILD/tools/xpmemd" "$BUILD/tools/xpmemd-asan" "$BUILD/tools/xpmemctl" \
	"$BUILD/tests/fabric-inject" "$BUILD/tests/fabric-remote"; do
	[ -x "$f" ] || { echo "fabric-lab-check: $f is not built (make user)"; echo "0 passed, 1 failed"; exit 1; }
done
dirdebug=${FABRIC_DEBUG_KERNEL:-}
for d in "$dir" "$dir612" $dirdebug; do
	make -s module KDIR="$d/kdir" BUILD="$BUILD" || { echo "fabric-lab-check: module build failed"; echo "0 passed, 1 failed"; exit 1; }
done
ko=$BUILD/kmod/$(cat "$dir/kdir/include/config/kernel.release")/xpmem.ko
ko612=$BUILD/kmod/$(cat "$dir612/kdir/include/config/kernel.release")/xpmem.ko
# The fabric's shared secret, new for every run (guests read the host's files).
mkdir -p "$BUILD/fabric"
key=$(cd "$BUILD/fabric" && pwd)/key
rm -f "$key"
(umask 077; head -c 32 /dev/urandom >"$key")

passed=0 failed=0
run() { # NAME KERNEL-DIR RUN-FABRIC-ARGS... -- COMMAND...
	local name=$1 kdir=$2 out rc
	shift 2
	out=$(mktemp -d -t "xpmem-fabric-$name.XXXXXX")
	echo "=== $name"
	local -a lab=()
	while [ "$1" != -- ]; do lab+=("$1"); shift; done
	shift
	bash tests/lab/run-fabric.sh "$kdir" "${lab[@]}" --mem 512 --timeout 900 --out "$out" -- "$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "  $name: passed"
	else
		failed=$((failed + 1))
		echo "  $name: FAILED (status $rc, see $out)"
	fi
}
run 2-nodes-fence "$dir" --nodes 2 -- "$probe" --iters "$ITERS" --fence
run 3-nodes-split "$dir" --nodes 3 --low 384 -- "$probe" --iters "$ITERS" --max-mb 192
nodes_test=(python3 tests/fabric/fabric_nodes.py --build "$BUILD" --key "$key")
# The 2-node run uses the ASan+UBSan build of the daemon: any report, leaks at exit
# included, fails its stop.
run xpmemd-2-nodes-asan "$dir" --nodes 2 -- "${nodes_test[@]}" --ko "$ko" --daemon xpmemd-asan
# The 3-node run trusts no PCI BAR: its windows come from static_windows, as on
# fabrics without one.
run xpmemd-3-nodes-split "$dir" --nodes 3 --low 384 -- "${nodes_test[@]}" --ko "$ko" --static-windows
run xpmemd-2-nodes-6.12 "$dir612" --nodes 2 -- "${nodes_test[@]}" --ko "$ko612"
if [ -n "$dirdebug" ]; then
	kodebug=$BUILD/kmod/$(cat "$dirdebug/kdir/include/config/kernel.release")/xpmem.ko
	run xpmemd-2-nodes-debug "$dirdebug" --nodes 2 -- "${nodes_test[@]}" --ko "$kodebug"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
