// SPDX-License-Identifier: GPL-2.0-only
/*
 * xpmem-bench: timing, JSON output, /proc helpers and exporter child processes.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

size_t pg;

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "xpmem-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *size_str(size_t bytes, char *buf, size_t len)
{
	if (bytes >= MiB && bytes % MiB == 0)
		snprintf(buf, len, "%zu MiB", bytes / MiB);
	else if (bytes >= KiB && bytes % KiB == 0)
		snprintf(buf, len, "%zu KiB", bytes / KiB);
	else
		snprintf(buf, len, "%zu B", bytes);
	return buf;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------ JSON */

static FILE *jf;
static int jdepth;
static bool jfirst[32];
static char jcloser[32]; /* what closes each open level */

static void j_sep(const char *key)
{
	if (!jf)
		return;
	if (!jfirst[jdepth])
		fputc(',', jf);
	jfirst[jdepth] = false;
	fputc('\n', jf);
	for (int i = 0; i < jdepth; i++)
		fputs("  ", jf);
	if (key)
		fprintf(jf, "\"%s\": ", key);
}

void j_open(FILE *f)
{
	jf = f;
	jdepth = 0;
	fputc('{', jf);
	jfirst[0] = true;
}

void j_close(void)
{
	if (!jf)
		return;
	fputs("\n}\n", jf);
	fflush(jf);
}

static void j_push(const char *key, char c)
{
	j_sep(key);
	if (!jf)
		return;
	fputc(c, jf);
	jfirst[++jdepth] = true;
	jcloser[jdepth] = c == '{' ? '}' : ']';
}

void j_obj(const char *key)
{
	j_push(key, '{');
}

void j_arr(const char *key)
{
	j_push(key, '[');
}

void j_end(void)
{
	char c;

	if (!jf)
		return;
	c = jcloser[jdepth--];
	fputc('\n', jf);
	for (int i = 0; i < jdepth; i++)
		fputs("  ", jf);
	fputc(c, jf);
}

void j_num(const char *key, double v)
{
	j_sep(key);
	if (jf)
		fprintf(jf, "%.6g", v);
}

void j_int(const char *key, long long v)
{
	j_sep(key);
	if (jf)
		fprintf(jf, "%lld", v);
}

void j_str(const char *key, const char *v)
{
	j_sep(key);
	if (!jf)
		return;
	fputc('"', jf);
	for (const char *s = v; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', jf);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, jf);
	}
	fputc('"', jf);
}

void j_bool(const char *key, bool v)
{
	j_sep(key);
	if (jf)
		fputs(v ? "true" : "false", jf);
}

/* ------------------------------------------------------------------ system */

int read_str(const char *path, char *buf, size_t len)
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

int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n, len = (ssize_t)strlen(val);

	if (fd < 0)
		return -1;
	n = write(fd, val, (size_t)len);
	close(fd);
	return n == len ? 0 : -1;
}

long smaps_thp_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');

		if (dash && sp && dash < sp && sscanf(line, "%llx-%llx ", &s, &e) == 2) {
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

int global_pages(long long *pinned, long long *unpinned)
{
	FILE *f = fopen("/proc/xpmem/global_pages", "re");
	char line[256];
	int got = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "all pages pinned by XPMEM: %lld", pinned) == 1)
			got |= 1;
		else if (sscanf(line, "all pages unpinned by XPMEM: %lld", unpinned) == 1)
			got |= 2;
	}
	fclose(f);
	return got == 3 ? 0 : -1;
}

long long xpmem_stat(const char *name)
{
	FILE *f = fopen("/proc/xpmem/stats", "re");
	char key[64];
	long long v, ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (strcmp(key, name) == 0)
			ret = v;
	fclose(f);
	return ret;
}

bool hugetlb_1g_free(void)
{
	char buf[32];

	return read_str("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", buf,
			sizeof(buf)) == 0 &&
	       atol(buf) >= 1;
}

char *map_region(size_t len, enum backing b)
{
	const bool thp = b == BACKING_THP;
	size_t extra = thp ? 2 * MiB : 0;
	char *p, *a;

	if (b == BACKING_1G) {
		/* The kernel aligns hugetlb mappings to their page size. */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | 30 << MAP_HUGE_SHIFT, -1, 0);
		if (p == MAP_FAILED)
			die("mmap %zu bytes of 1 GiB hugetlb pages: %s", len, strerror(errno));
		return p;
	}
	p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", len, strerror(errno));
	a = p;
	if (extra) {
		a = (char *)(((uintptr_t)p + extra - 1) & ~(uintptr_t)(extra - 1));
		if (a > p)
			munmap(p, (size_t)(a - p));
		if (a + len < p + len + extra)
			munmap(a + len, (size_t)(p + len + extra - (a + len)));
	}
	if (madvise(a, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0)
		die("madvise(%s): %s", thp ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE", strerror(errno));
	return a;
}

void touch_pages(volatile char *p, size_t len, bool write)
{
	for (size_t off = 0; off < len; off += pg) {
		if (write)
			p[off] = (char)off;
		else
			(void)p[off];
	}
}

/* ------------------------------------------------------------------ exporters */

struct exporter_reply {
	uint64_t addr;
	int64_t segid; /* or -errno */
	long thp_kb;
};

void exporter_start(struct exporter *e, size_t len, enum backing b)
{
	int cmd[2], rep[2];
	struct exporter_reply r;
	pid_t parent = getpid();

	if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	e->pid = fork();
	if (e->pid < 0)
		die("fork: %s", strerror(errno));
	if (e->pid == 0) {
		char *buf, c;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(1);
		close(cmd[1]);
		close(rep[0]);
		buf = map_region(len, b);
		/* Distinct, non-zero contents (no zero page, no KSM). */
		for (size_t off = 0; off < len; off += sizeof(uint64_t))
			*(uint64_t *)(buf + off) = off * 0x9e3779b97f4a7c15ULL + 1;
		r.addr = (uintptr_t)buf;
		r.thp_kb = smaps_thp_kb(buf);
		r.segid = xpmem_make(buf, len, XPMEM_PERMIT_MODE, (void *)0666);
		if (r.segid == -1)
			r.segid = -errno;
		if (write(rep[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		/* Until the parent closes the command pipe. */
		while (read(cmd[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(cmd[0]);
	close(rep[1]);
	if (read(rep[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		die("exporter child died during setup");
	close(rep[0]);
	if (r.segid < 0)
		die("exporter: xpmem_make(%zu bytes): %s", len, strerror((int)-r.segid));
	e->cmd_fd = cmd[1];
	e->addr = r.addr;
	e->len = len;
	e->segid = r.segid;
	e->thp_kb = r.thp_kb;
}

void exporter_stop(struct exporter *e)
{
	int st;

	/* Later children inherited the command pipe too: do not wait for its EOF. */
	close(e->cmd_fd);
	kill(e->pid, SIGKILL);
	waitpid(e->pid, &st, 0);
}

xpmem_apid_t get_rw(xpmem_segid_t segid)
{
	xpmem_apid_t ap = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)0666);

	if (ap == -1)
		die("xpmem_get: %s", strerror(errno));
	return ap;
}

void *attach_or_die(xpmem_apid_t apid, uint64_t offset, size_t len, unsigned int flags)
{
	struct xpmem_addr xa = { .apid = apid, .offset = (off_t)offset };
	void *p = flags ? xpmem_attach_ext(xa, len, NULL, flags) : xpmem_attach(xa, len, NULL);

	if (p == (void *)-1)
		die("xpmem_attach%s(%zu bytes): %s", flags ? "_ext" : "", len, strerror(errno));
	return p;
}

int check_pinned(const char *when, bool print, bool json)
{
	long long pinned = -1, unpinned = -1;
	bool ok;

	if (global_pages(&pinned, &unpinned) != 0) {
		fprintf(stderr, "xpmem-bench: /proc/xpmem/global_pages unreadable (%s)\n", when);
		return -1;
	}
	ok = pinned == 0 && unpinned == 0;
	if (json) {
		j_obj(NULL);
		j_str("when", when);
		j_int("pinned", pinned);
		j_int("unpinned", unpinned);
		j_bool("ok", ok);
		j_end();
	}
	if (print || !ok)
		printf("  pinned pages %s: pinned %lld, unpinned %lld: %s\n", when, pinned, unpinned,
		       ok ? "ok" : "FAILED (must be 0)");
	return ok ? 0 : -1;
}
