// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helpers of the XPMEM test suite: patterns, /proc/xpmem parsing, child processes,
 * per-test bookkeeping and cleanup.
 */
#include "suite.h"
#include "xpmem_ioctl.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

size_t pg;
struct xstats suite_base;
char suite_dir[4096];

/* ------------------------------------------------------------------ patterns */

void pat_fill(void *addr, size_t len, uint64_t seed, uint64_t widx)
{
	volatile uint64_t *w = addr;
	size_t n = len / sizeof(uint64_t);

	for (size_t i = 0; i < n; i++)
		w[i] = pat_word(seed, widx + i);
}

uint64_t pat_check(const void *addr, size_t len, uint64_t seed, uint64_t widx)
{
	const volatile uint64_t *w = addr;
	size_t n = len / sizeof(uint64_t);

	for (size_t i = 0; i < n; i++)
		if (w[i] != pat_word(seed, widx + i))
			return 1 + i * sizeof(uint64_t);
	return 0;
}

/* ------------------------------------------------------------------ time */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ /proc/xpmem */

const char *const stat_names[ST_COUNT] = {
	"segments_live", "accesses_live", "attachments_live", "makes",
	"removes",	 "gets",	  "releases",	      "attaches",
	"detaches",	 "faults",	  "fault_retries",    "recalls",
	"huge_faults",
};

int stats_read(struct xstats *s, char *why, size_t whylen)
{
	FILE *f = fopen("/proc/xpmem/stats", "re");
	bool seen[ST_COUNT] = { false };
	char name[64];
	long long val;
	int ret = 0;

	if (!f) {
		if (why)
			snprintf(why, whylen, "cannot open /proc/xpmem/stats: %s", strerror(errno));
		return -1;
	}
	while (fscanf(f, "%63s %lld", name, &val) == 2) {
		for (int i = 0; i < ST_COUNT; i++) {
			if (strcmp(name, stat_names[i]) == 0) {
				s->v[i] = val;
				seen[i] = true;
			}
		}
	}
	if (!feof(f)) {
		if (why)
			snprintf(why, whylen, "/proc/xpmem/stats: unparsable line near '%s'", name);
		ret = -1;
	}
	fclose(f);
	for (int i = 0; i < ST_COUNT && ret == 0; i++) {
		if (!seen[i]) {
			if (why)
				snprintf(why, whylen, "/proc/xpmem/stats: no '%s' line", stat_names[i]);
			ret = -1;
		}
	}
	return ret;
}

void stats_get(struct xstats *s)
{
	char why[256];

	if (stats_read(s, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

static bool live_equal(const struct xstats *a, const struct xstats *b)
{
	return a->v[ST_SEGMENTS_LIVE] == b->v[ST_SEGMENTS_LIVE] &&
	       a->v[ST_ACCESSES_LIVE] == b->v[ST_ACCESSES_LIVE] &&
	       a->v[ST_ATTACHMENTS_LIVE] == b->v[ST_ATTACHMENTS_LIVE];
}

/*
 * Exited processes are torn down by the kernel before their parent can reap them, but
 * the module may finish releasing objects asynchronously: poll, bounded.
 */
int stats_wait_live(const struct xstats *base, struct xstats *cur, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		if (stats_read(cur, NULL, 0) != 0)
			return -1;
		if (live_equal(base, cur))
			return 0;
		if (now_ms() > deadline)
			return -1;
		nap_ms(10);
	}
}

int global_pages_read(long long *pinned, long long *unpinned, char *why, size_t whylen)
{
	FILE *f = fopen("/proc/xpmem/global_pages", "re");
	char line[256];
	int got = 0, lines = 0;

	if (!f) {
		snprintf(why, whylen, "cannot open /proc/xpmem/global_pages: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char tail;

		lines++;
		if (sscanf(line, "all pages pinned by XPMEM: %lld%c", pinned, &tail) == 2 &&
		    tail == '\n')
			got |= 1;
		else if (sscanf(line, "all pages unpinned by XPMEM: %lld%c", unpinned, &tail) == 2 &&
			 tail == '\n')
			got |= 2;
		else {
			snprintf(why, whylen, "/proc/xpmem/global_pages: unexpected line '%.200s'", line);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (got != 3 || lines != 2) {
		snprintf(why, whylen, "/proc/xpmem/global_pages: expected the pinned and unpinned lines, got %d lines",
			 lines);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ sysfs / proc */

int read_file_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int write_file_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n, len = (ssize_t)strlen(val);

	if (fd < 0)
		return -1;
	n = write(fd, val, (size_t)len);
	close(fd);
	return n == len ? 0 : -1;
}

long long read_file_ll(const char *path, long long dflt)
{
	char buf[64];

	if (read_file_str(path, buf, sizeof(buf)) != 0)
		return dflt;
	return strtoll(buf, NULL, 10);
}

int numa_online_nodes(int *nodes, int max)
{
	char buf[256];
	char *p;
	int n = 0;

	if (read_file_str("/sys/devices/system/node/online", buf, sizeof(buf)) != 0)
		return 0;
	p = buf;
	while (*p && n < max) {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			break;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			p = end;
		}
		for (long i = a; i <= b && n < max; i++)
			nodes[n++] = (int)i;
		if (*p == ',')
			p++;
	}
	return n;
}

bool range_mapped(const void *addr, size_t len)
{
	/* msync fails with ENOMEM when any part of the range is unmapped. */
	return msync((void *)((uintptr_t)addr & ~(uintptr_t)(pg - 1)), len, MS_ASYNC) == 0;
}

bool range_unmapped(const void *addr, size_t len)
{
	const char *p = (const char *)((uintptr_t)addr & ~(uintptr_t)(pg - 1));

	for (size_t off = 0; off < len; off += pg)
		if (range_mapped(p + off, pg))
			return false;
	return true;
}

int vma_bounds(const void *addr, uintptr_t *start, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && (uintptr_t)addr >= s &&
		    (uintptr_t)addr < e) {
			*start = (uintptr_t)s;
			*end = (uintptr_t)e;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

void skip_or_fail(const char *why)
{
	const char *strict = getenv("XPMEM_SUITE_STRICT");

	if (strict && strcmp(strict, "0") != 0)
		fail_msg("%s (XPMEM_SUITE_STRICT: not skipped)", why);
	print_message("[  SKIP    ] %s\n", why);
	skip();
}

/* ------------------------------------------------------------------ children */

void child_reset(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT, SIGCHLD };
	struct sigaction sa;
	struct rlimit nocore = { 0, 0 };
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		child_reset();
		if (getppid() != parent) /* the parent died before PDEATHSIG was armed */
			_exit(99);
	}
	return pid;
}

int wait_pid_timeout(pid_t pid, int timeout_ms)
{
	int st = 0;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	bool expired = false;

	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int r;

		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		close(pfd);
		expired = (r == 0);
	} else {
		long long deadline = now_ms() + timeout_ms;
		pid_t r;

		while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
			if (now_ms() > deadline) {
				expired = true;
				break;
			}
			nap_ms(2);
		}
		if (r == pid)
			return st;
	}
	if (expired)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return expired ? -1 : st;
}

int run_in_child(int (*fn)(void *), void *arg, int timeout_ms)
{
	pid_t pid = fork_child();

	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	return wait_pid_timeout(pid, timeout_ms);
}

const char *describe_status(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "did not finish in time (killed)");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (SIG%s)", WTERMSIG(status),
			 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(buf, len, "wait status 0x%x", status);
	return buf;
}

void _assert_killed_by(int status, int sig, const char *file, int line)
{
	char buf[96];

	if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig)
		return;
	print_error("expected death by SIG%s, but the process %s\n", sigabbrev_np(sig),
		    describe_status(status, buf, sizeof(buf)));
	_fail(file, line);
}

void _assert_exited_ok(int status, const char *file, int line)
{
	char buf[96];

	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	print_error("expected a clean exit, but the process %s\n",
		    describe_status(status, buf, sizeof(buf)));
	_fail(file, line);
}

void _assert_id_valid(long long id, const char *what, const char *file, int line)
{
	if (id > 0 && id < ID_LIMIT)
		return;
	print_error("%s = %lld (0x%llx): not a valid id (0 < id < 2^52)%s%s\n", what, id,
		    (unsigned long long)id, id < 0 ? ", errno " : "",
		    id == -1 ? strerror(errno) : (id < 0 ? strerror((int)-id) : ""));
	_fail(file, line);
}

void _assert_fails_with(long long ret, int got_errno, int want, const char *what, const char *file,
			int line)
{
	if (ret == -1 && got_errno == want)
		return;
	if (ret == -1)
		print_error("%s: expected errno %s, got %s (%d)\n", what, strerrorname_np(want),
			    strerrorname_np(got_errno) ? strerrorname_np(got_errno) : "?", got_errno);
	else
		print_error("%s: expected failure with %s, but it returned %lld\n", what,
			    strerrorname_np(want), ret);
	_fail(file, line);
}

/* ------------------------------------------------------------------ bookkeeping */

enum track_kind { TR_SEGID, TR_APID, TR_ATTACH, TR_MAP };
#define MAX_TRACKED 512
static struct {
	enum track_kind kind;
	long long id;
	void *addr;
	size_t len;
} tracked[MAX_TRACKED];
static int ntracked;

#define MAX_HOOKS 16
static struct {
	void (*fn)(void *);
	void *arg;
} hooks[MAX_HOOKS];
static int nhooks;

static struct xstats test_base;
static bool test_base_ok;

static void track(enum track_kind kind, long long id, void *addr, size_t len)
{
	if (ntracked == MAX_TRACKED)
		fail_msg("suite: too many tracked resources");
	tracked[ntracked].kind = kind;
	tracked[ntracked].id = id;
	tracked[ntracked].addr = addr;
	tracked[ntracked].len = len;
	ntracked++;
}

void track_segid(xpmem_segid_t segid)
{
	track(TR_SEGID, segid, NULL, 0);
}

void track_apid(xpmem_apid_t apid)
{
	track(TR_APID, apid, NULL, 0);
}

void track_attach(void *addr)
{
	track(TR_ATTACH, 0, addr, 0);
}

void track_map(void *addr, size_t len)
{
	track(TR_MAP, 0, addr, len);
}

void on_teardown(void (*fn)(void *), void *arg)
{
	if (nhooks == MAX_HOOKS)
		fail_msg("suite: too many teardown hooks");
	hooks[nhooks].fn = fn;
	hooks[nhooks].arg = arg;
	nhooks++;
}

void *map_anon(size_t len, size_t align)
{
	size_t extra = align > pg ? align : 0;
	char *p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		fail_msg("mmap %zu: %s", len, strerror(errno));
	a = p;
	if (extra) {
		a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
		if (a > p)
			munmap(p, (size_t)(a - p));
		if (a + len < p + len + extra)
			munmap(a + len, (size_t)(p + len + extra - (a + len)));
	}
	track_map(a, len);
	return a;
}

void *free_spot(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		fail_msg("mmap %zu: %s", len, strerror(errno));
	munmap(p, len);
	return p;
}

/* Kill remaining children we no longer know by pid (orphans re-parented to us). */
static void reap_strays(void)
{
	long long deadline = now_ms() + 10000;

	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);

		if (r > 0)
			continue;
		if (r < 0) /* ECHILD: none left */
			return;
		if (now_ms() > deadline) {
			char path[64], buf[4096];

			snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
			if (read_file_str(path, buf, sizeof(buf)) == 0) {
				char *s = buf;

				while (*s) {
					char *end;
					long pid = strtol(s, &end, 10);

					if (end == s)
						break;
					kill((pid_t)pid, SIGKILL);
					s = end;
				}
			}
			deadline = now_ms() + 10000;
		}
		nap_ms(5);
	}
}

void peers_cleanup(void);

static void cleanup_all(void)
{
	peers_cleanup();
	/* Reverse order: attachments before the permits and segments they came from. */
	for (int i = ntracked - 1; i >= 0; i--) {
		switch (tracked[i].kind) {
		case TR_ATTACH:
			xpmem_detach(tracked[i].addr);
			break;
		case TR_APID:
			xpmem_release(tracked[i].id);
			break;
		case TR_SEGID:
			xpmem_remove(tracked[i].id);
			break;
		case TR_MAP:
			munmap(tracked[i].addr, tracked[i].len);
			break;
		}
	}
	ntracked = 0;
	for (int i = nhooks - 1; i >= 0; i--)
		hooks[i].fn(hooks[i].arg);
	nhooks = 0;
	reap_strays();
}

int test_setup(void **state)
{
	(void)state;
	ntracked = 0;
	nhooks = 0;
	test_base_ok = stats_read(&test_base, NULL, 0) == 0;
	return 0;
}

int test_teardown(void **state)
{
	(void)state;
	cleanup_all();
	return 0;
}

void test_finish(void)
{
	struct xstats cur;
	char why[256];

	cleanup_all();
	if (!test_base_ok) {
		if (stats_read(&cur, why, sizeof(why)) != 0)
			fail_msg("%s", why);
		fail_msg("/proc/xpmem/stats was unreadable when the test started");
	}
	if (stats_wait_live(&test_base, &cur, 15000) != 0)
		fail_msg("live counters not back to the test's start after cleanup: segments_live %lld -> %lld, accesses_live %lld -> %lld, attachments_live %lld -> %lld",
			 test_base.v[ST_SEGMENTS_LIVE], cur.v[ST_SEGMENTS_LIVE],
			 test_base.v[ST_ACCESSES_LIVE], cur.v[ST_ACCESSES_LIVE],
			 test_base.v[ST_ATTACHMENTS_LIVE], cur.v[ST_ATTACHMENTS_LIVE]);
}

struct mapped_now segment_mapped(xpmem_segid_t segid)
{
	struct xpmem_segment_info info;
	struct xpmem_cmd_query q = {
		.argsz = sizeof(q),
		.kind = XPMEM_QUERY_SEGMENTS,
		.buf = (uint64_t)(uintptr_t)&info,
		.buf_size = sizeof(info),
		.segid = segid,
	};
	int fd = open("/dev/xpmem", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail_msg("open /dev/xpmem: %s", strerror(errno));
	if (ioctl(fd, XPMEM_CMD_QUERY, &q) != 0)
		fail_msg("XPMEM_CMD_QUERY: %s", strerror(errno));
	close(fd);
	if (q.count != 1 || q.record_size != sizeof(info))
		fail_msg("segment query: %u records of %u bytes", q.count, q.record_size);
	return (struct mapped_now){ info.mapped_4k, info.mapped_2m, info.mapped_1g };
}
