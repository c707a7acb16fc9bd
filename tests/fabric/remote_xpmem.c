// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fabric-remote: one side of a cross-node xpmem test, driven line by line on
 * stdin by tests/fabric/fabric_remote.py; answers one line per command on stdout.
 *
 * Exporter commands:
 *   make MB MODE [huge]   map MB MiB of anonymous memory, word i = PATTERN(i),
 *                         xpmem_make it with MODE (octal): "segid 0x..."; huge:
 *                         2 MiB aligned, MADV_HUGEPAGE (transparent huge pages)
 *   hugekb                AnonHugePages of that mapping (smaps): "kb N"
 *   split PAGE            mprotect PAGE read-only and back: a huge page mapping
 *                         it is split into 4 KiB entries: "split NS"
 *   set WORD VALUE        store VALUE in word WORD: "ok"
 *   get WORD              "value V"
 *   replace PAGE VALUE    put a fresh page at page PAGE (mmap MAP_FIXED), every
 *                         word VALUE; the call returns only after every node let
 *                         go of the old page: "replaced NS" (its duration)
 *   cow PAGE VALUE        fork a child that keeps the current page PAGE, then store
 *                         VALUE into every word of it (copy on write: the
 *                         exporter gets a new page, attachers must be recalled):
 *                         "cowed NS" (the store's duration), the child then exits
 *   storm PAGES ROUNDS THREADS
 *                         THREADS threads share pages 0..PAGES-1; each, ROUNDS
 *                         times, drops each of its pages (MADV_DONTNEED: a recall
 *                         each, many in flight at once) and stores STORM(round,
 *                         page) into its first word: "stormed NS"
 *   remove                xpmem_remove: "ok"
 * Importer commands:
 *   attach SEGID MB rw|ro xpmem_get + xpmem_attach: "ok" or "errno N"
 *   check                 every word against PATTERN: "mismatches N"
 *   touch                 read one word of every page (first touch: faults):
 *                         "touched NS"
 *   get WORD / set WORD VALUE   through the attachment; a SIGBUS is "sigbus"
 *   hammer PAGES MS       read the first word of pages 0..PAGES-1 over and over
 *                         for MS milliseconds: "hammered N" (reads)
 *   verify PAGES ROUNDS   pages 0..PAGES-1 hold what the last storm round left
 *                         (STORM(ROUNDS - 1, page), then zeros): "stale N" pages
 *   detach                xpmem_detach + xpmem_release: "ok"
 * Both: exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

#define PATTERN(i) (0x5eed000000000000ULL ^ ((uint64_t)(i) * 0x9e3779b97f4a7c15ULL))
#define STORM(round, page) (0x5700000000000000ULL | ((uint64_t)(round) << 32) | (uint64_t)(page))

static volatile uint64_t *mem; /* exporter's region or importer's attachment */
static size_t words;
static xpmem_segid_t segid;
static xpmem_apid_t apid = -1;
static sigjmp_buf on_bus;

static void bus_handler(int sig)
{
	(void)sig;
	siglongjmp(on_bus, 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int word_ok(unsigned long long w)
{
	if (!mem || w >= words) {
		puts("error bad word");
		return 0;
	}
	return 1;
}

/* get (value NULL) or set one word; a SIGBUS is answered, not fatal. */
static void do_word(unsigned long long w, const char *value)
{
	if (!word_ok(w))
		return;
	if (sigsetjmp(on_bus, 1)) {
		puts("sigbus");
		return;
	}
	if (!value) {
		printf("value 0x%llx\n", (unsigned long long)mem[w]);
		return;
	}
	mem[w] = strtoull(value, NULL, 0);
	puts("ok");
}

static void do_make(unsigned long mb, unsigned int mode, int huge)
{
	size_t size = mb << 20, align = huge ? 2u << 20 : 0, i;
	uintptr_t p;

	p = (uintptr_t)mmap(NULL, size + align, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((void *)p == MAP_FAILED) {
		printf("errno %d\n", errno);
		mem = NULL;
		return;
	}
	if (huge) {
		p = (p + align - 1) & ~(uintptr_t)(align - 1);
		if (madvise((void *)p, size, MADV_HUGEPAGE)) {
			printf("errno %d\n", errno);
			return;
		}
	}
	mem = (volatile uint64_t *)p;
	words = size / sizeof(uint64_t);
	for (i = 0; i < words; i++)
		mem[i] = PATTERN(i);
	segid = xpmem_make((void *)mem, size, XPMEM_PERMIT_MODE, (void *)(uintptr_t)mode);
	if (segid < 0)
		printf("errno %d\n", errno);
	else
		printf("segid 0x%llx\n", (unsigned long long)segid);
}

/* AnonHugePages of the mapping holding mem, from /proc/self/smaps. */
static void do_hugekb(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long start, end, kb = 0;
	char line[512];
	int in = 0, found = 0;

	if (!f) {
		printf("errno %d\n", errno);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		/* Only mapping headers start with "HEX-HEX". */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = (uintptr_t)mem >= start && (uintptr_t)mem < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
			found = 1;
			break;
		}
	}
	fclose(f);
	if (found)
		printf("kb %lu\n", kb);
	else
		puts("error no smaps entry");
}

static void do_split(unsigned long long page)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t);
	void *p;
	uint64_t t0;

	if (!word_ok(page * per_page))
		return;
	p = (void *)(mem + page * per_page);
	t0 = now_ns();
	if (mprotect(p, per_page * sizeof(uint64_t), PROT_READ) ||
	    mprotect(p, per_page * sizeof(uint64_t), PROT_READ | PROT_WRITE)) {
		printf("errno %d\n", errno);
		return;
	}
	printf("split %" PRIu64 "\n", now_ns() - t0);
}

static void do_attach(const char *id, unsigned long mb, const char *how)
{
	int rw = !strcmp(how, "rw");
	struct xpmem_addr addr;
	void *p;

	apid = xpmem_get((xpmem_segid_t)strtoll(id, NULL, 16), rw ? XPMEM_RDWR : XPMEM_RDONLY,
			 XPMEM_PERMIT_MODE, NULL);
	if (apid < 0) {
		printf("errno %d\n", errno);
		return;
	}
	addr.apid = apid;
	addr.offset = 0;
	p = xpmem_attach(addr, mb << 20, NULL);
	if (p == (void *)-1) {
		printf("errno %d\n", errno);
		xpmem_release(apid);
		apid = -1;
		return;
	}
	mem = p;
	words = (mb << 20) / sizeof(uint64_t);
	puts("ok");
}

static void do_check(void)
{
	volatile size_t bad = 0;
	size_t i;

	if (sigsetjmp(on_bus, 1)) {
		puts("sigbus");
		return;
	}
	for (i = 0; i < words; i++)
		bad += mem[i] != PATTERN(i);
	printf("mismatches %zu\n", bad);
}

static void do_touch(void)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t), i;
	volatile uint64_t sum = 0;
	uint64_t t0 = now_ns();

	if (sigsetjmp(on_bus, 1)) {
		puts("sigbus");
		return;
	}
	for (i = 0; i < words; i += per_page)
		sum += mem[i];
	printf("touched %" PRIu64 "\n", now_ns() - t0);
}

static void do_replace(unsigned long long page, unsigned long long value)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t), i;
	volatile uint64_t *p;
	uint64_t t0;

	if (!word_ok(page * per_page))
		return;
	p = mem + page * per_page;
	t0 = now_ns();
	if (mmap((void *)p, per_page * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		printf("errno %d\n", errno);
		return;
	}
	for (i = 0; i < per_page; i++)
		p[i] = value;
	printf("replaced %" PRIu64 "\n", now_ns() - t0);
}

static void do_cow(unsigned long long page, unsigned long long value)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t), i;
	int hold[2], ready[2];
	volatile uint64_t *p;
	uint64_t t0;
	pid_t pid;
	char c;

	if (!word_ok(page * per_page) || pipe(hold) || pipe(ready)) {
		puts("error cow");
		return;
	}
	pid = fork();
	if (pid == 0) {
		/* Keeps the old page shared (and so write-protected) until told to go. */
		if (write(ready[1], "r", 1) != 1 || read(hold[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		puts("error fork");
		return;
	}
	p = mem + page * per_page;
	t0 = now_ns();
	for (i = 0; i < per_page; i++)
		p[i] = value;
	printf("cowed %" PRIu64 "\n", now_ns() - t0);
	if (write(hold[1], "g", 1) != 1)
		perror("cow: release child");
	waitpid(pid, NULL, 0);
	close(hold[0]);
	close(hold[1]);
	close(ready[0]);
	close(ready[1]);
}

struct storm {
	pthread_t tid;
	unsigned long first, pages, step, rounds;
	int err;
};

static void *storm_thread(void *arg)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t);
	struct storm *st = arg;
	unsigned long r, p;

	for (r = 0; r < st->rounds; r++) {
		for (p = st->first; p < st->pages; p += st->step) {
			volatile uint64_t *w = mem + p * per_page;

			if (madvise((void *)w, per_page * sizeof(uint64_t), MADV_DONTNEED)) {
				st->err = errno;
				return NULL;
			}
			*w = STORM(r, p);
		}
	}
	return NULL;
}

static void do_storm(unsigned long pages, unsigned long rounds, unsigned long threads)
{
	struct storm st[64];
	uint64_t t0 = now_ns();
	unsigned long t;
	int err = 0;

	if (!threads || threads > 64 || !pages || !word_ok(pages * ((size_t)sysconf(_SC_PAGESIZE) / 8) - 1)) {
		puts("error storm");
		return;
	}
	for (t = 0; t < threads; t++) {
		st[t] = (struct storm){ .first = t, .pages = pages, .step = threads, .rounds = rounds };
		if (pthread_create(&st[t].tid, NULL, storm_thread, &st[t])) {
			threads = t;
			err = EAGAIN;
			break;
		}
	}
	for (t = 0; t < threads; t++) {
		pthread_join(st[t].tid, NULL);
		if (st[t].err)
			err = st[t].err;
	}
	if (err)
		printf("errno %d\n", err);
	else
		printf("stormed %" PRIu64 "\n", now_ns() - t0);
}

static void do_hammer(unsigned long pages, unsigned long ms)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t);
	uint64_t end = now_ns() + ms * 1000000ULL;
	volatile uint64_t sum = 0;
	volatile unsigned long reads = 0;
	unsigned long p;

	if (!pages || !word_ok(pages * per_page - 1))
		return;
	if (sigsetjmp(on_bus, 1)) {
		puts("sigbus");
		return;
	}
	while (now_ns() < end)
		for (p = 0; p < pages; p++, reads++)
			sum += mem[p * per_page];
	printf("hammered %lu\n", reads);
}

static void do_verify(unsigned long pages, unsigned long rounds)
{
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t), i;
	volatile unsigned long stale = 0;
	unsigned long p;

	if (!pages || !rounds || !word_ok(pages * per_page - 1))
		return;
	if (sigsetjmp(on_bus, 1)) {
		puts("sigbus");
		return;
	}
	for (p = 0; p < pages; p++) {
		int bad = mem[p * per_page] != STORM(rounds - 1, p);

		for (i = 1; i < per_page && !bad; i++)
			bad = mem[p * per_page + i] != 0;
		stale += bad;
	}
	printf("stale %lu\n", stale);
}

int main(void)
{
	char line[256], a[64], b[64], c[64];
	struct sigaction sa = { .sa_handler = bus_handler };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		int n = sscanf(line, "%63s %63s %63s", a, b, c);
		char cmd[16] = "";

		if (sscanf(line, "%15s", cmd) != 1)
			continue;
		if (!strcmp(cmd, "make") && n == 3) {
			char opt[8] = "";

			sscanf(line, "make %*s %*s %7s", opt);
			do_make(strtoul(b, NULL, 0), (unsigned int)strtoul(c, NULL, 8),
				!strcmp(opt, "huge"));
		} else if (!strcmp(cmd, "hugekb")) {
			do_hugekb();
		} else if (!strcmp(cmd, "split") && n == 2) {
			do_split(strtoull(b, NULL, 0));
		} else if (!strcmp(cmd, "attach")) {
			char how[8];

			if (sscanf(line, "attach %63s %63s %7s", a, b, how) == 3)
				do_attach(a, strtoul(b, NULL, 0), how);
			else
				puts("error usage");
		} else if (!strcmp(cmd, "check")) {
			do_check();
		} else if (!strcmp(cmd, "touch")) {
			do_touch();
		} else if (!strcmp(cmd, "get") && n == 2) {
			do_word(strtoull(b, NULL, 0), NULL);
		} else if (!strcmp(cmd, "set") && n == 3) {
			do_word(strtoull(b, NULL, 0), c);
		} else if (!strcmp(cmd, "replace") && n == 3) {
			do_replace(strtoull(b, NULL, 0), strtoull(c, NULL, 0));
		} else if (!strcmp(cmd, "cow") && n == 3) {
			do_cow(strtoull(b, NULL, 0), strtoull(c, NULL, 0));
		} else if (!strcmp(cmd, "storm") || !strcmp(cmd, "hammer") ||
			   !strcmp(cmd, "verify")) {
			unsigned long x = 0, y = 0, z = 0;
			int got = sscanf(line, "%*s %lu %lu %lu", &x, &y, &z);

			if (cmd[0] == 's' && got == 3)
				do_storm(x, y, z);
			else if (cmd[0] == 'h' && got == 2)
				do_hammer(x, y);
			else if (cmd[0] == 'v' && got == 2)
				do_verify(x, y);
			else
				puts("error usage");
		} else if (!strcmp(cmd, "remove")) {
			if (xpmem_remove(segid))
				printf("errno %d\n", errno);
			else
				puts("ok");
		} else if (!strcmp(cmd, "detach")) {
			if (xpmem_detach((void *)mem) || xpmem_release(apid))
				printf("errno %d\n", errno);
			else
				puts("ok");
			mem = NULL;
		} else if (!strcmp(cmd, "exit")) {
			break;
		} else {
			puts("error unknown command");
		}
	}
	return 0;
}
