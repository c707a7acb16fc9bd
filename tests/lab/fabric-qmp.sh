#!/usr/bin/env bash
# fabric-qmp.sh OUT NODE JSON [--wait EVENT] [--timeout S]
#
# Sends one QMP command to node NODE of a running run-fabric.sh whose output directory
# is OUT (its QMP socket is OUT/node<NODE>.qmp), prints the reply's "return" as JSON.
# This is the lab's fabric manager, the only real fence the testbed has:
#   fabric-qmp.sh OUT 1 '{"execute":"device_del","arguments":{"id":"win0"}}' --wait DEVICE_DELETED
#       unplug node 1's window onto node 0 (ids: win<peer>; the guest must eject it,
#       so wait for the event)
#   fabric-qmp.sh OUT 0 '{"execute":"stop"}'   freeze node 0 (its RAM stays readable
#       and writable through the peers' windows); '{"execute":"cont"}' resumes it
#   fabric-qmp.sh OUT 0 '{"execute":"quit"}'   kill node 0 (marked OUT/node0/fenced, so
#       run-fabric.sh does not count its missing exit status as a failure)
# Guests can ask for the same through the fabric-manager directory (XPMEM_FM_DIR, see
# tests/lab/fabric/README.md). Exit: 0 ok, 1 QMP error reply, 3 no QMP connection,
# 4 awaited event did not come, 2 usage.
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 3 ] || { echo "usage: fabric-qmp.sh OUT NODE JSON [--wait EVENT] [--timeout S]" >&2; exit 2; }
out=$1 node=$2
shift 2
[[ $node =~ ^[0-9]+$ ]] || { echo "fabric-qmp: bad node '$node'" >&2; exit 2; }
sock=$out/node$node.qmp
[ -S "$sock" ] || { echo "fabric-qmp: no QMP socket $sock (is the run still going?)" >&2; exit 3; }
case "$1" in *'"quit"'*) [ ! -d "$out/node$node" ] || date +%s >"$out/node$node/fenced" ;; esac
# Prefer the system interpreter: the script only needs the standard library.
py=/usr/bin/python3
[ -x $py ] || py=python3
exec "$py" "$LAB/fabric/qmp.py" "$(readlink -f "$sock")" "$@"
