#!/usr/bin/env bash
# make check: build the module for every kernel of the test matrix, boot each in a
# QEMU guest, run the whole in-guest suite, and fail on any test failure, kernel
# splat, leak or a module that will not unload. Ends with "N passed, N failed".
#   XPMEM_KERNELS="6.1 6.12"   Debian kernels to use (default both)
#   XPMEM_DEBUG_KERNEL=0       skip the KASAN/lockdep/kmemleak/fault-injection kernel built
#                              from linux-source-6.1 (built once, cached by its config)
#   XPMEM_FABRIC=0             skip the multi-guest fabric lab
#   XPMEM_MPI=0                skip the MPI consumers (Open MPI, UCX, MPICH; tests/mpi)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LAB=tests/lab
BUILD=${BUILD:-build}

bash $LAB/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
kernels=$(bash $LAB/fetch-kernels.sh) || { echo "check: fetching kernels failed"; echo "0 passed, 1 failed"; exit 1; }
if [ "${XPMEM_DEBUG_KERNEL:-1}" != 0 ]; then
	debug=$(bash $LAB/build-debug-kernel.sh) || { echo "check: building the debug kernel failed"; echo "0 passed, 1 failed"; exit 1; }
	kernels=$(printf '%s\n%s\n' "$kernels" "$debug")
fi
make -s user BUILD="$BUILD" || { echo "check: user-space build failed"; echo "0 passed, 1 failed"; exit 1; }
# Open MPI's vader BTL and UCX's xpmem transport from Debian's sources (cached by their
# versions); the guests run them from the cache. XPMEM_MPI=0 skips them.
if [ "${XPMEM_MPI:-1}" != 0 ]; then
	bash tests/mpi/build-consumers.sh >/dev/null ||
		{ echo "check: building the MPI consumers failed"; echo "0 passed, 1 failed"; exit 1; }
fi

total_passed=0
total_failed=0
summary=()
if bash $LAB/lint.sh; then
	total_passed=$((total_passed + 1))
	summary+=("checkpatch - passed")
else
	total_failed=$((total_failed + 1))
	summary+=("checkpatch - FAILED")
fi
if bash tests/pkg/version-check.sh; then
	total_passed=$((total_passed + 1))
	summary+=("version-check - passed")
else
	total_failed=$((total_failed + 1))
	summary+=("version-check - FAILED")
fi
# Host side: xpmemd's config, wire, replay and membership logic (plain and ASan builds).
if make -s xpmemd-unit BUILD="$BUILD"; then
	total_passed=$((total_passed + 1))
	summary+=("xpmemd-unit - passed")
else
	total_failed=$((total_failed + 1))
	summary+=("xpmemd-unit - FAILED")
fi
# Host side: each libFuzzer target of xpmemctl's parsers for 20 s (long runs: make libfuzz).
libfuzz_targets=(query args wire)
if make -s libfuzz-build BUILD="$BUILD"; then
	for t in "${libfuzz_targets[@]}"; do
		if bash tests/fuzz/libfuzzer/run.sh "$BUILD" 20 "$t"; then
			total_passed=$((total_passed + 1))
			summary+=("libfuzzer-$t - passed")
		else
			total_failed=$((total_failed + 1))
			summary+=("libfuzzer-$t - FAILED")
		fi
	done
else
	echo "check: building the libFuzzer targets failed"
	total_failed=$((total_failed + ${#libfuzz_targets[@]}))
	summary+=("libfuzzer - build FAILED")
fi
while read -r name dir; do
	[ -n "$name" ] || continue
	passed=0
	failed=0
	krel=$(cat "$dir/kdir/include/config/kernel.release")
	echo "=== kernel $name ($krel)"
	if make -s module KDIR="$dir/kdir" BUILD="$BUILD"; then
		out=$(mktemp -d)
		# KASAN and lockdep make the debug kernel several times slower; MPI there adds
		# minutes and checks nothing the other lanes miss.
		timeout=900 lane="XPMEM_MPI=${XPMEM_MPI:-1}"
		[ "$name" != debug ] || { timeout=2700; lane="XPMEM_USER_SANITIZERS=0 XPMEM_MPI=0"; }
		# One 1 GiB hugetlb page for huge_pud_mapping, reserved at boot: it needs 3 GiB
		# nodes to find a free aligned GiB.
		bash $LAB/run-guest.sh "$dir" --mem 6144 --append "hugepagesz=1G hugepages=1" \
			--timeout $timeout --out "$out" -- \
			$lane tests/guest/run-suite.sh "$BUILD/kmod/$krel/xpmem.ko" "$BUILD" /xpmem-out/results
		rc=$?
		if [ -s "$out/results" ]; then
			read -r p f < <(awk '{p += $2; f += $3} END {print p + 0, f + 0}' "$out/results")
			passed=$((passed + p))
			failed=$((failed + f))
			awk '$3 > 0 {print "  failed: " $1}' "$out/results"
		else
			echo "  failed: the guest produced no results"
			failed=$((failed + 1))
		fi
		# The kernel log is one more test: run-guest.sh exits 3 on any splat.
		case $rc in
		0) passed=$((passed + 1)) ;;
		3) echo "  failed: kernel log has a splat (see $out/dmesg)"; failed=$((failed + 1)) ;;
		*) echo "  failed: guest run ended with $rc (see $out)"; failed=$((failed + 1)) ;;
		esac
	else
		echo "  failed: module build"
		failed=$((failed + 1))
	fi
	summary+=("$name ($krel) - $passed passed, $failed failed")
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
done <<<"$kernels"

# The multi-guest fabric lab (tests/fabric/lab-check.sh): guests sharing memory through
# ivshmem windows, the facts the cross-host fabric is built on. XPMEM_FABRIC=0 skips it.
if [ "${XPMEM_FABRIC:-1}" != 0 ]; then
	echo "=== fabric lab (2 and 3 guests: Debian 6.1, 6.12 and the debug kernel)"
	flog=$(mktemp)
	# With the debug kernel, the node test runs once more under KASAN and lockdep.
	FABRIC_DEBUG_KERNEL=$(awk '{print $2}' <<<"${debug:-}") BUILD="$BUILD" \
		bash tests/fabric/lab-check.sh 2>&1 | tee "$flog" | sed 's/^/  /'
	read -r p f < <(sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$flog" | tail -n 1)
	p=${p:-0} f=${f:-1}
	[ $((p + f)) -gt 0 ] || f=1
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
	summary+=("fabric lab - $p passed, $f failed")
	rm -f "$flog"
fi

echo "=== summary"
printf '  %s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
