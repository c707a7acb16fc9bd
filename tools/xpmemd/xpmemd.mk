# xpmemd: the per-node fabric daemon (man/xpmemd.8, include/xpmem_fabric.h).
#
#   $(BUILD)/tools/xpmemd            the daemon (libfabric, OpenSSL libcrypto)
#   $(BUILD)/tools/xpmemd-asan       the same with SAN_FLAGS; any sanitizer report
#                                    ends it with an error
#   $(BUILD)/tests/xpmemd-unit       cmocka tests of the config, wire, replay and
#                                    membership logic (tests/xpmemd/test_wire.c);
#                                    no device, no libfabric
#   $(BUILD)/tests/xpmemd-unit-asan  the same with SAN_FLAGS
#   make xpmemd-unit                 runs both unit test binaries
#
# config.c, wire.c, member.c, reqtab.c and log.c hold the logic and need neither
# libfabric nor the device; transport.c, selftest.c and xpmemd.c do the I/O.
# Needs the Debian packages libfabric-dev, libssl-dev and (tests) libcmocka-dev.

XPMEMD_PKGS := libfabric libcrypto
XPMEMD_CFLAGS := $(CFLAGS_USER) -MMD -MP -DXPMEMD_VERSION='"$(LIBXPMEM_VERSION)"' \
	$(shell pkg-config --cflags $(XPMEMD_PKGS) 2>/dev/null)
XPMEMD_LIBS := $(shell pkg-config --libs $(XPMEMD_PKGS) 2>/dev/null || echo -lfabric -lcrypto)
XPMEMD_SAN_FLAGS := $(SAN_FLAGS) -fno-sanitize-recover=all
XPMEMD_SRCS := $(wildcard tools/xpmemd/*.c)
XPMEMD_LOGIC := config wire member reqtab log
XPMEMD_OBJS := $(patsubst tools/xpmemd/%.c,$(BUILD)/tools/xpmemd-obj/%.o,$(XPMEMD_SRCS))
XPMEMD_SAN_OBJS := $(patsubst tools/xpmemd/%.c,$(BUILD)/tools/xpmemd-asan-obj/%.o,$(XPMEMD_SRCS))
XPMEMD_UNIT_OBJS := $(XPMEMD_LOGIC:%=$(BUILD)/tools/xpmemd-obj/%.o)
XPMEMD_UNIT_SAN_OBJS := $(XPMEMD_LOGIC:%=$(BUILD)/tools/xpmemd-asan-obj/%.o)

user: $(BUILD)/tools/xpmemd $(BUILD)/tools/xpmemd-asan $(BUILD)/tests/xpmemd-unit \
	$(BUILD)/tests/xpmemd-unit-asan

$(BUILD)/tools/xpmemd-obj/%.o: tools/xpmemd/%.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMD_CFLAGS) -c -o $@ $<

$(BUILD)/tools/xpmemd-asan-obj/%.o: tools/xpmemd/%.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMD_CFLAGS) $(XPMEMD_SAN_FLAGS) -c -o $@ $<

$(BUILD)/tools/xpmemd: $(XPMEMD_OBJS)
	$(CC) -o $@ $^ $(XPMEMD_LIBS)

$(BUILD)/tools/xpmemd-asan: $(XPMEMD_SAN_OBJS)
	$(CC) $(XPMEMD_SAN_FLAGS) -o $@ $^ $(XPMEMD_LIBS)

$(BUILD)/tests/xpmemd-unit-obj/test_wire.o: tests/xpmemd/test_wire.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMD_CFLAGS) -Itools/xpmemd -c -o $@ $<

$(BUILD)/tests/xpmemd-unit-asan-obj/test_wire.o: tests/xpmemd/test_wire.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMD_CFLAGS) $(XPMEMD_SAN_FLAGS) -Itools/xpmemd -c -o $@ $<

$(BUILD)/tests/xpmemd-unit: $(BUILD)/tests/xpmemd-unit-obj/test_wire.o $(XPMEMD_UNIT_OBJS)
	$(CC) -o $@ $^ -lcmocka $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

$(BUILD)/tests/xpmemd-unit-asan: $(BUILD)/tests/xpmemd-unit-asan-obj/test_wire.o \
	$(XPMEMD_UNIT_SAN_OBJS)
	$(CC) $(XPMEMD_SAN_FLAGS) -o $@ $^ -lcmocka \
		$(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

.PHONY: xpmemd-unit
xpmemd-unit: $(BUILD)/tests/xpmemd-unit $(BUILD)/tests/xpmemd-unit-asan
	$(BUILD)/tests/xpmemd-unit
	$(BUILD)/tests/xpmemd-unit-asan

-include $(XPMEMD_OBJS:.o=.d) $(XPMEMD_SAN_OBJS:.o=.d) \
	$(BUILD)/tests/xpmemd-unit-obj/test_wire.d $(BUILD)/tests/xpmemd-unit-asan-obj/test_wire.d
