#!/usr/bin/env bash
# run-fabric.sh KERNEL_DIR --nodes N [--mem MB] [--low MB] [--smp CPUS] [--timeout S]
#               [--grace S] [--out DIR] -- COMMAND...
#
# The multi-guest lab of the cross-host fabric: boots N (2 or 3) QEMU TCG guests of
# KERNEL_DIR (a fetch-kernels.sh directory) whose RAM is a shared file in a per-run
# directory under /dev/shm, each with one ivshmem-plain "window" per peer mapping that
# peer's RAM file, and point-to-point virtio-net links between every pair. The
# userland is this machine's root (read-only 9p, tmpfs overlay), as in run-guest.sh.
# COMMAND runs as root in every guest at once, in the caller's cwd, with
#   XPMEM_NODE=<i> XPMEM_NODES=<N> XPMEM_FABRIC_CONF=/xpmem-out/fabric.conf
#   XPMEM_FM_DIR=/xpmem-out/fm  (fabric-manager requests, see tests/lab/fabric/README.md)
# Guest i: hostname node<i>, address 169.254.0.<i+1>/16 on each of its links with a
# host route per peer; /etc/hosts names the nodes. fabric.conf lines (also saved in
# OUT/node<i>/fabric.conf):
#   self NODE IP RAM_BYTES BELOW_4G_BYTES
#   peer NODE BDF BAR2_BYTES IP RAM_BYTES BELOW_4G_BYTES NETDEV
# A peer's guest-physical address P is at BAR2 offset P if P < BELOW_4G, else at
# P - 4 GiB + BELOW_4G.
#
#   --mem MB      guest RAM, a power of two (it is also the BAR size), default 512
#   --low MB      QEMU's max-ram-below-4g: with --low < --mem the RAM is split into
#                 [0, low) and [4 GiB, 4 GiB + mem - low) (default: QEMU's own split)
#   --smp CPUS    vCPUs per guest, default 2. Keep >= 2: with one vCPU, TCG generates
#                 non-atomic code for locked instructions, so cross-guest atomics break.
#   --timeout S   per guest (default 900); --grace S: how long the other guests may go
#                 on once one guest has failed (default 30)
#
# Per-node results in OUT/node<i>/: output, rc, dmesg, console.log, qemu.log,
# fabric.conf, plan, fm/ (manager requests and replies). QMP sockets: OUT/node<i>.qmp
# (symlinks into the run directory, valid while the run lasts; tests/lab/fabric-qmp.sh).
#
# Exit status: 0 if every node's command exited 0 with a clean kernel log; else 3 if
# any kernel log has a splat (check-log.sh), 124 if any guest timed out, 125 if a guest
# ended without an exit status (a guest quit through the fabric manager is "fenced",
# and one stopped because another failed first is neither: they do not count),
# otherwise the first failing node's status; 2 = usage.
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}

usage() {
	echo "usage: run-fabric.sh KERNEL_DIR --nodes N [--mem MB] [--low MB] [--smp CPUS] [--timeout S] [--grace S] [--out DIR] -- COMMAND..." >&2
	exit 2
}
say() { echo "run-fabric: $*" >&2; }

[ $# -ge 1 ] || usage
KDIR=$(cd "$1" && pwd) || usage
shift
NODES= MEM=512 LOW= SMP=2 TIMEOUT=900 GRACE=30 OUT=
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) NODES=${2:?}; shift 2 ;;
	--mem) MEM=${2:?}; shift 2 ;;
	--low) LOW=${2:?}; shift 2 ;;
	--smp) SMP=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--grace) GRACE=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage
[[ $NODES =~ ^[23]$ ]] || { say "--nodes must be 2 or 3"; usage; }
[[ $MEM =~ ^[0-9]+$ && $MEM -ge 256 && $((MEM & (MEM - 1))) -eq 0 ]] ||
	{ say "--mem must be a power of two >= 256 (it is the ivshmem BAR size)"; usage; }
[[ -z $LOW || ($LOW =~ ^[0-9]+$ && $LOW -ge 128 && $LOW -le 3072) ]] || usage
[[ $SMP =~ ^[1-8]$ && $TIMEOUT =~ ^[0-9]+$ && $GRACE =~ ^[0-9]+$ ]] || usage
[ -r "$KDIR/kver" ] || { say "$KDIR has no kver file: not a fetch-kernels.sh directory"; exit 2; }
[ "$SMP" -ge 2 ] || say "warning: --smp 1 makes TCG translate locked instructions non-atomically"
KVER=$(cat "$KDIR/kver")

# q35 in QEMU 7.2: RAM below 4 GiB ends at 2 GiB if RAM >= 2.75 GiB, else at 2.75 GiB,
# lowered to max-ram-below-4g; the rest is mapped from 4 GiB up.
MiB=$((1 << 20))
lowmem=$((MEM * MiB >= 0xb0000000 ? 0x80000000 : 0xb0000000))
[ -z "$LOW" ] || [ $((LOW * MiB)) -ge $lowmem ] || lowmem=$((LOW * MiB))
BELOW4G=$((MEM * MiB < lowmem ? MEM * MiB : lowmem))

# /init after the common part (tests/lab/initramfs.sh): bring up the fabric links and
# windows described by /xpmem-out/plan, write /xpmem-out/fabric.conf, run
# /xpmem-out/cmd, save rc and dmesg, and power off.
read -r -d '' INIT_TAIL <<'EOF' || true
# plan: "self NODE NODES IP RAM BELOW4G" then "peer J MAC SLOT IP RAM BELOW4G" lines.
conf=/newroot/xpmem-out/fabric.conf
node=
while read -r kind a b c d e f; do
	case "$kind" in
	self)
		node=$a nodes=$b myip=$c
		hostname "node$a"
		echo "# xpmem fabric, node $a of $b (run-fabric.sh)"
		echo "# self NODE IP RAM_BYTES BELOW_4G_BYTES"
		echo "self $a $c $d $e"
		echo "# peer NODE BDF BAR2_BYTES IP RAM_BYTES BELOW_4G_BYTES NETDEV"
		;;
	peer)
		[ -n "$node" ] || fail "plan: peer before self"
		dev=
		for n in /sys/class/net/*; do [ "$(cat "$n/address")" = "$b" ] && dev=${n##*/}; done
		[ -n "$dev" ] || fail "no interface with MAC $b (link to node $a)"
		ip link set "$dev" up || fail "link $dev"
		ip addr add "$myip/16" dev "$dev" || fail "address on $dev"
		# Every link carries the whole /16: route each peer by a host route instead.
		ip route del 169.254.0.0/16 dev "$dev" 2>/dev/null
		ip route add "$d/32" dev "$dev" || fail "route to $d"
		echo "$d node$a" >>/newroot/etc/hosts
		bdf=
		for p in /sys/bus/pci/devices/0000:00:$c.0/0000:??:??.?; do
			[ -e "$p/vendor" ] || continue
			[ "$(cat "$p/vendor") $(cat "$p/device")" = "0x1af4 0x1110" ] && bdf=${p##*/}
		done
		[ -n "$bdf" ] || fail "no ivshmem device behind root port 00:$c.0 (window of node $a)"
		set -- $(sed -n 3p "/sys/bus/pci/devices/$bdf/resource")
		[ $(($1)) -ne 0 ] || fail "BAR2 of $bdf is not assigned"
		echo 1 >"/sys/bus/pci/devices/$bdf/enable" || fail "cannot enable $bdf"
		echo "peer $a $bdf $(($2 - $1 + 1)) $d $e $f $dev"
		;;
	esac
done </newroot/xpmem-out/plan >"$conf.tmp" || fail "cannot write fabric.conf"
[ -n "$node" ] || fail "no plan"
mv "$conf.tmp" "$conf"
echo "$myip node$node" >>/newroot/etc/hosts
echo "xpmem-init: node $node of $nodes up, command starts at uptime $(cut -d' ' -f1 /proc/uptime)"
chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 XPMEM_NODE=$node XPMEM_NODES=$nodes \
	XPMEM_FABRIC_CONF=/xpmem-out/fabric.conf XPMEM_FM_DIR=/xpmem-out/fm /bin/bash -c \
	'bash /xpmem-out/cmd </dev/null >/xpmem-out/output 2>&1; echo $? >/xpmem-out/rc; dmesg >/xpmem-out/dmesg'
echo "xpmem-init: command ended at uptime $(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
EOF
# The guest needs these to reach its userland and its peers; a kernel may have them built in.
source "$LAB/initramfs.sh"
lab_initramfs fabric "virtio_pci 9pnet_virtio 9p overlay virtio_net" "$INIT_TAIL"

OUT=${OUT:-$(mktemp -d -t xpmem-fabric.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# The RAM files and sockets live in a short per-run directory (socket paths are short).
RUN=$(mktemp -d /dev/shm/xpmem-fabric.XXXXXX)
PIDS=() TAILS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$RUN"
	for ((i = 0; i < NODES; i++)); do rm -f "$OUT/node$i.qmp"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip_of() { echo "169.254.0.$(($1 + 1))"; }
mac_of() { printf '52:54:00:fa:%02x:%02x' "$1" "$2"; } # node $1's interface towards node $2
slot_of() { printf '%02x' $((0x10 + $1)); }            # root port of the window to node $1

for ((i = 0; i < NODES; i++)); do
	d=$OUT/node$i
	mkdir -p "$d/fm"
	rm -f "$d/output" "$d/rc" "$d/dmesg" "$d/console.log" "$d/qemu.log" "$d/fabric.conf" "$d/splats" "$d/fenced" "$d/killed" "$d"/fm/*
	: >"$d/output"
	{ printf 'cd %q || exit\n' "$PWD"; printf '%s\n' "$*"; } >"$d/cmd"
	truncate -s "${MEM}M" "$RUN/node$i.ram"
	{
		echo "self $i $NODES $(ip_of $i) $((MEM * MiB)) $BELOW4G"
		for ((j = 0; j < NODES; j++)); do
			[ $j -ne $i ] || continue
			echo "peer $j $(mac_of $i $j) $(slot_of $j) $(ip_of $j) $((MEM * MiB)) $BELOW4G"
		done
	} >"$d/plan"
done

# Several TCG guests on a loaded host boot slowly and unevenly. Two early-boot failures
# seen then (2 in about 30 boots at load 10 on 2 cores), neither about the fabric:
# the IO-APIC timer check panics ("IO-APIC + timer doesn't work!"), and a vCPU
# running the crypto self-tests livelocks at a static-key site (DO_ONCE in alg_test)
# that the other vCPU patches (soft lockup for ever: a QEMU 7.2 MTTCG problem with
# cross-modified code). Skip both.
BOOT_ARGS="no_timer_check cryptomgr.notests"
# A kernel's own boot arguments (the debug kernel's), as run-guest.sh adds them.
[ ! -r "$KDIR/cmdline" ] || BOOT_ARGS+=" $(cat "$KDIR/cmdline")"
machine=q35,memory-backend=ram
[ -z "$LOW" ] || machine+=",max-ram-below-4g=${LOW}M"
start=$EPOCHREALTIME
for ((i = 0; i < NODES; i++)); do
	d=$OUT/node$i
	args=(-accel tcg,thread=multi -cpu max -smp "$SMP" -machine "$machine" -m "${MEM}M"
		-object "memory-backend-file,id=ram,size=${MEM}M,mem-path=$RUN/node$i.ram,share=on"
		-nodefaults -nographic -no-reboot -monitor none
		-qmp "unix:$RUN/node$i.qmp,server=on,wait=off"
		-serial "file:$d/console.log"
		-kernel "$KDIR/vmlinuz" -initrd "$INITRD"
		-append "console=ttyS0 panic=-1 log_buf_len=8M $BOOT_ARGS"
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,addr=0x2
		-fsdev "local,id=out,path=$d,security_model=none,multidevs=remap"
		-device virtio-9p-pci,fsdev=out,mount_tag=xpmemout,addr=0x3)
	for ((j = 0; j < NODES; j++)); do
		[ $j -ne $i ] || continue
		# Link i-j: a unix datagram socket per end (no start order needed; a frame
		# sent before the peer's QEMU is up is lost, like on a cable not yet plugged).
		args+=(-netdev "dgram,id=link$j,local.type=unix,local.path=$RUN/link$i-$j,remote.type=unix,remote.path=$RUN/link$j-$i"
			-device "virtio-net-pci,netdev=link$j,mac=$(mac_of $i $j),addr=0x$(printf %x $((8 + j)))"
			# Window to node j: its RAM file behind a hot-pluggable root port.
			-object "memory-backend-file,id=peer$j,size=${MEM}M,mem-path=$RUN/node$j.ram,share=on"
			-device "pcie-root-port,id=port$j,bus=pcie.0,chassis=$((j + 1)),addr=0x$(slot_of $j)"
			-device "ivshmem-plain,id=win$j,memdev=peer$j,bus=port$j")
	done
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" </dev/null >"$d/qemu.log" 2>&1 &
	PIDS+=($!)
	ln -sfn "$RUN/node$i.qmp" "$OUT/node$i.qmp"
done
for ((i = 0; i < NODES; i++)); do
	tail -n +1 -f --pid="${PIDS[$i]}" "$OUT/node$i/output" | sed -u "s/^/[node$i] /" &
	TAILS+=($!)
done
say "$NODES guests of $KVER (${MEM} MiB, below 4G $((BELOW4G / MiB)) MiB, $SMP vCPUs each) started; results in $OUT"

# Fabric manager: serve requests the guests leave in OUT/node<i>/fm/ (NAME.req: the
# arguments of fabric-qmp.sh after OUT, one per line; the reply goes to NAME.rep, whose
# first line is the helper's status), and cut the run short once a guest has failed.
serve_requests() {
	local i=$1 req name args rc
	for req in "$OUT/node$i/fm"/*.req; do
		[ -e "$req" ] || continue
		name=${req%.req}
		mapfile -t args <"$req"
		mv "$req" "$name.taken"
		rc=0
		"$LAB/fabric-qmp.sh" "$OUT" "${args[@]}" >"$name.out" 2>&1 || rc=$?
		{ echo "$rc"; cat "$name.out"; } >"$name.rep.tmp"
		rm -f "$name.out"
		mv "$name.rep.tmp" "$name.rep"
		say "node$i asked the manager: ${args[*]} -> status $rc"
	done
}
declare -A ENDED=()
deadline=
while :; do
	alive=0
	for ((i = 0; i < NODES; i++)); do
		serve_requests $i
		if kill -0 "${PIDS[$i]}" 2>/dev/null; then
			alive=$((alive + 1))
		elif [ -z "${ENDED[$i]:-}" ]; then
			ENDED[$i]=1
			if [ ! -e "$OUT/node$i/fenced" ] && [ ! -e "$OUT/node$i/killed" ] && [ "$(cat "$OUT/node$i/rc" 2>/dev/null || echo none)" != 0 ] && [ -z "$deadline" ]; then
				say "node$i failed; the others get $GRACE s to finish"
				deadline=$((SECONDS + GRACE))
			fi
		fi
	done
	[ $alive -gt 0 ] || break
	if [ -n "$deadline" ] && [ $SECONDS -ge "$deadline" ]; then
		for ((i = 0; i < NODES; i++)); do
			if kill -0 "${PIDS[$i]}" 2>/dev/null; then
				say "stopping node$i"
				echo killed >"$OUT/node$i/killed"
				kill "${PIDS[$i]}" 2>/dev/null || true
			fi
		done
		deadline=
	fi
	sleep 0.3
done
for p in "${TAILS[@]}"; do wait "$p" 2>/dev/null || true; done

status=0
worst() { # keep the most serious status: splat 3 > timeout 124 > no status 125 > command's
	case "$status:$1" in
	3:* | *:0) ;;
	*:3) status=3 ;;
	124:*) ;;
	*:124) status=124 ;;
	125:*) ;;
	*:125) status=125 ;;
	0:*) status=$1 ;;
	esac
}
for ((i = 0; i < NODES; i++)); do
	d=$OUT/node$i
	qrc=0
	wait "${PIDS[$i]}" || qrc=$?
	log=$d/dmesg
	[ -s "$log" ] || log=$d/console.log
	crc=0
	[ ! -e "$log" ] || "$LAB/check-log.sh" "$log" >"$d/splats" || crc=$?
	started=$(grep -a 'command starts at' "$d/console.log" 2>/dev/null | sed 's/.*starts at //' || true)
	what="command started at ${started:-never}"
	if [ $crc -eq 1 ]; then
		say "node$i: kernel splat in $log:"
		sed "s/^/  /" "$d/splats" >&2
		worst 3
		continue
	fi
	rm -f "$d/splats"
	if [ -s "$d/rc" ]; then
		say "node$i: $what, exit status $(cat "$d/rc")"
		worst "$(cat "$d/rc")"
	elif [ -e "$d/fenced" ]; then
		say "node$i: $what, quit by the fabric manager (fenced)"
	elif [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
		say "node$i: timeout after $TIMEOUT s; end of its console log:"
		tail -n 20 "$d/console.log" >&2 || true
		worst 124
	elif [ -e "$d/killed" ]; then
		say "node$i: $what, stopped $GRACE s after another node failed"
	else
		say "node$i: ended without an exit status (QEMU status $qrc); end of its console and QEMU logs:"
		tail -n 20 "$d/console.log" "$d/qemu.log" >&2 || true
		worst 125
	fi
done
say "wall $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $start}") s, status $status, results in $OUT"
exit $status
