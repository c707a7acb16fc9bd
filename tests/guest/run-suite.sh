#!/bin/sh
# Runs inside a test-lab guest (as root): load the module, run the whole suite,
# check for leaks, unload. Writes "<name> <passed> <failed>" lines to $RESULTS.
# Usage: run-suite.sh MODULE.ko BUILD_DIR RESULTS_FILE
# XPMEM_USER_SANITIZERS=0: leave out the second runs of the suite and of the xpmemctl
# tests with the ASan+UBSan builds (the debug-kernel lane: those check user space,
# which the other kernels' lanes already cover, and cost much time under KASAN).
# XPMEM_MPI=0: leave out the MPI consumers (tests/mpi/run-mpi.sh --short).
set -u
KO=$1
BUILD=$2
RESULTS=$3
: >"$RESULTS"

record() { # name passed failed
	echo "$1 $2 $3" >>"$RESULTS"
}

check() { # name command...: one pass/fail entry
	name=$1
	shift
	if "$@"; then
		echo "ok: $name"
		record "$name" 1 0
	else
		echo "FAILED: $name"
		record "$name" 0 1
	fi
}

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:".
run_cmocka() { # name binary args...
	name=$1
	shift
	log=/tmp/xpmem-$name.log
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
	failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		echo "FAILED: $name exited with $rc without a cmocka failure count"
		failed=1
	fi
	if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
		echo "FAILED: $name ran no test"
		failed=1
	fi
	record "$name" "$passed" "$failed"
}

stat_value() {
	awk -v k="$1" '$1 == k {print $2}' /proc/xpmem/stats
}

no_live_objects() {
	for k in segments_live accesses_live attachments_live; do
		v=$(stat_value $k)
		if [ "$v" != 0 ]; then
			echo "leak: $k = $v"
			return 1
		fi
	done
}

pages_balanced() {
	pinned=$(sed -n 's/^all pages pinned by XPMEM: //p' /proc/xpmem/global_pages)
	unpinned=$(sed -n 's/^all pages unpinned by XPMEM: //p' /proc/xpmem/global_pages)
	echo "pinned=$pinned unpinned=$unpinned"
	[ -n "$pinned" ] && [ "$pinned" = "$unpinned" ] && [ "$pinned" = 0 ]
}

# kmemleak (debug kernel): forget what the kernel leaked before our module came.
KMEMLEAK=/sys/kernel/debug/kmemleak
[ -d /sys/kernel/debug/tracing ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
if [ -e $KMEMLEAK ]; then
	echo scan >$KMEMLEAK
	echo clear >$KMEMLEAK
fi

no_kmemleak_reports() {
	# Objects must be unreferenced for 5 s before kmemleak reports them.
	echo scan >$KMEMLEAK
	sleep 6
	echo scan >$KMEMLEAK
	if [ -s $KMEMLEAK ]; then
		cat $KMEMLEAK
		return 1
	fi
}

check module-loads insmod "$KO"
if ! grep -qw xpmem /proc/modules; then
	exit 1
fi
check device-node test -c /dev/xpmem

run_cmocka suite "$BUILD/tests/xpmem-suite"
[ "${XPMEM_USER_SANITIZERS:-1}" = 0 ] ||
	run_cmocka suite-asan env ASAN_OPTIONS=detect_leaks=1 "$BUILD/tests/xpmem-suite-asan"
run_cmocka xpmemctl sh "$(dirname "$0")/../xpmemctl/test_xpmemctl.sh" "$BUILD"
# The same checks against the ASan+UBSan build of xpmemctl.
[ "${XPMEM_USER_SANITIZERS:-1}" = 0 ] ||
	run_cmocka xpmemctl-asan sh "$(dirname "$0")/../xpmemctl/test_xpmemctl.sh" "$BUILD" "$BUILD/tools/xpmemctl-asan"

# A program that checks itself and prints its figures on lines prefixed with its name:
# one entry; those lines on the console, the whole log beside the results file.
run_tool() { # name command...
	name=$1
	shift
	log=$(dirname "$RESULTS")/$name.log
	"$@" >"$log" 2>&1
	rc=$?
	grep -a "^xpmem-$name:" "$log"
	if [ "$rc" -eq 0 ]; then
		echo "ok: $name"
		record "$name" 1 0
	else
		echo "FAILED: $name (exit $rc, full log in $log)"
		tail -n 20 "$log"
		record "$name" 0 1
	fi
}

# Bounded runs of the race stress test and the ioctl fuzzer (long runs: make stress/fuzz).
run_tool stress "$BUILD/tests/xpmem-stress" --duration "${XPMEM_STRESS_SECONDS:-40}"
run_tool fuzz "$BUILD/tests/xpmem-fuzz" --duration "${XPMEM_FUZZ_SECONDS:-25}"
# Regression tests of fixed kernel bugs (tests/stress/repro_*.c).
run_tool repro-pid-leak "$BUILD/tests/xpmem-repro-pid-leak" 1000
run_tool repro-futex-deadlock "$BUILD/tests/xpmem-repro-futex-deadlock" 15
run_tool repro-remove-window "$BUILD/tests/xpmem-repro-remove-window" 15

# Real MPI consumers (Open MPI vader/UCX, MPICH) over the module: the short matrix
# (make mpi-check runs the full one). XPMEM_MPI=0 leaves it out (the debug lane).
[ "${XPMEM_MPI:-1}" = 0 ] ||
	bash "$(dirname "$0")/../mpi/run-mpi.sh" --short --build "$BUILD" --results "$RESULTS"

# Every test process has exited: nothing may be left behind.
sleep 1
check no-leaked-objects no_live_objects
check no-pinned-pages pages_balanced
check module-unloads rmmod xpmem
if [ -e $KMEMLEAK ]; then
	check no-kmemleak-reports no_kmemleak_reports
fi
exit 0
