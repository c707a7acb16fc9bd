// SPDX-License-Identifier: GPL-2.0-only
/*
 * teardown: how long a process holding 1k, 10k or 100k small (one-page, touched)
 * attachments takes to exit, against the same number of plain one-page mappings.
 * Ten times the attachments should cost about ten times as long (reported against
 * a 12x bound, not asserted).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAP_COUNT "/proc/sys/vm/max_map_count"
#define SRC_PAGES 1024

/* The holder: n attachments (or plain mappings), each touched; reports its setup time. */
static void __attribute__((noreturn)) holder_main(int n, xpmem_segid_t segid, int rep)
{
	double t0 = now_s();
	xpmem_apid_t ap = segid > 0 ? get_rw(segid) : -1;

	for (int i = 0; i < n; i++) {
		volatile char *p;

		if (segid > 0) {
			p = attach_or_die(ap, (uint64_t)(i % SRC_PAGES) * pg, pg, 0);
		} else {
			/* Alternate protections so neighbours never merge into one mapping. */
			p = mmap(NULL, pg, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				die("mmap number %d: %s", i, strerror(errno));
		}
		(void)p[0];
	}
	t0 = now_s() - t0;
	if (write(rep, &t0, sizeof(t0)) != (ssize_t)sizeof(t0))
		_exit(1);
	for (;;)
		pause();
}

/* Seconds from SIGKILL to reaped; *setup_s: how long the holder took to set up. */
static double exit_time(int n, xpmem_segid_t segid, double *setup_s)
{
	int rep[2];
	pid_t pid;
	double t0;

	if (pipe2(rep, O_CLOEXEC) != 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(rep[0]);
		holder_main(n, segid, rep[1]);
	}
	close(rep[1]);
	if (read(rep[0], setup_s, sizeof(*setup_s)) != (ssize_t)sizeof(*setup_s))
		die("teardown: the holder of %d mappings died during setup", n);
	close(rep[0]);
	t0 = now_s();
	kill(pid, SIGKILL);
	if (waitpid(pid, NULL, 0) != pid)
		die("waitpid: %s", strerror(errno));
	return now_s() - t0;
}

int bench_teardown(const struct bench_opts *o)
{
	const int counts[] = { 1000, 10000, o->quick ? 20000 : 100000 };
	enum { NC = sizeof(counts) / sizeof(counts[0]) };
	double x_ms[NC], b_ms[NC];
	char saved[32] = "";
	long long map_count = 0;
	struct exporter e;

	/* Room for the largest count (each attachment or mapping is one VMA). */
	if (read_str(MAP_COUNT, saved, sizeof(saved)) == 0)
		map_count = atoll(saved);
	if (map_count < counts[NC - 1] + 10000) {
		char v[32];

		snprintf(v, sizeof(v), "%d", counts[NC - 1] * 2 + 65536);
		if (write_str(MAP_COUNT, v) != 0)
			die("cannot raise %s to %s: %s", MAP_COUNT, v, strerror(errno));
	} else {
		saved[0] = '\0';
	}
	exporter_start(&e, SRC_PAGES * pg, BACKING_4K);

	printf("\nteardown: exit (SIGKILL to reaped) of a process holding N one-page touched attachments\n");
	printf("  %-8s %10s %14s %9s %14s %13s %12s\n", "N", "exit ms", "plain maps ms", "vs plain",
	       "setup attach/s", "setup mmap/s", "exit vs N/10");
	j_obj("teardown");
	j_arr("runs");
	for (int c = 0; c < NC; c++) {
		int reps = o->quick || counts[c] >= 100000 ? 1 : 3;
		double xv[3], bv[3], setup = 0, bsetup = 0;

		for (int r = 0; r < reps; r++) {
			xv[r] = exit_time(counts[c], e.segid, &setup);
			bv[r] = exit_time(counts[c], -1, &bsetup);
		}
		x_ms[c] = median(xv, reps) * 1e3;
		b_ms[c] = median(bv, reps) * 1e3;
		printf("  %-8d %10.1f %14.1f %8.1fx %14.0f %13.0f", counts[c], x_ms[c], b_ms[c],
		       x_ms[c] / b_ms[c], counts[c] / setup, counts[c] / bsetup);
		if (c > 0)
			printf(" %11.1fx\n", x_ms[c] / x_ms[c - 1]);
		else
			printf(" %12s\n", "-");
		j_obj(NULL);
		j_int("attachments", counts[c]);
		j_num("exit_ms", x_ms[c]);
		j_num("plain_mappings_exit_ms", b_ms[c]);
		j_num("setup_attach_per_s", counts[c] / setup);
		j_num("setup_mmap_per_s", counts[c] / bsetup);
		j_end();
	}
	j_end();
	j_arr("scaling");
	for (int c = 1; c < NC; c++) {
		double k = (double)counts[c] / counts[c - 1], ratio = x_ms[c] / x_ms[c - 1];

		printf("  %dx attachments (%d -> %d): exit time %.1fx%s\n", (int)k, counts[c - 1], counts[c],
		       ratio, k == 10 ? (ratio <= 12 ? " (within 12x)" : " (ABOVE 12x)") : "");
		j_obj(NULL);
		j_int("from", counts[c - 1]);
		j_int("to", counts[c]);
		j_num("time_ratio", ratio);
		j_end();
	}
	j_end();
	j_end();
	exporter_stop(&e);
	if (saved[0])
		write_str(MAP_COUNT, saved);
	return 0;
}
