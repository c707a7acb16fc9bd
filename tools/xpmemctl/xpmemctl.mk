# xpmemctl: inspect what is exported, attached and recalled (XPMEM_CMD_QUERY).
#
#   $(BUILD)/tools/xpmemctl              the tool (libsmartcols, json-c)
#   $(BUILD)/tools/xpmemctl-asan         the same with SAN_FLAGS; any sanitizer report
#                                        ends it with an error (tests run it too)
#   $(BUILD)/tests/xpmemctl_fixture      known xpmem state for tests/xpmemctl/
#
# xpmemctl_parse.c (reply, records, command line) and xpmemctl_render.c (JSON and
# tables) are also linked into the fuzz targets of tests/fuzz/libfuzzer/.
# Needs the Debian packages libsmartcols-dev and libjson-c-dev.

XPMEMCTL_PKGS := smartcols json-c
XPMEMCTL_CFLAGS := $(CFLAGS_USER) -MMD -MP -DXPMEMCTL_VERSION='"$(LIBXPMEM_VERSION)"' \
	$(shell pkg-config --cflags $(XPMEMCTL_PKGS) 2>/dev/null)
XPMEMCTL_LIBS := $(shell pkg-config --libs $(XPMEMCTL_PKGS) 2>/dev/null || echo -lsmartcols -ljson-c) -lm
# UBSan only reports and goes on by default: a test would not notice.
XPMEMCTL_SAN_FLAGS := $(SAN_FLAGS) -fno-sanitize-recover=all
XPMEMCTL_SRCS := $(wildcard tools/xpmemctl/*.c)
XPMEMCTL_OBJS := $(patsubst tools/xpmemctl/%.c,$(BUILD)/tools/xpmemctl-obj/%.o,$(XPMEMCTL_SRCS))
XPMEMCTL_SAN_OBJS := $(patsubst tools/xpmemctl/%.c,$(BUILD)/tools/xpmemctl-asan-obj/%.o,$(XPMEMCTL_SRCS))

user: $(BUILD)/tools/xpmemctl $(BUILD)/tools/xpmemctl-asan $(BUILD)/tests/xpmemctl_fixture

$(BUILD)/tools/xpmemctl-obj/%.o: tools/xpmemctl/%.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMCTL_CFLAGS) -c -o $@ $<

$(BUILD)/tools/xpmemctl-asan-obj/%.o: tools/xpmemctl/%.c
	@mkdir -p $(@D)
	$(CC) $(XPMEMCTL_CFLAGS) $(XPMEMCTL_SAN_FLAGS) -c -o $@ $<

$(BUILD)/tools/xpmemctl: $(XPMEMCTL_OBJS)
	$(CC) -o $@ $^ $(XPMEMCTL_LIBS)

$(BUILD)/tools/xpmemctl-asan: $(XPMEMCTL_SAN_OBJS)
	$(CC) $(XPMEMCTL_SAN_FLAGS) -o $@ $^ $(XPMEMCTL_LIBS)

$(BUILD)/tests/xpmemctl_fixture: tests/xpmemctl/xpmemctl_fixture.c include/xpmem.h $(LIB_OUT)/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -MMD -MP -o $@ $< -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib'

-include $(XPMEMCTL_OBJS:.o=.d) $(XPMEMCTL_SAN_OBJS:.o=.d) $(BUILD)/tests/xpmemctl_fixture.d
