# Installation: make install / make uninstall, DKMS source tree, version checks.
#
#   make install        module (KDIR) + everything below; depmod and ldconfig when DESTDIR is empty
#   make install-user   library, headers, pkg-config files, xpmemctl, man pages, udev rule,
#                       modules-load entry (no kernel tree needed; what packagers use)
#   make install-dkms   module source + dkms.conf under $(DKMSDIR)/xpmem-$(XPMEM_VERSION), then:
#                       dkms install xpmem/$(XPMEM_VERSION)  (builds for any kernel with headers)
#   make uninstall      removes what install put there (uninstall-dkms: the DKMS tree)
#   make version-check  VERSION agrees with library, module, header, dkms.conf, debian/changelog
#   make pkg-check      Debian packages + lintian + dkms/udev/suite in 6.1 and 6.12 guests
#
# Layout (all under DESTDIR): PREFIX (/usr/local), LIBDIR, INCLUDEDIR (lib/lib.mk),
# BINDIR, MANDIR, PKGCONFIGDIR; the module goes to /lib/modules/<release>/$(MODULE_INSTALL_DIR)
# (updates, or extra; <release> is KDIR's UTS_RELEASE); the udev rule to $(UDEVRULESDIR) (/lib/udev/rules.d for PREFIX=/usr,
# else /etc/udev/rules.d); the modules-load entry to $(MODULESLOADDIR).
# /dev/xpmem access: XPMEM_DEV_MODE (default 0666, like existing XPMEM), XPMEM_DEV_GROUP
# (XPMEM_DEV_GROUP=xpmem gives group xpmem, mode 0660; create it: addgroup --system xpmem).

XPMEM_VERSION := $(shell cat VERSION)
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
ifeq ($(PREFIX),/usr)
UDEVRULESDIR ?= /lib/udev/rules.d
else
UDEVRULESDIR ?= /etc/udev/rules.d
endif
MODULESLOADDIR ?= $(PREFIX)/lib/modules-load.d
DKMSDIR ?= /usr/src
MODULE_INSTALL_DIR ?= updates
XPMEM_DEV_MODE ?= $(if $(XPMEM_DEV_GROUP),0660,0666)
XPMEM_DEV_GROUP ?=
INSTALL ?= install
SBIN_PATH := PATH="$$PATH:/sbin:/usr/sbin"

INST_MANS := $(patsubst man/%,$(BUILD)/man/%,$(wildcard man/*.[0-9]))
INST_UDEV := $(BUILD)/udev/60-xpmem.rules
INST_HEADERS := include/xpmem.h include/xpmem_ioctl.h
INST_LIB := $(LIB_OUT)/$(LIBXPMEM_REAL) $(LIB_OUT)/libxpmem.a $(LIB_OUT)/.exports-ok \
	$(LIB_OUT)/pkgconfig/cray-xpmem.pc $(LIB_OUT)/pkgconfig/xpmem.pc
DKMS_SRC = $(DESTDIR)$(DKMSDIR)/xpmem-$(XPMEM_VERSION)
# The release the module is for (uname -r of that kernel: Debian's kernel.release differs).
MOD_RELEASE = $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
MOD_DEST = $(DESTDIR)/lib/modules/$(MOD_RELEASE)/$(MODULE_INSTALL_DIR)/xpmem.ko
inst_comma := ,

.PHONY: install install-user install-prep install-module install-lib install-headers \
	install-tools install-man install-udev install-modules-load install-dkms \
	uninstall uninstall-user uninstall-module uninstall-dkms version-check pkg-check

install: install-module install-user
install-user: install-lib install-headers install-tools install-man install-udev install-modules-load

# Everything install-user copies, built without installing (debian/rules builds this).
install-prep: version-check $(INST_LIB) $(BUILD)/tools/xpmemctl $(BUILD)/tools/xpmemd $(INST_MANS) $(INST_UDEV)

version-check:
	@tests/pkg/version-check.sh

install-module: module
	@v=$$($(SBIN_PATH) modinfo -F version $(MODDIR)/xpmem.ko); [ "$$v" = "$(XPMEM_VERSION)" ] || \
		{ echo "install: $(MODDIR)/xpmem.ko has version '$$v', VERSION is $(XPMEM_VERSION)"; exit 1; }
	@r=$$($(SBIN_PATH) modinfo -F vermagic $(MODDIR)/xpmem.ko | cut -d' ' -f1); [ "$$r" = "$(MOD_RELEASE)" ] || \
		{ echo "install: $(MODDIR)/xpmem.ko is for '$$r', KDIR is '$(MOD_RELEASE)'"; exit 1; }
	$(INSTALL) -D -m 0644 $(MODDIR)/xpmem.ko $(MOD_DEST)
	@if [ -z "$(DESTDIR)" ]; then echo "depmod -a $(MOD_RELEASE)"; $(SBIN_PATH) depmod -a $(MOD_RELEASE); fi

install-lib: $(INST_LIB)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 0644 $(LIB_OUT)/$(LIBXPMEM_REAL) $(LIB_OUT)/libxpmem.a $(DESTDIR)$(LIBDIR)/
	ln -sfn $(LIBXPMEM_REAL) $(DESTDIR)$(LIBDIR)/$(LIBXPMEM_SONAME)
	ln -sfn $(LIBXPMEM_SONAME) $(DESTDIR)$(LIBDIR)/libxpmem.so
	$(INSTALL) -m 0644 $(LIB_OUT)/pkgconfig/cray-xpmem.pc $(LIB_OUT)/pkgconfig/xpmem.pc $(DESTDIR)$(PKGCONFIGDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then echo ldconfig; $(SBIN_PATH) ldconfig; fi

install-headers:
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)
	$(INSTALL) -m 0644 $(INST_HEADERS) $(DESTDIR)$(INCLUDEDIR)/

install-tools: $(BUILD)/tools/xpmemctl $(BUILD)/tools/xpmemd
	$(INSTALL) -D -m 0755 $(BUILD)/tools/xpmemctl $(DESTDIR)$(BINDIR)/xpmemctl
	$(INSTALL) -D -m 0755 $(BUILD)/tools/xpmemd $(DESTDIR)$(SBINDIR)/xpmemd

install-man: $(INST_MANS)
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0644 $(filter %.3,$(INST_MANS)) $(DESTDIR)$(MANDIR)/man3/
	$(INSTALL) -m 0644 $(filter %.8,$(INST_MANS)) $(DESTDIR)$(MANDIR)/man8/

install-udev: $(INST_UDEV)
	$(INSTALL) -D -m 0644 $< $(DESTDIR)$(UDEVRULESDIR)/60-xpmem.rules
	@if [ -z "$(DESTDIR)" ] && command -v udevadm >/dev/null && [ -d /run/udev ]; then \
		udevadm control --reload || true; fi

install-modules-load:
	$(INSTALL) -d $(DESTDIR)$(MODULESLOADDIR)
	printf '# Load the xpmem module at boot (systemd-modules-load).\nxpmem\n' >$(DESTDIR)$(MODULESLOADDIR)/xpmem.conf
	chmod 0644 $(DESTDIR)$(MODULESLOADDIR)/xpmem.conf

# The DKMS tree: kernel/ and include/ as in the checkout (Kbuild finds ../include and
# ../VERSION the same way), dkms.conf with the version filled in.
install-dkms: version-check
	$(INSTALL) -d $(DKMS_SRC)/kernel $(DKMS_SRC)/include
	$(INSTALL) -m 0644 kernel/Kbuild $(wildcard kernel/*.c kernel/*.h) $(DKMS_SRC)/kernel/
	$(INSTALL) -m 0644 $(INST_HEADERS) include/xpmem_fabric.h $(DKMS_SRC)/include/
	$(INSTALL) -m 0644 VERSION $(DKMS_SRC)/
	sed 's/#MODULE_VERSION#/$(XPMEM_VERSION)/' dkms.conf >$(DKMS_SRC)/dkms.conf
	chmod 0644 $(DKMS_SRC)/dkms.conf
	@if [ -z "$(DESTDIR)" ]; then echo "install-dkms: now run: dkms install xpmem/$(XPMEM_VERSION)"; fi

# Man pages carry the version in their footer.
$(BUILD)/man/%: man/% VERSION
	@mkdir -p $(@D)
	sed -E '1,8s/"xpmem [0-9][0-9.]*"/"xpmem $(XPMEM_VERSION)"/' $< >$@

# The udev rule with the configured mode and group (rewritten only when they change).
$(INST_UDEV): udev/60-xpmem.rules FORCE
	@echo '$(XPMEM_DEV_MODE)' | grep -Eqx '0?[0-7]{3}' || { echo "XPMEM_DEV_MODE: not an octal mode"; exit 1; }
	@echo '$(XPMEM_DEV_GROUP)' | grep -Eqx '([a-z_][a-z0-9_-]*)?' || { echo "XPMEM_DEV_GROUP: not a group name"; exit 1; }
	@mkdir -p $(@D)
	@sed -E '/^SUBSYSTEM=="misc", KERNEL=="xpmem"/s/MODE="[0-7]+"/$(if $(XPMEM_DEV_GROUP),GROUP="$(XPMEM_DEV_GROUP)"$(inst_comma) )MODE="$(XPMEM_DEV_MODE)"/' $< >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "udev rule: $@ (mode $(XPMEM_DEV_MODE)$(if $(XPMEM_DEV_GROUP), group $(XPMEM_DEV_GROUP)))"; fi

uninstall: uninstall-user uninstall-module

uninstall-user:
	rm -f $(DESTDIR)$(LIBDIR)/$(LIBXPMEM_REAL) $(DESTDIR)$(LIBDIR)/$(LIBXPMEM_SONAME) \
		$(DESTDIR)$(LIBDIR)/libxpmem.so $(DESTDIR)$(LIBDIR)/libxpmem.a \
		$(DESTDIR)$(PKGCONFIGDIR)/cray-xpmem.pc $(DESTDIR)$(PKGCONFIGDIR)/xpmem.pc \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(INST_HEADERS))) \
		$(DESTDIR)$(BINDIR)/xpmemctl $(DESTDIR)$(SBINDIR)/xpmemd \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(filter %.3,$(INST_MANS)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(filter %.8,$(INST_MANS)))) \
		$(DESTDIR)$(UDEVRULESDIR)/60-xpmem.rules $(DESTDIR)$(MODULESLOADDIR)/xpmem.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then $(SBIN_PATH) ldconfig; fi

uninstall-module:
	@if [ -z "$(MOD_RELEASE)" ]; then echo "uninstall: no KDIR, module not removed (set KDIR=<kernel build tree>)"; \
	else echo "rm -f $(MOD_DEST)"; rm -f $(MOD_DEST); \
		if [ -z "$(DESTDIR)" ] && [ -d /lib/modules/$(MOD_RELEASE) ]; then $(SBIN_PATH) depmod -a $(MOD_RELEASE); fi; fi

uninstall-dkms:
	@if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && [ -n "$$(dkms status -m xpmem -v $(XPMEM_VERSION))" ]; then \
		echo "dkms remove xpmem/$(XPMEM_VERSION) --all"; dkms remove xpmem/$(XPMEM_VERSION) --all; fi
	rm -rf $(DKMS_SRC)

pkg-check:
	tests/pkg/pkg-check.sh
