#!/usr/bin/env bash
# Build the lab's debug kernel (KASAN, lockdep, kmemleak, fault injection) from
# Debian's linux-source-6.1, cached outside the checkout keyed by its inputs.
# Prints "debug <dir>" with the same layout fetch-kernels.sh gives
# (vmlinuz, kver, kdir, root/lib/modules/<kver>).
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
# One build at a time (the machine has two cores); a second caller waits for the first.
mkdir -p "$CACHE/kernels"
exec 9>"$CACHE/kernels/.debug-build.lock"
flock 9
if [ ! -e "$dir/.ready" ]; then
	rm -rf "$dir"
	mkdir -p "$dir/root"
	tar -C "$dir" -xf /usr/src/linux-source-6.1.tar.xz
	src=$dir/linux-source-6.1
	(
		cd "$src"
		make -s x86_64_defconfig >&2
		scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "$FRAGMENT" >&2
		make -s olddefconfig >&2
		# Every line of the fragment must have survived olddefconfig.
		missing=$(grep -E '^CONFIG_' "$FRAGMENT" | sed 's/=n$/ is not set/; s/^\(CONFIG_[A-Z0-9_]*\) is not set/# \1 is not set/' |
			while read -r line; do grep -qxF "$line" .config || echo "$line"; done)
		if [ -n "$missing" ]; then
			echo "build-debug-kernel: options not applied: $missing" >&2
			exit 1
		fi
		make -j"$(nproc)" bzImage modules >&2
		make -s modules_install INSTALL_MOD_PATH="$dir/root" >&2
		make -s modules_prepare >&2
	)
	kver=$(cat "$src/include/config/kernel.release")
	echo "$kver" >"$dir/kver"
	ln -sfn "$src/arch/x86/boot/bzImage" "$dir/vmlinuz"
	ln -sfn "$src" "$dir/kdir"
	rm -f "$dir/root/lib/modules/$kver/build" "$dir/root/lib/modules/$kver/source"
	touch "$dir/.ready"
fi
echo "debug $dir"
