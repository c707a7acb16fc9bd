#!/usr/bin/env bash
# Runs libFuzzer targets built by `make libfuzz-build`, each for a bounded time,
# and prints one line per target with libFuzzer's figures: executions, coverage
# (edges, "cov", and features, "ft") when it started and when it stopped, corpus.
# Usage: run.sh BUILD_DIR SECONDS TARGET...   (TARGET: query, args)
# Exit status: 0 if every target ran its time without a finding.
set -uo pipefail

[ $# -ge 3 ] || { echo "usage: run.sh BUILD_DIR SECONDS TARGET..." >&2; exit 2; }
out=$1/fuzz/libfuzzer
secs=$2
shift 2

# "cov: 98 ft: 120 corp: 9/1021b ..." -> "98 120 9"
figures() {
	sed -E -n 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3/p'
}

status=0
for t in "$@"; do
	corpus=$out/corpus/$t
	log=$out/$t.log
	mkdir -p "$corpus"
	# New inputs go to the first directory; the seeds stay as they are.
	"$out/fuzz-$t" -max_total_time="$secs" -print_final_stats=1 -max_len=4096 \
		-artifact_prefix="$out/$t-" "$corpus" "$out/seeds/$t" >"$log" 2>&1
	rc=$?
	read -r cov0 ft0 _ < <(grep -a -m1 'INITED' "$log" | figures)
	read -r cov1 ft1 corp < <(grep -a 'DONE' "$log" | tail -n1 | figures)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	if [ "$rc" -eq 0 ] && [ -n "${cov1:-}" ] && [ "${execs:-0}" -gt 0 ]; then
		echo "libfuzzer-$t: $execs execs ($rate/s), cov ${cov0:-?} -> $cov1, ft ${ft0:-?} -> $ft1, corpus $corp"
	else
		echo "libfuzzer-$t: FAILED (exit $rc, log $log)"
		grep -a -m1 -A 25 -E '^==[0-9]+==|invariant failed|runtime error|^INFO: a leak' "$log" ||
			tail -n 25 "$log"
		status=1
	fi
done
exit $status
