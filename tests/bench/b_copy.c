// SPDX-License-Identifier: GPL-2.0-only
/*
 * copy: bandwidth of reading another process's memory through an attachment whose
 * pages are already mapped, against memcpy of local memory and process_vm_readv
 * (cross-memory attach, a copy in the kernel), 4 KiB to 64 MiB.
 */
#include "bench.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

enum { MODE_XPMEM, MODE_MEMCPY, MODE_CMA };

/* MiB/s of copying size bytes, repeated for at least min_s seconds. */
static double bandwidth(int mode, char *dst, const char *src, pid_t pid, uint64_t remote, size_t size,
			double min_s)
{
	struct iovec l = { .iov_base = dst, .iov_len = size };
	struct iovec r = { .iov_base = (void *)(uintptr_t)remote, .iov_len = size };
	long n = 0;
	double t0, t;

	for (int warm = 1; warm >= 0; warm--) {
		n = 0;
		t0 = now_s();
		do {
			if (mode == MODE_CMA) {
				ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);

				if (got != (ssize_t)size)
					die("process_vm_readv(%zu bytes): %s", size,
					    got < 0 ? strerror(errno) : "short read");
			} else {
				memcpy(dst, src, size);
				/* Keep the copy from being optimised away. */
				__asm__ __volatile__("" : : "r"(dst) : "memory");
			}
			n++;
			t = now_s() - t0;
		} while (!warm && (t < min_s || n < 3));
	}
	return (double)size * (double)n / t / (double)MiB;
}

/* A mapping of size bytes at exactly addr: the attachment, or local memory. */
static char *map_at(char *addr, size_t size, xpmem_apid_t ap)
{
	char *p;

	if (ap) {
		struct xpmem_addr xa = { .apid = ap, .offset = 0 };

		p = xpmem_attach(xa, size, addr);
		if (p == (void *)-1)
			die("attach of %zu bytes at %p: %s", size, (void *)addr, strerror(errno));
		touch_pages(p, size, false); /* already faulted: only the copy is measured */
		return p;
	}
	p = mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		 -1, 0);
	if (p != addr)
		die("mmap at %p: %s", (void *)addr, p == MAP_FAILED ? strerror(errno) : "moved");
	madvise(p, size, MADV_NOHUGEPAGE);
	memset(p, 1, size);
	return p;
}

int bench_copy(const struct bench_opts *o)
{
	const size_t max = o->quick ? 4 * MiB : 64 * MiB;
	const double min_s = o->quick ? 0.02 : 0.1;
	const int reps = o->quick ? 1 : 5;
	struct exporter e;
	xpmem_apid_t ap;
	char *at, *dst, sz[32];

	exporter_start(&e, max, BACKING_4K);
	ap = get_rw(e.segid);
	/*
	 * memcpy picks its method from the addresses (rep movsb, for one, which
	 * emulators run far slower than vector loops): the local source goes exactly
	 * where the attachment was, and the rounds alternate, so that both copy between
	 * the same addresses under the same conditions.
	 */
	dst = map_region(max, BACKING_4K);
	memset(dst, 2, max);
	at = attach_or_die(ap, 0, max, 0); /* a free range for both sources */
	xpmem_detach(at);

	printf("\ncopy bandwidth: read size bytes of another process into local memory (MiB/s, median of %d; the attachment is already faulted; ratios: median of the rounds' own ratios)\n",
	       reps);
	printf("  %-8s %10s %10s %10s %13s %10s\n", "size", "xpmem", "memcpy", "CMA", "xpmem/memcpy",
	       "xpmem/CMA");
	j_arr("copy");
	for (size_t size = 4 * KiB; size <= max; size *= 4) {
		double xv[5], mv[5], cv[5], xm[5], xc[5], x, m, c;

		for (int r = 0; r < reps; r++) {
			/*
			 * Each round measures all three back to back, and every other
			 * round starts with memcpy: a drift of the host's load hits
			 * both sides of a ratio alike.
			 */
			for (int k = 0; k < 2; k++) {
				char *p;

				if ((k == 0) == (r % 2 == 0)) {
					p = map_at(at, size, ap);
					xv[r] = bandwidth(MODE_XPMEM, dst, p, 0, 0, size, min_s);
					cv[r] = bandwidth(MODE_CMA, dst, NULL, e.pid, e.addr, size, min_s);
					xpmem_detach(p);
				} else {
					p = map_at(at, size, 0);
					mv[r] = bandwidth(MODE_MEMCPY, dst, p, 0, 0, size, min_s);
					munmap(p, size);
				}
			}
			xm[r] = xv[r] / mv[r];
			xc[r] = xv[r] / cv[r];
		}
		x = median(xv, reps);
		m = median(mv, reps);
		c = median(cv, reps);
		printf("  %-8s %10.0f %10.0f %10.0f %13.2f %10.2f\n", size_str(size, sz, sizeof(sz)), x, m,
		       c, median(xm, reps), median(xc, reps));
		j_obj(NULL);
		j_int("bytes", (long long)size);
		j_num("xpmem_mib_s", x);
		j_num("memcpy_mib_s", m);
		j_num("cma_mib_s", c);
		j_num("xpmem_over_memcpy", median(xm, reps));
		j_num("xpmem_over_cma", median(xc, reps));
		j_end();
	}
	j_end();
	munmap(dst, max);
	xpmem_release(ap);
	exporter_stop(&e);
	return 0;
}
