/*
 * mpi_checks: the checks of mpi4py_checks.py in C, for MPI libraries that Debian's
 * mpi4py is not built for (MPICH). Point-to-point with verified large messages (far
 * above every eager limit, so the single-copy / rendezvous path is used), collectives
 * and one-sided Put/Get/Accumulate, each verified on every rank.
 *
 *   mpi-checks [--size BYTES] [--iters N] [--exit-barrier DIR]
 *
 * Prints "mpi-checks: <check> ok" per check on rank 0 and exits non-zero (through
 * MPI_Abort) on the first wrong byte.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int rank, nranks;

static void fail(const char *what, size_t at, long long got, long long want)
{
	fprintf(stderr, "mpi-checks: rank %d: %s: wrong value at %zu: %lld, expected %lld\n",
		rank, what, at, got, want);
	MPI_Abort(MPI_COMM_WORLD, 1);
}

static void passed(const char *what)
{
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0)
		printf("mpi-checks: %s ok\n", what);
	fflush(stdout);
}

/* A byte pattern that differs per source rank, iteration and offset. */
static uint8_t pat(int src, int iter, size_t i)
{
	return (uint8_t)(i * 131 + (i >> 12) * 7 + src * 29 + iter * 13 + 1);
}

static void check_p2p(size_t size, int iters)
{
	uint8_t *sbuf = malloc(size), *rbuf = malloc(size);
	int right = (rank + 1) % nranks, left = (rank + nranks - 1) % nranks;

	if (!sbuf || !rbuf)
		MPI_Abort(MPI_COMM_WORLD, 2);
	for (int it = 0; it < iters; it++) {
		for (size_t i = 0; i < size; i++)
			sbuf[i] = pat(rank, it, i);
		memset(rbuf, 0, size);
		/* A ring with non-blocking operations, then a blocking ping-pong. */
		MPI_Request rq[2];
		MPI_Status st[2];
		MPI_Irecv(rbuf, (int)size, MPI_BYTE, left, it, MPI_COMM_WORLD, &rq[0]);
		MPI_Isend(sbuf, (int)size, MPI_BYTE, right, it, MPI_COMM_WORLD, &rq[1]);
		MPI_Waitall(2, rq, st);
		for (size_t i = 0; i < size; i++)
			if (rbuf[i] != pat(left, it, i))
				fail("ring", i, rbuf[i], pat(left, it, i));
		/* Odd message sizes and offsets: unaligned starts and ends. */
		size_t off = (size_t)(it * 7 + 3) % 4096, len = size - off - 5;
		if (rank == 0) {
			MPI_Send(sbuf + off, (int)len, MPI_BYTE, 1, 100 + it, MPI_COMM_WORLD);
			MPI_Recv(rbuf + off, (int)len, MPI_BYTE, 1, 200 + it, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			for (size_t i = off; i < off + len; i++)
				if (rbuf[i] != pat(1, it, i))
					fail("ping-pong", i, rbuf[i], pat(1, it, i));
		} else if (rank == 1) {
			MPI_Recv(rbuf + off, (int)len, MPI_BYTE, 0, 100 + it, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			for (size_t i = off; i < off + len; i++)
				if (rbuf[i] != pat(0, it, i))
					fail("ping-pong", i, rbuf[i], pat(0, it, i));
			MPI_Send(sbuf + off, (int)len, MPI_BYTE, 0, 200 + it, MPI_COMM_WORLD);
		}
	}
	free(sbuf);
	free(rbuf);
	passed("p2p");
}

static void check_collectives(size_t size)
{
	size_t n = size / sizeof(int64_t);
	int64_t *a = malloc(n * sizeof(*a)), *r = malloc(n * sizeof(*r));

	for (size_t i = 0; i < n; i++)
		a[i] = (int64_t)i * (rank + 1);
	MPI_Allreduce(a, r, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
	int64_t f = (int64_t)nranks * (nranks + 1) / 2;
	for (size_t i = 0; i < n; i++)
		if (r[i] != (int64_t)i * f)
			fail("allreduce", i, r[i], (int64_t)i * f);
	passed("allreduce");

	int root = nranks - 1;
	for (size_t i = 0; i < n; i++)
		r[i] = rank == root ? (int64_t)(i ^ 0x5a5a) : -1;
	MPI_Bcast(r, (int)n, MPI_INT64_T, root, MPI_COMM_WORLD);
	for (size_t i = 0; i < n; i++)
		if (r[i] != (int64_t)(i ^ 0x5a5a))
			fail("bcast", i, r[i], (int64_t)(i ^ 0x5a5a));
	passed("bcast");

	size_t blk = n / nranks;
	for (size_t i = 0; i < blk * nranks; i++)
		a[i] = (int64_t)rank * 1000000007LL + (int64_t)i;
	MPI_Alltoall(a, (int)blk, MPI_INT64_T, r, (int)blk, MPI_INT64_T, MPI_COMM_WORLD);
	for (int s = 0; s < nranks; s++)
		for (size_t j = 0; j < blk; j++) {
			int64_t want = (int64_t)s * 1000000007LL + (int64_t)(rank * blk + j);
			if (r[s * blk + j] != want)
				fail("alltoall", s * blk + j, r[s * blk + j], want);
		}
	passed("alltoall");
	free(a);
	free(r);
}

static void check_rma(size_t size)
{
	size_t n = size / sizeof(int64_t);
	int64_t *base, *local = malloc(n * sizeof(*local));
	MPI_Win win;
	int right = (rank + 1) % nranks, left = (rank + nranks - 1) % nranks;

	MPI_Win_allocate((MPI_Aint)(n * sizeof(int64_t)), sizeof(int64_t), MPI_INFO_NULL,
			 MPI_COMM_WORLD, &base, &win);
	/* Put into the right neighbour. */
	MPI_Win_fence(0, win);
	for (size_t i = 0; i < n; i++) {
		base[i] = -1;
		local[i] = (int64_t)rank << 40 | (int64_t)i;
	}
	MPI_Win_fence(0, win);
	MPI_Put(local, (int)n, MPI_INT64_T, right, 0, (int)n, MPI_INT64_T, win);
	MPI_Win_fence(0, win);
	for (size_t i = 0; i < n; i++)
		if (base[i] != ((int64_t)left << 40 | (int64_t)i))
			fail("put", i, base[i], (int64_t)left << 40 | (int64_t)i);
	passed("rma-put");

	/* Get from the left neighbour what it holds (which came from its left). */
	memset(local, 0, n * sizeof(*local));
	MPI_Get(local, (int)n, MPI_INT64_T, left, 0, (int)n, MPI_INT64_T, win);
	MPI_Win_fence(0, win);
	int ll = (left + nranks - 1) % nranks;
	for (size_t i = 0; i < n; i++)
		if (local[i] != ((int64_t)ll << 40 | (int64_t)i))
			fail("get", i, local[i], (int64_t)ll << 40 | (int64_t)i);
	passed("rma-get");

	/* Everyone accumulates into rank 0, passive target. */
	MPI_Win_fence(0, win);
	for (size_t i = 0; i < n; i++)
		base[i] = 0;
	MPI_Win_fence(0, win);
	for (size_t i = 0; i < n; i++)
		local[i] = (int64_t)(rank + 1) * (int64_t)(i % 1000);
	MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
	MPI_Accumulate(local, (int)n, MPI_INT64_T, 0, 0, (int)n, MPI_INT64_T, MPI_SUM, win);
	MPI_Win_unlock(0, win);
	MPI_Win_fence(0, win);
	if (rank == 0) {
		int64_t f = (int64_t)nranks * (nranks + 1) / 2;
		for (size_t i = 0; i < n; i++)
			if (base[i] != f * (int64_t)(i % 1000))
				fail("accumulate", i, base[i], f * (int64_t)(i % 1000));
	}
	passed("rma-accumulate");
	MPI_Win_free(&win);
	free(local);
}

/*
 * After MPI_Finalize, wait until every rank has finished it. Open MPI 4.1's osc/ucx
 * destroys its UCX endpoints in MPI_Finalize without a barrier, and UCX 1.13's
 * shared-memory endpoint flush reads the peer's FIFO through the peer's XPMEM
 * segment: once that peer has exited, the read raises SIGBUS, as XPMEM defines
 * (openucx/ucx#8183, open-mpi/ompi#10550). Keeping every process (and so its
 * segments) alive until all are past MPI_Finalize avoids that race.
 */
static void exit_barrier(const char *dir)
{
	char path[4096];
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	if (mkdir(dir, 0755) && errno != EEXIST)
		return;
	snprintf(path, sizeof(path), "%s/rank%d", dir, rank);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0)
		close(fd);
	for (int waited = 0; waited < 120 * 20; waited++) {
		DIR *d = opendir(dir);
		int n = 0;
		struct dirent *e;

		if (!d)
			return;
		while ((e = readdir(d)))
			n += !strncmp(e->d_name, "rank", 4);
		closedir(d);
		if (n >= nranks)
			return;
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	const char *barrier_dir = NULL;
	size_t size = 4 << 20;
	int iters = 3;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--exit-barrier") && i + 1 < argc)
			barrier_dir = argv[++i];
	}
	if (nranks < 2 || size < 8192) {
		if (rank == 0)
			fprintf(stderr, "mpi-checks: needs 2 or more ranks and --size >= 8192\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	if (rank == 0)
		printf("mpi-checks: %d ranks, %zu bytes, %d iterations\n", nranks, size, iters);
	check_p2p(size, iters);
	check_collectives(size);
	check_rma(size);
	if (rank == 0)
		printf("mpi-checks: all passed\n");
	MPI_Finalize();
	if (barrier_dir)
		exit_barrier(barrier_dir);
	return 0;
}
