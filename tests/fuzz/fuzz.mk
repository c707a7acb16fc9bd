# ioctl fuzzer (tests/fuzz/xpmem_fuzz.c).
#
#   $(BUILD)/tests/xpmem-fuzz  random /dev/xpmem requests with hostile arguments from
#                              several processes (root, a second uid, a user+IPC
#                              namespace), with fault injection where the kernel has it
#   make fuzz                  a long run in a guest per kernel (tests/lab/long-run.sh);
#                              fault injection only happens on the debug kernel
#
# Run (root, module loaded): $(BUILD)/tests/xpmem-fuzz [--duration S] [--seed N] ...
# The in-guest suite (tests/guest/run-suite.sh) runs a bounded pass.
# Knobs of `make fuzz`: FUZZ_DURATION (seconds per kernel, default 600), FUZZ_ARGS,
# XPMEM_KERNELS and XPMEM_DEBUG_KERNEL as for `make check`.

FUZZ_DURATION ?= 600
FUZZ_ARGS ?=

user: $(BUILD)/tests/xpmem-fuzz

$(BUILD)/tests/xpmem-fuzz: tests/fuzz/xpmem_fuzz.c include/xpmem_ioctl.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -pthread -MMD -MP -o $@ $< -pthread

.PHONY: fuzz
fuzz:
	BUILD="$(BUILD)" tests/lab/long-run.sh fuzz $(FUZZ_DURATION) -- \
		$(BUILD)/tests/xpmem-fuzz $(FUZZ_ARGS)

-include $(BUILD)/tests/xpmem-fuzz.d
