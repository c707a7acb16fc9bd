// SPDX-License-Identifier: GPL-2.0-only
/*
 * Regression test (fixed: xpmem_lock_source() no longer blocks in no-retry
 * faults): unkillable deadlock through futex ops on attachments.
 *
 * FUTEX_WAKE_OP whose uaddr2 lies in an attachment with no PTE (just recalled):
 * futex_atomic_op_inuser() faults with page faults disabled, then
 * fault_in_user_writeable() takes the attacher's mmap_read_lock and calls
 * fixup_user_fault(mm, addr, FAULT_FLAG_WRITE, NULL) - no FAULT_FLAG_ALLOW_RETRY
 * - which reaches xpmem_fault(). xpmem_lock_source() then blocks in
 * mmap_read_lock(exporter mm) while holding the attacher's mmap lock. With two
 * processes attached to each other, each doing this while a writer (mmap/munmap)
 * is queued on its own mm, the two readers wait for each other behind the queued
 * writers: both processes hang in D state for good (SIGKILL does not help).
 * The robust-futex and PI paths (handle_futex_death, futex_lock_pi...) reach the
 * same fault_in_user_writeable().
 *
 * Built by `make user`; the in-guest suite runs it bounded as a regression test.
 * Run (root or not, module loaded): xpmem-repro-futex-deadlock [SECONDS]
 * Exit 0: no deadlock within SECONDS (default 60); 1: deadlock (the two processes
 * stay stuck: reboot the guest); 2: setup failed.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

#define PAGE 4096UL

struct shared {
	_Atomic long long segid[2];
	_Atomic unsigned long ops[2];
	atomic_int ready;
};

static struct shared *S;
static char *own, *peer;
static int me;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void *futex_thread(void *arg)
{
	int local = 0;

	(void)arg;
	for (;;) {
		syscall(SYS_futex, &local, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, (uint32_t *)peer,
			FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
		atomic_fetch_add(&S->ops[me], 1);
	}
	return NULL;
}

/* Keeps an mmap writer queued on this process's mm. */
static void *writer_thread(void *arg)
{
	(void)arg;
	for (;;) {
		void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			munmap(p, PAGE);
	}
	return NULL;
}

/* Keeps recalling the peer's PTE of our exported page. */
static void *zap_thread(void *arg)
{
	(void)arg;
	for (;;) {
		madvise(own, PAGE, MADV_DONTNEED);
		own[64] = 1;
	}
	return NULL;
}

static void side(int i) __attribute__((noreturn));
static void side(int i)
{
	void *(*fn[])(void *) = { futex_thread, writer_thread, writer_thread, zap_thread };
	xpmem_apid_t apid;
	pthread_t t;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	me = i;
	own = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (own == MAP_FAILED)
		_exit(2);
	own[0] = 1;
	S->segid[i] = xpmem_make(own, PAGE, XPMEM_PERMIT_MODE, (void *)0666);
	if (S->segid[i] < 0)
		_exit(2);
	atomic_fetch_add(&S->ready, 1);
	while (atomic_load(&S->ready) < 2)
		nap_ms(1);
	apid = xpmem_get(S->segid[!i], XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	peer = apid < 0 ? (void *)-1 : xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = 0 }, PAGE, NULL);
	if (peer == (void *)-1)
		_exit(2);
	for (size_t k = 0; k < sizeof(fn) / sizeof(fn[0]); k++)
		if (pthread_create(&t, NULL, fn[k], NULL))
			_exit(2);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60, still = 0, status;
	unsigned long last[2] = { 0, 0 };
	pid_t pid[2];

	S = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED || xpmem_version() < 0) {
		perror("xpmem-repro-futex-deadlock: setup");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			side(i);
	}
	for (int t = 1; t <= secs; t++) {
		unsigned long a, b;

		nap_ms(1000);
		if (waitpid(-1, &status, WNOHANG) > 0) {
			fprintf(stderr, "xpmem-repro-futex-deadlock: a side exited (setup failed?)\n");
			kill(pid[0], SIGKILL);
			kill(pid[1], SIGKILL);
			return 2;
		}
		a = atomic_load(&S->ops[0]);
		b = atomic_load(&S->ops[1]);
		still = a == last[0] && b == last[1] ? still + 1 : 0;
		last[0] = a;
		last[1] = b;
		if (still >= 10) {
			printf("xpmem-repro-futex-deadlock: DEADLOCK: no FUTEX_WAKE_OP completed for 10 s after %d s "
			       "(%lu and %lu done); see the hung-task reports in the kernel log\n",
			       t, a, b);
			return 1;
		}
	}
	printf("xpmem-repro-futex-deadlock: no deadlock in %d s (%lu and %lu FUTEX_WAKE_OP)\n", secs, last[0],
	       last[1]);
	kill(pid[0], SIGKILL);
	kill(pid[1], SIGKILL);
	return 0;
}
