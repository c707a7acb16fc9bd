#!/usr/bin/env bash
# Fetch the Debian kernels of the test matrix into a cache outside the checkout and
# prepare each as a module build tree (KDIR) plus a bootable vmlinuz and module tree.
# Prints one line per kernel: "<name> <dir>". Cached by exact package version.
set -euo pipefail

CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}
mkdir -p "$CACHE/debs"

# Reuse the machine's own Debian mirror: the backports suite lives beside the main one.
mirror_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' "$f"
	done | head -n 1
}

BP_DIR="$CACHE/apt-backports"
backports_apt() {
	local uri
	uri=$(mirror_uri)
	[ -n "$uri" ] || { echo "fetch-kernels: no bookworm apt source found" >&2; exit 1; }
	mkdir -p "$BP_DIR/state/lists/partial" "$BP_DIR/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" >"$BP_DIR/sources.list"
	BP_OPTS=(-o "Dir::Etc::SourceList=$BP_DIR/sources.list" -o Dir::Etc::SourceParts=-
		-o "Dir::State=$BP_DIR/state" -o "Dir::Cache=$BP_DIR/cache"
		-o Dir::State::status=/var/lib/dpkg/status)
	# Refresh the index at most once a day.
	if [ -z "$(find "$BP_DIR/state/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
		apt-get "${BP_OPTS[@]}" update >&2
	fi
}

# download PKG... with the given apt options into $CACHE/debs
download() {
	local -a opts=("${!1}")
	shift
	(cd "$CACHE/debs" && apt-get "${opts[@]}" download "$@" >&2)
}

# prepare NAME ABI OPTSVAR SERIES
# ABI like 6.1.0-56 or 6.12.95+deb12; SERIES is the kbuild package suffix.
prepare() {
	local name=$1 abi=$2 optsvar=$3 series=$4
	local img="linux-image-$abi-amd64" hdr="linux-headers-$abi-amd64"
	local cmn="linux-headers-$abi-common" kb="linux-kbuild-$series"
	local -a opts=("${!optsvar}")
	local ver
	ver=$(apt-cache "${opts[@]}" show "$hdr" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
	[ -n "$ver" ] || { echo "fetch-kernels: $hdr not found" >&2; exit 1; }
	local dir="$CACHE/kernels/$name-$abi-$ver"
	if [ ! -e "$dir/.ready" ]; then
		rm -rf "$dir"
		mkdir -p "$dir/root"
		# The signed image package is only a wrapper on some series; take the unsigned one when it exists.
		local imgpkg=$img
		if apt-cache "${opts[@]}" show "$img-unsigned" >/dev/null 2>&1; then imgpkg=$img-unsigned; fi
		download "$optsvar" "$imgpkg=$ver" "$hdr=$ver" "$cmn=$ver" "$kb"
		local deb
		for deb in "$CACHE/debs/${imgpkg}_${ver//:/%3a}"_*.deb \
			"$CACHE/debs/${hdr}_${ver//:/%3a}"_*.deb \
			"$CACHE/debs/${cmn}_${ver//:/%3a}"_*.deb \
			"$CACHE/debs/${kb}"_*.deb; do
			dpkg-deb -x "$deb" "$dir/root"
		done
		local kver
		kver=$(ls "$dir/root/lib/modules" | head -n 1)
		# The headers tree refers to its -common twin and to kbuild by absolute paths.
		local kdir="$dir/root/usr/src/linux-headers-$kver"
		sed -i "s|/usr/src/|$dir/root/usr/src/|g" "$kdir/Makefile"
		local link
		for link in "$kdir/scripts" "$kdir/tools" "$dir/root/usr/src/$cmn/scripts" "$dir/root/usr/src/$cmn/tools"; do
			[ -L "$link" ] || continue
			local target
			target=$(readlink "$link")
			case "$target" in /*) ln -sfn "$dir/root$target" "$link" ;; esac
		done
		ln -sfn "$kdir" "$dir/kdir"
		ln -sfn "$(ls "$dir"/root/boot/vmlinuz-* | head -n 1)" "$dir/vmlinuz"
		echo "$kver" >"$dir/kver"
		touch "$dir/.ready"
	fi
	echo "$name $dir"
}

MAIN_OPTS=()
abi61=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/ {sub("linux-image-", "", $2); sub("-amd64$", "", $2); print $2; exit}')
[ -n "$abi61" ] || { echo "fetch-kernels: cannot resolve linux-image-amd64" >&2; exit 1; }

backports_apt
abi612=$(apt-cache "${BP_OPTS[@]}" search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
	awk '{print $1}' | sed 's/^linux-image-//; s/-amd64-unsigned$//' | sort -V | tail -n 1)
[ -n "$abi612" ] || { echo "fetch-kernels: no 6.12 kernel in backports" >&2; exit 1; }

want=${XPMEM_KERNELS:-6.1 6.12}
for k in $want; do
	case "$k" in
	6.1) prepare 6.1 "$abi61" MAIN_OPTS[@] 6.1 ;;
	6.12) prepare 6.12 "$abi612" BP_OPTS[@] "$abi612" ;;
	*) echo "fetch-kernels: unknown kernel $k" >&2; exit 1 ;;
	esac
done
