# Benchmarks (tests/bench/).
#
#   $(BUILD)/tests/xpmem-bench   the benchmark program (run in a guest as root, module loaded)
#   make bench                   boots the Debian 6.12 guest, runs every benchmark there,
#                                copies the JSON back to $(BUILD)/bench/ and draws
#                                $(BUILD)/bench/*.png on the host (tests/bench/run-bench.sh),
#                                then NetPIPE over Open MPI/MPICH, xpmem vs CMA, in the same
#                                kernel (make mpi-bench: $(BUILD)/mpi/mpi-bench.png), then
#                                remote populate and recall against local ones on two
#                                6.1 fabric nodes ($(BUILD)/bench/fabric.json)
#
# Knobs: BENCH_ARGS (passed to xpmem-bench, e.g. "--quick" or "copy recall"),
# XPMEM_BENCH_KERNEL (6.1 or 6.12, default 6.12), XPMEM_BENCH_KO (a prebuilt xpmem.ko).

BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_OBJS := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%.o,$(BENCH_SRCS))

user: $(BUILD)/tests/xpmem-bench

$(BUILD)/tests/bench/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -MMD -MP -c -o $@ $<

$(BUILD)/tests/xpmem-bench: $(BENCH_OBJS) $(LIB_OUT)/libxpmem.so
	$(CC) -o $@ $(BENCH_OBJS) -L$(LIB_OUT) -lxpmem -Wl,-rpath,'$$ORIGIN/../lib'

.PHONY: bench
bench:
	BUILD="$(BUILD)" BENCH_ARGS="$(BENCH_ARGS)" tests/bench/run-bench.sh
	BUILD="$(BUILD)" XPMEM_MPI_KERNELS="$(or $(XPMEM_BENCH_KERNEL),6.12)" tests/mpi/mpi-check.sh --bench
	BUILD="$(BUILD)" tests/fabric/bench.sh

-include $(BENCH_OBJS:.o=.d)
