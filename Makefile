# xpmem: top-level build.
#   make            module (against KDIR), library, tools and tests
#   make check      the whole in-guest suite on every kernel of the test matrix
#   make demo       boots a guest and shows export, attach and recall
#   make bench      benchmarks in a Debian 6.12 guest: build/bench/bench.{txt,json}, *.png
#   make stress     long race stress run in a guest per kernel (STRESS_DURATION, default 600 s)
#   make fuzz       long ioctl fuzzing run in a guest per kernel (FUZZ_DURATION, default 600 s)
BUILD ?= build
CC ?= cc
CFLAGS_USER := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -Iinclude
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

# KDIR: the running kernel's build tree, else the test lab's Debian 6.1 kernel.
ifeq ($(origin KDIR), undefined)
KDIR := $(shell if [ -d /lib/modules/$$(uname -r)/build ]; then echo /lib/modules/$$(uname -r)/build; \
	else XPMEM_KERNELS=6.1 tests/lab/fetch-kernels.sh 2>/dev/null | awk '{print $$2 "/kdir"}'; fi)
endif

.PHONY: all module user check demo clean
all: module user

user:

include lib/lib.mk
include tests/suite/suite.mk
include tests/bench/bench.mk
include tools/xpmemctl/xpmemctl.mk
include tools/xpmemd/xpmemd.mk
include tests/stress/stress.mk
include tests/fuzz/fuzz.mk
include tests/fabric/fabric.mk
include tests/fuzz/libfuzzer/libfuzzer.mk
include tests/mpi/mpi.mk
include install.mk

# Build the module out of tree in a per-kernel directory so several kernels can coexist.
KREL = $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
MODDIR = $(BUILD)/kmod/$(KREL)
module:
	@test -n "$(KREL)" || { echo "no usable KDIR ($(KDIR)): set KDIR=<kernel build tree>"; exit 1; }
	@mkdir -p $(MODDIR)
	@for f in kernel/Kbuild kernel/*.c kernel/*.h; do ln -sf $(CURDIR)/$$f $(MODDIR)/; done
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(MODDIR) XPMEM_INCLUDE=$(CURDIR)/include XPMEM_VERSION=$(XPMEM_VERSION) modules

# The demo program behind `make demo`.
user: $(BUILD)/tests/xpmem_demo
$(BUILD)/tests/xpmem_demo: tests/demo/xpmem_demo.c include/xpmem.h $(BUILD)/lib/libxpmem.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -o $@ $< -L$(BUILD)/lib -lxpmem -Wl,-rpath,$(abspath $(BUILD)/lib)

check:
	tests/lab/check.sh

demo:
	tests/lab/demo.sh

clean:
	rm -rf $(BUILD)
