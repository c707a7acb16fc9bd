#!/usr/bin/python3
"""MPI correctness checks through mpi4py (Debian's python3-mpi4py, Open MPI).

    mpirun -np N python3 mpi4py_checks.py [--size BYTES] [--iters N]

Point-to-point with verified large messages (far above every eager limit, so the
rendezvous / single-copy path is taken; odd lengths and offsets too), collectives
(allreduce, bcast, alltoall, allgather, reduce, scatter/gather) and one-sided
Put/Get/Accumulate on allocated and on user-created windows. Every rank verifies
every element. Rank 0 prints "mpi4py-checks: <check> ok" per check and the path of
the libxpmem the processes loaded; the first wrong value aborts the job (exit != 0).
--exit-barrier DIR: see exit_barrier() (needed with Open MPI 4.1 osc/ucx over xpmem).
"""
import argparse
import os
import sys
import time

import numpy as np
import mpi4py
mpi4py.rc.finalize = False  # MPI_Finalize is called by main(), before the exit barrier
from mpi4py import MPI  # noqa: E402

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()


def fail(what, got, want, where):
    sys.stderr.write("mpi4py-checks: rank %d: %s: wrong value at %s: %r, expected %r\n"
                     % (rank, what, where, got, want))
    sys.stderr.flush()
    comm.Abort(1)


def expect_equal(what, got, want):
    if got.shape != want.shape:
        fail(what, got.shape, want.shape, "shape")
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = int(bad[0])
        fail(what, got.flat[i], want.flat[i], "index %d (%d wrong)" % (i, bad.size))


def passed(what):
    comm.Barrier()
    if rank == 0:
        print("mpi4py-checks: %s ok" % what, flush=True)


def pattern(src, it, n):
    """Bytes that differ per source rank, iteration and offset."""
    i = np.arange(n, dtype=np.uint64)
    return ((i * 131 + (i >> 12) * 7 + src * 29 + it * 13 + 1) & 0xff).astype(np.uint8)


def check_p2p(nbytes, iters):
    right, left = (rank + 1) % size, (rank - 1) % size
    for it in range(iters):
        sbuf = pattern(rank, it, nbytes)
        rbuf = np.zeros(nbytes, dtype=np.uint8)
        reqs = [comm.Irecv(rbuf, source=left, tag=it), comm.Isend(sbuf, dest=right, tag=it)]
        MPI.Request.Waitall(reqs)
        expect_equal("ring Isend/Irecv", rbuf, pattern(left, it, nbytes))
        # Unaligned start and odd length through Sendrecv.
        off = (it * 7 + 3) % 4096
        ln = nbytes - off - 5
        rbuf[:] = 0
        comm.Sendrecv(sbuf[off:off + ln], dest=right, sendtag=100 + it,
                      recvbuf=rbuf[off:off + ln], source=left, recvtag=100 + it)
        expect_equal("Sendrecv unaligned", rbuf[off:off + ln], pattern(left, it, nbytes)[off:off + ln])
        # Blocking ping-pong between 0 and 1.
        if rank == 0:
            comm.Send(sbuf, dest=1, tag=200 + it)
            comm.Recv(rbuf, source=1, tag=300 + it)
            expect_equal("ping-pong", rbuf, pattern(1, it, nbytes))
        elif rank == 1:
            comm.Recv(rbuf, source=0, tag=200 + it)
            expect_equal("ping-pong", rbuf, pattern(0, it, nbytes))
            comm.Send(sbuf, dest=0, tag=300 + it)
    # Pickled Python objects, small and large.
    obj = {"rank": rank, "data": list(range(1000 * (rank + 1)))}
    got = comm.sendrecv(obj, dest=right, source=left)
    if got != {"rank": left, "data": list(range(1000 * (left + 1)))}:
        fail("pickled sendrecv", got.get("rank"), left, "object")
    passed("p2p")


def check_collectives(nbytes):
    n = nbytes // 8
    i = np.arange(n, dtype=np.int64)
    a = i * (rank + 1)
    r = np.empty_like(a)
    comm.Allreduce(a, r, op=MPI.SUM)
    expect_equal("Allreduce", r, i * (size * (size + 1) // 2))
    passed("allreduce")

    root = size - 1
    b = (i ^ 0x5a5a) if rank == root else np.full(n, -1, dtype=np.int64)
    comm.Bcast(b, root=root)
    expect_equal("Bcast", b, i ^ 0x5a5a)
    passed("bcast")

    blk = n // size
    s = rank * 1000000007 + np.arange(blk * size, dtype=np.int64)
    r = np.empty(blk * size, dtype=np.int64)
    comm.Alltoall(s, r)
    want = np.concatenate([src * 1000000007 + rank * blk + np.arange(blk, dtype=np.int64)
                           for src in range(size)])
    expect_equal("Alltoall", r, want)
    passed("alltoall")

    g = np.empty(blk * size, dtype=np.int64)
    comm.Allgather(np.full(blk, rank + 7, dtype=np.int64), g)
    expect_equal("Allgather", g, np.repeat(np.arange(size, dtype=np.int64) + 7, blk))
    red = np.empty_like(a) if rank == 0 else None
    comm.Reduce(a, red, op=MPI.MAX, root=0)
    if rank == 0:
        expect_equal("Reduce", red, i * size)
    sc = np.arange(blk * size, dtype=np.int64) * 3 if rank == 0 else None
    part = np.empty(blk, dtype=np.int64)
    comm.Scatter(sc, part, root=0)
    expect_equal("Scatter", part, (rank * blk + np.arange(blk, dtype=np.int64)) * 3)
    back = np.empty(blk * size, dtype=np.int64) if rank == 0 else None
    comm.Gather(part, back, root=0)
    if rank == 0:
        expect_equal("Gather", back, np.arange(blk * size, dtype=np.int64) * 3)
    passed("allgather-reduce-scatter-gather")


def check_rma(nbytes, kind):
    n = nbytes // 8
    i = np.arange(n, dtype=np.int64)
    right, left = (rank + 1) % size, (rank - 1) % size
    if kind == "allocate":
        win = MPI.Win.Allocate(n * 8, disp_unit=8, comm=comm)
        base = np.frombuffer(win.tomemory(), dtype=np.int64)
    else:
        # Plain process memory exposed as a window (what a single-copy path must map).
        base = np.empty(n, dtype=np.int64)
        win = MPI.Win.Create(base, disp_unit=8, comm=comm)
    win.Fence()
    base[:] = -1
    win.Fence()
    win.Put(np.ascontiguousarray((rank << 40) | i), right)
    win.Fence()
    expect_equal("Put (%s)" % kind, base, (left << 40) | i)
    passed("rma-put-%s" % kind)

    got = np.zeros(n, dtype=np.int64)
    win.Get(got, left)
    win.Fence()
    expect_equal("Get (%s)" % kind, got, (((left - 1) % size) << 40) | i)
    passed("rma-get-%s" % kind)

    base[:] = 0
    win.Fence()
    # Passive target: everyone accumulates into rank 0.
    win.Lock(0, MPI.LOCK_SHARED)
    win.Accumulate((rank + 1) * (i % 1000), 0, op=MPI.SUM)
    win.Unlock(0)
    win.Fence()
    if rank == 0:
        expect_equal("Accumulate (%s)" % kind, base, (size * (size + 1) // 2) * (i % 1000))
    passed("rma-accumulate-%s" % kind)
    win.Fence()
    win.Free()


def loaded_libxpmem():
    with open("/proc/self/maps") as f:
        for line in f:
            if "libxpmem.so" in line:
                return line.split()[-1]
    return "none"


def exit_barrier(directory):
    """Wait, after MPI_Finalize, until every rank has finished it.

    Open MPI 4.1's osc/ucx destroys its UCX endpoints in MPI_Finalize without a
    barrier, and UCX 1.13's shared-memory endpoint flush reads the peer's FIFO
    through the peer's XPMEM segment: once that peer has exited, the read raises
    SIGBUS, as XPMEM defines (openucx/ucx#8183, open-mpi/ompi#10550). This keeps every
    process, and so its segments, alive until all ranks are past MPI_Finalize.
    """
    os.makedirs(directory, exist_ok=True)
    open(os.path.join(directory, "rank%d" % rank), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(directory)) < size and time.monotonic() < deadline:
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4 << 20)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--exit-barrier", metavar="DIR",
                    help="after MPI_Finalize, wait for all ranks (see exit_barrier)")
    args = ap.parse_args()
    if size < 2 or args.size < 8192:
        if rank == 0:
            sys.stderr.write("mpi4py-checks: needs 2 or more ranks and --size >= 8192\n")
        comm.Abort(2)
    if rank == 0:
        print("mpi4py-checks: %d ranks, %d bytes, %d iterations, %s, libxpmem %s"
              % (size, args.size, args.iters, MPI.Get_library_version().splitlines()[0],
                 loaded_libxpmem()), flush=True)
    check_p2p(args.size, args.iters)
    check_collectives(args.size)
    check_rma(args.size, "allocate")
    check_rma(args.size, "create")
    if rank == 0:
        print("mpi4py-checks: all passed", flush=True)
    MPI.Finalize()
    if args.exit_barrier:
        exit_barrier(args.exit_barrier)


main()
