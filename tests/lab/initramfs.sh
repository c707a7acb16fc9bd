# shellcheck shell=bash
# Sourced by run-guest.sh and run-fabric.sh: the initramfs of a lab guest. It holds a
# static busybox, the kernel modules the guest needs (with their dependencies,
# decompressed, and a modules.dep for busybox modprobe) and an /init that loads them,
# mounts the host root read-only under a tmpfs overlay at /newroot, with proc, sys,
# dev, /dev/shm, /run and the output directory (/newroot/xpmem-out) in it, and then
# goes on with the caller's part of /init.
#
# lab_initramfs NAME "MODULE..." INIT_TAIL sets INITRD to the image for the kernel
# KDIR/KVER, built into $CACHE/initramfs unless there already, under a key made of the
# kernel directory, the modules, the tail and this file. Needs KDIR, KVER, CACHE, say.

# lab_add_module NAME: queue NAME and its dependencies in LAB_MODS (file paths), unless
# built in.
lab_add_module() {
	local name=${1//-/_} dep
	[ -z "${LAB_SEEN[$name]:-}" ] || return 0
	LAB_SEEN[$name]=1
	[ -z "${LAB_BUILTIN[$name]:-}" ] || return 0
	[ -n "${LAB_MODFILE[$name]:-}" ] || { say "module $name is neither built into $KVER nor in its module tree"; exit 1; }
	for dep in $(modinfo -F depends "$LAB_MODDIR/${LAB_MODFILE[$name]}" | tr , ' '); do
		lab_add_module "$dep"
	done
	LAB_MODS+=("${LAB_MODFILE[$name]}")
}

# lab_build_initramfs FILE "MODULE..." INIT_TAIL
lab_build_initramfs() {
	local tmp f name top=()
	declare -gA LAB_MODFILE=() LAB_BUILTIN=() LAB_SEEN=()
	LAB_MODS=()
	LAB_MODDIR=$KDIR/root/lib/modules/$KVER
	tmp=$(mktemp -d)
	if [ -d "$LAB_MODDIR/kernel" ]; then
		while read -r f; do name=${f##*/}; name=${name%%.ko*}; LAB_MODFILE[${name//-/_}]=$f; done \
			< <(cd "$LAB_MODDIR" && find kernel -name '*.ko*')
		if [ -e "$LAB_MODDIR/modules.builtin" ]; then
			while read -r f; do name=${f##*/}; LAB_BUILTIN[${name%.ko}]=1; done < <(tr - _ <"$LAB_MODDIR/modules.builtin")
		fi
		for name in $2; do
			lab_add_module "$name"
			[ -n "${LAB_BUILTIN[$name]:-}" ] || top+=("$name")
		done
	fi
	mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/lib/modules/$KVER"
	# There are no libraries in the initramfs: busybox must be the static build.
	if ldd /bin/busybox >/dev/null 2>&1; then say "/bin/busybox is not static (install busybox-static)"; exit 1; fi
	cp /bin/busybox "$tmp/bin/busybox"
	for f in "${LAB_MODS[@]}"; do
		mkdir -p "$tmp/lib/modules/$KVER/${f%/*}"
		cp "$LAB_MODDIR/$f" "$tmp/lib/modules/$KVER/$f"
		case "$f" in
		*.xz) xz -d "$tmp/lib/modules/$KVER/$f" ;;
		*.zst) zstd -q -d --rm "$tmp/lib/modules/$KVER/$f" ;;
		*.gz) gzip -d "$tmp/lib/modules/$KVER/$f" ;;
		esac
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ ! -e "$LAB_MODDIR/$f" ] || cp "$LAB_MODDIR/$f" "$tmp/lib/modules/$KVER/"
	done
	depmod -b "$tmp" "$KVER"
	echo "${top[*]}" >"$tmp/etc/modules"
	{
		cat <<'EOF'
#!/bin/busybox sh
# PID 1 of a lab guest (tests/lab/initramfs.sh, then the part of the script that boots it).
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev /host /rw /newroot
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
fail() { echo "xpmem-init: $*"; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules); do modprobe "$m" || fail "modprobe $m failed"; done
# msize: the largest payload the 6.1 virtio transport accepts; the default is slow.
ninep=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o ro,$ninep hostroot /host || fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 rw /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /newroot || fail "overlay failed"
cd /newroot
mount -t proc proc proc
mount -t sysfs sys sys
mount -t devtmpfs dev dev
mkdir -p dev/pts dev/shm xpmem-out
mount -t devpts -o newinstance,ptmxmode=0666 devpts dev/pts
# /dev/shm for POSIX shared memory (MPI); /run so nothing writes host runtime state.
mount -t tmpfs shm dev/shm
mount -t tmpfs -o mode=0755 run run
mount -t 9p -o $ninep xpmemout xpmem-out || fail "cannot mount the output directory"
# Loopback is needed by MPI launchers even on a single node.
ip link set lo up
EOF
		printf '%s\n' "$3"
	} >"$tmp/init"
	chmod +x "$tmp/init"
	(cd "$tmp" && find . | cpio -o -H newc -R 0:0 --quiet) >"$1.$$"
	mv "$1.$$" "$1"
	rm -rf "$tmp"
}

lab_initramfs() {
	local key
	key=$( (echo "$KDIR"; echo "$2"; echo "$3"; cat "${BASH_SOURCE[0]}") | sha256sum | cut -c1-16)
	mkdir -p "$CACHE/initramfs"
	INITRD=$CACHE/initramfs/$1-$KVER-$key.cpio
	[ -e "$INITRD" ] || lab_build_initramfs "$INITRD" "$2" "$3"
}
