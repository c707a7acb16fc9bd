#!/usr/bin/env bash
# The fabric part of make bench: two Debian 6.1 guests as fabric nodes run
# tests/fabric/bench_fabric.py (remote populate and remote recall, each as a ratio to
# the local one measured in the same run). Prints the figures; the JSON goes to
# $BUILD/bench/fabric.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
dir=$(XPMEM_KERNELS=6.1 bash tests/lab/fetch-kernels.sh | awk '{print $2}')
make -s user module KDIR="$dir/kdir" BUILD="$BUILD"
krel=$(cat "$dir/kdir/include/config/kernel.release")
mkdir -p "$BUILD/fabric" "$BUILD/bench"
key=$(cd "$BUILD/fabric" && pwd)/key
rm -f "$key"
(umask 077; head -c 32 /dev/urandom >"$key")
out=$(mktemp -d -t xpmem-fabric-bench.XXXXXX)
bash tests/lab/run-fabric.sh "$dir" --nodes 2 --mem 512 --timeout 900 --out "$out" -- \
	python3 tests/fabric/bench_fabric.py --build "$BUILD" --ko "$BUILD/kmod/$krel/xpmem.ko" --key "$key"
cp "$out/node0/fabric-bench.json" "$BUILD/bench/fabric.json"
echo "fabric bench: $BUILD/bench/fabric.json"
