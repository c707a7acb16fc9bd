// SPDX-License-Identifier: GPL-2.0-only
/*
 * attach: latency of an attach + detach pair for windows of 4 KiB to 8 MiB, without
 * touching the window, and with XPMEM_ATTACH_PREFAULT (the exporter's pages are all
 * present, so a prefaulting attach maps every page of the window).
 */
#include "bench.h"

#include <errno.h>
#include <string.h>

/* Microseconds per attach + detach, repeated for at least min_s seconds. */
static double pair_us(xpmem_apid_t ap, size_t size, unsigned int flags, double min_s, bool *unsupported)
{
	struct xpmem_addr xa = { .apid = ap, .offset = 0 };
	long n = 0;
	double t0 = now_s(), t;

	do {
		void *p = flags ? xpmem_attach_ext(xa, size, NULL, flags) : xpmem_attach(xa, size, NULL);

		if (p == (void *)-1) {
			if (flags && (errno == EINVAL || errno == ENOTTY)) {
				*unsupported = true;
				return 0;
			}
			die("attach of %zu bytes: %s", size, strerror(errno));
		}
		if (xpmem_detach(p) != 0)
			die("detach: %s", strerror(errno));
		n++;
		t = now_s() - t0;
	} while (t < min_s || n < 5);
	return t / (double)n * 1e6;
}

int bench_attach(const struct bench_opts *o)
{
	const size_t max = 8 * MiB;
	const double min_s = o->quick ? 0.02 : 0.15;
	struct exporter e;
	xpmem_apid_t ap;
	bool no_prefault = false;
	char sz[32];

	exporter_start(&e, max, BACKING_4K);
	ap = get_rw(e.segid);
	printf("\nattach + detach latency (microseconds per pair; the exporter's pages are present)\n");
	printf("  %-8s %12s %16s\n", "window", "untouched", "with PREFAULT");
	j_arr("attach_detach");
	for (size_t size = 4 * KiB; size <= max; size *= 2) {
		double plain = pair_us(ap, size, 0, min_s, &no_prefault);
		double pre = no_prefault ? 0 : pair_us(ap, size, XPMEM_ATTACH_PREFAULT, min_s, &no_prefault);

		if (no_prefault)
			printf("  %-8s %12.1f %16s\n", size_str(size, sz, sizeof(sz)), plain, "-");
		else
			printf("  %-8s %12.1f %16.1f\n", size_str(size, sz, sizeof(sz)), plain, pre);
		j_obj(NULL);
		j_int("bytes", (long long)size);
		j_num("us", plain);
		if (!no_prefault)
			j_num("prefault_us", pre);
		j_end();
	}
	j_end();
	xpmem_release(ap);
	exporter_stop(&e);
	return 0;
}
