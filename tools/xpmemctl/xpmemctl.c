// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemctl: see what is exported, attached and recalled through /dev/xpmem.
 *
 * Everything comes from the XPMEM_CMD_QUERY ioctl (include/xpmem_ioctl.h): one
 * call returns an array of records of one kind. Records only ever grow by
 * appended fields, so each one is read with the stride the kernel reports and
 * only the part both sides know is copied; a reply that did not fit is asked
 * for again with a larger buffer. The kernel decides what is visible: callers
 * without CAP_SYS_ADMIN see the objects of their own uid only.
 *
 * What comes from outside (the reply, the command line) is parsed in
 * xpmemctl_parse.c and records are rendered in xpmemctl_render.c, as
 * libsmartcols tables or, with --json, json-c objects whose field names are
 * documented in man/xpmemctl.8 and do not change. Both are fuzzed by the
 * targets in tests/fuzz/libfuzzer/.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "xpmemctl_parse.h"
#include "xpmemctl_render.h"

#ifndef XPMEMCTL_VERSION
#define XPMEMCTL_VERSION "unknown"
#endif

/* Exit codes (documented in xpmemctl(8)). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_NODEV = 2,
	EXIT_PERM = 3,
	EXIT_NOTFOUND = 4,
	EXIT_FAIL = 5,
};

#define QUERY_ATTEMPTS 8

static const char *device_path = XPMEM_DEVICE_PATH;
static int device_fd = -1;

/* ---- messages ---- */

static void __attribute__((format(printf, 2, 3), noreturn)) fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("xpmemctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

void xpmemctl_oom(void)
{
	fail(EXIT_FAIL, "out of memory");
}

static void usage(FILE *out)
{
	fputs("Usage:\n"
	      "  xpmemctl [options] segments      exported segments\n"
	      "  xpmemctl [options] permits       access permits (xpmem_get)\n"
	      "  xpmemctl [options] attachments   attachments, per process\n"
	      "  xpmemctl [options] stats         global counters\n"
	      "  xpmemctl [options] show SEGID    one segment with its permits and attachments\n"
	      "  xpmemctl [options] watch         refresh stats and segments periodically\n"
	      "  xpmemctl [options] nodes         fabric nodes: state, epoch, heartbeat, window\n"
	      "  xpmemctl [options] ping NODE     kernel round trips to a fabric node (root)\n"
	      "  xpmemctl --version | --help\n"
	      "\n"
	      "Options:\n"
	      "  -j, --json            JSON output (field names: see xpmemctl(8))\n"
	      "  -b, --bytes           sizes in bytes instead of K/M/G units\n"
	      "  -p, --pid PID         only objects of this process (owner, holder or attacher)\n"
	      "  -u, --uid UID|USER    only objects of this uid\n"
	      "  -s, --segid SEGID     only this segment (hex, 0x optional)\n"
	      "  -i, --interval SECS   watch: seconds between refreshes (default 2)\n"
	      "  -c, --count N         watch: exit after N refreshes; ping: round trips (4)\n"
	      "  -V, --version         tool and kernel interface version\n"
	      "  -h, --help            this text\n"
	      "\n"
	      "Environment: XPMEMCTL_DEVICE overrides the device path (default " XPMEM_DEVICE_PATH ").\n"
	      "Exit status: 0 ok, 1 usage, 2 module not loaded, 3 permission denied,\n"
	      "4 segment not found, 5 other error.\n",
	      out);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		xpmemctl_oom();
	return p;
}

/* ---- the device ---- */

static void device_error(const char *what, int err)
{
	if (err == EACCES || err == EPERM)
		fail(EXIT_PERM, "%s: %s: %s", device_path, what, strerror(err));
	fail(EXIT_FAIL, "%s: %s: %s", device_path, what, strerror(err));
}

static int device(void)
{
	const char *env = getenv("XPMEMCTL_DEVICE");

	if (device_fd >= 0)
		return device_fd;
	if (env && *env)
		device_path = env;
	device_fd = open(device_path, O_RDONLY | O_CLOEXEC);
	if (device_fd < 0) {
		int err = errno;

		/* No node, or a stale node whose driver is gone. */
		if (err == ENOENT || err == ENXIO || err == ENODEV)
			fail(EXIT_NODEV, "%s not found: is the xpmem module loaded?", device_path);
		device_error("open", err);
	}
	return device_fd;
}

static void query(uint32_t kind, pid_t pid, int64_t segid, struct xpmemctl_records *out)
{
	size_t buf_size = XPMEMCTL_QUERY_FIRST_RECORDS * xpmemctl_record_size(kind);
	struct xpmem_cmd_query q;
	unsigned char *buf = NULL;
	enum xpmemctl_reply reply;
	int attempt;

	for (attempt = 0;; attempt++) {
		free(buf);
		buf = xcalloc(1, buf_size);
		memset(&q, 0, sizeof(q));
		q.argsz = sizeof(q);
		q.kind = kind;
		q.buf = (uintptr_t)buf;
		q.buf_size = (uint32_t)buf_size;
		q.pid = pid;
		q.segid = segid;
		if (ioctl(device(), XPMEM_CMD_QUERY, &q) < 0) {
			int err = errno;

			if (err == ENOTTY)
				fail(EXIT_FAIL, "%s: the device does not answer XPMEM_CMD_QUERY "
				     "(not this xpmem module?): %s", device_path, strerror(err));
			device_error("XPMEM_CMD_QUERY", err);
		}
		reply = xpmemctl_reply_check(&q, buf_size);
		if (reply == XPMEMCTL_REPLY_MALFORMED)
			fail(EXIT_FAIL, "%s: malformed query reply (record size %u, %u records)",
			     device_path, q.record_size, q.count);
		if (reply == XPMEMCTL_REPLY_COMPLETE)
			break;
		if (buf_size >= XPMEMCTL_QUERY_MAX_BYTES || attempt + 1 >= QUERY_ATTEMPTS) {
			fprintf(stderr, "xpmemctl: warning: showing %u of %u records "
				"(narrow down with --pid or --segid)\n", q.count, q.total);
			break;
		}
		buf_size = xpmemctl_retry_size(&q);
	}
	if (xpmemctl_records_decode(&q, buf, buf_size, out))
		xpmemctl_oom(); /* the reply was checked above: only memory can be missing */
	free(buf);
}

/* Drops the records for which keep() is false. */
static void records_filter(struct xpmemctl_records *r,
			   bool (*keep)(const void *, const struct xpmemctl_options *),
			   const struct xpmemctl_options *o)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		if (!keep(xpmemctl_record(r, i), o))
			continue;
		if (n != i)
			memcpy(r->data + n * r->size, xpmemctl_record(r, i), r->size);
		n++;
	}
	r->n = n;
}

static bool keep_segment(const void *p, const struct xpmemctl_options *o)
{
	const struct xpmem_segment_info *s = p;

	return !o->have_uid || s->owner_uid == o->uid;
}

static bool keep_access(const void *p, const struct xpmemctl_options *o)
{
	const struct xpmem_access_info *a = p;

	return !o->have_uid || a->uid == o->uid;
}

static bool keep_attachment(const void *p, const struct xpmemctl_options *o)
{
	const struct xpmem_attachment_info *a = p;

	return !o->have_uid || a->uid == o->uid;
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b))

static int cmp_segment(const void *pa, const void *pb)
{
	const struct xpmem_segment_info *a = pa, *b = pb;

	if (a->owner_pid != b->owner_pid)
		return CMP(a->owner_pid, b->owner_pid);
	if (a->start != b->start)
		return CMP(a->start, b->start);
	return CMP(a->segid, b->segid);
}

static int cmp_access(const void *pa, const void *pb)
{
	const struct xpmem_access_info *a = pa, *b = pb;

	if (a->pid != b->pid)
		return CMP(a->pid, b->pid);
	if (a->segid != b->segid)
		return CMP(a->segid, b->segid);
	return CMP(a->apid, b->apid);
}

static int cmp_attachment(const void *pa, const void *pb)
{
	const struct xpmem_attachment_info *a = pa, *b = pb;

	if (a->pid != b->pid)
		return CMP(a->pid, b->pid);
	return CMP(a->vaddr, b->vaddr);
}

static void get_segments(const struct xpmemctl_options *o, struct xpmemctl_records *r)
{
	query(XPMEM_QUERY_SEGMENTS, o->have_pid ? o->pid : 0, o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_segment, o);
	qsort(r->data, r->n, r->size, cmp_segment);
}

static void get_accesses(const struct xpmemctl_options *o, struct xpmemctl_records *r)
{
	query(XPMEM_QUERY_ACCESSES, o->have_pid ? o->pid : 0, o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_access, o);
	qsort(r->data, r->n, r->size, cmp_access);
}

static void get_attachments(const struct xpmemctl_options *o, struct xpmemctl_records *r)
{
	query(XPMEM_QUERY_ATTACHMENTS, o->have_pid ? o->pid : 0, o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_attachment, o);
	qsort(r->data, r->n, r->size, cmp_attachment);
}

static void get_stats(struct xpmem_stats_info *st)
{
	struct xpmemctl_records r;

	query(XPMEM_QUERY_STATS, 0, 0, &r);
	if (r.n != 1)
		fail(EXIT_FAIL, "%s: the stats query returned %zu records", device_path, r.n);
	memcpy(st, r.data, sizeof(*st));
	xpmemctl_records_free(&r);
}

/* Command name of a live process, from /proc; false if gone or unreadable. */
static bool proc_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static struct xpmemctl_view view(const struct xpmemctl_options *o)
{
	return (struct xpmemctl_view){ .bytes = o->bytes, .live_comm = proc_comm };
}

/* ---- commands ---- */

static int cmd_segments(const struct xpmemctl_options *o)
{
	struct xpmemctl_view v = view(o);
	struct xpmemctl_records r;

	get_segments(o, &r);
	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "segments", xpmemctl_segments_json(&r));
		xpmemctl_json_print(top, true, stdout);
	} else {
		xpmemctl_table_print(xpmemctl_segments_table(&r, &v), stdout);
	}
	xpmemctl_records_free(&r);
	return EXIT_OK;
}

static int cmd_permits(const struct xpmemctl_options *o)
{
	struct xpmemctl_view v = view(o);
	struct xpmemctl_records r;

	get_accesses(o, &r);
	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "permits", xpmemctl_accesses_json(&r, &v));
		xpmemctl_json_print(top, true, stdout);
	} else {
		xpmemctl_table_print(xpmemctl_accesses_table(&r, &v), stdout);
	}
	xpmemctl_records_free(&r);
	return EXIT_OK;
}

static int cmd_attachments(const struct xpmemctl_options *o)
{
	struct xpmemctl_view v = view(o);
	struct xpmemctl_records r;

	get_attachments(o, &r);
	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "attachments", xpmemctl_attachments_json(&r, &v));
		xpmemctl_json_print(top, true, stdout);
	} else {
		xpmemctl_table_print(xpmemctl_attachments_table(&r, &v), stdout);
	}
	xpmemctl_records_free(&r);
	return EXIT_OK;
}

static int cmd_stats(const struct xpmemctl_options *o)
{
	struct xpmem_stats_info st;

	get_stats(&st);
	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "stats", xpmemctl_stats_json(&st));
		xpmemctl_json_print(top, true, stdout);
	} else {
		xpmemctl_table_print(xpmemctl_stats_table(&st), stdout);
	}
	return EXIT_OK;
}

static int cmd_nodes(const struct xpmemctl_options *o)
{
	struct xpmemctl_records r;

	query(XPMEM_QUERY_NODES, 0, 0, &r);
	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "nodes", xpmemctl_nodes_json(&r));
		xpmemctl_json_print(top, true, stdout);
	} else if (r.n) {
		xpmemctl_table_print(xpmemctl_nodes_table(&r, o->bytes), stdout);
	} else {
		puts("not in a fabric (no xpmemd has joined this node)");
	}
	xpmemctl_records_free(&r);
	return EXIT_OK;
}

/* Kernel-to-kernel round trips through both nodes' daemons. */
static int cmd_ping(const struct xpmemctl_options *o)
{
	unsigned long i, n = o->have_count ? o->count : 4;
	double min = 0, max = 0, sum = 0;
	json_object *arr = NULL;

	if (o->json)
		arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct xpmem_cmd_ping p = { .node = o->node, .size = 64 };
		double us;

		if (ioctl(device(), XPMEM_CMD_PING, &p) < 0) {
			int err = errno;

			if (err == ENOTCONN)
				fail(EXIT_FAIL, "ping node %u: no xpmemd runs on this node", o->node);
			if (err == EHOSTUNREACH || err == EHOSTDOWN)
				fail(EXIT_FAIL, "ping node %u: node not up: %s", o->node, strerror(err));
			device_error("XPMEM_CMD_PING", err);
		}
		us = (double)p.rtt_ns / 1e3;
		min = i == 0 || us < min ? us : min;
		max = us > max ? us : max;
		sum += us;
		if (arr)
			json_object_array_add(arr, json_object_new_uint64(p.rtt_ns));
		else
			printf("node %u: 64 bytes, kernel round trip %.1f us\n", o->node, us);
	}
	if (arr) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd_int(top, "node", o->node);
		xpmemctl_jadd(top, "rtt_ns", arr);
		xpmemctl_json_print(top, true, stdout);
	} else {
		printf("node %u: %lu round trips, min/avg/max %.1f/%.1f/%.1f us\n", o->node, n, min,
		       sum / (double)n, max);
	}
	return EXIT_OK;
}

static int cmd_show(const struct xpmemctl_options *o)
{
	struct xpmemctl_options f = { .have_segid = true, .segid = o->segid };
	struct xpmemctl_records segs, accs, atts;
	struct xpmemctl_view v = view(o);
	const struct xpmem_segment_info *s;

	get_segments(&f, &segs);
	if (segs.n == 0)
		fail(EXIT_NOTFOUND, "segment 0x%" PRIx64 " not found", (uint64_t)o->segid);
	s = xpmemctl_record(&segs, 0);
	get_accesses(&f, &accs);
	get_attachments(&f, &atts);

	if (o->json) {
		json_object *top = xpmemctl_jobject();

		xpmemctl_jadd(top, "segment", xpmemctl_segment_json(s));
		xpmemctl_jadd(top, "permits", xpmemctl_accesses_json(&accs, &v));
		xpmemctl_jadd(top, "attachments", xpmemctl_attachments_json(&atts, &v));
		xpmemctl_json_print(top, true, stdout);
	} else {
		xpmemctl_table_print(xpmemctl_segment_detail(s, &v), stdout);
		printf("\nPermits (%zu visible):\n", accs.n);
		if (accs.n)
			xpmemctl_table_print(xpmemctl_accesses_table(&accs, &v), stdout);
		printf("\nAttachments (%zu visible):\n", atts.n);
		if (atts.n)
			xpmemctl_table_print(xpmemctl_attachments_table(&atts, &v), stdout);
	}
	xpmemctl_records_free(&segs);
	xpmemctl_records_free(&accs);
	xpmemctl_records_free(&atts);
	return EXIT_OK;
}

static volatile sig_atomic_t stop_watch;

static void on_stop(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static int cmd_watch(const struct xpmemctl_options *o)
{
	struct sigaction sa = { .sa_handler = on_stop };
	double interval = o->have_interval ? o->interval : 2.0;
	bool tty = isatty(STDOUT_FILENO);
	struct xpmemctl_view v = view(o);
	unsigned long n;

	/* No SA_RESTART: a signal cuts the sleep short. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (n = 1; !stop_watch; n++) {
		struct xpmem_stats_info st;
		struct xpmemctl_records segs;
		time_t now = time(NULL);
		struct timespec ts;

		get_stats(&st);
		get_segments(o, &segs);
		if (o->json) {
			json_object *top = xpmemctl_jobject();

			xpmemctl_jadd_int(top, "time", (int64_t)now);
			xpmemctl_jadd_u64(top, "refresh", n);
			xpmemctl_jadd(top, "stats", xpmemctl_stats_json(&st));
			xpmemctl_jadd(top, "segments", xpmemctl_segments_json(&segs));
			xpmemctl_json_print(top, false, stdout);
		} else {
			char when[64];
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (n > 1)
				putchar('\n');
			printf("xpmemctl watch: every %gs, %s\n\n", interval, when);
			xpmemctl_table_print(xpmemctl_stats_line(&st), stdout);
			putchar('\n');
			xpmemctl_table_print(xpmemctl_segments_table(&segs, &v), stdout);
		}
		xpmemctl_records_free(&segs);
		fflush(stdout);
		if (o->have_count && n >= o->count)
			break;
		xpmemctl_interval_timespec(interval, &ts);
		while (!stop_watch && nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return EXIT_OK;
}

static int cmd_version(const struct xpmemctl_options *o)
{
	int v;

	/* The tool's own version is known even when the module is not. */
	if (!o->json)
		printf("xpmemctl %s\n", XPMEMCTL_VERSION);
	fflush(stdout);
	v = ioctl(device(), XPMEM_CMD_VERSION, NULL);
	if (v < 0)
		device_error("XPMEM_CMD_VERSION", errno);
	if (o->json) {
		json_object *top = xpmemctl_jobject();
		char iv[16];

		snprintf(iv, sizeof(iv), "0x%08x", (unsigned int)v);
		xpmemctl_jadd_str(top, "version", XPMEMCTL_VERSION);
		xpmemctl_jadd_str(top, "interface_version", iv);
		xpmemctl_json_print(top, true, stdout);
	} else {
		printf("kernel interface 0x%08x\n", (unsigned int)v);
	}
	return EXIT_OK;
}

static bool user_uid(const char *name, uid_t *uid)
{
	struct passwd *pw = getpwnam(name);

	if (!pw)
		return false;
	*uid = pw->pw_uid;
	return true;
}

int main(int argc, char **argv)
{
	struct xpmemctl_options o;
	char *error;

	switch (xpmemctl_parse_args(argc, argv, user_uid, &o, &error)) {
	case XPMEMCTL_ARGS_OK:
		break;
	case XPMEMCTL_ARGS_ERROR:
		fprintf(stderr, "xpmemctl: %s\nTry 'xpmemctl --help' for more information.\n", error);
		free(error);
		return EXIT_USAGE;
	case XPMEMCTL_ARGS_GETOPT:
		/* getopt has said what was wrong. */
		fputs("Try 'xpmemctl --help' for more information.\n", stderr);
		return EXIT_USAGE;
	case XPMEMCTL_ARGS_NO_COMMAND:
		fputs("xpmemctl: no command given\n", stderr);
		usage(stderr);
		return EXIT_USAGE;
	case XPMEMCTL_ARGS_NOMEM:
		xpmemctl_oom();
	}

	switch (o.command) {
	case XPMEMCTL_CMD_HELP:
		usage(stdout);
		return EXIT_OK;
	case XPMEMCTL_CMD_VERSION:
		return cmd_version(&o);
	case XPMEMCTL_CMD_SEGMENTS:
		return cmd_segments(&o);
	case XPMEMCTL_CMD_PERMITS:
		return cmd_permits(&o);
	case XPMEMCTL_CMD_ATTACHMENTS:
		return cmd_attachments(&o);
	case XPMEMCTL_CMD_STATS:
		return cmd_stats(&o);
	case XPMEMCTL_CMD_SHOW:
		return cmd_show(&o);
	case XPMEMCTL_CMD_WATCH:
		return cmd_watch(&o);
	case XPMEMCTL_CMD_NODES:
		return cmd_nodes(&o);
	case XPMEMCTL_CMD_PING:
		return cmd_ping(&o);
	case XPMEMCTL_CMD_NONE:
		break;
	}
	/* xpmemctl_parse_args() returns no other command. */
	return EXIT_USAGE;
}
