#!/usr/bin/env bash
# build-consumers.sh [--print]
#
# Builds the real XPMEM consumers of the MPI lab from Debian's own source packages,
# against this checkout's library (staged with its pkg-config files), into a cache
# outside the checkout:
#   - Open MPI's vader BTL with XPMEM single copy, built out of tree from `apt-get
#     source openmpi` against Debian's installed opal headers (opal_config.h with
#     OPAL_BTL_VADER_HAVE_XPMEM=1, HAVE_XPMEM_H=1) and `pkg-config cray-xpmem`;
#     loaded with OMPI_MCA_mca_base_component_path=<dir>:<Debian's component dir>.
#   - UCX's xpmem transport (libuct_xpmem.so.0) from `apt-get source ucx`, configured
#     like Debian's package plus --with-xpmem=<staged prefix>; loaded with LD_PRELOAD
#     (Debian's libuct only loads the modules compiled into its list).
#   - tests/mpi/mpi_checks.c for Open MPI and MPICH (mpi4py in Debian is Open MPI only).
# Nothing of those projects enters the checkout. The cache directory is
# $XPMEM_CACHE/mpi/<key> (default /var/cache/xpmem-lab), key = hash of the source
# package versions, include/xpmem.h and this script; every step leaves a marker, so an
# interrupted run resumes and a finished one only prints.
#
# Output, one "name path" line each:
#   dir             the cache directory
#   xpmem_prefix    staged libxpmem (include/, lib/, lib/pkgconfig/)
#   ompi_components directory holding mca_btl_vader.so (put it first in the component path)
#   uct_xpmem       libuct_xpmem.so.0
#   checks_openmpi  mpi_checks built with mpicc.openmpi
#   checks_mpich    mpi_checks built with mpicc.mpich
# --print: print the lines if everything is built (no apt, no build), else exit 1;
# this is what run-mpi.sh does inside a guest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$ROOT/tests/mpi/build-consumers.sh
CACHE=${XPMEM_CACHE:-/var/cache/xpmem-lab}
MPI_CACHE=$CACHE/mpi
JOBS=${XPMEM_MPI_JOBS:-2}
PRINT_ONLY=0
[ "${1:-}" != --print ] || PRINT_ONLY=1

say() { echo "build-consumers: $*" >&2; }
die() { say "$*"; exit 1; }

# Run time: Open MPI (+ vader, pml ucx), MPICH (ch4:ucx), UCX, the benchmarks and
# mpi4py. Build time: the tools to unpack and bootstrap the sources.
PACKAGES="openmpi-bin libopenmpi-dev mpich libmpich-dev libucx-dev libucx0 ucx-utils
netpipe-openmpi netpipe-mpich2 python3-mpi4py python3-numpy
dpkg-dev autoconf automake libtool libnuma-dev make gcc pkg-config"

install_deps() {
	local p missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages (run as root to install): ${missing[*]}"
	say "installing ${missing[*]}"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# Source package versions of what is installed (works offline, also in a guest).
srcver() { dpkg-query -W -f '${source:Version}' "$1" 2>/dev/null; }

compute_key() {
	OMPI_VER=$(srcver libopenmpi-dev)
	UCX_VER=$(srcver libucx-dev)
	[ -n "$OMPI_VER" ] && [ -n "$UCX_VER" ] || return 1
	KEY=$( { echo "openmpi=$OMPI_VER ucx=$UCX_VER"; cat "$ROOT/include/xpmem.h" "$SELF"; } | sha256sum | cut -c1-16)
	DIR=$MPI_CACHE/$KEY
	# The test program has its own, smaller key: editing it does not rebuild UCX.
	CKEY=$( { echo "$KEY"; cat "$ROOT/tests/mpi/mpi_checks.c"; } | sha256sum | cut -c1-16)
	CDIR=$MPI_CACHE/checks-$CKEY
}

print_paths() {
	echo "dir $DIR"
	echo "xpmem_prefix $DIR/xpmem"
	echo "ompi_components $DIR/ompi"
	echo "uct_xpmem $DIR/ucx/lib/libuct_xpmem.so.0"
	echo "checks_openmpi $CDIR/mpi-checks-openmpi"
	echo "checks_mpich $CDIR/mpi-checks-mpich"
}

all_built() {
	[ -e "$DIR/.xpmem-ok" ] && [ -e "$DIR/.vader-ok" ] && [ -e "$DIR/.ucx-ok" ] && [ -e "$CDIR/.ok" ]
}

if [ $PRINT_ONLY = 1 ]; then
	compute_key || die "Open MPI / UCX development packages are not installed"
	all_built || die "not built for key $KEY (run tests/mpi/build-consumers.sh on the host)"
	print_paths
	exit 0
fi

install_deps
compute_key || die "cannot read the installed Open MPI / UCX versions"
mkdir -p "$DIR"
# One builder at a time (make check and make mpi-check may overlap).
exec 9>"$MPI_CACHE/.lock"
flock 9
say "cache $DIR (openmpi $OMPI_VER, ucx $UCX_VER)"

# --- sources: a private apt configuration with a deb-src entry for bookworm, so the
# machine's own apt sources stay untouched.
mirror_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' "$f"
	done | head -n 1
	{ grep -hs '^deb .* bookworm ' /etc/apt/sources.list || true; } |
		awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n 1
}

fetch_sources() {
	[ -e "$DIR/.src-ok" ] && return 0
	local apt=$MPI_CACHE/apt uri
	uri=$(mirror_uri | head -n 1)
	[ -n "$uri" ] || die "no bookworm apt source found"
	mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main" >"$apt/sources.list.new"
	cmp -s "$apt/sources.list.new" "$apt/sources.list" 2>/dev/null || { mv "$apt/sources.list.new" "$apt/sources.list"; rm -rf "$apt/state/lists"; mkdir -p "$apt/state/lists/partial"; }
	rm -f "$apt/sources.list.new"
	local -a opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=-
		-o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/var/lib/dpkg/status
		-o APT::Sandbox::User=root)
	if [ -z "$(find "$apt/state/lists" -name '*Sources*' -mtime -1 2>/dev/null | head -n 1)" ]; then
		apt-get "${opts[@]}" update >&2
	fi
	rm -rf "$DIR/src.tmp"
	mkdir -p "$DIR/src.tmp"
	(cd "$DIR/src.tmp" && apt-get "${opts[@]}" source --download-only "openmpi=$OMPI_VER" "ucx=$UCX_VER" >&2)
	# dpkg-source applies Debian's patches, as the binary packages were built.
	(cd "$DIR/src.tmp" && dpkg-source -x openmpi_*.dsc openmpi >/dev/null && dpkg-source -x ucx_*.dsc ucx >/dev/null)
	rm -rf "$DIR/src"
	mv "$DIR/src.tmp" "$DIR/src"
	touch "$DIR/.src-ok"
}

# --- libxpmem staged as an installed library: the project's own make rules build it
# with PREFIX=<staged prefix>, so the pkg-config files are the installed flavour.
stage_xpmem() {
	[ -e "$DIR/.xpmem-ok" ] && return 0
	local b=$DIR/xpmem-build p=$DIR/xpmem
	rm -rf "$b" "$p"
	make -s -C "$ROOT" KDIR=/nonexistent BUILD="$b" PREFIX="$p" \
		"$b/lib/libxpmem.so" "$b/lib/.exports-ok" "$b/lib/pkgconfig/cray-xpmem.pc" "$b/lib/pkgconfig/xpmem.pc" >&2
	mkdir -p "$p/include" "$p/lib/pkgconfig"
	cp "$ROOT/include/xpmem.h" "$p/include/"
	cp -P "$b"/lib/libxpmem.so* "$p/lib/"
	cp "$b"/lib/pkgconfig/*.pc "$p/lib/pkgconfig/"
	rm -rf "$b"
	PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config --exists cray-xpmem xpmem || die "staged pkg-config files do not work"
	touch "$DIR/.xpmem-ok"
}

# --- Open MPI vader BTL with XPMEM, out of tree (a couple of seconds).
OMPI_INC=/usr/lib/x86_64-linux-gnu/openmpi/include/openmpi
OMPI_LIB=/usr/lib/x86_64-linux-gnu/openmpi/lib
build_vader() {
	[ -e "$DIR/.vader-ok" ] && return 0
	local src=$DIR/src/openmpi/opal/mca/btl/vader out=$DIR/ompi.tmp f xcflags xlibs
	[ -r "$OMPI_INC/opal_config.h" ] || die "$OMPI_INC/opal_config.h missing (libopenmpi-dev)"
	grep -q '^#define OPAL_BTL_VADER_HAVE_XPMEM 0' "$OMPI_INC/opal_config.h" ||
		die "Debian's opal_config.h does not look like a build without XPMEM; refusing to guess"
	rm -rf "$out"
	mkdir -p "$out/obj/inc"
	sed -e 's|^#define OPAL_BTL_VADER_HAVE_XPMEM 0$|#define OPAL_BTL_VADER_HAVE_XPMEM 1|' \
		-e 's|^/\* #undef HAVE_XPMEM_H \*/$|#define HAVE_XPMEM_H 1|' \
		"$OMPI_INC/opal_config.h" >"$out/obj/inc/opal_config.h"
	grep -q '^#define HAVE_XPMEM_H 1' "$out/obj/inc/opal_config.h" || die "could not set HAVE_XPMEM_H"
	xcflags=$(PKG_CONFIG_PATH=$DIR/xpmem/lib/pkgconfig pkg-config --cflags cray-xpmem)
	xlibs=$(PKG_CONFIG_PATH=$DIR/xpmem/lib/pkgconfig pkg-config --libs cray-xpmem)
	# The source list of the component's Makefile.am.
	for f in $(sed -n '/^libmca_btl_vader_la_sources/,/^$/p' "$src/Makefile.am" | grep -o '[a-z_]*\.c'); do
		# Debian's installed headers first, the source tree only for what they lack.
		gcc -O2 -g -fPIC -mcx16 -DHAVE_CONFIG_H -I"$out/obj/inc" -I"$src" -I"$OMPI_INC" $xcflags \
			-I"$DIR/src/openmpi" -c "$src/$f" -o "$out/obj/${f%.c}.o"
	done
	# shellcheck disable=SC2086
	gcc -shared -o "$out/mca_btl_vader.so" "$out"/obj/*.o -L"$OMPI_LIB" -lopen-pal $xlibs \
		-Wl,--no-undefined -Wl,--enable-new-dtags -Wl,-rpath,"$DIR/xpmem/lib"
	nm -D "$out/mca_btl_vader.so" | grep -q ' U xpmem_attach$' || die "vader was built without XPMEM"
	rm -rf "$out/obj" "$DIR/ompi"
	mv "$out" "$DIR/ompi"
	touch "$DIR/.vader-ok"
}

# --- UCX xpmem transport: UCX configured as Debian configures it (debian/rules), plus
# --with-xpmem; only ucm, ucs and uct are built (the module links to them, and at run
# time to Debian's identical libucs/libuct through their SONAMEs).
build_ucx() {
	[ -e "$DIR/.ucx-ok" ] && return 0
	local b=$DIR/ucx-build
	if [ ! -e "$b/.copied" ]; then
		rm -rf "$b"
		cp -a "$DIR/src/ucx" "$b"
		touch "$b/.copied"
	fi
	if [ ! -x "$b/configure" ]; then
		(cd "$b" && ./autogen.sh >"$b/autogen.log" 2>&1) || { tail -n 30 "$b/autogen.log" >&2; die "ucx autogen failed"; }
	fi
	if [ ! -e "$b/.configured" ]; then
		(cd "$b" && ./configure --prefix=/usr --libdir=/usr/lib/x86_64-linux-gnu \
			--enable-mt --disable-backtrace-detail --disable-logging --enable-devel-headers \
			--enable-cma --without-java --without-go --disable-doxygen-doc \
			--with-xpmem="$DIR/xpmem" \
			LDFLAGS="-Wl,--enable-new-dtags -Wl,-rpath,$DIR/xpmem/lib" >"$b/configure.log" 2>&1) ||
			{ tail -n 30 "$b/configure.log" >&2; die "ucx configure failed (log $b/configure.log)"; }
		grep -q 'xpmem' "$b/config.log" && grep -q '^XPMEM_LIBS = -L' "$b/src/uct/sm/mm/xpmem/Makefile" ||
			die "ucx configure did not enable xpmem (see $b/config.log)"
		touch "$b/.configured"
	fi
	local d
	for d in src/ucm src/ucs src/uct; do
		make -C "$b/$d" -j"$JOBS" >"$b/make.log" 2>&1 || { tail -n 30 "$b/make.log" >&2; die "ucx make in $d failed"; }
	done
	local so=$b/src/uct/sm/mm/xpmem/.libs/libuct_xpmem.so.0
	[ -e "$so" ] || die "$so was not built"
	rm -rf "$DIR/ucx"
	mkdir -p "$DIR/ucx/lib"
	cp -L "$so" "$DIR/ucx/lib/libuct_xpmem.so.0"
	nm -D "$DIR/ucx/lib/libuct_xpmem.so.0" | grep -q ' U xpmem_make$' || die "libuct_xpmem does not use xpmem_make"
	rm -rf "$b"
	touch "$DIR/.ucx-ok"
}

# --- the C checks (MPICH cannot use Debian's mpi4py, which is built for Open MPI).
build_checks() {
	[ -e "$CDIR/.ok" ] && return 0
	rm -rf "$CDIR"
	mkdir -p "$CDIR"
	mpicc.openmpi -O2 -g -Wall -Werror -o "$CDIR/mpi-checks-openmpi" "$ROOT/tests/mpi/mpi_checks.c"
	mpicc.mpich -O2 -g -Wall -Werror -o "$CDIR/mpi-checks-mpich" "$ROOT/tests/mpi/mpi_checks.c"
	touch "$CDIR/.ok"
}

# Builds of other keys (older sources, header or script) unused for a week go away.
prune() {
	touch "$DIR" "$CDIR"
	find "$MPI_CACHE" -mindepth 1 -maxdepth 1 -type d \( -regex '.*/[0-9a-f]\{16\}' -o -name 'checks-*' \) \
		-mtime +7 ! -path "$DIR" ! -path "$CDIR" -exec rm -rf {} +
}

start=$SECONDS
fetch_sources
stage_xpmem
build_vader
build_ucx
build_checks
prune
say "ready in $((SECONDS - start)) s"
print_paths
