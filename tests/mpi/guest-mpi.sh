#!/usr/bin/env bash
# guest-mpi.sh MODULE.ko BUILD [run-mpi.sh arguments...]
# Runs inside a test-lab guest (tests/lab/run-guest.sh): loads the module, runs the
# MPI matrix (tests/mpi/run-mpi.sh), checks that the module unloads. Ends with
# "N passed, N failed" over all of it.
set -u
KO=$1
BUILD=$2
shift 2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RES=$(mktemp)
if insmod "$KO"; then
	echo "ok: module-loads"
	echo "module-loads 1 0" >>"$RES"
	bash "$HERE/run-mpi.sh" --build "$BUILD" --results "$RES" "$@"
	if rmmod xpmem; then
		echo "ok: module-unloads"
		echo "module-unloads 1 0" >>"$RES"
	else
		echo "FAILED: module-unloads"
		echo "module-unloads 0 1" >>"$RES"
	fi
else
	echo "FAILED: module-loads"
	echo "module-loads 0 1" >>"$RES"
fi
# (no process substitution: the guest has no /dev/fd)
p=$(awk '{p += $2} END {print p + 0}' "$RES")
f=$(awk '{f += $3} END {print f + 0}' "$RES")
rm -f "$RES"
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
