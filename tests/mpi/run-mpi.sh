#!/usr/bin/env bash
# run-mpi.sh [--short] [--build BUILD] [--results FILE] [--bench-out DIR] [--only REGEX]
#
# Runs INSIDE a test-lab guest, as root, with xpmem.ko already loaded by the caller:
# real MPI traffic through the consumers built by build-consumers.sh (on the host,
# before the guest boots; the cache is visible in the guest through the host root).
#
#   vader-xpmem   Open MPI, pml ob1, btl vader with single_copy_mechanism=xpmem
#   vader-cma     the same with single_copy_mechanism=cma (xpmem must stay untouched)
#   ompi-ucx      Open MPI, pml ucx (osc ucx), UCX with our xpmem transport
#   mpich-ucx     MPICH (Debian's ch4:ucx), UCX with our xpmem transport
#   ompi-ucx-cma  pml ucx with UCX_TLS=self,posix,cma (full mode; xpmem untouched)
#
# Each runs the checks (mpi4py_checks.py and mpi_checks.c for Open MPI; mpi_checks.c
# for MPICH, since Debian's mpi4py is built for Open MPI only) with 2 and 4 ranks and
# NetPIPE's NPmpi ping-pong (2 ranks, full mode), then verifies /proc/xpmem/stats:
# attaches and faults must rise for the xpmem runs and no counter may move for CMA;
# after each run the *_live counters must be back to 0 and /proc/xpmem/global_pages
# all 0.
# One line per run: "ok: <name> (...)" or "FAILED: <name> (<why>)"; with --results,
# run-suite.sh lines "<name> <passed> <failed>". --short: a few runs for make check.
# --bench-out DIR: NPmpi figures as DIR/mpi-bench.json (+ raw NetPIPE outputs).
# Exit status: 0 if every run passed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHORT=0 BUILD=build RESULTS='' BENCH_OUT='' ONLY=
while [ $# -gt 0 ]; do
	case "$1" in
	--short) SHORT=1; shift ;;
	--build) BUILD=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--bench-out) BENCH_OUT=${2:?}; shift 2 ;;
	--only) ONLY=${2:?}; shift 2 ;;
	*) echo "usage: run-mpi.sh [--short] [--build BUILD] [--results FILE] [--bench-out DIR] [--only REGEX]" >&2; exit 2 ;;
	esac
done
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

PASSED=0 FAILED=0
record() { # name ok(1/0) message
	if [ "$2" = 1 ]; then
		echo "ok: $1${3:+ ($3)}"
		PASSED=$((PASSED + 1))
		[ -z "$RESULTS" ] || echo "$1 1 0" >>"$RESULTS"
	else
		echo "FAILED: $1${3:+ ($3)}"
		FAILED=$((FAILED + 1))
		[ -z "$RESULTS" ] || echo "$1 0 1" >>"$RESULTS"
	fi
}
finish() {
	echo "mpi: $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

if [ ! -c /dev/xpmem ] || [ ! -r /proc/xpmem/stats ]; then
	record mpi-setup 0 "xpmem module not loaded"
	finish
fi
if ! paths=$(bash "$HERE/build-consumers.sh" --print 2>&1); then
	record mpi-setup 0 "consumers not built: $paths"
	finish
fi
path() { awk -v k="$1" '$1 == k {print $2}' <<<"$paths"; }
OMPI_COMPONENTS=$(path ompi_components)
UCT_XPMEM=$(path uct_xpmem)
CHECKS_OMPI=$(path checks_openmpi)
CHECKS_MPICH=$(path checks_mpich)
# The checkout's current library first (SONAME libxpmem.so.0); the staged copy the
# consumers were linked against is only their RUNPATH fallback.
if [ -e "$BUILD/lib/libxpmem.so.0" ]; then
	XPMEM_LIBDIR=$BUILD/lib
else
	XPMEM_LIBDIR=$(path xpmem_prefix)/lib
fi
export LD_LIBRARY_PATH=$XPMEM_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Our vader first; Debian's components (everything else, and its own vader, which the
# first directory shadows) after it.
export OMPI_MCA_mca_base_component_path=$OMPI_COMPONENTS:/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
# No stray network interfaces in the guest: keep Open MPI's out-of-band on loopback.
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
# UCX: no InfiniBand or network probing noise in the guest.
export UCX_WARN_UNUSED_ENV_VARS=n
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/xpmem-mpi.XXXXXX)
echo "mpi: libxpmem from $XPMEM_LIBDIR, consumers from $(path dir)"

stat_value() { awk -v k="$1" '$1 == k {print $2}' /proc/xpmem/stats; }
COUNTERS="makes gets attaches faults huge_faults recalls"
snapshot() { for k in $COUNTERS; do printf '%s=%s ' "$k" "$(stat_value "$k")"; done; }
delta() { # before after key
	local b a
	b=$(tr ' ' '\n' <<<"$1" | awk -F= -v k="$3" '$1 == k {print $2}')
	a=$(tr ' ' '\n' <<<"$2" | awk -F= -v k="$3" '$1 == k {print $2}')
	echo $((a - b))
}
# Wait (up to 10 s) for every object to be gone after the processes exited.
leak_check() {
	local k v bad
	for _ in $(seq 1 20); do
		bad=
		for k in segments_live accesses_live attachments_live; do
			v=$(stat_value $k)
			[ "$v" = 0 ] || bad="$bad $k=$v"
		done
		[ -n "$bad" ] || break
		sleep 0.5
	done
	if ! grep -q 'pinned by XPMEM: 0$' /proc/xpmem/global_pages ||
		! grep -q 'unpinned by XPMEM: 0$' /proc/xpmem/global_pages; then
		bad="$bad global_pages=$(tr '\n' ' ' </proc/xpmem/global_pages)"
	fi
	echo "$bad"
}

# launcher CONFIG NP: the launch command in LAUNCH (rank environment via -x / -genv).
launcher() {
	local cfg=$1 np=$2
	local -a ompi=(mpirun.openmpi --oversubscribe --bind-to none -np "$np" -x LD_LIBRARY_PATH)
	case $cfg in
	vader-xpmem)
		LAUNCH=("${ompi[@]}" --mca pml ob1 --mca btl self,vader --mca osc '^ucx'
			--mca btl_vader_single_copy_mechanism xpmem) ;;
	vader-cma)
		LAUNCH=("${ompi[@]}" --mca pml ob1 --mca btl self,vader --mca osc '^ucx'
			--mca btl_vader_single_copy_mechanism cma) ;;
	ompi-ucx)
		LAUNCH=("${ompi[@]}" --mca pml ucx --mca osc ucx --mca btl self
			--mca opal_common_ucx_tls any --mca opal_common_ucx_devices any
			-x LD_PRELOAD="$UCT_XPMEM" -x UCX_TLS=self,sm -x UCX_WARN_UNUSED_ENV_VARS=n) ;;
	ompi-ucx-cma)
		# UCX without our transport: shared memory plus CMA for the large messages.
		LAUNCH=("${ompi[@]}" --mca pml ucx --mca osc ucx --mca btl self
			--mca opal_common_ucx_tls any --mca opal_common_ucx_devices any
			-x UCX_TLS=self,posix,cma -x UCX_WARN_UNUSED_ENV_VARS=n) ;;
	mpich-ucx)
		LAUNCH=(mpirun.mpich -np "$np" -genv LD_LIBRARY_PATH "$LD_LIBRARY_PATH"
			-genv LD_PRELOAD "$UCT_XPMEM" -genv UCX_TLS self,sm -genv UCX_WARN_UNUSED_ENV_VARS n) ;;
	esac
}
xpmem_expected() { [ "$1" != vader-cma ] && [ "$1" != ompi-ucx-cma ]; }

# run NAME CONFIG NP TIMEOUT COMMAND...: one run, verified.
run() {
	local name=$1 cfg=$2 np=$3 tmo=$4
	shift 4
	if [ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]]; then
		return 0
	fi
	launcher "$cfg" "$np"
	local log=$TMP/$name.log before after rc t0 why='' leaks da df dm
	before=$(snapshot)
	t0=$SECONDS
	timeout -k 5 "$tmo" "${LAUNCH[@]}" "$@" >"$log" 2>&1
	rc=$?
	after=$(snapshot)
	leaks=$(leak_check)
	da=$(delta "$before" "$after" attaches)
	df=$(delta "$before" "$after" faults)
	dm=$(delta "$before" "$after" makes)
	grep -a -E '^(mpi4py-checks|mpi-checks): ' "$log" | grep -a -v -E ' ok$|all passed$' | sed 's/^/  /'
	if [ $rc -eq 124 ]; then
		why="timeout after $tmo s"
	elif [ $rc -ne 0 ]; then
		why="exit $rc"
	elif grep -a -q -E '^(mpi4py-checks|mpi-checks): ' "$log" && ! grep -a -q 'checks: all passed' "$log"; then
		why="checks did not complete"
	fi
	if [ -z "$why" ]; then
		if xpmem_expected "$cfg"; then
			[ "$da" -gt 0 ] && [ "$df" -gt 0 ] || why="xpmem path not taken: attaches +$da, faults +$df"
		else
			[ "$da" -eq 0 ] && [ "$df" -eq 0 ] && [ "$dm" -eq 0 ] || why="xpmem used although not selected: makes +$dm attaches +$da faults +$df"
		fi
	fi
	[ -z "$leaks" ] || why="${why:+$why; }leak:$leaks"
	if [ -n "$why" ]; then
		record "$name" 0 "$why, $((SECONDS - t0)) s"
		tail -n 25 "$log" | sed 's/^/  | /'
		return 1
	fi
	record "$name" 1 "makes +$dm, attaches +$da, faults +$df, huge_faults +$(delta "$before" "$after" huge_faults), $((SECONDS - t0)) s"
	return 0
}

# Evidence from the transports themselves that our xpmem is what they would use.
evidence() { # [ucx]: only UCX's
	local name=ompi-info-vader-xpmem
	if [ "${1:-}" != ucx ] && { [ -z "$ONLY" ] || [[ $name =~ $ONLY ]]; }; then
		ompi_info --param btl vader --level 9 >"$TMP/ompi_info" 2>&1
		# The enumeration of single_copy_mechanism only has xpmem when built with it.
		if grep -a -A2 'btl_vader_single_copy_mechanism' "$TMP/ompi_info" | grep -a -q 'Valid values: .*"xpmem"'; then
			record $name 1 "$(grep -a -o 'Valid values: [0-9]*:"xpmem".*' "$TMP/ompi_info" | head -n 1)"
		else
			record $name 0 "ompi_info shows no xpmem single-copy mechanism for vader"
			tail -n 20 "$TMP/ompi_info" | sed 's/^/  | /'
		fi
	fi
	name=ucx-info-xpmem
	if [ -z "$ONLY" ] || [[ $name =~ $ONLY ]]; then
		if LD_PRELOAD=$UCT_XPMEM ucx_info -d >"$TMP/ucx_info" 2>&1 && grep -a -q 'Transport: xpmem' "$TMP/ucx_info"; then
			record $name 1 "ucx_info -d with libuct_xpmem preloaded: memory domain and transport xpmem"
		else
			record $name 0 "ucx_info -d with $UCT_XPMEM preloaded lists no xpmem transport"
		fi
	fi
}

# NetPIPE ping-pong (exactly 2 ranks); NetPIPE sizes its repeat counts for a fixed time
# per message size (best of 3 trials), which bounds the run also under TCG. Its
# output file is kept for the JSON.
np_bench() { # config lower upper
	local cfg=$1 lo=$2 hi=$3 bin=NPopenmpi
	[ "$cfg" != mpich-ucx ] || bin=NPmpich2
	run "netpipe-$cfg" "$cfg" 2 900 $bin -l "$lo" -u "$hi" -p 0 -o "$TMP/np-$cfg.out" &&
		[ -s "$TMP/np-$cfg.out" ] && cp "$TMP/np-$cfg.out" "$TMP/bench-$cfg.out"
}

checks() { # py|c config np size iters
	local kind=$1 cfg=$2 np=$3 sz=$4 it=$5
	local -a extra=()
	# Open MPI 4.1 osc/ucx tears down its endpoints in MPI_Finalize without a barrier;
	# UCX then reads peer FIFOs through the peers' XPMEM segments, which SIGBUS once a
	# peer has exited (openucx/ucx#8183): keep all ranks alive until all finalized.
	[ "$cfg" != ompi-ucx ] || extra=(--exit-barrier "$TMP/exit-$kind-$cfg-np$np")
	if [ "$kind" = c ]; then
		local bin=$CHECKS_OMPI
		[ "$cfg" != mpich-ucx ] || bin=$CHECKS_MPICH
		run "checks-$cfg-np$np" "$cfg" "$np" 900 "$bin" --size "$sz" --iters "$it" "${extra[@]}"
	else
		run "mpi4py-$cfg-np$np" "$cfg" "$np" 900 $PY "$HERE/mpi4py_checks.py" --size "$sz" --iters "$it" "${extra[@]}"
	fi
}

t_start=$SECONDS
if [ $SHORT = 1 ]; then
	# The C checks only (Python start-up costs about a minute per run under TCG).
	evidence ucx
	checks c vader-xpmem 2 $((4 << 20)) 2
	checks c vader-cma 2 $((4 << 20)) 2
	checks c ompi-ucx 2 $((4 << 20)) 2
	checks c mpich-ucx 2 $((4 << 20)) 2
else
	evidence
	for np in 2 4; do
		for cfg in vader-xpmem vader-cma ompi-ucx; do
			checks py $cfg $np $((4 << 20)) 3
			checks c $cfg $np $((8 << 20)) 3
		done
		checks c mpich-ucx $np $((8 << 20)) 3
		checks c ompi-ucx-cma $np $((8 << 20)) 3
	done
	for cfg in vader-xpmem vader-cma ompi-ucx ompi-ucx-cma mpich-ucx; do
		np_bench $cfg 8 $((8 << 20))
	done
fi

if [ -n "$BENCH_OUT" ]; then
	mkdir -p "$BENCH_OUT"
	cp "$TMP"/bench-*.out "$BENCH_OUT"/ 2>/dev/null
	$PY - "$BENCH_OUT" "$(uname -r)" "$TMP"/bench-*.out <<'EOF'
import json, os, sys
out, kernel, files = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {}
for f in files:
    name = os.path.basename(f)[len("bench-"):-len(".out")]
    pts = []
    for line in open(f):
        p = line.split()
        if len(p) >= 3:
            # NetPIPE: bytes, Mbit/s, seconds per one-way transfer (half round trip).
            pts.append({"bytes": int(p[0]), "mbps": float(p[1]), "usec": float(p[2]) * 1e6})
    runs[name] = pts
json.dump({"kernel": kernel, "tool": "NetPIPE 3.7 NPmpi ping-pong, 2 ranks", "runs": runs},
          open(os.path.join(out, "mpi-bench.json"), "w"), indent=1)
def at(name, size):
    for p in runs.get(name, []):
        if p["bytes"] == size:
            return p
for size in (8, 4096, 65536, 1 << 20, 4 << 20):
    cells = []
    for name in sorted(runs):
        p = at(name, size)
        if p:
            cells.append("%s %.0f Mb/s %.1f us" % (name, p["mbps"], p["usec"]))
    if cells:
        print("mpi-bench: %8d B: %s" % (size, "; ".join(cells)))
EOF
fi
rm -rf "$TMP"
echo "mpi: matrix took $((SECONDS - t_start)) s"
finish
