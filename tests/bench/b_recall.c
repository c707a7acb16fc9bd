// SPDX-License-Identifier: GPL-2.0-only
/*
 * recall: how long the exporter's munmap takes when 1, 4 or 16 attacher processes
 * have every page of it mapped (each attacher's PTEs must be gone before munmap
 * returns), against munmap of the same memory with no attachment and with no
 * segment at all.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ATTACHERS 16

/* Attacher: attach the whole segment, touch every page, report, wait to be released. */
static void __attribute__((noreturn)) attacher_main(xpmem_segid_t segid, size_t len, int ready, int hold)
{
	xpmem_apid_t ap = get_rw(segid);
	char *p = attach_or_die(ap, 0, len, 0), c = 1;

	touch_pages(p, len, false);
	if (write(ready, &c, 1) != 1)
		_exit(1);
	/* The exporter unmaps now; we must not touch the attachment again. */
	while (read(hold, &c, 1) > 0)
		;
	_exit(0);
}

/* One munmap of len bytes, timed; nattach < 0: no segment at all. */
static double munmap_once(size_t len, int nattach)
{
	char *buf = map_region(len, BACKING_4K);
	pid_t pids[MAX_ATTACHERS];
	int ready[2], hold[2];
	xpmem_segid_t segid = -1;
	long long recalls0;
	double t0, t;

	touch_pages(buf, len, true);
	if (nattach >= 0) {
		/* The attachers must not share the exporter's pages copy-on-write. */
		if (madvise(buf, len, MADV_DONTFORK) != 0)
			die("MADV_DONTFORK: %s", strerror(errno));
		segid = xpmem_make(buf, len, XPMEM_PERMIT_MODE, (void *)0666);
		if (segid == -1)
			die("xpmem_make: %s", strerror(errno));
	}
	if (nattach > 0) {
		if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		fflush(stdout);
		for (int i = 0; i < nattach; i++) {
			pids[i] = fork();
			if (pids[i] < 0)
				die("fork: %s", strerror(errno));
			if (pids[i] == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
				close(ready[0]);
				close(hold[1]);
				attacher_main(segid, len, ready[1], hold[0]);
			}
		}
		close(ready[1]);
		close(hold[0]);
		for (int i = 0; i < nattach; i++) {
			char c;

			if (read(ready[0], &c, 1) != 1)
				die("recall: an attacher died during setup");
		}
	}
	recalls0 = xpmem_stat("recalls");
	t0 = now_s();
	if (munmap(buf, len) != 0)
		die("munmap: %s", strerror(errno));
	t = now_s() - t0;
	if (nattach > 0 && xpmem_stat("recalls") <= recalls0)
		die("recall: munmap of attached memory did not count a recall");
	if (segid != -1)
		xpmem_remove(segid);
	if (nattach > 0) {
		close(hold[1]);
		close(ready[0]);
		for (int i = 0; i < nattach; i++)
			waitpid(pids[i], NULL, 0);
	}
	return t;
}

int bench_recall(const struct bench_opts *o)
{
	static const int counts[] = { -1, 0, 1, 4, 16 };
	const size_t sizes[] = { 4 * KiB, 2 * MiB, o->quick ? 8 * MiB : 64 * MiB };
	char sz[32];

	printf("\nrecall: exporter munmap of memory that every attacher has fully mapped (microseconds, median)\n");
	printf("  %-8s %10s %10s %10s %10s %10s %12s\n", "size", "no xpmem", "0 att.", "1 att.",
	       "4 att.", "16 att.", "16 vs none");
	j_arr("recall");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int reps = o->quick ? 1 : sizes[s] >= 64 * MiB ? 3 : 5;
		double us[5];

		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			double v[5];

			for (int r = 0; r < reps; r++)
				v[r] = munmap_once(sizes[s], counts[c]);
			us[c] = median(v, reps) * 1e6;
			j_obj(NULL);
			j_int("bytes", (long long)sizes[s]);
			j_int("attachers", counts[c]);
			j_str("case", counts[c] < 0 ? "no segment" : "segment");
			j_num("us", us[c]);
			j_end();
		}
		printf("  %-8s %10.1f %10.1f %10.1f %10.1f %10.1f %11.1fx\n",
		       size_str(sizes[s], sz, sizeof(sz)), us[0], us[1], us[2], us[3], us[4], us[4] / us[0]);
	}
	j_end();
	return 0;
}
