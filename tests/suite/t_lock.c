// SPDX-License-Identifier: GPL-2.0-only
/*
 * Lock: processes that attach each other must never deadlock. Each exports its whole
 * address space (what MPI transports do) and attaches a window of the next one's
 * buffer; in every process threads fault through the attachment while the exporter
 * keeps replacing and dropping the pages behind it, and other threads keep taking
 * the mmap lock for writing on unrelated memory, so that mmap writers are queued on
 * every mm while faults need the other mm's lock. Two processes attaching each other,
 * then three in a ring. The peer side is lockmix.c.
 */
#include "suite.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RW (PROT_READ | PROT_WRITE)
#define RUN_MS 12000 /* guest time every process spends in the mix */
/* A hang: far beyond what a slow (debug, emulated) guest needs to stop and join. */
#define WATCHDOG_MS (RUN_MS + 90 * 1000)
#define MAX_RING 3

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every thread of pid: state, wait channel and kernel stack (to stderr, unbuffered). */
static void dump_threads(const char *name, pid_t pid)
{
	char path[96], buf[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d) {
		print_error("  %s (pid %d): gone\n", name, (int)pid);
		return;
	}
	while ((de = readdir(d))) {
		char state = '?', wchan[64] = "?";
		const char *s;
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, tid);
		if (read_file_str(path, buf, sizeof(buf)) == 0 && (s = strrchr(buf, ')')) && s[1])
			state = s[2];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, tid);
		if (read_file_str(path, buf, sizeof(buf)) == 0)
			snprintf(wchan, sizeof(wchan), "%.63s", buf);
		print_error("  %s (pid %d) thread %d: state %c, wchan %s\n", name, (int)pid, tid, state,
			    wchan);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", (int)pid, tid);
		if (read_file_str(path, buf, sizeof(buf)) == 0 && buf[0])
			print_error("%s\n", buf);
	}
	closedir(d);
}

/* Whether pid (our child) ends within ms; reaps it if so. */
static bool dies_within(pid_t pid, int ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), st;
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int r;

	if (pfd < 0)
		return waitpid(pid, &st, WNOHANG) == pid;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	close(pfd);
	return r > 0 && waitpid(pid, &st, 0) == pid;
}

static void __attribute__((noreturn)) hung(struct peer **pr, const bool *done, int n, long long ms)
{
	bool all_dead = true;

	fflush(stdout);
	print_error("lock: %d processes attaching each other were told to stop after %d s, but after %lld s these have not finished:\n",
		    n, RUN_MS / 1000, ms / 1000);
	for (int i = 0; i < n; i++)
		if (!done[i])
			dump_threads(pr[i]->name, pr[i]->pid);
	/* Blocked tasks to the kernel log too (works whatever kernel.sysrq says). */
	write_file_str("/proc/sysrq-trigger", "w");
	for (int i = 0; i < n; i++) {
		kill(pr[i]->pid, SIGKILL);
		if (dies_within(pr[i]->pid, 30000))
			pr[i]->reaped = true;
		else
			all_dead = false;
	}
	if (!all_dead) {
		/* Unkillable: waiting for them at teardown would hang the suite for good. */
		print_error("lock: DEADLOCK: the processes above ignore SIGKILL (blocked in the kernel); aborting the suite\n");
		fflush(stderr);
		_exit(1);
	}
	fail_msg("lock: deadlock (or livelock) between faults through attachments and queued mmap writers: %d processes did not finish a %d s run within %lld s (kernel stacks above)",
		 n, RUN_MS / 1000, ms / 1000);
	abort(); /* fail_msg does not return */
}

static void lock_ring(int n)
{
	const size_t len = LOCKMIX_PAGES * pg;
	const size_t wr = LOCKMIX_REPL * pg, wlen = len - wr;
	struct peer *pr[MAX_RING];
	uint64_t buf[MAX_RING], ctrl[MAX_RING], att[MAX_RING], attc[MAX_RING];
	xpmem_segid_t seg[MAX_RING];
	struct lockmix_result res[MAX_RING];
	int64_t mism[MAX_RING];
	bool done[MAX_RING] = { false };
	struct xstats s0, s1;
	long long t0, elapsed;
	char name[16];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "rank%d", i);
		pr[i] = peer_start(name);
		seg[i] = PC(pr[i], OP_MAKE, 0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, 0666);
		assert_id_valid(seg[i]);
		buf[i] = (uint64_t)PC(pr[i], OP_MMAP, len, 0, RW);
		ctrl[i] = (uint64_t)PC(pr[i], OP_MMAP, pg, 0, RW);
		assert_true((int64_t)buf[i] > 0 && (int64_t)ctrl[i] > 0);
		assert_int_equal(PC(pr[i], OP_LOCKMIX_INIT, buf[i], ctrl[i]), 0);
	}
	/* Each attaches the next one's buffer and ctrl page, windows of its whole-space export. */
	for (int i = 0; i < n; i++) {
		int next = (i + 1) % n;
		int64_t ap = PC(pr[i], OP_GET, (uint64_t)seg[next], XPMEM_RDWR, XPMEM_PERMIT_MODE, 0666);

		assert_id_valid(ap);
		att[i] = (uint64_t)PC(pr[i], OP_ATTACH, (uint64_t)ap, buf[next], len, 0);
		attc[i] = (uint64_t)PC(pr[i], OP_ATTACH, (uint64_t)ap, ctrl[next], pg, 0);
		assert_true((int64_t)att[i] > 0 && (int64_t)attc[i] > 0);
	}

	stats_get(&s0);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		PSEND(pr[i], OP_LOCKMIX_RUN, buf[i], ctrl[i], att[i], attc[i], RUN_MS);
	/* Watchdog: a deadlock leaves the processes blocked in the kernel forever. */
	for (int i = 0; i < n; i++) {
		long long left = t0 + WATCHDOG_MS - now_ms();

		if (!peer_wait_readable(pr[i], left > 0 ? (int)left : 0))
			hung(pr, done, n, now_ms() - t0);
		mism[i] = peer_recv(pr[i]);
		memcpy(&res[i], pr[i]->payload, sizeof(res[i]));
		done[i] = true;
	}
	elapsed = now_ms() - t0;
	stats_get(&s1);

	for (int i = 0; i < n; i++)
		print_message("%s: %llu page reads (%llu checked against the exporter's state, %llu torn and re-read), %llu page writes; own pages: %llu replaced, %llu dropped; %llu mmap/mprotect/munmap rounds; %llu mismatches\n",
			      pr[i]->name, (unsigned long long)res[i].reads,
			      (unsigned long long)res[i].strict, (unsigned long long)res[i].torn,
			      (unsigned long long)res[i].writes, (unsigned long long)res[i].replaces,
			      (unsigned long long)res[i].discards, (unsigned long long)res[i].churn,
			      (unsigned long long)res[i].mismatches);
	print_message("%d processes, %lld ms: xpmem faults +%lld, fault retries +%lld, recalls +%lld\n", n,
		      elapsed, s1.v[ST_FAULTS] - s0.v[ST_FAULTS],
		      s1.v[ST_FAULT_RETRIES] - s0.v[ST_FAULT_RETRIES],
		      s1.v[ST_RECALLS] - s0.v[ST_RECALLS]);
	for (int i = 0; i < n; i++) {
		if (mism[i] != 0)
			fail_msg("%s saw %lld wrong page contents through its attachment (details on stderr, 'lockmix[...]' lines)",
				 pr[i]->name, (long long)mism[i]);
		/* Every role must have made progress, or the test proved nothing. */
		if (!res[i].strict || !res[i].writes || !res[i].replaces || !res[i].discards ||
		    !res[i].churn)
			fail_msg("%s: a role made no progress in %d s (strict reads %llu, writes %llu, replaces %llu, drops %llu, churn %llu)",
				 pr[i]->name, RUN_MS / 1000, (unsigned long long)res[i].strict,
				 (unsigned long long)res[i].writes, (unsigned long long)res[i].replaces,
				 (unsigned long long)res[i].discards, (unsigned long long)res[i].churn);
	}
	assert_true(s1.v[ST_RECALLS] - s0.v[ST_RECALLS] > 0);
	assert_true(s1.v[ST_FAULTS] - s0.v[ST_FAULTS] >= 100 * n);

	/* Quiet now: both directions through every attachment, over the reshuffled pages. */
	for (int i = 0; i < n; i++) {
		int next = (i + 1) % n;

		assert_int_equal(PC(pr[i], OP_FILL, att[i] + wr, wlen, 90 + (uint64_t)i, 0), 0);
		assert_int_equal(PC(pr[next], OP_CHECK, buf[next] + wr, wlen, 90 + (uint64_t)i, 0), 0);
		assert_int_equal(PC(pr[next], OP_FILL, buf[next], wr, 95 + (uint64_t)i, 0), 0);
		assert_int_equal(PC(pr[i], OP_CHECK, att[i], wr, 95 + (uint64_t)i, 0), 0);
	}
	/* Nobody was killed along the way: every process exits normally. */
	for (int i = 0; i < n; i++)
		peer_stop(pr[i]);
	test_finish();
}

static void lock_mutual_attach_writers(void **state)
{
	(void)state;
	lock_ring(2);
}

static void lock_ring3_attach_writers(void **state)
{
	(void)state;
	lock_ring(3);
}

static const struct CMUnitTest tests[] = {
	SUITE_T(lock_mutual_attach_writers),
	SUITE_T(lock_ring3_attach_writers),
};
SUITE_LIST(lock_tests, tests);
