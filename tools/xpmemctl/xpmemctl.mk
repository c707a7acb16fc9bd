# xpmemctl: inspect what is exported, attached and recalled (XPMEM_CMD_QUERY).
#
#   $(BUILD)/tools/xpmemctl              the tool (libsmartcols, json-c)
#   $(BUILD)/tests/xpmemctl_fixture      known xpmem state for tests/xpmemctl/
#
# Needs the Debian packages libsmartcols-dev and libjson-c-dev.

XPMEMCTL_PKGS := smartcols json-c
XPMEMCTL_CFLAGS := $(CFLAGS_USER) -MMD -MP -DXPMEMCTL_VERSION='"$(LIBXPMEM_VERSION)"' \
	$(shell pkg-config --cflags $(XPMEMCTL_PKGS) 2>/dev/null)
XPMEMCTL_LIBS := $(shell pkg-config --libs $(XPMEMCTL_PKGS) 2>/dev/null || echo -lsmartcols -ljson-c) -lm

user: $(BUILD)/tools/xpmemctl $(BUILD)/tests/xpmemctl_fixture

$(BUILD)/tools/xpmemctl: tools/xpmemctl/xpmemctl.c include/xpmem_ioctl.h
	@mkdir -p $(@D)
	$(CC) $(XPMEMCTL_CFLAGS) -o $@ $< $(XPMEMCTL_LIBS)

$(BUILD)/tests/xpmemctl_fixture: tests/xpmemctl/xpmemctl_fixture.c include/xpmem.h $(LIB_OUT)/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -MMD -MP -o $@ $< -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib'

-include $(BUILD)/tools/xpmemctl.d $(BUILD)/tests/xpmemctl_fixture.d
