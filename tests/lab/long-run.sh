#!/usr/bin/env bash
# long-run.sh NAME SECONDS -- COMMAND...: `make stress` and `make fuzz`.
# For every kernel of the test matrix (XPMEM_KERNELS, default "6.1 6.12", plus the debug
# kernel unless XPMEM_DEBUG_KERNEL=0), build the module, boot a guest, load it, run
# COMMAND --duration SECONDS, require the live counters of /proc/xpmem/stats back at 0
# and the module to unload, and a clean kernel log. Guest output, dmesg and console in
# $BUILD/long-run/NAME-<kernel>/. Ends with one line per kernel; exit 1 on any failure.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LAB=tests/lab
BUILD=${BUILD:-build}

if [ $# -lt 4 ] || [ "$3" != -- ]; then
	echo "usage: long-run.sh NAME SECONDS -- COMMAND..." >&2
	exit 2
fi
name=$1
secs=$2
shift 3

bash $LAB/install-deps.sh || exit 1
kernels=$(XPMEM_KERNELS=${XPMEM_KERNELS:-6.1 6.12} bash $LAB/fetch-kernels.sh) || {
	echo "long-run: fetching kernels failed"
	exit 1
}
if [ "${XPMEM_DEBUG_KERNEL:-1}" != 0 ]; then
	debug=$(bash $LAB/build-debug-kernel.sh) || { echo "long-run: building the debug kernel failed"; exit 1; }
	kernels=$(printf '%s\n%s\n' "$kernels" "$debug")
fi
make -s user BUILD="$BUILD" || { echo "long-run: user-space build failed"; exit 1; }

failed=0
summary=()
while read -r kname dir; do
	[ -n "$kname" ] || continue
	krel=$(cat "$dir/kdir/include/config/kernel.release")
	out=$BUILD/long-run/$name-$kname
	echo "=== $name on $kname ($krel), $secs s"
	if ! make -s module KDIR="$dir/kdir" BUILD="$BUILD"; then
		summary+=("$kname ($krel): module build FAILED")
		failed=1
		continue
	fi
	mkdir -p "$out"
	bash $LAB/run-guest.sh "$dir" --timeout $((secs + 900)) --out "$out" -- \
		"insmod $BUILD/kmod/$krel/xpmem.ko || exit 1
$(printf '%q ' "$@")--duration $secs
rc=\$?
sleep 1
for k in segments_live accesses_live attachments_live; do
	v=\$(awk -v k=\$k '\$1 == k {print \$2}' /proc/xpmem/stats)
	[ \"\$v\" = 0 ] || { echo \"long-run: leak: \$k = \$v\"; rc=1; }
done
rmmod xpmem || { echo 'long-run: module does not unload'; rc=1; }
exit \$rc"
	rc=$?
	case $rc in
	0) summary+=("$kname ($krel): passed") ;;
	3) summary+=("$kname ($krel): FAILED, kernel splat (see $out/dmesg)"); failed=1 ;;
	*) summary+=("$kname ($krel): FAILED, exit $rc (see $out/output)"); failed=1 ;;
	esac
done <<<"$kernels"

echo "=== $name summary"
printf '  %s\n' "${summary[@]}"
exit $failed
