// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemctl_fixture: sets up a known xpmem state for the xpmemctl tests and holds
 * it while they query.
 *
 * Two processes besides this controller: the exporter ("xf-exporter") maps
 * PAGES pages, fills them and makes segment 1 of them (mode MODE) plus an
 * unused 2-page segment 2 (mode 0600); the attacher ("xf-attacher") gets
 * segment 1 read-only, attaches ATTACH pages at page OFFSET and reads the first
 * TOUCH of them. Then the exporter discards the first attached page
 * (MADV_DONTNEED), which recalls the attacher's mapping once.
 *
 * The controller then prints the state as key=value lines, "ready", and reads
 * commands from stdin, one per line, answering "done CMD" (or "error CMD: ..."):
 *   recall         the exporter discards the first attached page again
 *   remove         the exporter removes segment 1 (permit and attachment stay)
 *   exit-exporter  the exporter process exits
 *   quit           (or end of input) the attacher detaches and releases, all exit
 *
 * Usage: xpmemctl_fixture [--mode OCTAL] [--pages N] [--offset PAGES]
 *                         [--attach PAGES] [--touch PAGES]
 * With fault_around=1 (module parameter) the attachment takes exactly TOUCH faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xpmem.h>

struct msg {
	char cmd;
	int err; /* errno of a failed step, 0 = ok */
	int64_t v[6];
};

struct child {
	pid_t pid;
	int to[2]; /* controller -> child */
	int from[2]; /* child -> controller */
};

static long page_size;
static unsigned long npages = 8, offset = 2, attach_pages = 4, touch = 3;
static unsigned long mode = 0640;

static void die(const char *what)
{
	fprintf(stderr, "xpmemctl_fixture: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void send_msg(int fd, const struct msg *m)
{
	if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		die("write");
}

/* false on end of file */
static int recv_msg(int fd, struct msg *m)
{
	ssize_t n = read(fd, m, sizeof(*m));

	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*m))
		die("read");
	return 1;
}

static void reply(int fd, char cmd, int err, int64_t a, int64_t b, int64_t c, int64_t d)
{
	struct msg m = { .cmd = cmd, .err = err, .v = { a, b, c, d } };

	send_msg(fd, &m);
}

/* ---- exporter ---- */

static void exporter(int in, int out)
{
	char *buf, *buf2;
	xpmem_segid_t seg1 = -1, seg2;
	unsigned long i;
	struct msg m;

	prctl(PR_SET_NAME, "xf-exporter");
	buf = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	buf2 = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || buf2 == MAP_FAILED)
		die("mmap");
	for (i = 0; i < npages; i++)
		memset(buf + i * page_size, 'a' + (int)(i % 26), page_size);
	memset(buf2, 'z', 2 * page_size);

	seg1 = xpmem_make(buf, npages * page_size, XPMEM_PERMIT_MODE, (void *)(uintptr_t)mode);
	if (seg1 == -1)
		die("xpmem_make");
	seg2 = xpmem_make(buf2, 2 * page_size, XPMEM_PERMIT_MODE, (void *)0600);
	if (seg2 == -1)
		die("xpmem_make (segment 2)");
	reply(out, 'm', 0, seg1, (intptr_t)buf, seg2, (intptr_t)buf2);

	while (recv_msg(in, &m)) {
		switch (m.cmd) {
		case 'r': /* recall: the first attached page goes away under the attacher */
			if (madvise(buf + offset * page_size, page_size, MADV_DONTNEED))
				reply(out, 'r', errno, 0, 0, 0, 0);
			else
				reply(out, 'r', 0, 0, 0, 0, 0);
			break;
		case 'R':
			reply(out, 'R', xpmem_remove(seg1) ? errno : 0, 0, 0, 0, 0);
			break;
		case 'q':
			reply(out, 'q', 0, 0, 0, 0, 0);
			_exit(0);
		}
	}
	_exit(0);
}

/* ---- attacher ---- */

static void attacher(int in, int out)
{
	struct xpmem_addr addr;
	xpmem_apid_t apid = -1;
	char *map = NULL;
	unsigned long i;
	struct msg m;

	prctl(PR_SET_NAME, "xf-attacher");
	while (recv_msg(in, &m)) {
		switch (m.cmd) {
		case 'g': /* get, attach, touch */
			apid = xpmem_get(m.v[0], XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
			if (apid == -1) {
				reply(out, 'g', errno, 0, 0, 0, 0);
				break;
			}
			addr.apid = apid;
			addr.offset = (off_t)(offset * page_size);
			map = xpmem_attach(addr, attach_pages * page_size, NULL);
			if (map == (void *)-1) {
				reply(out, 'g', errno, 0, 0, 0, 0);
				break;
			}
			for (i = 0; i < touch; i++) {
				if (map[i * page_size] != 'a' + (int)((offset + i) % 26)) {
					reply(out, 'g', EIO, 0, 0, 0, 0);
					break;
				}
			}
			if (i == touch)
				reply(out, 'g', 0, apid, (intptr_t)map, 0, 0);
			break;
		case 'q':
			if (map && map != (void *)-1 && xpmem_detach(map))
				die("xpmem_detach");
			if (apid != -1 && xpmem_release(apid))
				die("xpmem_release");
			reply(out, 'q', 0, 0, 0, 0, 0);
			_exit(0);
		}
	}
	_exit(0);
}

/* ---- controller ---- */

static void start(struct child *c, void (*body)(int, int))
{
	if (pipe(c->to) || pipe(c->from))
		die("pipe");
	c->pid = fork();
	if (c->pid < 0)
		die("fork");
	if (c->pid == 0) {
		close(c->to[1]);
		close(c->from[0]);
		body(c->to[0], c->from[1]);
	}
	close(c->to[0]);
	close(c->from[1]);
}

/* Sends cmd (with argument a) and waits for the answer; 0 or the child's errno. */
static int ask(struct child *c, char cmd, int64_t a, struct msg *answer)
{
	struct msg m = { .cmd = cmd, .v = { a } };

	send_msg(c->to[1], &m);
	if (!recv_msg(c->from[0], answer)) {
		errno = EPIPE;
		return EPIPE;
	}
	return answer->err;
}

static void finish(struct child *c)
{
	struct msg m;

	if (c->pid <= 0)
		return;
	ask(c, 'q', 0, &m);
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
}

static unsigned long parse(const char *s, int base)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || !*s || *end) {
		fprintf(stderr, "xpmemctl_fixture: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },   { "pages", required_argument, NULL, 'n' },
		{ "offset", required_argument, NULL, 'o' }, { "attach", required_argument, NULL, 'a' },
		{ "touch", required_argument, NULL, 't' },  { NULL, 0, NULL, 0 },
	};
	struct child exp = { 0 }, att = { 0 };
	int64_t seg1, start1, seg2, start2;
	char line[128];
	struct msg m;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': mode = parse(optarg, 8); break;
		case 'n': npages = parse(optarg, 10); break;
		case 'o': offset = parse(optarg, 10); break;
		case 'a': attach_pages = parse(optarg, 10); break;
		case 't': touch = parse(optarg, 10); break;
		default: return 2;
		}
	}
	if (offset + attach_pages > npages || touch > attach_pages || !attach_pages || !touch) {
		fprintf(stderr, "xpmemctl_fixture: need touch <= attach, offset + attach <= pages\n");
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	signal(SIGPIPE, SIG_IGN);
	/* Children first, so no fork ever write-protects the exporter's pages. */
	start(&exp, exporter);
	start(&att, attacher);

	if (ask(&exp, 'm', 0, &m)) {
		errno = m.err;
		die("exporter");
	}
	seg1 = m.v[0];
	start1 = m.v[1];
	seg2 = m.v[2];
	start2 = m.v[3];
	if (ask(&att, 'g', seg1, &m)) {
		errno = m.err;
		die("attacher");
	}
	printf("controller_pid=%d\nexporter_pid=%d\nattacher_pid=%d\nuid=%u\ngid=%u\n", (int)getpid(),
	       (int)exp.pid, (int)att.pid, (unsigned int)geteuid(), (unsigned int)getegid());
	printf("page_size=%ld\n", page_size);
	printf("segid=0x%" PRIx64 "\nseg_start=0x%" PRIx64 "\nseg_size=%lu\nseg_mode=%04lo\n",
	       seg1, start1, npages * page_size, mode);
	printf("segid2=0x%" PRIx64 "\nseg2_start=0x%" PRIx64 "\nseg2_size=%lu\nseg2_mode=0600\n",
	       seg2, start2, 2 * page_size);
	printf("apid=0x%" PRIx64 "\natt_vaddr=0x%" PRIx64 "\natt_offset=%lu\natt_size=%lu\ntouched=%lu\n",
	       m.v[0], m.v[1], offset * page_size, attach_pages * page_size, touch);

	if (ask(&exp, 'r', 0, &m)) {
		errno = m.err;
		die("recall");
	}
	printf("recalls=1\nready\n");
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "quit"))
			break;
		if (!strcmp(line, "recall") || !strcmp(line, "remove")) {
			c = exp.pid <= 0 ? ESRCH : ask(&exp, !strcmp(line, "recall") ? 'r' : 'R', 0, &m);
		} else if (!strcmp(line, "exit-exporter")) {
			finish(&exp);
			c = 0;
		} else if (!*line) {
			continue;
		} else {
			c = EINVAL;
		}
		if (c)
			printf("error %s: %s\n", line, strerror(c));
		else
			printf("done %s\n", line);
		fflush(stdout);
	}
	finish(&att);
	finish(&exp);
	return 0;
}
