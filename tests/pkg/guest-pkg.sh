#!/bin/bash
# guest-pkg.sh DEBDIR KERNEL_DIR HELPERDIR RESULTS   (run by pkg-check.sh in a test-lab guest, as root)
#
# The guest's root is the host's, read-only, under a throw-away overlay, so packages
# install here without touching the host. Steps:
#   1. the running kernel's linux-headers .debs from the lab cache (dpkg -i), so DKMS
#      has /lib/modules/$(uname -r)/build
#   2. dpkg -i the xpmem .debs from DEBDIR: the xpmem-dkms postinst runs dkms add/build/install
#   3. modprobe the DKMS module; versions of module, library, pkg-config files, xpmemctl,
#      xpmem_version() and the packages agree with VERSION
#   4. the udev rule (udevd from the udev .deb in HELPERDIR): default mode 0666, and the
#      documented group alternative (root:xpmem 0660, only group members may open)
#   5. the cmocka suite, legacy_demo and the xpmemctl fixture, compiled here against the
#      installed headers, pkg-config files and /usr/lib/<multiarch>/libxpmem.so.0 (no rpath,
#      no LD_LIBRARY_PATH), and the xpmemctl tests against /usr/bin/xpmemctl
#   6. dpkg --purge: dkms remove, nothing left behind
#   7. the source install: make install-dkms, dkms add/build/install, modprobe, make uninstall-dkms
# Writes "<name> <passed> <failed>" lines to RESULTS.
set -u
DEBDIR=$(cd "$1" && pwd)
KD=$2
HELPERS=$3
RESULTS=$4
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$(dirname "$(dirname "$KD")")
V=$(cat "$SRC/VERSION")
kver=$(uname -r)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
IFS=. read -r vmaj vmin vpatch <<<"$V"
IV=$(printf '0x%08x' $(((vmaj << 16) | (vmin << 12) | vpatch)))
PKGS="xpmem-dkms libxpmem0 libxpmem-dev xpmem-tools"
export DEBIAN_FRONTEND=noninteractive
: >"$RESULTS"

record() { echo "$1 $2 $3" >>"$RESULTS"; }
check() { # name command...
	local name=$1
	shift
	if "$@"; then
		echo "ok: $name"
		record "$name" 1 0
	else
		echo "FAILED: $name"
		record "$name" 0 1
	fi
}
eq() { # actual expected
	[ "$1" = "$2" ] && return 0
	echo "  got '$1', expected '$2'"
	return 1
}
run_cmocka() { # name command...: cmocka totals as passed/failed
	local name=$1 log rc passed failed
	shift
	log=/tmp/pkg-$name.log
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
	failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
	if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
	echo "$name: $passed passed, $failed failed"
	record "$name" "$passed" "$failed"
}
quiet() { # command...: output only on failure
	local log rc
	log=$(mktemp)
	"$@" >"$log" 2>&1
	rc=$?
	[ $rc -eq 0 ] || { tail -n 40 "$log"; echo "  ($* exited with $rc)"; }
	rm -f "$log"
	return $rc
}

# man-db's trigger rebuilds its database: minutes under TCG, and nothing to test.
rm -f /var/lib/man-db/auto-update
# The guest's /dev is a bare devtmpfs: bash's <(...), which dkms uses, needs /dev/fd.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
absent() { # path...: none of them exists
	local p
	for p in "$@"; do
		[ ! -e "$p" ] && [ ! -L "$p" ] || { echo "  still there: $p"; return 1; }
	done
}

echo "=== $kver: kernel headers"
hdr=$(ls "$CACHE"/debs/linux-headers-"$kver"_*.deb | sort -V | tail -n 1)
hver=$(dpkg-deb -f "$hdr" Version)
cmn=$(ls "$CACHE"/debs/linux-headers-"${kver%-amd64}"-common_"${hver//:/%3a}"_all.deb)
kbname=$(dpkg-deb -f "$hdr" Depends | tr ',' '\n' | grep -o 'linux-kbuild-[^ ]*' | head -n 1)
kb=$(ls "$CACHE"/debs/"$kbname"_*.deb | sort -V | tail -n 1)
# The image that satisfies the headers' dependency is the one running (booted directly).
install_headers() {
	dpkg -i --ignore-depends="linux-image-$kver,linux-image-$kver-unsigned" \
		"$HELPERS"/linux-base_*.deb "$HELPERS"/linux-compiler-gcc-12-x86_*.deb "$kb" "$cmn" "$hdr"
}
check headers-installed quiet install_headers
# What depmod and modprobe want besides the module tree (the guest's modules are in the lab cache).
for f in modules.builtin modules.builtin.modinfo modules.order; do
	[ ! -e "$KD/root/lib/modules/$kver/$f" ] || cp "$KD/root/lib/modules/$kver/$f" "/lib/modules/$kver/"
done
check headers-build-link test -e "/lib/modules/$kver/build/Makefile"

echo "=== packages"
debs=()
for p in $PKGS; do debs+=("$(ls "$DEBDIR/${p}_${V}"_*.deb)"); done
# The xpmem-dkms postinst runs dkms add, build and install for the running kernel.
dpkg -i "${debs[@]}" >/tmp/pkg-dpkg.log 2>&1
rc=$?
grep -E -i 'dkms|error|building|installing' /tmp/pkg-dpkg.log | head -n 30
check dpkg-install eq "$rc" 0
[ "$rc" -eq 0 ] || { tail -n 40 /tmp/pkg-dpkg.log; cp -r /var/lib/dkms/xpmem/"$V"/build/make.log /xpmem-out/ 2>/dev/null; }
for p in $PKGS; do
	check "installed-$p" eq "$(dpkg-query -W -f '${Status} ${Version}' "$p" 2>&1)" "install ok installed $V"
done
dkms status
check dkms-status eq "$(dkms status -m xpmem -v "$V" -k "$kver")" "xpmem/$V, $kver, $(uname -m): installed"
ko=$(modinfo -n xpmem 2>&1)
echo "module: $ko"
check dkms-module-path eval "case '$ko' in /lib/modules/$kver/updates/dkms/xpmem.ko*) true ;; *) false ;; esac"
check modinfo-version eq "$(modinfo -F version xpmem)" "$V"
check modinfo-srcversion test -n "$(modinfo -F srcversion xpmem)"
check module-loads modprobe xpmem
check device-node test -c /dev/xpmem

echo "=== versions"
check xpmemctl-version eq "$(xpmemctl --version | tr '\n' ' ')" "xpmemctl $V kernel interface $IV "
check pkgconfig-xpmem eq "$(pkg-config --modversion xpmem)" "$V"
check pkgconfig-cray-xpmem eq "$(pkg-config --modversion cray-xpmem)" "$V"
check pkgconfig-libs eq "$(echo $(pkg-config --libs cray-xpmem))" "-lxpmem"

echo "=== installed-files build"
T=/tmp/pkgsuite
mkdir -p $T/tests
CF="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g"
build_installed() {
	# shellcheck disable=SC2046,SC2086
	cc $CF $(pkg-config --cflags xpmem) -pthread -o $T/tests/xpmem-suite "$SRC"/tests/suite/*.c \
		$(pkg-config --libs xpmem) -lcmocka -pthread &&
		cc $CF $(pkg-config --cflags cray-xpmem) -o $T/tests/legacy_demo "$SRC"/tests/compat/legacy_demo.c \
			$(pkg-config --libs cray-xpmem) &&
		cc $CF $(pkg-config --cflags xpmem) -o $T/tests/xpmemctl_fixture "$SRC"/tests/xpmemctl/xpmemctl_fixture.c \
			$(pkg-config --libs xpmem) &&
		printf '#include <stdio.h>\n#include <xpmem.h>\nint main(void) { printf("0x%%08x\\n", xpmem_version()); return 0; }\n' |
		cc $CF -x c -o $T/version - $(pkg-config --libs xpmem)
}
check build-against-installed quiet build_installed
uses_installed_lib() {
	local b lib
	for b in $T/tests/xpmem-suite $T/tests/legacy_demo $T/tests/xpmemctl_fixture $T/version; do
		if readelf -d "$b" | grep -Eq 'RPATH|RUNPATH'; then echo "  $b has an rpath"; return 1; fi
		lib=$(env -u LD_LIBRARY_PATH ldd "$b" | awk '$1 == "libxpmem.so.0" {print $3}')
		[ "$(readlink -f "$lib")" = "/usr/lib/$multiarch/libxpmem.so.0.3" ] ||
			{ echo "  $b uses '$lib'"; return 1; }
	done
	echo "  libxpmem.so.0 => /usr/lib/$multiarch/libxpmem.so.0.3 (ld.so cache)"
}
check binaries-use-installed-lib uses_installed_lib
check xpmem_version eq "$($T/version)" "$IV"

echo "=== udev rule"
# udevd and udevadm from the udev .deb, unpacked aside (extracting it over / would
# replace the merged-/usr symlinks); they read the installed rules from /lib/udev/rules.d.
# udevadm refuses to act in a chroot (the guest runs this script in one) unless told.
export SYSTEMD_IGNORE_CHROOT=1
mkdir -p /tmp/udev /etc/udev/rules.d
dpkg-deb -x "$(ls "$HELPERS"/udev_*.deb | head -n 1)" /tmp/udev
ln -sf /tmp/udev/bin/udevadm /tmp/udev/systemd-udevd
udevadm() { /tmp/udev/bin/udevadm "$@"; }
modestr() { udevadm settle; stat -c '%a %U %G' /dev/xpmem; }
if /tmp/udev/systemd-udevd --daemon; then
	udevadm settle
	# The node exists already (devtmpfs, 0666): spoil its mode, then replay its add
	# event through the rules, which must restore it.
	chmod 0600 /dev/xpmem
	udevadm trigger --action=add --sysname-match=xpmem
	check udev-default-mode eq "$(modestr)" "666 root root"
	# The documented group alternative (README.Debian, the rule file's comments).
	addgroup --quiet --system xpmem
	sed 's/MODE="0666"/GROUP="xpmem", MODE="0660"/' /lib/udev/rules.d/60-xpmem.rules \
		>/etc/udev/rules.d/60-xpmem.rules
	udevadm control --reload
	udevadm trigger --sysname-match=xpmem
	check udev-group-mode eq "$(modestr)" "660 root xpmem"
	gid=$(getent group xpmem | cut -d: -f3)
	check udev-group-denies-others eval "! setpriv --reuid=65534 --regid=65534 --clear-groups xpmemctl stats >/dev/null 2>&1"
	check udev-group-admits-members setpriv --reuid=65534 --regid=65534 --groups="$gid" xpmemctl stats
	# Back to the packaged rule: a fresh node gets 0666 again.
	rm /etc/udev/rules.d/60-xpmem.rules
	udevadm control --reload
	rmmod xpmem && modprobe xpmem
	check udev-default-after-reload eq "$(modestr)" "666 root root"
	udevadm control --exit
else
	check udevd-starts false
fi

echo "=== suite against the installed files"
run_cmocka suite-installed $T/tests/xpmem-suite
run_cmocka xpmemctl-installed sh "$SRC/tests/xpmemctl/test_xpmemctl.sh" $T /usr/bin/xpmemctl
stat_value() { awk -v k="$1" '$1 == k {print $2}' /proc/xpmem/stats; }
no_live_objects() {
	local k
	for k in segments_live accesses_live attachments_live; do
		[ "$(stat_value $k)" = 0 ] || { echo "  leak: $k = $(stat_value $k)"; return 1; }
	done
}
sleep 1
check no-leaked-objects no_live_objects
check module-unloads rmmod xpmem

echo "=== purge"
# shellcheck disable=SC2086
dpkg --purge $PKGS >/tmp/pkg-purge.log 2>&1
rc=$?
grep -i dkms /tmp/pkg-purge.log | head -n 10
check dpkg-purge eq "$rc" 0
check dkms-removed eval 'out=$(dkms status -m xpmem) && eq "$out" ""'
check nothing-left absent /lib/modules/"$kver"/updates/dkms/xpmem.ko* /var/lib/dkms/xpmem /usr/src/xpmem-"$V" \
	/usr/lib/"$multiarch"/libxpmem* /usr/lib/"$multiarch"/pkgconfig/*xpmem.pc /usr/include/xpmem*.h \
	/usr/bin/xpmemctl /usr/sbin/xpmemd /lib/udev/rules.d/60-xpmem.rules /usr/lib/modules-load.d/xpmem.conf

echo "=== source install: make install-dkms, dkms install"
make_dkms() { make -C "$SRC" -s KDIR= BUILD=/tmp/pkg-build "$@"; }
check make-install-dkms quiet make_dkms install-dkms
check dkms-add quiet dkms add "xpmem/$V"
check dkms-build quiet dkms build "xpmem/$V" -k "$kver"
check dkms-install quiet dkms install "xpmem/$V" -k "$kver"
check source-dkms-status eq "$(dkms status -m xpmem -v "$V" -k "$kver")" "xpmem/$V, $kver, $(uname -m): installed"
check source-modinfo-version eq "$(modinfo -F version xpmem)" "$V"
check source-module-loads modprobe xpmem
check source-module-unloads rmmod xpmem
check make-uninstall-dkms quiet make_dkms uninstall-dkms
check source-dkms-removed eval 'out=$(dkms status -m xpmem) && eq "$out" "" && absent /usr/src/xpmem-"$V" /var/lib/dkms/xpmem /lib/modules/"$kver"/updates/dkms/xpmem.ko*'
exit 0
