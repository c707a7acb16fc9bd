#!/usr/bin/env bash
# fabric-conf-to-xpmemd.sh LABCONF KEYFILE PORT
#
# Turns the fabric.conf that tests/lab/run-fabric.sh gives each guest
# (/xpmem-out/fabric.conf, see tests/lab/fabric/README.md) into an xpmemd
# configuration (man/xpmemd.8), printed on stdout. The lab numbers its nodes from
# 0, fabric node ids start at 1: node id = lab node + 1. Every daemon listens on
# PORT of its link-local address; each peer's window is its ivshmem BAR 2 (BDF),
# with the peer's RAM split at BELOW_4G_BYTES.
#
#   self NODE IP RAM_BYTES BELOW_4G_BYTES
#   peer NODE BDF BAR2_BYTES IP RAM_BYTES BELOW_4G_BYTES NETDEV
#
# Exit status 0, or 2 with a message naming the line for a malformed file.
set -euo pipefail

usage() {
	echo "usage: ${0##*/} LABCONF KEYFILE PORT" >&2
	exit 2
}
[ $# -eq 3 ] || usage
conf=$1 key=$2 port=$3
[ -r "$conf" ] || { echo "${0##*/}: cannot read $conf" >&2; exit 2; }
case "$port" in '' | *[!0-9]*) usage ;; esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
	echo "${0##*/}: port $port: must be 1..65535" >&2
	exit 2
fi
case "$key" in *[[:space:]#]*) echo "${0##*/}: key file path must not contain blanks or '#'" >&2; exit 2 ;; esac

awk -v src="$conf" -v key="$key" -v port="$port" '
function fail(msg) {
	printf "%s:%d: %s\n", src, NR, msg > "/dev/stderr"
	bad = 1
	exit 2
}
# Numbers stay strings (byte counts may pass what awk prints exactly with %d).
function num(s, what) {
	if (s !~ /^[0-9]+$/)
		fail(what " \"" s "\" is not a number")
	return s
}
function ipv4(s) {
	if (s !~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/)
		fail("\"" s "\" is not an IPv4 address")
	return s
}
function id(n) {
	n = num(n, "node") + 1
	if (n > 2047)
		fail("node " n - 1 " is beyond the fabric'"'"'s node ids (1..2047)")
	return n
}
/^[[:space:]]*(#|$)/ { next }
$1 == "self" {
	if (NF != 5)
		fail("self: expected NODE IP RAM_BYTES BELOW_4G_BYTES")
	if (have_self)
		fail("a second self line")
	have_self = 1
	self_lab = $2
	self_id = id($2)
	self_ip = ipv4($3)
	num($4, "RAM_BYTES")
	num($5, "BELOW_4G_BYTES")
	next
}
$1 == "peer" {
	if (NF != 8)
		fail("peer: expected NODE BDF BAR2_BYTES IP RAM_BYTES BELOW_4G_BYTES NETDEV")
	if ($3 !~ /^[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]\.[0-7]$/)
		fail("\"" $3 "\" is not a PCI address")
	pid = id($2)
	if (pid in seen)
		fail("peer " $2 " listed twice")
	seen[pid] = 1
	bar = num($4, "BAR2_BYTES")
	ram = num($6, "RAM_BYTES")
	if (bar + 0 < ram + 0)
		printf "%s:%d: warning: the window to node %s (%s bytes) is smaller than its RAM (%s bytes)\n", src, NR, $2, bar, ram > "/dev/stderr"
	np++
	peer[np] = sprintf("peer %d %s %s window-pci %s below-4g %s", pid, ipv4($5), port, $3, num($7, "BELOW_4G_BYTES"))
	note[np] = sprintf("# lab node %s over %s: BAR 2 of %s bytes onto %s bytes of RAM", $2, $8, bar, ram)
	next
}
{ fail("unknown line \"" $1 "\"") }
END {
	if (bad)
		exit 2
	if (!have_self) {
		printf "%s: no self line\n", src > "/dev/stderr"
		exit 2
	}
	printf "# xpmemd configuration of lab node %s (fabric node %d), made from %s\n", self_lab, self_id, src
	printf "node %d\n", self_id
	printf "listen %s %s\n", self_ip, port
	printf "key-file %s\n", key
	for (i = 1; i <= np; i++) {
		print note[i]
		print peer[i]
	}
}
' "$conf"
