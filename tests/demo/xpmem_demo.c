// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The demo behind `make demo`: one exporter, a read-write and a read-only
 * attacher, and a recall when the exporter replaces a page under them.
 * Usage: xpmem_demo [XPMEMCTL]: with the path of xpmemctl, the demo also shows
 * what the module holds while both attachers are attached, and its counters.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xpmem.h>

#define PAGES 4

static long page_size;

static void say(const char *who, const char *fmt, ...)
{
	va_list ap;

	printf("%-12s| ", who);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *who, const char *what)
{
	say(who, "%s failed: %s", what, strerror(errno));
	exit(1);
}

/* Each attacher talks to the exporter over a pipe pair: one byte per step. */
struct channel {
	int to_child[2];
	int to_parent[2];
};

static void step_wait(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		exit(1);
}

static void step_signal(int fd)
{
	if (write(fd, "x", 1) != 1)
		exit(1);
}

static sigjmp_buf probe_env;

static void probe_handler(int sig)
{
	siglongjmp(probe_env, sig);
}

/* Touch p (reading or writing) in this process; returns the signal it raised, or 0. */
static int probe(char *p, int write)
{
	struct sigaction sa = { .sa_handler = probe_handler };
	int sig;

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sig = sigsetjmp(probe_env, 1);
	if (!sig) {
		if (write)
			*(volatile char *)p = 'X';
		else
			(void)*(volatile char *)p;
	}
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	return sig;
}

static void attacher(const char *who, xpmem_segid_t segid, int flags,
		     struct channel *ch)
{
	struct xpmem_addr addr;
	xpmem_apid_t apid;
	char *map;
	int sig;

	apid = xpmem_get(segid, flags, XPMEM_PERMIT_MODE, (void *)0666);
	if (apid == -1)
		die(who, "xpmem_get");
	addr.apid = apid;
	addr.offset = 0;
	map = xpmem_attach(addr, PAGES * page_size, NULL);
	if (map == (void *)-1)
		die(who, "xpmem_attach");
	say(who, "attached %s at %p, page 0 reads \"%s\"",
	    flags == XPMEM_RDWR ? "read-write" : "read-only", (void *)map, map);

	if (flags == XPMEM_RDWR) {
		snprintf(map + page_size, page_size, "written by %s (pid %d)", who, getpid());
		say(who, "wrote \"%s\" into page 1", map + page_size);
	} else {
		sig = probe(map, 1);
		say(who, "a write attempt was stopped by %s", sig ? strsignal(sig) : "nothing (BUG)");
	}
	step_signal(ch->to_parent[1]);

	step_wait(ch->to_child[0]); /* the exporter replaced page 0 */
	say(who, "after the recall page 0 reads \"%s\"", map);
	step_signal(ch->to_parent[1]);

	step_wait(ch->to_child[0]); /* the exporter removed the segment */
	sig = probe(map, 0);
	say(who, "touching the removed segment raised %s", sig ? strsignal(sig) : "nothing (BUG)");
	if (xpmem_detach(map) || xpmem_release(apid))
		die(who, "detach/release");
	say(who, "detached and released");
	exit(0);
}

/*
 * Run "xpmemctl ARG" and wait for it; its output goes straight to ours.
 * posix_spawn, not fork: a fork would write-protect the exporter's private pages
 * for copy-on-write, a change that recalls the attachers' mappings.
 */
static void show(const char *xpmemctl, const char *arg)
{
	char *const args[] = { "xpmemctl", (char *)arg, NULL };
	int status, err;
	pid_t pid;

	if (!xpmemctl)
		return;
	say("exporter", "$ xpmemctl %s", arg);
	err = posix_spawn(&pid, xpmemctl, NULL, NULL, args, environ);
	if (err || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		say("exporter", "xpmemctl %s failed", arg);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	const char *xpmemctl = argc > 1 ? argv[1] : NULL;
	const char *names[2] = { "attacher-rw", "attacher-ro" };
	const int flags[2] = { XPMEM_RDWR, XPMEM_RDONLY };
	struct channel ch[2];
	pid_t pids[2];
	xpmem_segid_t segid;
	double t0, t1;
	char *buf, *fresh;
	int i, status, failed = 0;

	page_size = sysconf(_SC_PAGESIZE);
	/* Shared memory: forking the attachers leaves it alone (no copy-on-write). */
	buf = mmap(NULL, PAGES * page_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("exporter", "mmap");
	snprintf(buf, page_size, "hello from the exporter (pid %d)", getpid());
	say("exporter", "xpmem_version() = 0x%x", xpmem_version());
	segid = xpmem_make(buf, PAGES * page_size, XPMEM_PERMIT_MODE, (void *)0644);
	if (segid == -1)
		die("exporter", "xpmem_make");
	say("exporter", "exported %d pages at %p as segid 0x%llx (mode 0644)", PAGES,
	    (void *)buf, (long long)segid);

	for (i = 0; i < 2; i++) {
		if (pipe(ch[i].to_child) || pipe(ch[i].to_parent))
			die("exporter", "pipe");
		pids[i] = fork();
		if (pids[i] == 0)
			attacher(names[i], segid, flags[i], &ch[i]);
		step_wait(ch[i].to_parent[0]);
	}
	say("exporter", "page 1 now reads \"%s\"", buf + page_size);
	show(xpmemctl, "segments");
	show(xpmemctl, "attachments");

	/* The recall: replace page 0 while both attachers have it mapped. */
	t0 = now_us();
	munmap(buf, page_size);
	t1 = now_us();
	fresh = mmap(buf, page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (fresh != buf)
		die("exporter", "mmap fixed");
	snprintf(fresh, page_size, "a fresh page, mapped after the recall");
	say("exporter", "munmap of page 0 recalled both attachers' PTEs in %.0f us", t1 - t0);
	for (i = 0; i < 2; i++) {
		step_signal(ch[i].to_child[1]);
		step_wait(ch[i].to_parent[0]);
	}

	show(xpmemctl, "stats");

	if (xpmem_remove(segid))
		die("exporter", "xpmem_remove");
	say("exporter", "removed segid 0x%llx", (long long)segid);
	for (i = 0; i < 2; i++) {
		step_signal(ch[i].to_child[1]);
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;
	}
	say("exporter", failed ? "an attacher failed" : "done");
	return failed;
}
