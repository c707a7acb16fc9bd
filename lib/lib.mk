# libxpmem: shared library (SONAME libxpmem.so.0), static archive, pkg-config files.
#
#   $(BUILD)/lib/libxpmem.so.0.$(LIBXPMEM_MINOR)  + libxpmem.so.0, libxpmem.so symlinks
#   $(BUILD)/lib/libxpmem.a
#   $(BUILD)/lib/pkgconfig/{cray-xpmem,xpmem}.pc              for PREFIX/LIBDIR/INCLUDEDIR
#   $(BUILD)/lib/pkgconfig-uninstalled/{cray-xpmem,xpmem}.pc  for the build tree itself
#   $(BUILD)/lib/asan/libxpmem.so.0 ...                       same library with SAN_FLAGS
#
# In-tree consumers: PKG_CONFIG_PATH=$(BUILD)/lib/pkgconfig-uninstalled pkg-config --cflags --libs cray-xpmem

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

LIBXPMEM_MINOR := 3
# The one version of module, library and tools (modinfo, pkg-config, xpmemctl --version).
LIBXPMEM_VERSION := $(shell cat VERSION)
LIBXPMEM_SONAME := libxpmem.so.0
LIBXPMEM_REAL := libxpmem.so.0.$(LIBXPMEM_MINOR)
# The only symbols the shared library may export.
LIBXPMEM_EXPORTS := xpmem_attach xpmem_attach_ext xpmem_detach xpmem_get xpmem_init xpmem_ioctl \
	xpmem_make xpmem_release xpmem_remove xpmem_version

LIB_CFLAGS := $(CFLAGS_USER) -fPIC -fvisibility=hidden -pthread -MMD -MP
LIB_LDFLAGS := -shared -pthread -Wl,-soname,$(LIBXPMEM_SONAME) -Wl,-z,relro -Wl,-z,now

LIB_OUT := $(BUILD)/lib
LIB_SAN_OUT := $(BUILD)/lib/asan

user: $(LIB_OUT)/$(LIBXPMEM_SONAME) $(LIB_OUT)/libxpmem.so $(LIB_OUT)/libxpmem.a \
	$(LIB_OUT)/.exports-ok \
	$(LIB_OUT)/pkgconfig/cray-xpmem.pc $(LIB_OUT)/pkgconfig/xpmem.pc \
	$(LIB_OUT)/pkgconfig-uninstalled/cray-xpmem.pc $(LIB_OUT)/pkgconfig-uninstalled/xpmem.pc \
	$(LIB_SAN_OUT)/$(LIBXPMEM_SONAME) $(BUILD)/tests/libxpmem-unit

$(LIB_OUT)/libxpmem.o: lib/libxpmem.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c -o $@ $<

$(LIB_OUT)/$(LIBXPMEM_REAL): $(LIB_OUT)/libxpmem.o
	$(CC) $(LIB_LDFLAGS) -Wl,--no-undefined -o $@ $^

$(LIB_OUT)/$(LIBXPMEM_SONAME): $(LIB_OUT)/$(LIBXPMEM_REAL)
	ln -sfn $(LIBXPMEM_REAL) $@

$(LIB_OUT)/libxpmem.so: $(LIB_OUT)/$(LIBXPMEM_SONAME)
	ln -sfn $(LIBXPMEM_SONAME) $@

$(LIB_OUT)/libxpmem.a: $(LIB_OUT)/libxpmem.o
	rm -f $@
	$(AR) rcs $@ $^

# Fails the build if the shared library exports anything but the API.
$(LIB_OUT)/.exports-ok: $(LIB_OUT)/$(LIBXPMEM_REAL)
	@nm -D --defined-only $< | awk '{print $$NF}' | sort >$@.tmp
	@echo $(LIBXPMEM_EXPORTS) | tr ' ' '\n' | sort | diff -u - $@.tmp || \
		{ echo "libxpmem: exported symbols differ from the API (diff above)"; rm -f $@.tmp; exit 1; }
	@readelf -d $< | grep -q 'SONAME.*\[$(LIBXPMEM_SONAME)\]' || \
		{ echo "libxpmem: SONAME is not $(LIBXPMEM_SONAME)"; rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@

# Sanitizer build of the same source, for the sanitizer build of the test suite.
$(LIB_SAN_OUT)/libxpmem.o: lib/libxpmem.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(LIB_SAN_OUT)/$(LIBXPMEM_REAL): $(LIB_SAN_OUT)/libxpmem.o
	$(CC) $(LIB_LDFLAGS) $(SAN_FLAGS) -o $@ $^

$(LIB_SAN_OUT)/$(LIBXPMEM_SONAME): $(LIB_SAN_OUT)/$(LIBXPMEM_REAL)
	ln -sfn $(LIBXPMEM_REAL) $@

$(LIB_SAN_OUT)/libxpmem.so: $(LIB_SAN_OUT)/$(LIBXPMEM_SONAME)
	ln -sfn $(LIBXPMEM_SONAME) $@

-include $(LIB_OUT)/libxpmem.d $(LIB_SAN_OUT)/libxpmem.d $(BUILD)/tests/libxpmem-unit.d

# Host-side unit test of the argument handling (fakes /dev/xpmem; no module needed).
$(BUILD)/tests/libxpmem-unit: tests/unit/libxpmem_unit.c $(LIB_OUT)/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -MMD -MP -o $@ $< -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib' -lcmocka

.PHONY: lib-check
lib-check: $(BUILD)/tests/libxpmem-unit
	$(BUILD)/tests/libxpmem-unit

# pkg-config: one template, two names, two flavours. The variables are recorded in a
# stamp that only changes when they do, so the files follow PREFIX/LIBDIR/INCLUDEDIR.
# A LIBDIR/INCLUDEDIR under PREFIX is written relative to ${prefix}.
pc_rel = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}/$(patsubst $(PREFIX)/%,%,$(1)),$(1))
LIB_PC_VARS := $(PREFIX)|$(LIBDIR)|$(INCLUDEDIR)|$(LIBXPMEM_VERSION)|$(abspath $(CURDIR))|$(abspath $(LIB_OUT))
LIB_PC_STAMP := $(LIB_OUT)/.pc-vars

$(LIB_PC_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(LIB_PC_VARS)' | cmp -s - $@ 2>/dev/null || echo '$(LIB_PC_VARS)' >$@

$(LIB_OUT)/pkgconfig/%.pc: lib/xpmem.pc.in $(LIB_PC_STAMP)
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_rel,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_rel,$(INCLUDEDIR))|' -e 's|@NAME@|$*|' \
		-e 's|@VERSION@|$(LIBXPMEM_VERSION)|' -e 's|@EXTRA_LIBS@||' $< >$@

# Uninstalled flavour: prefix is the checkout, the library is found (also at run time,
# through its rpath) in the build tree, the header in include/.
$(LIB_OUT)/pkgconfig-uninstalled/%.pc: lib/xpmem.pc.in $(LIB_PC_STAMP)
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(abspath $(CURDIR))|' -e 's|@LIBDIR@|$(abspath $(LIB_OUT))|' \
		-e 's|@INCLUDEDIR@|$${prefix}/include|' -e 's|@NAME@|$*|' \
		-e 's|@VERSION@|$(LIBXPMEM_VERSION)|' -e 's|@EXTRA_LIBS@| -Wl,-rpath,$${libdir}|' $< >$@

.PHONY: FORCE
FORCE:
