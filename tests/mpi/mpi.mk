# Real MPI consumers on xpmem (tests/mpi/), in QEMU guests of the test lab.
#
#   make mpi-build   build Open MPI's vader BTL with XPMEM and UCX's xpmem transport from
#                    Debian's source packages into /var/cache/xpmem-lab/mpi/<key>
#                    (tests/mpi/build-consumers.sh; cached, prints the paths)
#   make mpi-check   6.1 and 6.12 guests: vader xpmem / vader CMA / Open MPI pml ucx /
#                    MPICH ch4:ucx with 2 and 4 ranks (mpi4py and C checks, NetPIPE),
#                    xpmem counters and leak checks; results in $(BUILD)/mpi/<kernel>/,
#                    NetPIPE JSON in $(BUILD)/mpi/<kernel>/bench/mpi-bench.json and the
#                    plot $(BUILD)/mpi/mpi-bench.png
#   make mpi-bench   only the NetPIPE part (xpmem vs CMA), same outputs
# Knobs: XPMEM_MPI_KERNELS (default "6.1 6.12"), XPMEM_CACHE.
# The short version for make check: tests/mpi/run-mpi.sh --short inside the guest.

.PHONY: mpi-build mpi-check mpi-bench
mpi-build:
	tests/mpi/build-consumers.sh

mpi-check:
	BUILD="$(BUILD)" tests/mpi/mpi-check.sh

mpi-bench:
	BUILD="$(BUILD)" tests/mpi/mpi-check.sh --bench
