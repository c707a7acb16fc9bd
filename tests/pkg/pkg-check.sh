#!/usr/bin/env bash
# make pkg-check: install and packaging, end to end. Ends with "N passed, N failed".
#   1. version-check (tests/pkg/version-check.sh)
#   2. make install / make uninstall into a DESTDIR (PREFIX=/usr and /usr/local): the
#      expected files, SONAME links, module under updates/, nothing left after uninstall
#   3. dpkg-buildpackage -us -uc in a clean copy of the checkout ($BUILD/pkg/src)
#   4. lintian: no errors (report in $BUILD/pkg/lintian.txt)
#   5. in a guest per kernel (XPMEM_KERNELS, default "6.1 6.12"): tests/pkg/guest-pkg.sh
#      (headers, dpkg -i, DKMS, udev, versions, suite against the installed files, purge,
#      source DKMS install)
# Needs (as root): debhelper dh-dkms dkms lintian (apt-get install --no-install-recommends).
# Downloads three helper .debs into $XPMEM_CACHE/pkg-debs once (linux-base and
# linux-compiler-gcc-12-x86, which the headers depend on, and udev, for the rule test).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build-pkg}
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}
OUT=$BUILD/pkg
V=$(cat VERSION)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

passed=0
failed=0
summary=()
step() { # name command...
	local name=$1
	shift
	echo "=== $name"
	if "$@"; then
		passed=$((passed + 1))
		summary+=("$name - passed")
	else
		failed=$((failed + 1))
		summary+=("$name - FAILED")
	fi
}
finish() {
	echo "=== summary"
	printf '  %s\n' "${summary[@]}"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

missing=()
for c in dpkg-buildpackage dh dh_dkms dkms lintian qemu-system-x86_64; do
	command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "pkg-check: missing ${missing[*]} (apt-get install --no-install-recommends debhelper dh-dkms dkms lintian)"
	failed=1
	finish
fi

step version-check tests/pkg/version-check.sh

kernels=$(bash tests/lab/fetch-kernels.sh) || { echo "pkg-check: fetching kernels failed"; failed=$((failed + 1)); finish; }
kdir61=$(awk '$1 == "6.1" {print $2 "/kdir"}' <<<"$kernels")
[ -n "$kdir61" ] || kdir61=$(XPMEM_KERNELS=6.1 bash tests/lab/fetch-kernels.sh | awk '{print $2 "/kdir"}')

# make install into a DESTDIR, compare the file list, make uninstall.
destdir_check() { # PREFIX LIBDIR expected-list
	local prefix=$1 libdir=$2 d=$OUT/destdir rel
	rel=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$kdir61/include/generated/utsrelease.h")
	rm -rf "$d"
	make -s -j2 BUILD="$BUILD" KDIR="$kdir61" DESTDIR="$d" PREFIX="$prefix" LIBDIR="$libdir" install >"$OUT/install.log" 2>&1 ||
		{ tail -n 30 "$OUT/install.log"; return 1; }
	(cd "$d" && find . ! -type d -printf '%M %p %l\n' | sed 's| $||' | sort -k2) >"$OUT/destdir.list"
	sed -e "s|@P@|${prefix#/}|g" -e "s|@L@|${libdir#/}|g" -e "s|@R@|$rel|g" -e "s|@U@|$3|g" <<'EOF' | sort -k2 >"$OUT/destdir.want"
-rw-r--r-- ./@L@/libxpmem.so.0.3
lrwxrwxrwx ./@L@/libxpmem.so.0 libxpmem.so.0.3
lrwxrwxrwx ./@L@/libxpmem.so libxpmem.so.0
-rw-r--r-- ./@L@/libxpmem.a
-rw-r--r-- ./@L@/pkgconfig/xpmem.pc
-rw-r--r-- ./@L@/pkgconfig/cray-xpmem.pc
-rw-r--r-- ./@P@/include/xpmem.h
-rw-r--r-- ./@P@/include/xpmem_ioctl.h
-rwxr-xr-x ./@P@/bin/xpmemctl
-rwxr-xr-x ./@P@/sbin/xpmemd
-rw-r--r-- ./@P@/share/man/man3/xpmem_attach.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_attach_ext.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_detach.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_get.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_init.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_make.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_release.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_remove.3
-rw-r--r-- ./@P@/share/man/man3/xpmem_version.3
-rw-r--r-- ./@P@/share/man/man8/xpmemctl.8
-rw-r--r-- ./@P@/share/man/man8/xpmemd.8
-rw-r--r-- ./@P@/lib/modules-load.d/xpmem.conf
-rw-r--r-- ./@U@/60-xpmem.rules
-rw-r--r-- ./lib/modules/@R@/updates/xpmem.ko
EOF
	diff -u "$OUT/destdir.want" "$OUT/destdir.list" || return 1
	grep -qx "prefix=$prefix" "$d/$libdir/pkgconfig/xpmem.pc" && grep -qx "Version: $V" "$d/$libdir/pkgconfig/cray-xpmem.pc" ||
		{ echo "pkg-config files:"; cat "$d/$libdir/pkgconfig/xpmem.pc"; return 1; }
	make -s BUILD="$BUILD" KDIR="$kdir61" DESTDIR="$d" PREFIX="$prefix" LIBDIR="$libdir" uninstall >>"$OUT/install.log" 2>&1 ||
		{ tail -n 30 "$OUT/install.log"; return 1; }
	if [ -n "$(find "$d" ! -type d)" ]; then
		echo "left after uninstall:"
		find "$d" ! -type d
		return 1
	fi
	echo "install: $(wc -l <"$OUT/destdir.list") files under PREFIX=$prefix, uninstall removed them"
}
step "make install/uninstall PREFIX=/usr" destdir_check /usr /usr/lib/x86_64-linux-gnu lib/udev/rules.d
step "make install/uninstall PREFIX=/usr/local" destdir_check /usr/local /usr/local/lib etc/udev/rules.d

# The package build works on a copy: the files git knows or would add (build trees
# are ignored), so the checkout gets no debian/ build products and no ../ outputs.
pkg_build() {
	local src=$OUT/src
	rm -rf "$src"
	mkdir -p "$src/xpmem-$V"
	git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
		[ -e "$f" ] && printf '%s\0' "$f"
	done | tar --null -T - -cf - | tar -xf - -C "$src/xpmem-$V" || return 1
	(cd "$src/xpmem-$V" && dpkg-buildpackage -us -uc -j2) >"$OUT/build.log" 2>&1 ||
		{ tail -n 40 "$OUT/build.log"; echo "pkg-check: full log in $OUT/build.log"; return 1; }
	grep -E '^dpkg-deb: building' "$OUT/build.log"
	local p
	for p in xpmem-dkms libxpmem0 libxpmem-dev xpmem-tools; do
		ls "$src/${p}_${V}"_*.deb >/dev/null || return 1
	done
}
step dpkg-buildpackage pkg_build

lintian_check() {
	local changes
	changes=$(ls "$OUT"/src/xpmem_"$V"_*.changes) || return 1
	lintian -I -E --pedantic --fail-on error "$changes" >"$OUT/lintian.txt" 2>&1
	local rc=$?
	grep -v 'running with root privileges' "$OUT/lintian.txt"
	echo "lintian: $(grep -c '^E:' "$OUT/lintian.txt") errors, $(grep -c '^W:' "$OUT/lintian.txt") warnings," \
		"$(grep -c '^[IP]:' "$OUT/lintian.txt") info/pedantic"
	return $rc
}
step lintian lintian_check

# Helper .debs for the guests, once.
helpers=$CACHE/pkg-debs
mkdir -p "$helpers"
udevver=$(dpkg-query -W -f '${Version}' libudev1)
get_helpers() {
	local want=() p
	for p in linux-base linux-compiler-gcc-12-x86; do
		ls "$helpers/${p}"_*.deb >/dev/null 2>&1 || want+=("$p")
	done
	ls "$helpers/udev_${udevver//:/%3a}"_*.deb >/dev/null 2>&1 || { rm -f "$helpers"/udev_*.deb; want+=("udev=$udevver"); }
	[ ${#want[@]} -eq 0 ] || (cd "$helpers" && apt-get download "${want[@]}")
}
if ! get_helpers; then
	echo "pkg-check: cannot download ${helpers} helper packages"
	failed=$((failed + 1))
	finish
fi

if [ ! -e "$OUT/src/xpmem-dkms_${V}_all.deb" ]; then
	echo "pkg-check: no packages, no guest runs"
	failed=$((failed + 1))
	finish
fi
while read -r name dir; do
	[ -n "$name" ] || continue
	gout=$OUT/guest-$name
	echo "=== guest $name ($(cat "$dir/kver"))"
	rm -rf "$gout"
	bash tests/lab/run-guest.sh "$dir" --timeout 3000 --out "$gout" -- \
		tests/pkg/guest-pkg.sh "$OUT/src" "$dir" "$helpers" /xpmem-out/results
	rc=$?
	p=0 f=0
	if [ -s "$gout/results" ]; then
		read -r p f < <(awk '{p += $2; f += $3} END {print p + 0, f + 0}' "$gout/results")
		awk '$3 > 0 {print "  failed: " $1}' "$gout/results"
	else
		echo "  failed: the guest produced no results"
		f=1
	fi
	case $rc in
	0) p=$((p + 1)) ;;
	3) echo "  failed: kernel log has a splat (see $gout/dmesg)"; f=$((f + 1)) ;;
	*) echo "  failed: guest run ended with $rc (see $gout)"; f=$((f + 1)) ;;
	esac
	passed=$((passed + p))
	failed=$((failed + f))
	summary+=("guest $name - $p passed, $f failed")
done <<<"$kernels"
finish
