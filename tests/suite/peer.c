// SPDX-License-Identifier: GPL-2.0-only
/*
 * Peers: forked helper processes driven by the orchestrator over a SOCK_SEQPACKET
 * socketpair, one request and one reply per message. Results are returned as int64:
 * values >= 0 (or any value for reads), -errno on failure.
 */
#include "suite.h"

#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/mempolicy.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PEER_TIMEOUT_MS (180 * 1000) /* a hung request: the guest is slow, but not that slow */
#define MAX_PEERS 24

struct peer_req {
	uint32_t op;
	uint32_t len;
	uint64_t a[5];
	unsigned char payload[PEER_PAYLOAD];
};

struct peer_rep {
	int64_t ret;
	unsigned char payload[PEER_PAYLOAD];
};

static struct peer peers[MAX_PEERS];
static int npeers;

static const char *op_name(uint32_t op)
{
	static const char *const names[] = {
		[OP_EXIT] = "EXIT",
		[OP_GETPID] = "GETPID",
		[OP_MMAP] = "MMAP",
		[OP_MMAP_FIXED] = "MMAP_FIXED",
		[OP_MUNMAP] = "MUNMAP",
		[OP_MPROTECT] = "MPROTECT",
		[OP_MADVISE] = "MADVISE",
		[OP_MREMAP] = "MREMAP",
		[OP_FILL] = "FILL",
		[OP_CHECK] = "CHECK",
		[OP_MEMSET] = "MEMSET",
		[OP_CHECK_BYTE] = "CHECK_BYTE",
		[OP_READ64] = "READ64",
		[OP_WRITE64] = "WRITE64",
		[OP_TOUCH] = "TOUCH",
		[OP_MAPPED] = "MAPPED",
		[OP_VERSION] = "VERSION",
		[OP_MAKE] = "MAKE",
		[OP_REMOVE] = "REMOVE",
		[OP_GET] = "GET",
		[OP_RELEASE] = "RELEASE",
		[OP_ATTACH] = "ATTACH",
		[OP_DETACH] = "DETACH",
		[OP_SETIDS] = "SETIDS",
		[OP_UNSHARE] = "UNSHARE",
		[OP_MOVE_PAGES] = "MOVE_PAGES",
		[OP_NODE_OF] = "NODE_OF",
		[OP_FORK_HOLD] = "FORK_HOLD",
		[OP_HOLD_CHECK] = "HOLD_CHECK",
		[OP_FORK_PROBE] = "FORK_PROBE",
		[OP_SPIN_READ] = "SPIN_READ",
		[OP_THREADS] = "THREADS",
		[OP_ATTACH_STORM] = "ATTACH_STORM",
		[OP_THP_KB] = "THP_KB",
		[OP_KSM_MERGING] = "KSM_MERGING",
		[OP_RAW_OPEN] = "RAW_OPEN",
		[OP_RAW_IOCTL] = "RAW_IOCTL",
		[OP_PROBE_PAGE] = "PROBE_PAGE",
		[OP_PAGEMAP] = "PAGEMAP",
		[OP_LOCKMIX_INIT] = "LOCKMIX_INIT",
		[OP_LOCKMIX_RUN] = "LOCKMIX_RUN",
		[OP_VMSPLICE] = "VMSPLICE",
		[OP_MMAP_HUGETLB] = "MMAP_HUGETLB",
	};

	if (op < sizeof(names) / sizeof(names[0]) && names[op])
		return names[op];
	return "?";
}

/* ================================================================== server side */

static int64_t res(long long r)
{
	return r == -1 ? -(int64_t)errno : (int64_t)r;
}

static int64_t res_ptr(void *p)
{
	return p == MAP_FAILED ? -(int64_t)errno : (int64_t)(uintptr_t)p;
}

/* Copy-on-write holder (OP_FORK_HOLD / OP_HOLD_CHECK). */
static pid_t holder_pid = -1;
static int holder_fd = -1;

struct hold_req {
	uint64_t addr, len, seed, widx;
};

static void __attribute__((noreturn)) holder_main(int rfd)
{
	struct hold_req hr;
	ssize_t n = read(rfd, &hr, sizeof(hr));

	if (n != (ssize_t)sizeof(hr))
		_exit(3);
	_exit(pat_check((void *)(uintptr_t)hr.addr, hr.len, hr.seed, hr.widx) == 0 ? 0 : 1);
}

/* Threads over one attachment (OP_THREADS). */
struct thr_arg {
	char *base;
	size_t npages;
	unsigned t, n;
	uint64_t seed;
	pthread_barrier_t *bar;
	long mismatches;
};

static void *thr_main(void *v)
{
	struct thr_arg *a = v;

	pthread_barrier_wait(a->bar);
	/* Interleaved pages, so the threads fault next to each other in the same tables. */
	for (size_t i = a->t; i < a->npages; i += a->n)
		if (pat_check(a->base + i * pg, pg, a->seed, i * pg / 8) != 0)
			a->mismatches++;
	pthread_barrier_wait(a->bar);
	for (size_t i = a->t; i < a->npages; i += a->n)
		pat_fill(a->base + i * pg, pg, a->seed + 1, i * pg / 8);
	for (size_t i = a->t; i < a->npages; i += a->n)
		if (pat_check(a->base + i * pg, pg, a->seed + 1, i * pg / 8) != 0)
			a->mismatches++;
	return NULL;
}

static int64_t do_threads(char *base, size_t len, unsigned n, uint64_t seed)
{
	pthread_t th[64];
	struct thr_arg args[64];
	pthread_barrier_t bar;
	long total = 0;

	if (n == 0 || n > 64)
		return -EINVAL;
	pthread_barrier_init(&bar, NULL, n);
	for (unsigned t = 0; t < n; t++) {
		args[t] = (struct thr_arg){ base, len / pg, t, n, seed, &bar, 0 };
		if (pthread_create(&th[t], NULL, thr_main, &args[t]) != 0)
			_exit(4); /* a half-started barrier cannot be unwound */
	}
	for (unsigned t = 0; t < n; t++) {
		pthread_join(th[t], NULL);
		total += args[t].mismatches;
	}
	pthread_barrier_destroy(&bar);
	return total;
}

/* Threads attaching and detaching windows of one apid at once (OP_ATTACH_STORM). */
struct storm_arg {
	xpmem_apid_t apid;
	size_t seg_pages;
	unsigned t, iters;
	uint64_t seed;
	long failures;
};

static void *storm_main(void *v)
{
	struct storm_arg *a = v;

	for (unsigned k = 0; k < a->iters; k++) {
		size_t first = (a->t * 7 + k * 13) % a->seg_pages;
		size_t npg = a->seg_pages - first < 4 ? a->seg_pages - first : 4;
		struct xpmem_addr xa = { .apid = a->apid, .offset = (off_t)(first * pg) };
		uint64_t *p = xpmem_attach(xa, npg * pg, NULL);

		if (p == (void *)-1) {
			a->failures++;
			continue;
		}
		if (p[0] != pat_word(a->seed, first * pg / 8) ||
		    p[npg * pg / 8 - 1] != pat_word(a->seed, (first + npg) * pg / 8 - 1))
			a->failures++;
		if (xpmem_detach(p) != 0)
			a->failures++;
	}
	return NULL;
}

static int64_t do_storm(xpmem_apid_t apid, size_t seglen, unsigned iters, uint64_t seed)
{
	enum { N = 4 };
	pthread_t th[N];
	struct storm_arg args[N];
	long total = 0;

	for (unsigned t = 0; t < N; t++) {
		args[t] = (struct storm_arg){ apid, seglen / pg, t, iters, seed, 0 };
		if (pthread_create(&th[t], NULL, storm_main, &args[t]) != 0)
			_exit(4);
	}
	for (unsigned t = 0; t < N; t++) {
		pthread_join(th[t], NULL);
		total += args[t].failures;
	}
	return total;
}

static int64_t do_move_pages(uint64_t addr, size_t n, int node)
{
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(*nodes));
	int *status = calloc(n, sizeof(*status));
	int64_t ret = 0;

	if (!pages || !nodes || !status) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		pages[i] = (void *)(uintptr_t)(addr + i * pg);
		nodes[i] = node;
	}
	/* Migration may fail transiently (page briefly busy); pinned pages never move. */
	for (int attempt = 0; attempt < 5; attempt++) {
		size_t on = 0;
		long r = syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE);

		if (r < 0) {
			ret = -errno;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			on += status[i] == node;
		if (on == n)
			break;
	}
	/* Where the pages really are now. */
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0) < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ret += status[i] == node;
out:
	free(pages);
	free(nodes);
	free(status);
	return ret;
}

static int64_t do_node_of(uint64_t addr)
{
	void *page = (void *)(uintptr_t)addr;
	int status = -1;

	if (syscall(SYS_move_pages, 0, 1, &page, NULL, &status, 0) < 0)
		return -errno;
	return status;
}

static int64_t do_thp_kb(uint64_t addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long long kb = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= s && addr < e;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %lld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * OP_PROBE_PAGE: read one byte and tell whether the CPU found a PTE for it, from the
 * thread's own fault counters (a fault that maps the page counts as minor or major;
 * one that ends in a signal is caught here). /proc/self/pagemap cannot tell: the
 * kernel's page walker skips VM_PFNMAP mappings and reports them as holes.
 */
static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probe_armed;

static void probe_handler(int sig)
{
	if (probe_armed)
		siglongjmp(probe_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static long thread_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/*
 * Not instrumented: under ASan the access would also read its shadow, whose first
 * touch is a page fault of its own.
 */
__attribute__((no_sanitize_address)) static int64_t do_probe_page(volatile char *p, bool write)
{
	struct sigaction sa, old_bus, old_segv;
	int64_t ret = -EAGAIN;
	long f0, f1;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = probe_handler;
	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	/* The measuring code itself must not fault: warm it up until an empty span counts 0. */
	for (int i = 0; i < 10; i++) {
		f0 = thread_faults();
		f1 = thread_faults();
		if (f1 == f0) {
			ret = 0;
			break;
		}
	}
	if (ret == 0) {
		sig = sigsetjmp(probe_jmp, 1);
		if (sig == 0) {
			probe_armed = 1;
			f0 = thread_faults();
			if (write)
				*p = *p;
			else
				(void)*p;
			f1 = thread_faults();
			probe_armed = 0;
			ret = f1 != f0 ? PROBE_FAULTED : PROBE_PRESENT;
		} else {
			probe_armed = 0;
			ret = sig == SIGBUS ? PROBE_SIGBUS : PROBE_SIGSEGV;
		}
	}
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return ret;
}

/* Page references to addr taken by the kernel (GUP), as vmsplice() takes them. */
static int64_t do_vmsplice(uint64_t addr, size_t len)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	int fds[2];
	ssize_t n;
	int64_t ret;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	n = vmsplice(fds[1], &iov, 1, 0);
	ret = n < 0 ? -errno : n;
	close(fds[0]);
	close(fds[1]);
	return ret;
}

static int64_t do_pagemap(uint64_t addr, size_t n)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int64_t present = 0;

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		uint64_t e;

		if (pread(fd, &e, sizeof(e), (off_t)((addr / pg + i) * sizeof(e))) != (ssize_t)sizeof(e)) {
			present = -EIO;
			break;
		}
		present += (int64_t)(e >> 63);
	}
	close(fd);
	return present;
}

static int64_t do_setids(uid_t uid, gid_t gid, gid_t g1, gid_t g2)
{
	gid_t groups[2];
	size_t n = 0;

	if (g1)
		groups[n++] = g1;
	if (g2)
		groups[n++] = g2;
	if (setgroups(n, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0)
		return -errno;
	/* A credential change clears the parent-death signal: arm it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (geteuid() != uid || getegid() != gid)
		return -EPERM;
	return 0;
}

static int64_t peer_do(int sock, const struct peer_req *rq, struct peer_rep *rp)
{
	const uint64_t *a = rq->a;
	void *p0 = (void *)(uintptr_t)a[0];
	volatile char *c0 = p0;

	switch (rq->op) {
	case OP_EXIT:
		return 0;
	case OP_GETPID:
		return getpid();
	case OP_MMAP: {
		size_t len = a[0], align = a[1] > pg ? a[1] : 0;
		char *p = mmap(NULL, len + align, (int)a[2], MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *al;

		if (p == MAP_FAILED)
			return -errno;
		al = p;
		if (align) {
			al = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
			if (al > p)
				munmap(p, (size_t)(al - p));
			if (al + len < p + len + align)
				munmap(al + len, (size_t)(p + len + align - (al + len)));
		}
		return (int64_t)(uintptr_t)al;
	}
	case OP_MMAP_HUGETLB:
		return res_ptr(mmap(NULL, a[0], (int)a[2],
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (int)(a[1] << MAP_HUGE_SHIFT),
				    -1, 0));
	case OP_MMAP_FIXED:
		return res_ptr(mmap(p0, a[1], (int)a[2], MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	case OP_MUNMAP:
		return res(munmap(p0, a[1]));
	case OP_MPROTECT:
		return res(mprotect(p0, a[1], (int)a[2]));
	case OP_MADVISE:
		return res(madvise(p0, a[1], (int)a[2]));
	case OP_MREMAP:
		return res_ptr(mremap(p0, a[1], a[2], (int)a[3], (void *)(uintptr_t)a[4]));
	case OP_FILL:
		pat_fill(p0, a[1], a[2], a[3]);
		return 0;
	case OP_CHECK:
		return (int64_t)pat_check(p0, a[1], a[2], a[3]);
	case OP_MEMSET:
		for (size_t i = 0; i < a[1]; i++)
			c0[i] = (char)a[2];
		return 0;
	case OP_CHECK_BYTE:
		for (size_t i = 0; i < a[1]; i++)
			if ((unsigned char)c0[i] != (unsigned char)a[2])
				return (int64_t)i + 1;
		return 0;
	case OP_READ64:
		return (int64_t) * (volatile uint64_t *)p0;
	case OP_WRITE64:
		*(volatile uint64_t *)p0 = a[1];
		return 0;
	case OP_TOUCH: {
		int64_t n = 0;

		for (size_t off = 0; off < a[1]; off += pg, n++) {
			char v = c0[off];

			if (a[2])
				c0[off] = v;
		}
		return n;
	}
	case OP_MAPPED:
		return msync(p0, a[1], MS_ASYNC) == 0 ? 1 : (errno == ENOMEM ? 0 : -errno);
	case OP_VERSION:
		return res(xpmem_version());
	case OP_MAKE:
		return res(xpmem_make(p0, a[1], (int)a[2], (void *)(uintptr_t)a[3]));
	case OP_REMOVE:
		return res(xpmem_remove((xpmem_segid_t)a[0]));
	case OP_GET:
		return res(xpmem_get((xpmem_segid_t)a[0], (int)a[1], (int)a[2], (void *)(uintptr_t)a[3]));
	case OP_RELEASE:
		return res(xpmem_release((xpmem_apid_t)a[0]));
	case OP_ATTACH: {
		struct xpmem_addr xa = { .apid = (xpmem_apid_t)a[0], .offset = (off_t)a[1] };
		void *p = xpmem_attach(xa, a[2], (void *)(uintptr_t)a[3]);

		return p == (void *)-1 ? -(int64_t)errno : (int64_t)(uintptr_t)p;
	}
	case OP_DETACH:
		return res(xpmem_detach(p0));
	case OP_SETIDS:
		return do_setids((uid_t)a[0], (gid_t)a[1], (gid_t)a[2], (gid_t)a[3]);
	case OP_UNSHARE:
		return res(unshare((int)a[0]));
	case OP_MOVE_PAGES:
		return do_move_pages(a[0], a[1], (int)a[2]);
	case OP_NODE_OF:
		return do_node_of(a[0]);
	case OP_FORK_HOLD: {
		int pfd[2];
		pid_t pid;

		if (holder_pid > 0 || pipe2(pfd, O_CLOEXEC) != 0)
			return -EBUSY;
		pid = fork_child();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			close(sock);
			close(pfd[1]);
			holder_main(pfd[0]);
		}
		close(pfd[0]);
		holder_pid = pid;
		holder_fd = pfd[1];
		return pid;
	}
	case OP_HOLD_CHECK: {
		struct hold_req hr = { a[0], a[1], a[2], a[3] };
		int st;

		if (holder_pid <= 0)
			return -ECHILD;
		if (write(holder_fd, &hr, sizeof(hr)) != (ssize_t)sizeof(hr))
			return -errno;
		close(holder_fd);
		holder_fd = -1;
		st = wait_pid_timeout(holder_pid, PEER_TIMEOUT_MS);
		holder_pid = -1;
		if (st == -1 || !WIFEXITED(st))
			return -ECHILD;
		return WEXITSTATUS(st);
	}
	case OP_FORK_PROBE: {
		pid_t pid = fork_child();

		if (pid < 0)
			return -errno;
		if (pid == 0) {
			close(sock);
			if (a[1])
				c0[0] = 1;
			else
				(void)c0[0];
			_exit(0);
		}
		return wait_pid_timeout(pid, PEER_TIMEOUT_MS);
	}
	case OP_SPIN_READ: {
		struct peer_rep first = { 0 };
		unsigned long sum = 0;

		for (size_t off = 0; off < a[1]; off += pg)
			sum += (unsigned char)c0[off];
		first.ret = (int64_t)(sum & 0xffff);
		send(sock, &first, sizeof(first), MSG_NOSIGNAL);
		for (;;)
			for (size_t off = 0; off < a[1]; off += pg)
				(void)c0[off];
	}
	case OP_THREADS:
		return do_threads(p0, a[1], (unsigned)a[2], a[3]);
	case OP_ATTACH_STORM:
		return do_storm((xpmem_apid_t)a[0], a[1], (unsigned)a[2], a[3]);
	case OP_THP_KB:
		return do_thp_kb(a[0]);
	case OP_KSM_MERGING: {
		char buf[64];

		if (read_file_str("/proc/self/ksm_merging_pages", buf, sizeof(buf)) != 0)
			return -ENOENT;
		return strtoll(buf, NULL, 10);
	}
	case OP_RAW_OPEN:
		return res(open("/dev/xpmem", O_RDWR | O_CLOEXEC));
	case OP_RAW_IOCTL: {
		/* Aligned buffer: the kernel copies from user memory; alignment is ours. */
		uint64_t buf[PEER_PAYLOAD / 8];
		int r;

		memcpy(buf, rq->payload, sizeof(buf));
		r = ioctl((int)a[0], (unsigned long)a[1], buf);
		memcpy(rp->payload, buf, sizeof(buf));
		return res(r);
	}
	case OP_PROBE_PAGE:
		return do_probe_page(c0, a[1] != 0);
	case OP_PAGEMAP:
		return do_pagemap(a[0], a[1]);
	case OP_VMSPLICE:
		return do_vmsplice(a[0], a[1]);
	case OP_LOCKMIX_INIT:
		return lockmix_init(p0, (uint64_t *)(uintptr_t)a[1]);
	case OP_LOCKMIX_RUN: {
		struct lockmix_result lr;
		int64_t r = lockmix_run(p0, (uint64_t *)(uintptr_t)a[1], (char *)(uintptr_t)a[2],
					(const uint64_t *)(uintptr_t)a[3], (unsigned)a[4], &lr);

		_Static_assert(sizeof(lr) <= PEER_PAYLOAD, "lockmix_result fits a reply");
		memcpy(rp->payload, &lr, sizeof(lr));
		return r;
	}
	}
	return -ENOSYS;
}

static void __attribute__((noreturn)) peer_main(int sock)
{
	for (;;) {
		struct peer_req rq;
		struct peer_rep rp;
		ssize_t n = recv(sock, &rq, sizeof(rq), 0);

		if (n == 0)
			_exit(0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(3);
		}
		memset(&rp, 0, sizeof(rp));
		rp.ret = peer_do(sock, &rq, &rp);
		if (send(sock, &rp, sizeof(rp), MSG_NOSIGNAL) != (ssize_t)sizeof(rp))
			_exit(3);
		if (rq.op == OP_EXIT)
			_exit(0);
	}
}

/* ================================================================== client side */

/* Where the test called the peer API from, for failure reports. */
static const char *site_file = "?";
static int site_line;

int peer_site(const char *file, int line)
{
	site_file = file;
	site_line = line;
	return 0;
}

static void __attribute__((format(printf, 1, 2), noreturn)) peer_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s\n", msg);
	_fail(site_file, site_line);
	abort(); /* _fail does not return */
}

#define PCI(p, op, ...) (peer_call)((p), (op), (const uint64_t[5]){ __VA_ARGS__ })

struct peer *(peer_start)(const char *name)
{
	int sv[2];
	struct peer *p;
	pid_t pid;

	if (npeers == MAX_PEERS)
		peer_fail("suite: too many peers in one test");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		peer_fail("socketpair: %s", strerror(errno));
	pid = fork_child();
	if (pid < 0)
		peer_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		for (int i = 0; i < npeers; i++)
			if (peers[i].sock >= 0)
				close(peers[i].sock);
		peer_main(sv[1]);
	}
	close(sv[1]);
	p = &peers[npeers++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->sock = sv[0];
	snprintf(p->name, sizeof(p->name), "%s", name);
	return p;
}

static void peer_send_payload(struct peer *p, enum peer_op op, const uint64_t args[5],
			      const void *payload, size_t len)
{
	struct peer_req rq;

	if (p->reaped)
		peer_fail("peer %s: request %s after it was gone", p->name, op_name(op));
	memset(&rq, 0, sizeof(rq));
	rq.op = op;
	memcpy(rq.a, args, sizeof(rq.a));
	if (len > PEER_PAYLOAD)
		peer_fail("suite: payload too large");
	if (payload)
		memcpy(rq.payload, payload, len);
	rq.len = (uint32_t)len;
	p->last_op = op;
	if (send(p->sock, &rq, sizeof(rq), MSG_NOSIGNAL) != (ssize_t)sizeof(rq)) {
		char buf[96];
		int e = errno;

		p->status = wait_pid_timeout(p->pid, 10000);
		p->reaped = true;
		peer_fail("peer %s: cannot send %s (%s); the peer %s", p->name, op_name(op),
			  strerror(e), describe_status(p->status, buf, sizeof(buf)));
	}
}

void (peer_send)(struct peer *p, enum peer_op op, const uint64_t args[5])
{
	peer_send_payload(p, op, args, NULL, 0);
}

/* 1: reply in *rp; 0: EOF (peer gone); -1: timeout. */
static int peer_wait_reply(struct peer *p, struct peer_rep *rp, int timeout_ms)
{
	struct pollfd pfd = { .fd = p->sock, .events = POLLIN };
	ssize_t n;
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -1;
	do
		n = recv(p->sock, rp, sizeof(*rp), 0);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*rp))
		return 1;
	return 0;
}

int peer_wait_readable(struct peer *p, int timeout_ms)
{
	struct pollfd pfd = { .fd = p->sock, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

int64_t (peer_recv)(struct peer *p)
{
	struct peer_rep rp;
	enum peer_op op = p->last_op;
	char buf[96];
	int r = peer_wait_reply(p, &rp, PEER_TIMEOUT_MS);

	if (r == 1) {
		memcpy(p->payload, rp.payload, sizeof(p->payload));
		return rp.ret;
	}
	if (r < 0) {
		(peer_kill)(p);
		peer_fail("peer %s: no reply to %s within %d s (killed)", p->name, op_name(op),
			  PEER_TIMEOUT_MS / 1000);
	}
	p->status = wait_pid_timeout(p->pid, 30000);
	p->reaped = true;
	peer_fail("peer %s died during %s: it %s", p->name, op_name(op),
		  describe_status(p->status, buf, sizeof(buf)));
}

int64_t (peer_call)(struct peer *p, enum peer_op op, const uint64_t args[5])
{
	(peer_send)(p, op, args);
	return (peer_recv)(p);
}

int64_t (peer_call_payload)(struct peer *p, enum peer_op op, const uint64_t args[5],
			    const void *payload, size_t len)
{
	peer_send_payload(p, op, args, payload, len);
	return (peer_recv)(p);
}

static void check_death(struct peer *p, int sig, const char *during)
{
	char buf[96];

	if (p->status != -1 && WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig)
		return;
	peer_fail("peer %s: expected death by SIG%s%s%s, but it %s", p->name, sigabbrev_np(sig),
		  during ? " during " : "", during ? during : "",
		  describe_status(p->status, buf, sizeof(buf)));
}

void (peer_expect_death)(struct peer *p, int sig, enum peer_op op, const uint64_t args[5])
{
	struct peer_rep rp;
	int r;

	(peer_send)(p, op, args);
	r = peer_wait_reply(p, &rp, PEER_TIMEOUT_MS);
	if (r == 1)
		peer_fail("peer %s survived %s (returned %lld); expected death by SIG%s", p->name,
			  op_name(op), (long long)rp.ret, sigabbrev_np(sig));
	if (r < 0) {
		(peer_kill)(p);
		peer_fail("peer %s: %s neither returned nor killed it within %d s", p->name,
			  op_name(op), PEER_TIMEOUT_MS / 1000);
	}
	p->status = wait_pid_timeout(p->pid, 30000);
	p->reaped = true;
	check_death(p, sig, op_name(op));
}

void (peer_wait_death)(struct peer *p, int sig, int timeout_ms)
{
	p->status = wait_pid_timeout(p->pid, timeout_ms);
	p->reaped = true;
	check_death(p, sig, NULL);
}

void (peer_stop)(struct peer *p)
{
	int64_t r = PCI(p, OP_EXIT, 0);
	char buf[96];

	if (r != 0)
		peer_fail("peer %s: EXIT returned %lld", p->name, (long long)r);
	p->status = wait_pid_timeout(p->pid, 30000);
	p->reaped = true;
	if (p->status == -1 || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
		peer_fail("peer %s: expected a clean exit, but it %s", p->name,
			  describe_status(p->status, buf, sizeof(buf)));
}

void (peer_kill)(struct peer *p)
{
	if (p->reaped)
		return;
	kill(p->pid, SIGKILL);
	p->status = wait_pid_timeout(p->pid, 30000);
	p->reaped = true;
}

void peers_cleanup(void)
{
	for (int i = 0; i < npeers; i++) {
		(peer_kill)(&peers[i]);
		if (peers[i].sock >= 0)
			close(peers[i].sock);
		peers[i].sock = -1;
	}
	npeers = 0;
}

struct peer *(exporter_start)(const char *name, size_t len, size_t align, uint64_t seed,
			      unsigned mode, uint64_t *addr, xpmem_segid_t *segid)
{
	struct peer *p = (peer_start)(name);
	int64_t a = PCI(p, OP_MMAP, len, align, PROT_READ | PROT_WRITE), r;

	if (a <= 0)
		peer_fail("exporter %s: mmap %zu: %s", name, len, strerror((int)-a));
	r = PCI(p, OP_FILL, (uint64_t)a, len, seed, 0);
	if (r != 0)
		peer_fail("exporter %s: fill returned %lld", name, (long long)r);
	r = PCI(p, OP_MAKE, (uint64_t)a, len, XPMEM_PERMIT_MODE, mode);
	if (r <= 0 || r >= ID_LIMIT)
		peer_fail("exporter %s: xpmem_make(%zu bytes, mode %04o) returned %lld (%s)", name,
			  len, mode, (long long)r, r < 0 ? strerror((int)-r) : "not a valid id");
	*addr = (uint64_t)a;
	*segid = r;
	return p;
}

uint64_t (peer_get_attach)(struct peer *p, xpmem_segid_t segid, int flags, uint64_t offset,
			   size_t len, xpmem_apid_t *apid)
{
	int64_t id = PCI(p, OP_GET, (uint64_t)segid, (uint64_t)flags, XPMEM_PERMIT_MODE, 0);
	int64_t a;

	if (id <= 0 || id >= ID_LIMIT)
		peer_fail("peer %s: xpmem_get(%lld, %s) returned %lld (%s)", p->name,
			  (long long)segid, flags == XPMEM_RDWR ? "RDWR" : "RDONLY", (long long)id,
			  id < 0 ? strerror((int)-id) : "not a valid id");
	a = PCI(p, OP_ATTACH, (uint64_t)id, offset, len, 0);
	if (a <= 0)
		peer_fail("peer %s: xpmem_attach(apid %lld, offset %llu, size %zu) failed: %s",
			  p->name, (long long)id, (unsigned long long)offset, len,
			  strerror((int)-a));
	if (apid)
		*apid = id;
	return (uint64_t)a;
}
