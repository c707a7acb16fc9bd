#!/usr/bin/env bash
# mpi-check.sh [--bench]: make mpi-check / make mpi-bench (host side, as root).
#
# Builds the MPI consumers (build-consumers.sh: Open MPI vader and UCX's xpmem
# transport from Debian's source packages, cached outside the checkout), the module
# for each kernel of the test matrix, boots each kernel in a QEMU guest and runs the
# full MPI matrix there (tests/mpi/guest-mpi.sh -> run-mpi.sh); --bench runs only the
# NetPIPE part. Results per kernel in $BUILD/mpi/<kernel>/ (output, dmesg,
# bench/mpi-bench.json), the plot in $BUILD/mpi/mpi-bench.png. Ends with
# "N passed, N failed" (a kernel splat or a guest that did not finish counts as failed).
#   XPMEM_MPI_KERNELS   kernels (default: $XPMEM_KERNELS, else "6.1 6.12")
#   BUILD               build directory (default build)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
LAB=tests/lab
BUILD=${BUILD:-build}
ARGS=()
TIMEOUT=2400
if [ "${1:-}" = --bench ]; then
	ARGS=(--only netpipe)
	TIMEOUT=1200
fi

fail_early() { echo "mpi-check: $*"; echo "0 passed, 1 failed"; exit 1; }
bash $LAB/install-deps.sh || fail_early "installing dependencies failed"
kernels=$(XPMEM_KERNELS=${XPMEM_MPI_KERNELS:-${XPMEM_KERNELS:-6.1 6.12}} bash $LAB/fetch-kernels.sh) ||
	fail_early "fetching kernels failed"
t0=$SECONDS
bash tests/mpi/build-consumers.sh || fail_early "building the MPI consumers failed"
echo "mpi-check: consumers ready after $((SECONDS - t0)) s"
make -s user BUILD="$BUILD" || fail_early "user-space build failed"

total_passed=0
total_failed=0
summary=()
jsons=()
while read -r name dir; do
	[ -n "$name" ] || continue
	krel=$(cat "$dir/kdir/include/config/kernel.release")
	echo "=== kernel $name ($krel)"
	passed=0
	failed=0
	out=$BUILD/mpi/$name
	if make -s module KDIR="$dir/kdir" BUILD="$BUILD"; then
		rm -rf "$out"
		mkdir -p "$out"
		t0=$SECONDS
		bash $LAB/run-guest.sh "$dir" --mem 2048 --timeout $TIMEOUT --out "$out" -- \
			bash tests/mpi/guest-mpi.sh "$BUILD/kmod/$krel/xpmem.ko" "$BUILD" \
			--bench-out /xpmem-out/bench "${ARGS[@]}"
		rc=$?
		line=$(grep -a -E '^[0-9]+ passed, [0-9]+ failed$' "$out/output" | tail -n 1)
		if [ -n "$line" ]; then
			passed=${line%% passed*}
			failed=${line#*passed, }
			failed=${failed%% failed}
		else
			echo "  failed: the guest produced no result line"
			failed=1
		fi
		case $rc in
		0) passed=$((passed + 1)) ;;
		3) echo "  failed: kernel log has a splat (see $out/dmesg)"; failed=$((failed + 1)) ;;
		*) [ "$failed" -gt 0 ] || failed=1; echo "  failed: guest run ended with $rc (see $out)" ;;
		esac
		[ ! -s "$out/bench/mpi-bench.json" ] || jsons+=("$out/bench/mpi-bench.json")
		summary+=("$name ($krel) - $passed passed, $failed failed, $((SECONDS - t0)) s")
	else
		echo "  failed: module build"
		failed=1
		summary+=("$name ($krel) - module build FAILED")
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
done <<<"$kernels"

if [ ${#jsons[@]} -gt 0 ]; then
	/usr/bin/python3 tests/mpi/plot-bench.py "$BUILD/mpi/mpi-bench.png" "${jsons[@]}" ||
		echo "mpi-check: plotting failed (not counted)"
fi
echo "=== summary"
printf '  %s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
