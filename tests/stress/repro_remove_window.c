// SPDX-License-Identifier: GPL-2.0-only
/*
 * Regression test (fixed: PTEs are revoked before the notifier is removed).
 * The bug: attachers kept reaching pages the exporter had already replaced
 * (and freed) while xpmem_remove() runs.
 *
 * xpmem_segment_destroy() sets seg->removed, then removes the segment's interval
 * notifier, and only then revokes the attachers' PTEs (xpmem_recall_segment). In
 * between, the exporter's page table changes are no longer reported, yet attacher
 * PTEs (which hold no page reference) still point at the old pages: an exporter that
 * replaces or migrates a page in that window frees it while attachers still read and
 * write it - a use-after-free of the physical page until the recall runs.
 *
 * Exporter: mutator threads replace single pages (mmap MAP_FIXED, the old page is
 * freed), write generation g+1 into the new page and publish g+1 afterwards; the main
 * thread makes and removes the segment in a loop. Attachers (threads of another
 * process) attach with XPMEM_ATTACH_PREFAULT and read until SIGBUS: a read of a
 * non-zero generation older than the one published before the read is stale (the
 * old page; 0 is the fresh page before the mutator's write).
 *
 * Built by `make user`; the in-guest suite runs it bounded as a regression test.
 * Run (module loaded): xpmem-repro-remove-window [SECONDS]   (default 60)
 * Exit 0: no stale read; 1: stale reads seen; 2: setup failed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

#define PAGE 4096UL
#define NPAGES 64
#define MUTATORS 2
#define READERS 3

struct shared {
	atomic_int stop;
	_Atomic uint64_t gen[NPAGES]; /* published after the page holds it */
	_Atomic int64_t segid; /* 0 while none */
	_Atomic uint64_t seq; /* segment instances */
	_Atomic uint64_t reads, stale, sigbus, removes;
	atomic_int printed;
};

static struct shared *S;
static char *region;
static _Thread_local sigjmp_buf *t_env;
static _Thread_local volatile sig_atomic_t t_armed;

static void nap_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void on_sigbus(int sig)
{
	if (t_armed) {
		t_armed = 0;
		siglongjmp(*t_env, sig);
	}
	_exit(3);
}

/* Guarded read of word 0 of a page: 0 and *out, or the signal. */
static int __attribute__((noinline)) guarded_read(volatile uint64_t *p, uint64_t *out)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	*out = *p;
	t_armed = 0;
	return 0;
}

static void *mutator(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919 + 1;

	while (!atomic_load(&S->stop)) {
		/* Each mutator owns every MUTATORS-th page. */
		unsigned p = (unsigned)(uintptr_t)arg + MUTATORS * (rand_r(&seed) % (NPAGES / MUTATORS));
		char *addr = region + p * PAGE;
		uint64_t g = atomic_load(&S->gen[p]) + 1;

		if (mmap(addr, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != addr)
			_exit(2);
		*(volatile uint64_t *)addr = g;
		atomic_store(&S->gen[p], g);
	}
	return NULL;
}

static void exporter(void)
{
	pthread_t t;

	region = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		_exit(2);
	for (unsigned p = 0; p < NPAGES; p++) {
		*(volatile uint64_t *)(region + p * PAGE) = 1;
		atomic_store(&S->gen[p], 1);
	}
	for (uintptr_t i = 0; i < MUTATORS; i++)
		if (pthread_create(&t, NULL, mutator, (void *)i))
			_exit(2);
	while (!atomic_load(&S->stop)) {
		xpmem_segid_t segid = xpmem_make(region, NPAGES * PAGE, XPMEM_PERMIT_MODE, (void *)0666);

		if (segid < 0)
			_exit(2);
		atomic_store(&S->segid, segid);
		atomic_fetch_add(&S->seq, 1);
		nap_us(3000);
		atomic_store(&S->segid, 0);
		if (xpmem_remove(segid))
			_exit(2);
		atomic_fetch_add(&S->removes, 1);
	}
	_exit(0);
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 104729 + 3;

	while (!atomic_load(&S->stop)) {
		int64_t segid = atomic_load(&S->segid);
		xpmem_apid_t apid;
		char *at;

		if (!segid)
			continue;
		apid = xpmem_get(segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		if (apid < 0)
			continue;
		at = xpmem_attach_ext((struct xpmem_addr){ .apid = apid, .offset = 0 }, NPAGES * PAGE, NULL,
				      XPMEM_ATTACH_PREFAULT);
		if (at != (void *)-1) {
			/* Read until the removal's recall takes the pages away (SIGBUS). */
			for (;;) {
				unsigned p = rand_r(&seed) % NPAGES;
				uint64_t g0 = atomic_load(&S->gen[p]), v;

				if (guarded_read((volatile uint64_t *)(at + p * PAGE), &v)) {
					atomic_fetch_add(&S->sigbus, 1);
					break;
				}
				atomic_fetch_add(&S->reads, 1);
				/* 0: the fresh page between the mutator's mmap and its write. */
				if (v && v < g0) {
					atomic_fetch_add(&S->stale, 1);
					if (atomic_fetch_add(&S->printed, 1) < 5)
						printf("xpmem-repro-remove-window: STALE: page %u read generation %llu after %llu was published\n",
						       p, (unsigned long long)v, (unsigned long long)g0);
				}
				if (atomic_load(&S->stop))
					break;
			}
			xpmem_detach(at);
		}
		xpmem_release(apid);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60, status;
	pid_t exp;
	pthread_t th[READERS];
	struct sigaction sa;

	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED || xpmem_version() < 0) {
		perror("xpmem-repro-remove-window: setup");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	exp = fork();
	if (exp == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		exporter();
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	for (uintptr_t i = 0; i < READERS; i++)
		if (pthread_create(&th[i], NULL, reader, (void *)i))
			return 2;
	nap_us((long)secs * 1000000);
	atomic_store(&S->stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	waitpid(exp, &status, 0);
	printf("xpmem-repro-remove-window: %d s, %llu removes, %llu reads, %llu SIGBUS, %llu stale reads\n", secs,
	       (unsigned long long)S->removes, (unsigned long long)S->reads, (unsigned long long)S->sigbus,
	       (unsigned long long)S->stale);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "xpmem-repro-remove-window: exporter failed (status %#x)\n", status);
		return 2;
	}
	return S->stale ? 1 : 0;
}
