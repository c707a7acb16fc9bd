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
 * Human output is made of libsmartcols tables, --json output of json-c objects
 * whose field names are documented in man/xpmemctl.8 and do not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
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

#include <json-c/json.h>
#include <libsmartcols/libsmartcols.h>

#include "xpmem_ioctl.h"

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

/* The kernel refuses replies larger than this (XPMEM_QUERY_MAX_BYTES). */
#define QUERY_MAX_BYTES (16U << 20)
#define QUERY_FIRST_RECORDS 64
#define QUERY_ATTEMPTS 8

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct options {
	bool json;
	bool bytes;
	bool have_pid, have_uid, have_segid, have_interval, have_count;
	pid_t pid;
	uid_t uid;
	int64_t segid;
	double interval;
	unsigned long count;
};

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

static void usage(FILE *out)
{
	fputs("Usage:\n"
	      "  xpmemctl [options] segments      exported segments\n"
	      "  xpmemctl [options] permits       access permits (xpmem_get)\n"
	      "  xpmemctl [options] attachments   attachments, per process\n"
	      "  xpmemctl [options] stats         global counters\n"
	      "  xpmemctl [options] show SEGID    one segment with its permits and attachments\n"
	      "  xpmemctl [options] watch         refresh stats and segments periodically\n"
	      "  xpmemctl --version | --help\n"
	      "\n"
	      "Options:\n"
	      "  -j, --json            JSON output (field names: see xpmemctl(8))\n"
	      "  -b, --bytes           sizes in bytes instead of K/M/G units\n"
	      "  -p, --pid PID         only objects of this process (owner, holder or attacher)\n"
	      "  -u, --uid UID|USER    only objects of this uid\n"
	      "  -s, --segid SEGID     only this segment (hex, 0x optional)\n"
	      "  -i, --interval SECS   watch: seconds between refreshes (default 2)\n"
	      "  -c, --count N         watch: exit after N refreshes\n"
	      "  -V, --version         tool and kernel interface version\n"
	      "  -h, --help            this text\n"
	      "\n"
	      "Environment: XPMEMCTL_DEVICE overrides the device path (default " XPMEM_DEVICE_PATH ").\n"
	      "Exit status: 0 ok, 1 usage, 2 module not loaded, 3 permission denied,\n"
	      "4 segment not found, 5 other error.\n",
	      out);
}

static void __attribute__((format(printf, 1, 2), noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("xpmemctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'xpmemctl --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		fail(EXIT_FAIL, "out of memory");
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

/* Records of one kind, each widened or cut to the layout this tool knows. */
struct records {
	unsigned char *data;
	size_t size; /* sizeof the local struct */
	size_t n;
};

static const void *record(const struct records *r, size_t i)
{
	return r->data + i * r->size;
}

static void query(uint32_t kind, size_t local_size, pid_t pid, int64_t segid, struct records *out)
{
	struct xpmem_cmd_query q;
	unsigned char *buf = NULL;
	size_t buf_size = QUERY_FIRST_RECORDS * local_size;
	size_t i, keep;
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
		if (!q.record_size || (uint64_t)q.count * q.record_size > buf_size)
			fail(EXIT_FAIL, "%s: malformed query reply (record size %u, %u records)",
			     device_path, q.record_size, q.count);
		if (q.total <= q.count)
			break;
		if (buf_size >= QUERY_MAX_BYTES || attempt + 1 >= QUERY_ATTEMPTS) {
			fprintf(stderr, "xpmemctl: warning: showing %u of %u records "
				"(narrow down with --pid or --segid)\n", q.count, q.total);
			break;
		}
		/* Room for what appeared meanwhile too. */
		buf_size = ((size_t)q.total + q.total / 8 + 8) * q.record_size;
		if (buf_size > QUERY_MAX_BYTES)
			buf_size = QUERY_MAX_BYTES;
	}

	out->size = local_size;
	out->n = q.count;
	out->data = xcalloc(q.count, local_size);
	keep = q.record_size < local_size ? q.record_size : local_size;
	for (i = 0; i < q.count; i++)
		memcpy(out->data + i * local_size, buf + i * q.record_size, keep);
	free(buf);
}

static void records_free(struct records *r)
{
	free(r->data);
	r->data = NULL;
	r->n = 0;
}

/* Drops the records for which keep() is false. */
static void records_filter(struct records *r, bool (*keep)(const void *, const struct options *),
			   const struct options *o)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		if (!keep(record(r, i), o))
			continue;
		if (n != i)
			memcpy(r->data + n * r->size, record(r, i), r->size);
		n++;
	}
	r->n = n;
}

static bool keep_segment(const void *p, const struct options *o)
{
	const struct xpmem_segment_info *s = p;

	return !o->have_uid || s->owner_uid == o->uid;
}

static bool keep_access(const void *p, const struct options *o)
{
	const struct xpmem_access_info *a = p;

	return !o->have_uid || a->uid == o->uid;
}

static bool keep_attachment(const void *p, const struct options *o)
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

static void get_segments(const struct options *o, struct records *r)
{
	query(XPMEM_QUERY_SEGMENTS, sizeof(struct xpmem_segment_info), o->have_pid ? o->pid : 0,
	      o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_segment, o);
	qsort(r->data, r->n, r->size, cmp_segment);
}

static void get_accesses(const struct options *o, struct records *r)
{
	query(XPMEM_QUERY_ACCESSES, sizeof(struct xpmem_access_info), o->have_pid ? o->pid : 0,
	      o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_access, o);
	qsort(r->data, r->n, r->size, cmp_access);
}

static void get_attachments(const struct options *o, struct records *r)
{
	query(XPMEM_QUERY_ATTACHMENTS, sizeof(struct xpmem_attachment_info),
	      o->have_pid ? o->pid : 0, o->have_segid ? o->segid : 0, r);
	records_filter(r, keep_attachment, o);
	qsort(r->data, r->n, r->size, cmp_attachment);
}

static void get_stats(struct xpmem_stats_info *st)
{
	struct records r;

	query(XPMEM_QUERY_STATS, sizeof(*st), 0, 0, &r);
	if (r.n != 1)
		fail(EXIT_FAIL, "%s: the stats query returned %zu records", device_path, r.n);
	memcpy(st, r.data, sizeof(*st));
	records_free(&r);
}

/* ---- formatting helpers ---- */

/* The kernel's owner_comm, which need not be terminated if it ever fills the field. */
static void comm_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, XPMEM_QUERY_COMM_LEN);

	memcpy(dst, src, n);
	dst[n] = '\0';
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

static const char *access_name(uint32_t flags)
{
	return flags == XPMEM_IOCTL_RDWR ? "rdwr" : flags == XPMEM_IOCTL_RDONLY ? "rdonly" : "?";
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail(EXIT_FAIL, "out of memory");
	return s;
}

static char *id_string(int64_t id)
{
	return xasprintf("0x%" PRIx64, (uint64_t)id);
}

/* 4096 -> "4K", 1572864 -> "1.5M"; rounds down so a size is never overstated. */
static char *size_string(uint64_t v, bool bytes)
{
	static const char units[] = "BKMGTPE";
	unsigned int u = 0;
	uint64_t div = 1;

	if (bytes)
		return xasprintf("%" PRIu64, v);
	while (u < sizeof(units) - 2 && v / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (u == 0)
		return xasprintf("%" PRIu64 "B", v);
	if (v % div == 0 || v / div >= 100)
		return xasprintf("%" PRIu64 "%c", v / div, units[u]);
	return xasprintf("%" PRIu64 ".%" PRIu64 "%c", v / div, (v % div) * 10 / div, units[u]);
}

/* ---- tables ---- */

struct column {
	const char *name;
	int flags;
};

#define RIGHT SCOLS_FL_RIGHT

static struct libscols_table *table_new(const struct column *cols, size_t n, bool headings)
{
	struct libscols_table *tb = scols_new_table();
	size_t i;

	if (!tb)
		fail(EXIT_FAIL, "out of memory");
	scols_table_enable_noheadings(tb, !headings);
	for (i = 0; i < n; i++)
		if (!scols_table_new_column(tb, cols[i].name, 0, cols[i].flags))
			fail(EXIT_FAIL, "out of memory");
	return tb;
}

static struct libscols_line *table_line(struct libscols_table *tb)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);

	if (!ln)
		fail(EXIT_FAIL, "out of memory");
	return ln;
}

/* Sets cell i to an allocated string, which the table takes over. */
static void cell(struct libscols_line *ln, size_t i, char *s)
{
	if (scols_line_refer_data(ln, i, s))
		fail(EXIT_FAIL, "out of memory");
}

static void table_print(struct libscols_table *tb)
{
	/* libsmartcols prints nothing at all for an empty table: keep the headings. */
	if (!scols_table_get_nlines(tb) && !scols_table_is_noheadings(tb)) {
		struct libscols_line *ln = table_line(tb);
		size_t i;

		for (i = 0; i < scols_table_get_ncols(tb); i++) {
			struct libscols_cell *h = scols_column_get_header(scols_table_get_column(tb, i));

			cell(ln, i, xasprintf("%s", scols_cell_get_data(h)));
		}
		scols_table_enable_noheadings(tb, 1);
	}
	scols_print_table(tb);
	scols_unref_table(tb);
}

/* ---- JSON ---- */

static void jadd(json_object *o, const char *key, json_object *v)
{
	if (!v || json_object_object_add(o, key, v))
		fail(EXIT_FAIL, "out of memory");
}

static void jadd_str(json_object *o, const char *key, const char *s)
{
	jadd(o, key, json_object_new_string(s));
}

static void jadd_id(json_object *o, const char *key, int64_t id)
{
	char *s = id_string(id);

	jadd_str(o, key, s);
	free(s);
}

static void jadd_int(json_object *o, const char *key, int64_t v)
{
	jadd(o, key, json_object_new_int64(v));
}

static void jadd_u64(json_object *o, const char *key, uint64_t v)
{
	jadd(o, key, json_object_new_uint64(v));
}

/* "comm" of a live process, or JSON null once it is gone. */
static void jadd_comm(json_object *o, pid_t pid)
{
	char comm[64];

	if (!proc_comm(pid, comm, sizeof(comm))) {
		if (json_object_object_add(o, "comm", NULL))
			fail(EXIT_FAIL, "out of memory");
		return;
	}
	jadd_str(o, "comm", comm);
}

static json_object *jobject(void)
{
	json_object *o = json_object_new_object();

	if (!o)
		fail(EXIT_FAIL, "out of memory");
	return o;
}

static json_object *jarray(void)
{
	json_object *a = json_object_new_array();

	if (!a)
		fail(EXIT_FAIL, "out of memory");
	return a;
}

static void jappend(json_object *a, json_object *v)
{
	if (json_object_array_add(a, v))
		fail(EXIT_FAIL, "out of memory");
}

static void json_print(json_object *o, bool pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

	puts(json_object_to_json_string_ext(o, flags));
	json_object_put(o);
}

/* ---- segments ---- */

static const struct column segment_cols[] = {
	{ "SEGID", 0 },	       { "PID", RIGHT },     { "COMMAND", 0 },     { "UID", RIGHT },
	{ "START", RIGHT },    { "SIZE", RIGHT },    { "MODE", 0 },	   { "REMOVED", 0 },
	{ "PERMITS", RIGHT },  { "ATTACH", RIGHT },  { "FAULTS", RIGHT },  { "RECALLS", RIGHT },
};

static json_object *segment_json(const struct xpmem_segment_info *s)
{
	json_object *o = jobject();
	char comm[XPMEM_QUERY_COMM_LEN + 1], mode[8];

	comm_copy(comm, s->owner_comm);
	snprintf(mode, sizeof(mode), "%04o", s->mode & 07777);
	jadd_id(o, "segid", s->segid);
	jadd_int(o, "owner_pid", s->owner_pid);
	jadd_str(o, "owner_comm", comm);
	jadd_int(o, "owner_uid", s->owner_uid);
	jadd_int(o, "owner_gid", s->owner_gid);
	jadd_u64(o, "start", s->start);
	jadd_u64(o, "size", s->size);
	jadd_str(o, "mode", mode);
	jadd(o, "removed", json_object_new_boolean(s->removed != 0));
	jadd_int(o, "permits", s->accesses);
	jadd_int(o, "attachments", s->attachments);
	jadd_u64(o, "faults", s->faults);
	jadd_u64(o, "recalls", s->recalls);
	return o;
}

static void segment_row(struct libscols_table *tb, const struct xpmem_segment_info *s,
			const struct options *o)
{
	struct libscols_line *ln = table_line(tb);
	char comm[XPMEM_QUERY_COMM_LEN + 1];

	comm_copy(comm, s->owner_comm);
	cell(ln, 0, id_string(s->segid));
	cell(ln, 1, s->owner_pid ? xasprintf("%d", s->owner_pid) : xasprintf("-"));
	cell(ln, 2, xasprintf("%s", comm[0] ? comm : "-"));
	cell(ln, 3, xasprintf("%u", s->owner_uid));
	cell(ln, 4, xasprintf("0x%" PRIx64, (uint64_t)s->start));
	cell(ln, 5, size_string(s->size, o->bytes));
	cell(ln, 6, xasprintf("%04o", s->mode & 07777));
	cell(ln, 7, xasprintf("%s", s->removed ? "yes" : "no"));
	cell(ln, 8, xasprintf("%u", s->accesses));
	cell(ln, 9, xasprintf("%u", s->attachments));
	cell(ln, 10, xasprintf("%" PRIu64, (uint64_t)s->faults));
	cell(ln, 11, xasprintf("%" PRIu64, (uint64_t)s->recalls));
}

static json_object *segments_json(const struct records *r)
{
	json_object *a = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(a, segment_json(record(r, i)));
	return a;
}

static void segments_table(const struct records *r, const struct options *o)
{
	struct libscols_table *tb = table_new(segment_cols, ARRAY_SIZE(segment_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++)
		segment_row(tb, record(r, i), o);
	table_print(tb);
}

static int cmd_segments(const struct options *o)
{
	struct records r;

	get_segments(o, &r);
	if (o->json) {
		json_object *top = jobject();

		jadd(top, "segments", segments_json(&r));
		json_print(top, true);
	} else {
		segments_table(&r, o);
	}
	records_free(&r);
	return EXIT_OK;
}

/* ---- permits ---- */

static const struct column access_cols[] = {
	{ "APID", 0 },	   { "SEGID", 0 }, { "PID", RIGHT },
	{ "COMMAND", 0 }, { "UID", RIGHT }, { "ACCESS", 0 },
};

static json_object *access_json(const struct xpmem_access_info *a)
{
	json_object *o = jobject();

	jadd_id(o, "apid", a->apid);
	jadd_id(o, "segid", a->segid);
	jadd_int(o, "pid", a->pid);
	jadd_comm(o, a->pid);
	jadd_int(o, "uid", a->uid);
	jadd_str(o, "access", access_name(a->flags));
	return o;
}

static json_object *accesses_json(const struct records *r)
{
	json_object *arr = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(arr, access_json(record(r, i)));
	return arr;
}

static void accesses_table(const struct records *r)
{
	struct libscols_table *tb = table_new(access_cols, ARRAY_SIZE(access_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct xpmem_access_info *a = record(r, i);
		struct libscols_line *ln = table_line(tb);
		char comm[64];

		cell(ln, 0, id_string(a->apid));
		cell(ln, 1, id_string(a->segid));
		cell(ln, 2, xasprintf("%d", a->pid));
		cell(ln, 3, xasprintf("%s", proc_comm(a->pid, comm, sizeof(comm)) ? comm : "-"));
		cell(ln, 4, xasprintf("%u", a->uid));
		cell(ln, 5, xasprintf("%s", access_name(a->flags)));
	}
	table_print(tb);
}

static int cmd_permits(const struct options *o)
{
	struct records r;

	get_accesses(o, &r);
	if (o->json) {
		json_object *top = jobject();

		jadd(top, "permits", accesses_json(&r));
		json_print(top, true);
	} else {
		accesses_table(&r);
	}
	records_free(&r);
	return EXIT_OK;
}

/* ---- attachments ---- */

static const struct column attachment_cols[] = {
	{ "PID", RIGHT },     { "COMMAND", 0 },	   { "UID", RIGHT },   { "SEGID", 0 },
	{ "VADDR", RIGHT },   { "SIZE", RIGHT },   { "OFFSET", RIGHT }, { "ACCESS", 0 },
	{ "VMAS", RIGHT },    { "FAULTS", RIGHT }, { "RECALLS", RIGHT },
};

static json_object *attachment_json(const struct xpmem_attachment_info *a)
{
	json_object *o = jobject();

	jadd_int(o, "pid", a->pid);
	jadd_comm(o, a->pid);
	jadd_int(o, "uid", a->uid);
	jadd_id(o, "segid", a->segid);
	jadd_u64(o, "vaddr", a->vaddr);
	jadd_u64(o, "size", a->size);
	jadd_u64(o, "offset", a->offset);
	jadd_str(o, "access", access_name(a->flags));
	jadd_int(o, "vmas", a->vmas);
	jadd_u64(o, "faults", a->faults);
	jadd_u64(o, "recalls", a->recalls);
	return o;
}

static json_object *attachments_json(const struct records *r)
{
	json_object *arr = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(arr, attachment_json(record(r, i)));
	return arr;
}

static void attachments_table(const struct records *r, const struct options *o)
{
	struct libscols_table *tb = table_new(attachment_cols, ARRAY_SIZE(attachment_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct xpmem_attachment_info *a = record(r, i);
		struct libscols_line *ln = table_line(tb);
		char comm[64];

		cell(ln, 0, xasprintf("%d", a->pid));
		cell(ln, 1, xasprintf("%s", proc_comm(a->pid, comm, sizeof(comm)) ? comm : "-"));
		cell(ln, 2, xasprintf("%u", a->uid));
		cell(ln, 3, id_string(a->segid));
		cell(ln, 4, xasprintf("0x%" PRIx64, (uint64_t)a->vaddr));
		cell(ln, 5, size_string(a->size, o->bytes));
		cell(ln, 6, size_string(a->offset, o->bytes));
		cell(ln, 7, xasprintf("%s", access_name(a->flags)));
		cell(ln, 8, xasprintf("%u", a->vmas));
		cell(ln, 9, xasprintf("%" PRIu64, (uint64_t)a->faults));
		cell(ln, 10, xasprintf("%" PRIu64, (uint64_t)a->recalls));
	}
	table_print(tb);
}

static int cmd_attachments(const struct options *o)
{
	struct records r;

	get_attachments(o, &r);
	if (o->json) {
		json_object *top = jobject();

		jadd(top, "attachments", attachments_json(&r));
		json_print(top, true);
	} else {
		attachments_table(&r, o);
	}
	records_free(&r);
	return EXIT_OK;
}

/* ---- stats ---- */

struct stat_field {
	const char *name; /* as in /proc/xpmem/stats */
	size_t offset;
	const char *what;
};

#define STAT(name, what) { #name, offsetof(struct xpmem_stats_info, name), what }
static const struct stat_field stat_fields[] = {
	STAT(segments_live, "segments alive, removed ones still in use included"),
	STAT(accesses_live, "permits alive"),
	STAT(attachments_live, "attachments alive"),
	STAT(makes, "segments made"),
	STAT(removes, "segments removed (by xpmem_remove or exit)"),
	STAT(gets, "permits obtained"),
	STAT(releases, "permits released (by xpmem_release or exit)"),
	STAT(attaches, "attachments made"),
	STAT(detaches, "attachments detached with xpmem_detach"),
	STAT(faults, "attacher page faults"),
	STAT(fault_retries, "faults retried after a concurrent recall"),
	STAT(recalls, "recalls (exporter changes that revoked attacher mappings)"),
	STAT(pinned_pages, "pages pinned (always 0: nothing is pinned)"),
};
#undef STAT
#define NSTATS ARRAY_SIZE(stat_fields)

static uint64_t stat_value(const struct xpmem_stats_info *st, size_t i)
{
	uint64_t v;

	memcpy(&v, (const unsigned char *)st + stat_fields[i].offset, sizeof(v));
	return v;
}

static json_object *stats_json(const struct xpmem_stats_info *st)
{
	json_object *o = jobject();
	size_t i;

	for (i = 0; i < NSTATS; i++)
		jadd_u64(o, stat_fields[i].name, stat_value(st, i));
	return o;
}

static int cmd_stats(const struct options *o)
{
	static const struct column cols[] = { { "COUNTER", 0 }, { "VALUE", RIGHT }, { "DESCRIPTION", 0 } };
	struct xpmem_stats_info st;

	get_stats(&st);
	if (o->json) {
		json_object *top = jobject();

		jadd(top, "stats", stats_json(&st));
		json_print(top, true);
	} else {
		struct libscols_table *tb = table_new(cols, 3, true);
		size_t i;

		for (i = 0; i < NSTATS; i++) {
			struct libscols_line *ln = table_line(tb);

			cell(ln, 0, xasprintf("%s", stat_fields[i].name));
			cell(ln, 1, xasprintf("%" PRIu64, stat_value(&st, i)));
			cell(ln, 2, xasprintf("%s", stat_fields[i].what));
		}
		table_print(tb);
	}
	return EXIT_OK;
}

/* ---- show ---- */

static int cmd_show(const struct options *o)
{
	struct options f = { .have_segid = true, .segid = o->segid };
	struct records segs, accs, atts;
	const struct xpmem_segment_info *s;

	get_segments(&f, &segs);
	if (segs.n == 0)
		fail(EXIT_NOTFOUND, "segment 0x%" PRIx64 " not found", (uint64_t)o->segid);
	s = record(&segs, 0);
	get_accesses(&f, &accs);
	get_attachments(&f, &atts);

	if (o->json) {
		json_object *top = jobject();

		jadd(top, "segment", segment_json(s));
		jadd(top, "permits", accesses_json(&accs));
		jadd(top, "attachments", attachments_json(&atts));
		json_print(top, true);
	} else {
		static const struct column kv[] = { { "FIELD", 0 }, { "VALUE", 0 } };
		struct libscols_table *tb = table_new(kv, 2, false);
		char comm[XPMEM_QUERY_COMM_LEN + 1];
		struct libscols_line *ln;

		comm_copy(comm, s->owner_comm);
#define KV(k, v)                  \
	do {                      \
		ln = table_line(tb); \
		cell(ln, 0, xasprintf("%s", k)); \
		cell(ln, 1, v);   \
	} while (0)
		KV("segid:", id_string(s->segid));
		KV("owner:", s->owner_pid ? xasprintf("%d (%s)", s->owner_pid, comm)
					  : xasprintf("- (%s, gone)", comm));
		KV("uid/gid:", xasprintf("%u/%u", s->owner_uid, s->owner_gid));
		KV("range:", xasprintf("0x%" PRIx64 "-0x%" PRIx64, (uint64_t)s->start,
				       (uint64_t)(s->start + s->size)));
		KV("size:", size_string(s->size, o->bytes));
		KV("mode:", xasprintf("%04o", s->mode & 07777));
		KV("removed:", xasprintf("%s", s->removed ? "yes" : "no"));
		KV("permits:", xasprintf("%u", s->accesses));
		KV("attachments:", xasprintf("%u", s->attachments));
		KV("faults:", xasprintf("%" PRIu64, (uint64_t)s->faults));
		KV("recalls:", xasprintf("%" PRIu64, (uint64_t)s->recalls));
#undef KV
		table_print(tb);
		printf("\nPermits (%zu visible):\n", accs.n);
		if (accs.n)
			accesses_table(&accs);
		printf("\nAttachments (%zu visible):\n", atts.n);
		if (atts.n)
			attachments_table(&atts, o);
	}
	records_free(&segs);
	records_free(&accs);
	records_free(&atts);
	return EXIT_OK;
}

/* ---- watch ---- */

static volatile sig_atomic_t stop_watch;

static void on_stop(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static void stats_line(const struct xpmem_stats_info *st)
{
	static const struct column cols[] = {
		{ "SEGMENTS", RIGHT }, { "PERMITS", RIGHT }, { "ATTACHMENTS", RIGHT }, { "MAKES", RIGHT },
		{ "GETS", RIGHT },     { "ATTACHES", RIGHT }, { "FAULTS", RIGHT },	{ "RETRIES", RIGHT },
		{ "RECALLS", RIGHT },  { "PINNED", RIGHT },
	};
	const uint64_t v[] = { st->segments_live, st->accesses_live, st->attachments_live, st->makes,
			       st->gets,	  st->attaches,	     st->faults,	   st->fault_retries,
			       st->recalls,	  st->pinned_pages };
	struct libscols_table *tb = table_new(cols, ARRAY_SIZE(cols), true);
	struct libscols_line *ln = table_line(tb);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(v); i++)
		cell(ln, i, xasprintf("%" PRIu64, v[i]));
	table_print(tb);
}

static int cmd_watch(const struct options *o)
{
	struct sigaction sa = { .sa_handler = on_stop };
	double interval = o->have_interval ? o->interval : 2.0;
	bool tty = isatty(STDOUT_FILENO);
	unsigned long n;

	/* No SA_RESTART: a signal cuts the sleep short. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (n = 1; !stop_watch; n++) {
		struct xpmem_stats_info st;
		struct records segs;
		time_t now = time(NULL);

		get_stats(&st);
		get_segments(o, &segs);
		if (o->json) {
			json_object *top = jobject();

			jadd_int(top, "time", (int64_t)now);
			jadd_u64(top, "refresh", n);
			jadd(top, "stats", stats_json(&st));
			jadd(top, "segments", segments_json(&segs));
			json_print(top, false);
		} else {
			char when[64];
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (n > 1)
				putchar('\n');
			printf("xpmemctl watch: every %gs, %s\n\n", interval, when);
			stats_line(&st);
			putchar('\n');
			segments_table(&segs, o);
		}
		records_free(&segs);
		fflush(stdout);
		if (o->have_count && n >= o->count)
			break;
		{
			struct timespec ts = { .tv_sec = (time_t)interval,
					       .tv_nsec = (long)((interval - floor(interval)) * 1e9) };

			while (!stop_watch && nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}
	return EXIT_OK;
}

/* ---- version ---- */

static int cmd_version(const struct options *o)
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
		json_object *top = jobject();
		char iv[16];

		snprintf(iv, sizeof(iv), "0x%08x", (unsigned int)v);
		jadd_str(top, "version", XPMEMCTL_VERSION);
		jadd_str(top, "interface_version", iv);
		json_print(top, true);
	} else {
		printf("kernel interface 0x%08x\n", (unsigned int)v);
	}
	return EXIT_OK;
}

/* ---- arguments ---- */

static bool parse_ulong(const char *s, int base, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int64_t parse_segid(const char *s)
{
	unsigned long long v;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	/* strtoull would accept a second 0x and leading blanks: digits only. */
	if (!*p || strspn(p, "0123456789abcdefABCDEF") != strlen(p) ||
	    !parse_ulong(p, 16, INT64_MAX, &v) || v == 0)
		usage_error("invalid segid '%s' (expected a positive hex number such as 0x1a2b)", s);
	return (int64_t)v;
}

enum { CMD_NONE, CMD_SEGMENTS, CMD_PERMITS, CMD_ATTACHMENTS, CMD_STATS, CMD_SHOW, CMD_WATCH };

static const struct {
	const char *name;
	int cmd;
} commands[] = {
	{ "segments", CMD_SEGMENTS }, { "permits", CMD_PERMITS }, { "attachments", CMD_ATTACHMENTS },
	{ "stats", CMD_STATS },	      { "show", CMD_SHOW },	  { "watch", CMD_WATCH },
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },	     { "bytes", no_argument, NULL, 'b' },
		{ "pid", required_argument, NULL, 'p' },     { "uid", required_argument, NULL, 'u' },
		{ "segid", required_argument, NULL, 's' },   { "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },   { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	struct options o = { 0 };
	bool version = false;
	unsigned long long v;
	const char *name;
	int c, cmd = CMD_NONE;
	size_t i;

	while ((c = getopt_long(argc, argv, "jbp:u:s:i:c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'b':
			o.bytes = true;
			break;
		case 'p':
			if (!parse_ulong(optarg, 10, INT_MAX, &v) || v == 0)
				usage_error("invalid pid '%s'", optarg);
			o.have_pid = true;
			o.pid = (pid_t)v;
			break;
		case 'u':
			if (parse_ulong(optarg, 10, UINT32_MAX - 1, &v)) {
				o.uid = (uid_t)v;
			} else {
				struct passwd *pw = getpwnam(optarg);

				if (!pw)
					usage_error("invalid uid or unknown user '%s'", optarg);
				o.uid = pw->pw_uid;
			}
			o.have_uid = true;
			break;
		case 's':
			o.have_segid = true;
			o.segid = parse_segid(optarg);
			break;
		case 'i': {
			char *end;

			errno = 0;
			o.interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o.interval) || o.interval <= 0 ||
			    o.interval > 86400)
				usage_error("invalid interval '%s' (seconds, > 0)", optarg);
			o.have_interval = true;
			break;
		}
		case 'c':
			if (!parse_ulong(optarg, 10, ULONG_MAX, &v) || v == 0)
				usage_error("invalid count '%s' (a number >= 1)", optarg);
			o.have_count = true;
			o.count = (unsigned long)v;
			break;
		case 'V':
			version = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			/* getopt has said what was wrong. */
			fputs("Try 'xpmemctl --help' for more information.\n", stderr);
			return EXIT_USAGE;
		}
	}

	if (version) {
		if (optind < argc || o.have_pid || o.have_uid || o.have_segid || o.have_interval ||
		    o.have_count || o.bytes)
			usage_error("--version takes no command and no option but --json");
		return cmd_version(&o);
	}
	if (optind >= argc) {
		fputs("xpmemctl: no command given\n", stderr);
		usage(stderr);
		return EXIT_USAGE;
	}
	name = argv[optind++];
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			cmd = commands[i].cmd;
	if (cmd == CMD_NONE)
		usage_error("unknown command '%s'", name);

	if (cmd == CMD_SHOW) {
		if (optind >= argc)
			usage_error("show: missing SEGID");
		o.segid = parse_segid(argv[optind++]);
	}
	if (optind < argc)
		usage_error("%s: unexpected argument '%s'", name, argv[optind]);
	if ((o.have_interval || o.have_count) && cmd != CMD_WATCH)
		usage_error("%s: --interval and --count are for watch only", name);
	if ((o.have_pid || o.have_uid || o.have_segid) && (cmd == CMD_STATS || cmd == CMD_SHOW))
		usage_error("%s: --pid, --uid and --segid are for segments, permits, attachments and watch",
			    name);

	switch (cmd) {
	case CMD_SEGMENTS:
		return cmd_segments(&o);
	case CMD_PERMITS:
		return cmd_permits(&o);
	case CMD_ATTACHMENTS:
		return cmd_attachments(&o);
	case CMD_STATS:
		return cmd_stats(&o);
	case CMD_SHOW:
		return cmd_show(&o);
	default:
		return cmd_watch(&o);
	}
}
