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

int bench_copy(const struct bench_opts *o)
{
	const size_t max = o->quick ? 4 * MiB : 64 * MiB;
	const double min_s = o->quick ? 0.02 : 0.15;
	struct exporter e;
	xpmem_apid_t ap;
	char *att, *src, *dst, sz[32];

	exporter_start(&e, max, false);
	ap = get_rw(e.segid);
	att = attach_or_die(ap, 0, max, 0);
	touch_pages(att, max, false); /* already faulted: only the copy is measured */
	src = map_region(max, 0, false);
	dst = map_region(max, 0, false);
	memset(src, 1, max);
	memset(dst, 2, max);

	printf("\ncopy bandwidth: read size bytes of another process into local memory (MiB/s; the attachment is already faulted)\n");
	printf("  %-8s %10s %10s %10s %13s %10s\n", "size", "xpmem", "memcpy", "CMA", "xpmem/memcpy",
	       "xpmem/CMA");
	j_arr("copy");
	for (size_t size = 4 * KiB; size <= max; size *= 4) {
		double x = bandwidth(MODE_XPMEM, dst, att, 0, 0, size, min_s);
		double m = bandwidth(MODE_MEMCPY, dst, src, 0, 0, size, min_s);
		double c = bandwidth(MODE_CMA, dst, NULL, e.pid, e.addr, size, min_s);

		printf("  %-8s %10.0f %10.0f %10.0f %13.2f %10.2f\n", size_str(size, sz, sizeof(sz)), x, m,
		       c, x / m, x / c);
		j_obj(NULL);
		j_int("bytes", (long long)size);
		j_num("xpmem_mib_s", x);
		j_num("memcpy_mib_s", m);
		j_num("cma_mib_s", c);
		j_end();
	}
	j_end();
	munmap(src, max);
	munmap(dst, max);
	xpmem_detach(att);
	xpmem_release(ap);
	exporter_stop(&e);
	return 0;
}
