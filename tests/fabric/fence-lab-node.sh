#!/usr/bin/env bash
# fence-lab-node.sh NODE: xpmemd's fence-command in the fabric lab. Fabric node NODE is
# lab node NODE-1; the fabric manager (run-fabric.sh) quits its QEMU, the lab's only
# real fence. Exit 0 once it is fenced: quit answered, or its QEMU is already gone
# (fabric-qmp.sh exit 3: no QMP socket, e.g. another peer fenced it first).
set -u
node=${1:?usage: fence-lab-node.sh NODE}
"$(dirname "$0")/../lab/fabric/fm-request.sh" "fence-$node-$(date +%s%N)" $((node - 1)) \
	'{"execute":"quit"}' >/dev/null
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ]
