# Race stress test (tests/stress/xpmem_stress.c).
#
#   $(BUILD)/tests/xpmem-stress  exporters that keep changing their memory (remap, munmap,
#                                MADV_DONTNEED, mprotect, fork/COW, THP collapse/split,
#                                move_pages between NUMA nodes, mremap, remove, exit)
#                                against attachers that check every byte they read/write
#   make stress                  a long run in a guest per kernel (tests/lab/long-run.sh)
#
# Run (root, module loaded): $(BUILD)/tests/xpmem-stress [--duration S] [--seed N] ...
# The in-guest suite (tests/guest/run-suite.sh) runs a bounded pass.
# Knobs of `make stress`: STRESS_DURATION (seconds per kernel, default 600), STRESS_ARGS,
# XPMEM_KERNELS and XPMEM_DEBUG_KERNEL as for `make check`.

STRESS_DURATION ?= 600
STRESS_ARGS ?=

user: $(BUILD)/tests/xpmem-stress

$(BUILD)/tests/xpmem-stress: tests/stress/xpmem_stress.c $(LIB_OUT)/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -pthread -MMD -MP -o $@ $< -L$(LIB_OUT) -lxpmem \
		-Wl,-rpath,'$$ORIGIN/../lib' -pthread

.PHONY: stress
stress:
	BUILD="$(BUILD)" tests/lab/long-run.sh stress $(STRESS_DURATION) -- \
		$(BUILD)/tests/xpmem-stress --verbose $(STRESS_ARGS)

-include $(BUILD)/tests/xpmem-stress.d

# Regression tests of fixed kernel bugs, each a reproducer that exits 1 when the bug
# is back (the header of each source says which bug). The suite runs them bounded.
REPROS := futex_deadlock pid_leak remove_window
REPRO_BINS := $(foreach r,$(REPROS),$(BUILD)/tests/xpmem-repro-$(subst _,-,$(r)))
user: $(REPRO_BINS)

define repro_rule
$(BUILD)/tests/xpmem-repro-$(subst _,-,$(1)): tests/stress/repro_$(1).c $(LIB_OUT)/libxpmem.so
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_USER) -pthread -o $$@ $$< -L$$(LIB_OUT) -lxpmem -Wl,-rpath,'$$$$ORIGIN/../lib' -pthread
endef
$(foreach r,$(REPROS),$(eval $(call repro_rule,$(r))))
