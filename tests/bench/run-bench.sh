#!/usr/bin/env bash
# make bench: build the benchmarks and the module, boot a Debian guest (6.12, the
# kernel with 2 MiB attacher mappings, unless XPMEM_BENCH_KERNEL=6.1), run
# xpmem-bench there, bring its JSON back through the guest's /xpmem-out and draw
# the plots on the host. Results in $BUILD/bench/:
#   bench.json   the figures            bench.txt   the tables (the guest's output)
#   *.png        bandwidth, populate, recall, attach and teardown plots
# BENCH_ARGS is passed to xpmem-bench (e.g. "--quick", or "copy recall");
# XPMEM_BENCH_KO=<xpmem.ko> uses that module (built for the kernel) instead of building one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LAB=tests/lab
BUILD=${BUILD:-build}
KERNEL=${XPMEM_BENCH_KERNEL:-6.12}
OUT=$BUILD/bench

bash $LAB/install-deps.sh
dir=$(XPMEM_KERNELS=$KERNEL bash $LAB/fetch-kernels.sh | awk '{print $2}')
[ -n "$dir" ] || { echo "run-bench: no $KERNEL kernel" >&2; exit 1; }
krel=$(cat "$dir/kdir/include/config/kernel.release")
make -s user BUILD="$BUILD"
ko=${XPMEM_BENCH_KO:-}
if [ -z "$ko" ]; then
	make -s module KDIR="$dir/kdir" BUILD="$BUILD"
	ko=$BUILD/kmod/$krel/xpmem.ko
fi

mkdir -p "$OUT/guest"
rm -f "$OUT"/*.json "$OUT"/*.png "$OUT"/bench.txt "$OUT/guest/bench.json"
rc=0
# 6 GiB and one 1 GiB hugetlb page reserved at boot, for the 1 GiB populate figure.
bash $LAB/run-guest.sh "$dir" --mem 6144 --append "hugepagesz=1G hugepages=1" --timeout 3600 \
	--out "$OUT/guest" -- \
	"insmod $ko || exit 1
# TCG runs glibc's rep movsb copies ~50x slower than vector loops (hardware does not):
# keep memcpy on its vector path, for xpmem and local memory alike.
GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=$((1 << 40)) \
	$BUILD/tests/xpmem-bench --json /xpmem-out/bench.json ${BENCH_ARGS:-}
rc=\$?
rmmod xpmem
exit \$rc" || rc=$?
cp "$OUT/guest/output" "$OUT/bench.txt"
if [ ! -s "$OUT/guest/bench.json" ]; then
	echo "run-bench: the guest produced no bench.json (run-guest status $rc; see $OUT/guest)" >&2
	exit 1
fi
cp "$OUT/guest/bench.json" "$OUT/bench.json"

# Debian's python3-matplotlib lives in the system interpreter (another python3 may
# come first in PATH).
py=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import matplotlib' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "run-bench: no python3 with matplotlib (install python3-matplotlib)" >&2; exit 1; }
"$py" tests/bench/plot.py "$OUT/bench.json" "$OUT"
echo "run-bench: results in $OUT (bench.txt, bench.json, $(cd "$OUT" && echo *.png))"
exit $rc
