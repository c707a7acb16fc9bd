#!/usr/bin/env bash
# fm-request.sh NAME NODE JSON [--wait EVENT] [--timeout S]   (inside a run-fabric.sh guest)
#
# Asks the host's fabric manager (run-fabric.sh) to send one QMP command to node NODE,
# exactly as tests/lab/fabric-qmp.sh OUT NODE JSON ... would on the host, and waits for
# the answer: prints the reply and exits with fabric-qmp.sh's status. NAME: a unique
# name for this request in this guest (e.g. "stop-node0"). Example, in node 1:
#   tests/lab/fabric/fm-request.sh unplug0 1 '{"execute":"device_del","arguments":{"id":"win0"}}' --wait DEVICE_DELETED
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: fm-request.sh NAME NODE JSON [--wait EVENT] [--timeout S]" >&2; exit 2; }
dir=${XPMEM_FM_DIR:?not in a run-fabric.sh guest (no XPMEM_FM_DIR)}
name=$1
shift
[ ! -e "$dir/$name.req" ] && [ ! -e "$dir/$name.taken" ] || { echo "fm-request: name $name already used" >&2; exit 2; }
printf '%s\n' "$@" >"$dir/$name.tmp"
mv "$dir/$name.tmp" "$dir/$name.req"
for ((i = 0; i < 3000; i++)); do
	if [ -e "$dir/$name.rep" ]; then
		tail -n +2 "$dir/$name.rep"
		exit "$(head -n 1 "$dir/$name.rep")"
	fi
	sleep 0.1
done
echo "fm-request: no answer from the fabric manager in 300 s" >&2
exit 3
