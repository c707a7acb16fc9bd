# Cross-host fabric testbed (tests/lab/run-fabric.sh, tests/lab/fabric/README.md).
#
#   $(BUILD)/tests/fabric-window-probe  proof of the window facts the fabric relies on
#                                       (tests/fabric/window_probe.c), run in every guest
#   $(BUILD)/tests/fabric-remote        one side of a cross-node attach test, driven by
#                                       tests/fabric/fabric_nodes.py
#   $(BUILD)/tests/fabric-inject        sends a peer's xpmemd a forged, replayed or stale
#                                       message (tests/fabric/fabric_inject.c)
#   make fabric-lab-check               the probe on 2 and on 3 Debian 6.1 guests (plain RAM,
#                                       RAM split around 4 GiB, fencing through QMP), then
#                                       the module with xpmemd on 2 and 3 guests
#                                       (tests/fabric/fabric_nodes.py)
# Knobs of `make fabric-lab-check`:
# FABRIC_ITERS (atomic increments per node and word, default 100000), XPMEM_CACHE.

FABRIC_ITERS ?= 100000

user: $(BUILD)/tests/fabric-window-probe $(BUILD)/tests/fabric-inject $(BUILD)/tests/fabric-remote

$(BUILD)/tests/fabric-remote: tests/fabric/remote_xpmem.c include/xpmem.h $(LIB_OUT)/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -pthread -MMD -MP -o $@ $< -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib' -pthread

$(BUILD)/tests/fabric-window-probe: tests/fabric/window_probe.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -pthread -MMD -MP -o $@ $< -pthread

# The daemon's own wire, transport and config code, so the messages are exactly its.
FABRIC_INJECT_OBJS := $(addprefix $(BUILD)/tools/xpmemd-obj/,config.o wire.o transport.o log.o)

$(BUILD)/tests/fabric-inject: tests/fabric/fabric_inject.c $(FABRIC_INJECT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(XPMEMD_CFLAGS) -o $@ $< $(FABRIC_INJECT_OBJS) $(XPMEMD_LIBS)

.PHONY: fabric-lab-check
fabric-lab-check: $(BUILD)/tests/fabric-window-probe $(BUILD)/tests/fabric-inject
	BUILD="$(BUILD)" FABRIC_ITERS="$(FABRIC_ITERS)" tests/fabric/lab-check.sh

-include $(BUILD)/tests/fabric-window-probe.d $(BUILD)/tests/fabric-inject.d $(BUILD)/tests/fabric-remote.d
