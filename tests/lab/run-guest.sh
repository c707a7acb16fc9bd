#!/usr/bin/env bash
# run-guest.sh KERNEL_DIR [--mem MB] [--append KERNEL_ARGS] [--timeout SECONDS] [--out DIR] -- COMMAND...
#
# Boots KERNEL_DIR (a directory made by fetch-kernels.sh) in a QEMU TCG guest with two
# NUMA nodes, whose userland is this machine's own root filesystem (read-only 9p, with a
# throw-away tmpfs overlay), and runs COMMAND there as root in the caller's cwd.
# Results come back in the output directory: output (stdout+stderr), rc, dmesg, and
# console.log (serial console). The command's output is also copied to stdout.
#
# Exit status: the command's own, except 3 = the kernel log shows a splat (checked
# with check-log.sh), 124 = timeout, 125 = the guest produced no exit status, 2 = usage.
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}

usage() { echo "usage: run-guest.sh KERNEL_DIR [--mem MB] [--append KERNEL_ARGS] [--timeout SECONDS] [--out DIR] -- COMMAND..." >&2; exit 2; }
say() { echo "run-guest: $*" >&2; }

[ $# -ge 1 ] || usage
KDIR=$(cd "$1" && pwd) || usage
shift
MEM=2048 TIMEOUT=900 OUT= APPEND=
while [ $# -gt 0 ]; do
	case "$1" in
	--mem) MEM=${2:?}; shift 2 ;;
	--append) APPEND=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage
[[ $MEM =~ ^[0-9]+$ && $MEM -ge 256 && $TIMEOUT =~ ^[0-9]+$ ]] || usage
[ -r "$KDIR/kver" ] || { say "$KDIR has no kver file: not a fetch-kernels.sh directory"; exit 2; }
KVER=$(cat "$KDIR/kver")

# /init after the common part (tests/lab/initramfs.sh): run /xpmem-out/cmd, save rc
# and dmesg, and power off.
read -r -d '' INIT_TAIL <<'EOF' || true
hostname xpmem-guest
echo "xpmem-init: command starts at uptime $(cut -d' ' -f1 /proc/uptime)"
chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 /bin/bash -c \
	'bash /xpmem-out/cmd </dev/null >/xpmem-out/output 2>&1; echo $? >/xpmem-out/rc; dmesg >/xpmem-out/dmesg'
echo "xpmem-init: command ended at uptime $(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
EOF
# The guest needs these to reach its userland; a kernel may have them built in.
source "$LAB/initramfs.sh"
lab_initramfs guest "virtio_pci 9pnet_virtio 9p overlay" "$INIT_TAIL"

OUT=${OUT:-$(mktemp -d -t xpmem-guest.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/output" "$OUT/rc" "$OUT/dmesg" "$OUT/console.log"
: >"$OUT/output"
# The command runs through a file: the kernel command line is short and unquoted.
{ printf 'cd %q || exit\n' "$PWD"; printf '%s\n' "$*"; } >"$OUT/cmd"

# Kernel arguments: no timer-IRQ check and no crypto self-tests, which can fail or
# hang a TCG guest on a loaded machine; NUMA balancing off from boot, so no test
# flips its static key at run time: under multi-threaded TCG a vCPU can run a
# stale translation of the int3 that live text patching leaves, and the kernel
# dies with "Oops: int3" in can_migrate_task (seen once on 6.12 when a test
# restored numa_balancing=1); plus the kernel directory's own, if any, and --append's.
KARGS="console=ttyS0 panic=-1 log_buf_len=8M no_timer_check cryptomgr.notests numa_balancing=disable"
[ ! -r "$KDIR/cmdline" ] || KARGS="$KARGS $(cat "$KDIR/cmdline")"
KARGS="$KARGS $APPEND"

# One socket per NUMA node: a node boundary inside a socket makes the kernel WARN.
half=$((MEM / 2))
start=$EPOCHREALTIME
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
	-smp 2,sockets=2,cores=1,threads=1 \
	-m "${MEM}M" -nodefaults -nographic -no-reboot -monitor none \
	-object memory-backend-ram,id=m0,size=${half}M -numa node,nodeid=0,cpus=0,memdev=m0 \
	-object memory-backend-ram,id=m1,size=$((MEM - half))M -numa node,nodeid=1,cpus=1,memdev=m1 \
	-serial "file:$OUT/console.log" \
	-kernel "$KDIR/vmlinuz" -initrd "$INITRD" \
	-append "$KARGS" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$OUT,mount_tag=xpmemout,security_model=none,multidevs=remap" \
	</dev/null &
qemu=$!
# Never leave a guest behind, also when interrupted (signals then go through EXIT).
trap 'kill $qemu 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Stream the command's output while the guest runs; tail exits once QEMU is gone.
tail -n +1 -f --pid=$qemu "$OUT/output" &
tailpid=$!
qrc=0
wait $qemu || qrc=$?
wait $tailpid || true
trap - EXIT INT TERM
say "$KVER: $(grep -a 'command starts at' "$OUT/console.log" | sed 's/.*xpmem-init: //' || echo 'command never started'), wall $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $start}") s, results in $OUT"

# A panic leaves no dmesg file behind, but the serial console has seen it all.
log=$OUT/dmesg
[ -s "$log" ] || log=$OUT/console.log
crc=0
[ ! -e "$log" ] || "$LAB/check-log.sh" "$log" >"$OUT/splats" || crc=$?
if [ $crc -eq 1 ]; then
	say "kernel splat in $log:"
	cat "$OUT/splats" >&2
	exit 3
fi
rm -f "$OUT/splats"
if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
	say "timeout after $TIMEOUT s; end of the console log:"
	tail -n 30 "$OUT/console.log" >&2 || true
	exit 124
fi
if [ ! -s "$OUT/rc" ]; then
	say "the guest ended without an exit status (QEMU status $qrc); end of the console log:"
	tail -n 30 "$OUT/console.log" >&2 || true
	exit 125
fi
exit "$(cat "$OUT/rc")"
