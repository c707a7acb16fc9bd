#!/usr/bin/env bash
# Build the lab's debug kernel (KASAN, lockdep, kmemleak, fault injection) from
# Debian's linux-source-6.1, cached outside the checkout keyed by its inputs.
# Prints "debug <dir>" with the same layout fetch-kernels.sh gives
# (vmlinuz, kver, kdir, root/lib/modules/<kver>). An interrupted build resumes.
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}
FRAGMENT=$LAB/debug-kernel.config

if [ ! -e /usr/src/linux-source-6.1.tar.xz ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends linux-source-6.1 >&2
fi
srcver=$(dpkg-query -W -f '${Version}' linux-source-6.1)
# Bump RECIPE when the build steps below change in a way that changes the result.
RECIPE=1
key=$( (echo "$srcver recipe $RECIPE"; cat "$FRAGMENT") | sha256sum | cut -c1-16)
dir=$CACHE/kernels/debug-6.1-$key
src=$dir/linux-source-6.1

# One build at a time (the machine has two cores); a second caller waits for the first.
mkdir -p "$CACHE/kernels"
exec 9>"$CACHE/kernels/.debug-build.lock"
flock 9

configure() {
	make -s x86_64_defconfig
	scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "$FRAGMENT"
	make -s olddefconfig
	# Every line of the fragment must have survived olddefconfig.
	local missing
	missing=$(grep -E '^CONFIG_' "$FRAGMENT" | sed 's/^\(CONFIG_[A-Z0-9_]*\)=n$/# \1 is not set/' |
		while read -r line; do grep -qxF "$line" .config || echo "$line"; done)
	if [ -n "$missing" ]; then
		echo "build-debug-kernel: options not applied: $missing"
		return 1
	fi
	touch .xpmem-configured
}

if [ ! -e "$dir/.ready" ]; then
	echo "build-debug-kernel: building in $dir (about 15-30 minutes on 2 cores)" >&2
	mkdir -p "$dir/root"
	if [ ! -d "$src" ]; then
		tar -C "$dir" -xf /usr/src/linux-source-6.1.tar.xz
	fi
	(
		cd "$src"
		[ -e .xpmem-configured ] || configure
		make -j"$(nproc)" bzImage modules
		make -s modules_install INSTALL_MOD_PATH="$dir/root"
		make -s modules_prepare
	) >&2
	kver=$(cat "$src/include/config/kernel.release")
	echo "$kver" >"$dir/kver"
	ln -sfn "$src/arch/x86/boot/bzImage" "$dir/vmlinuz"
	ln -sfn "$src" "$dir/kdir"
	rm -f "$dir/root/lib/modules/$kver/build" "$dir/root/lib/modules/$kver/source"
	touch "$dir/.ready"
fi
# Extra kernel arguments for run-guest.sh. 4-level paging: with 5-level paging, an
# interrupt during early boot (identify_cpu() clears boot_cpu_data's feature words,
# X86_FEATURE_LA57 included, before alternatives are patched) makes KASAN compute
# 4-level shadow bounds and report a wild-memory-access on the 5-level direct map
# (seen 1 boot in 6, in do_raw_spin_lock from handle_edge_irq, before any module).
echo "no5lvl" >"$dir/cmdline"
echo "debug $dir"
