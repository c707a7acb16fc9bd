// SPDX-License-Identifier: GPL-2.0-only
/*
 * Regression test (fixed: the error paths drop the pid). The bug: a struct pid
 * reference leaked on every attach through a permit whose
 * segment was removed (ENOENT). xpmem_attach() takes att->pid with get_task_pid()
 * before checking seg->removed, and that error path frees the attachment with
 * kfree() without put_pid(). The process's struct pid then outlives it forever
 * (also across rmmod). (xpmem_make() has the same pattern for seg->owner_pid when
 * xpmem_segment_inode() fails.)
 *
 * Each of N short-lived processes makes a segment, gets a permit, removes the
 * segment, attaches (ENOENT) and exits; the "pid" slab is compared with a control
 * run whose attach succeeds. Needs /proc/slabinfo (root).
 *
 * Built by `make user`; the in-guest suite runs it bounded as a regression test.
 * Run (root, module loaded): xpmem-repro-pid-leak [N]   (default 2000)
 * Exit 0: no leak; 1: leak (pid slab grew by about N); 2: setup failed.
 * On KASAN kernels freed objects linger in the quarantine and blur the slab counts:
 * there, scan kmemleak afterwards (one unreferenced alloc_pid object per process).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

static long pid_slab(void)
{
	char line[512];
	long active = -1;
	FILE *f = fopen("/proc/slabinfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "pid ", 4))
			sscanf(line + 4, "%ld", &active);
	if (f)
		fclose(f);
	return active;
}

/* One process's life: 0 if the attach did what was expected. */
static int child(int removed)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t segid;
	xpmem_apid_t apid;
	void *a;

	if (p == MAP_FAILED)
		return 2;
	segid = xpmem_make(p, 4096, XPMEM_PERMIT_MODE, (void *)0600);
	apid = segid < 0 ? -1 : xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (apid < 0)
		return 2;
	if (removed && xpmem_remove(segid))
		return 2;
	a = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = 0 }, 4096, NULL);
	if (removed)
		return a == (void *)-1 && errno == ENOENT ? 0 : 1;
	return a == (void *)-1;
}

static long run(int n, int removed)
{
	long before = pid_slab(), grew;
	int bad = 0, status;
	struct timespec ts = { 2, 0 };

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(child(removed));
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			return -1;
		bad += !WIFEXITED(status) || WEXITSTATUS(status);
	}
	nanosleep(&ts, NULL); /* struct pid is freed after an RCU grace period */
	grew = pid_slab() - before;
	printf("xpmem-repro-pid-leak: %d processes, %s: %d unexpected results, pid slab +%ld\n", n,
	       removed ? "attach after remove (ENOENT)" : "attach that succeeds (control)", bad, grew);
	return bad ? -1 : grew;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	long control, leak;

	if (n <= 0 || pid_slab() < 0 || xpmem_version() < 0) {
		fprintf(stderr, "xpmem-repro-pid-leak: needs /proc/slabinfo (root) and /dev/xpmem\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	control = run(n, 0);
	leak = run(n, 1);
	if (control < 0 || leak < 0)
		return 2;
	if (leak - control > n / 2) {
		printf("xpmem-repro-pid-leak: LEAK: about one struct pid per process that attached after remove\n");
		return 1;
	}
	printf("xpmem-repro-pid-leak: no leak\n");
	return 0;
}
