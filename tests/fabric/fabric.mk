# Cross-host fabric testbed (tests/lab/run-fabric.sh, tests/lab/fabric/README.md).
#
#   $(BUILD)/tests/fabric-window-probe  proof of the window facts the fabric relies on
#                                       (tests/fabric/window_probe.c), run in every guest
#   make fabric-lab-check               runs it on 2 and on 3 Debian 6.1 guests (plain RAM,
#                                       RAM split around 4 GiB, fencing through QMP)
#
# Needs nothing from the module or the library. Knobs of `make fabric-lab-check`:
# FABRIC_ITERS (atomic increments per node and word, default 100000), XPMEM_CACHE.

FABRIC_ITERS ?= 100000

user: $(BUILD)/tests/fabric-window-probe

$(BUILD)/tests/fabric-window-probe: tests/fabric/window_probe.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -pthread -MMD -MP -o $@ $< -pthread

.PHONY: fabric-lab-check
fabric-lab-check: $(BUILD)/tests/fabric-window-probe
	BUILD="$(BUILD)" FABRIC_ITERS="$(FABRIC_ITERS)" tests/fabric/lab-check.sh

-include $(BUILD)/tests/fabric-window-probe.d
