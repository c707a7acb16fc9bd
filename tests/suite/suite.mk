# In-guest test suite (cmocka) and the legacy API demo.
#
#   $(BUILD)/tests/xpmem-suite       the suite, linked against $(BUILD)/lib/libxpmem.so.0
#   $(BUILD)/tests/xpmem-suite-asan  the same with SAN_FLAGS, against $(BUILD)/lib/asan/
#   $(BUILD)/tests/legacy_demo       tests/compat/legacy_demo.c, built through the
#                                    uninstalled cray-xpmem.pc (run by the suite)
#
# Run (root, module loaded): $(BUILD)/tests/xpmem-suite ['glob'...]  (see tests/suite/main.c)

SUITE_SRCS := $(wildcard tests/suite/*.c)
SUITE_OBJS := $(patsubst tests/suite/%.c,$(BUILD)/tests/suite/%.o,$(SUITE_SRCS))
SUITE_SAN_OBJS := $(patsubst tests/suite/%.c,$(BUILD)/tests/suite-asan/%.o,$(SUITE_SRCS))
SUITE_CFLAGS := $(CFLAGS_USER) -pthread -MMD -MP
SUITE_LIBS := -lcmocka -pthread

user: $(BUILD)/tests/xpmem-suite $(BUILD)/tests/xpmem-suite-asan $(BUILD)/tests/legacy_demo

$(BUILD)/tests/suite/%.o: tests/suite/%.c
	@mkdir -p $(@D)
	$(CC) $(SUITE_CFLAGS) -c -o $@ $<

$(BUILD)/tests/suite-asan/%.o: tests/suite/%.c
	@mkdir -p $(@D)
	$(CC) $(SUITE_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/tests/xpmem-suite: $(SUITE_OBJS) $(LIB_OUT)/libxpmem.so
	$(CC) -o $@ $(SUITE_OBJS) -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib' $(SUITE_LIBS)

$(BUILD)/tests/xpmem-suite-asan: $(SUITE_SAN_OBJS) $(LIB_SAN_OUT)/libxpmem.so
	$(CC) $(SAN_FLAGS) -o $@ $(SUITE_SAN_OBJS) -L$(LIB_SAN_OUT) -lxpmem \
		-Wl,-rpath,'$$ORIGIN/../lib/asan' $(SUITE_LIBS)

# Built the way an outside consumer would: flags from the uninstalled cray-xpmem.pc only.
LEGACY_PC = PKG_CONFIG_PATH=$(LIB_OUT)/pkgconfig-uninstalled pkg-config
$(BUILD)/tests/legacy_demo: tests/compat/legacy_demo.c $(LIB_OUT)/pkgconfig-uninstalled/cray-xpmem.pc \
		$(LIB_OUT)/libxpmem.so include/xpmem.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER:-Iinclude=) $$($(LEGACY_PC) --cflags cray-xpmem) -o $@ $< \
		$$($(LEGACY_PC) --libs cray-xpmem)

-include $(SUITE_OBJS:.o=.d) $(SUITE_SAN_OBJS:.o=.d)
