// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemctl: query records as JSON and tables (see xpmemctl_render.h). The JSON
 * field names are documented in man/xpmemctl.8 and do not change.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xpmemctl_render.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RIGHT SCOLS_FL_RIGHT

char *xpmemctl_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		xpmemctl_oom();
	return s;
}

static char *id_string(int64_t id)
{
	char buf[XPMEMCTL_ID_TEXT];

	xpmemctl_id_text(buf, id);
	return xpmemctl_asprintf("%s", buf);
}

static char *size_string(uint64_t v, bool bytes)
{
	char buf[XPMEMCTL_SIZE_TEXT];

	xpmemctl_size_text(buf, v, bytes);
	return xpmemctl_asprintf("%s", buf);
}

/* ---- tables ---- */

struct column {
	const char *name;
	int flags;
};

static struct libscols_table *table_new(const struct column *cols, size_t n, bool headings)
{
	struct libscols_table *tb = scols_new_table();
	size_t i;

	if (!tb)
		xpmemctl_oom();
	scols_table_enable_noheadings(tb, !headings);
	for (i = 0; i < n; i++)
		if (!scols_table_new_column(tb, cols[i].name, 0, cols[i].flags))
			xpmemctl_oom();
	return tb;
}

static struct libscols_line *table_line(struct libscols_table *tb)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);

	if (!ln)
		xpmemctl_oom();
	return ln;
}

/* Sets cell i to an allocated string, which the table takes over. */
static void cell(struct libscols_line *ln, size_t i, char *s)
{
	if (scols_line_refer_data(ln, i, s))
		xpmemctl_oom();
}

/* The command name of a live process for a table cell: libsmartcols escapes its bytes. */
static char *live_comm_cell(const struct xpmemctl_view *v, pid_t pid)
{
	char comm[XPMEMCTL_COMM_MAX];

	return xpmemctl_asprintf("%s", v->live_comm(pid, comm, sizeof(comm)) ? comm : "-");
}

void xpmemctl_table_print(struct libscols_table *tb, FILE *out)
{
	/* libsmartcols prints nothing at all for an empty table: keep the headings. */
	if (!scols_table_get_nlines(tb) && !scols_table_is_noheadings(tb)) {
		struct libscols_line *ln = table_line(tb);
		size_t i;

		for (i = 0; i < scols_table_get_ncols(tb); i++) {
			struct libscols_column *col = scols_table_get_column(tb, i);
			struct libscols_cell *h = scols_column_get_header(col);

			cell(ln, i, xpmemctl_asprintf("%s", scols_cell_get_data(h)));
		}
		scols_table_enable_noheadings(tb, 1);
	}
	scols_table_set_stream(tb, out);
	scols_print_table(tb);
	scols_unref_table(tb);
}

/* ---- JSON ---- */

json_object *xpmemctl_jobject(void)
{
	json_object *o = json_object_new_object();

	if (!o)
		xpmemctl_oom();
	return o;
}

static json_object *jarray(void)
{
	json_object *a = json_object_new_array();

	if (!a)
		xpmemctl_oom();
	return a;
}

static void jappend(json_object *a, json_object *v)
{
	if (json_object_array_add(a, v))
		xpmemctl_oom();
}

void xpmemctl_jadd(json_object *o, const char *key, json_object *v)
{
	if (!v || json_object_object_add(o, key, v))
		xpmemctl_oom();
}

void xpmemctl_jadd_str(json_object *o, const char *key, const char *s)
{
	xpmemctl_jadd(o, key, json_object_new_string(s));
}

static void jadd_id(json_object *o, const char *key, int64_t id)
{
	char buf[XPMEMCTL_ID_TEXT];

	xpmemctl_id_text(buf, id);
	xpmemctl_jadd_str(o, key, buf);
}

void xpmemctl_jadd_int(json_object *o, const char *key, int64_t v)
{
	xpmemctl_jadd(o, key, json_object_new_int64(v));
}

void xpmemctl_jadd_u64(json_object *o, const char *key, uint64_t v)
{
	xpmemctl_jadd(o, key, json_object_new_uint64(v));
}

/* A name as a JSON string, which must be UTF-8. */
static void jadd_name(json_object *o, const char *key, const char *name, size_t len)
{
	char *text = malloc(XPMEMCTL_NAME_TEXT(len));

	if (!text)
		xpmemctl_oom();
	xpmemctl_name_text(text, name, len);
	xpmemctl_jadd_str(o, key, text);
	free(text);
}

/* "comm" of a live process, or JSON null once it is gone. */
static void jadd_comm(json_object *o, pid_t pid, const struct xpmemctl_view *v)
{
	char comm[XPMEMCTL_COMM_MAX];

	if (!v->live_comm(pid, comm, sizeof(comm))) {
		if (json_object_object_add(o, "comm", NULL))
			xpmemctl_oom();
		return;
	}
	jadd_name(o, "comm", comm, sizeof(comm));
}

void xpmemctl_json_print(json_object *o, bool pretty, FILE *out)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

	fputs(json_object_to_json_string_ext(o, flags), out);
	fputc('\n', out);
	json_object_put(o);
}

/* ---- segments ---- */

static const struct column segment_cols[] = {
	{ "SEGID", 0 },	       { "PID", RIGHT },     { "COMMAND", 0 },     { "UID", RIGHT },
	{ "START", RIGHT },    { "SIZE", RIGHT },    { "MODE", 0 },	   { "REMOVED", 0 },
	{ "PERMITS", RIGHT },  { "ATTACH", RIGHT },  { "FAULTS", RIGHT },  { "RECALLS", RIGHT },
	{ "MAPPED", RIGHT },   { "HUGE", RIGHT },	     { "RPERMITS", RIGHT }, { "RPINNED", RIGHT },
};

/* Bytes that attacher entries map now, and the part of it mapped with 2 MiB or 1 GiB entries. */
static uint64_t mapped_bytes(const struct xpmem_segment_info *s)
{
	return s->mapped_4k * 4096 + s->mapped_2m * (2u << 20) + s->mapped_1g * (1u << 30);
}

static char *huge_share(const struct xpmem_segment_info *s)
{
	uint64_t all = mapped_bytes(s);

	if (!all)
		return xpmemctl_asprintf("-");
	return xpmemctl_asprintf("%.0f%%", 100.0 * (double)(all - s->mapped_4k * 4096) / (double)all);
}

json_object *xpmemctl_segment_json(const struct xpmem_segment_info *s)
{
	json_object *o = xpmemctl_jobject();
	char mode[8];

	snprintf(mode, sizeof(mode), "%04o", s->mode & 07777);
	jadd_id(o, "segid", s->segid);
	xpmemctl_jadd_int(o, "owner_pid", s->owner_pid);
	jadd_name(o, "owner_comm", s->owner_comm, sizeof(s->owner_comm));
	xpmemctl_jadd_int(o, "owner_uid", s->owner_uid);
	xpmemctl_jadd_int(o, "owner_gid", s->owner_gid);
	xpmemctl_jadd_u64(o, "start", s->start);
	xpmemctl_jadd_u64(o, "size", s->size);
	xpmemctl_jadd_str(o, "mode", mode);
	xpmemctl_jadd(o, "removed", json_object_new_boolean(s->removed != 0));
	xpmemctl_jadd_int(o, "permits", s->accesses);
	xpmemctl_jadd_int(o, "attachments", s->attachments);
	xpmemctl_jadd_u64(o, "faults", s->faults);
	xpmemctl_jadd_u64(o, "huge_faults", s->huge_faults);
	xpmemctl_jadd_u64(o, "recalls", s->recalls);
	xpmemctl_jadd_u64(o, "mapped_4k", s->mapped_4k);
	xpmemctl_jadd_u64(o, "mapped_2m", s->mapped_2m);
	xpmemctl_jadd_u64(o, "mapped_1g", s->mapped_1g);
	xpmemctl_jadd_int(o, "remote_permits", s->remote_permits);
	xpmemctl_jadd_int(o, "remote_nodes", s->remote_nodes);
	xpmemctl_jadd_u64(o, "remote_pinned_pages", s->remote_pages);
	return o;
}

json_object *xpmemctl_segments_json(const struct xpmemctl_records *r)
{
	json_object *a = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(a, xpmemctl_segment_json(xpmemctl_record(r, i)));
	return a;
}

static void segment_row(struct libscols_table *tb, const struct xpmem_segment_info *s,
			const struct xpmemctl_view *v)
{
	struct libscols_line *ln = table_line(tb);
	char comm[XPMEM_QUERY_COMM_LEN + 1];

	xpmemctl_name_raw(comm, s->owner_comm, sizeof(s->owner_comm));
	cell(ln, 0, id_string(s->segid));
	cell(ln, 1, s->owner_pid ? xpmemctl_asprintf("%d", s->owner_pid) : xpmemctl_asprintf("-"));
	cell(ln, 2, xpmemctl_asprintf("%s", comm[0] ? comm : "-"));
	cell(ln, 3, xpmemctl_asprintf("%u", s->owner_uid));
	cell(ln, 4, xpmemctl_asprintf("0x%" PRIx64, (uint64_t)s->start));
	cell(ln, 5, size_string(s->size, v->bytes));
	cell(ln, 6, xpmemctl_asprintf("%04o", s->mode & 07777));
	cell(ln, 7, xpmemctl_asprintf("%s", s->removed ? "yes" : "no"));
	cell(ln, 8, xpmemctl_asprintf("%u", s->accesses));
	cell(ln, 9, xpmemctl_asprintf("%u", s->attachments));
	cell(ln, 10, xpmemctl_asprintf("%" PRIu64, (uint64_t)s->faults));
	cell(ln, 11, xpmemctl_asprintf("%" PRIu64, (uint64_t)s->recalls));
	cell(ln, 12, size_string(mapped_bytes(s), v->bytes));
	cell(ln, 13, huge_share(s));
	cell(ln, 14, xpmemctl_asprintf("%u", s->remote_permits));
	cell(ln, 15, size_string(s->remote_pages * 4096, v->bytes));
}

struct libscols_table *xpmemctl_segments_table(const struct xpmemctl_records *r,
					       const struct xpmemctl_view *v)
{
	struct libscols_table *tb = table_new(segment_cols, ARRAY_SIZE(segment_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++)
		segment_row(tb, xpmemctl_record(r, i), v);
	return tb;
}

struct libscols_table *xpmemctl_segment_detail(const struct xpmem_segment_info *s,
					       const struct xpmemctl_view *v)
{
	static const struct column kv[] = { { "FIELD", 0 }, { "VALUE", 0 } };
	struct libscols_table *tb = table_new(kv, 2, false);
	char comm[XPMEM_QUERY_COMM_LEN + 1];
	struct libscols_line *ln;

	xpmemctl_name_raw(comm, s->owner_comm, sizeof(s->owner_comm));
#define KV(k, val)                                         \
	do {                                               \
		ln = table_line(tb);                       \
		cell(ln, 0, xpmemctl_asprintf("%s", k));   \
		cell(ln, 1, val);                          \
	} while (0)
	KV("segid:", id_string(s->segid));
	KV("owner:", s->owner_pid ? xpmemctl_asprintf("%d (%s)", s->owner_pid, comm)
				  : xpmemctl_asprintf("- (%s, gone)", comm));
	KV("uid/gid:", xpmemctl_asprintf("%u/%u", s->owner_uid, s->owner_gid));
	/* The end wraps for a malformed record; the kernel keeps ranges below TASK_SIZE. */
	KV("range:", xpmemctl_asprintf("0x%" PRIx64 "-0x%" PRIx64, (uint64_t)s->start,
				       (uint64_t)(s->start + s->size)));
	KV("size:", size_string(s->size, v->bytes));
	KV("mode:", xpmemctl_asprintf("%04o", s->mode & 07777));
	KV("removed:", xpmemctl_asprintf("%s", s->removed ? "yes" : "no"));
	KV("permits:", xpmemctl_asprintf("%u", s->accesses));
	KV("attachments:", xpmemctl_asprintf("%u", s->attachments));
	KV("faults:", xpmemctl_asprintf("%" PRIu64 " (%" PRIu64 " mapped 2 MiB or 1 GiB)",
					(uint64_t)s->faults, (uint64_t)s->huge_faults));
	KV("recalls:", xpmemctl_asprintf("%" PRIu64, (uint64_t)s->recalls));
	KV("mapped now:", xpmemctl_asprintf("%" PRIu64 " x 4 KiB, %" PRIu64 " x 2 MiB, %" PRIu64 " x 1 GiB",
					    (uint64_t)s->mapped_4k, (uint64_t)s->mapped_2m,
					    (uint64_t)s->mapped_1g));
	KV("other nodes:", xpmemctl_asprintf("%u permits on %u nodes, %" PRIu64 " pages pinned",
					     s->remote_permits, s->remote_nodes,
					     (uint64_t)s->remote_pages));
#undef KV
	return tb;
}

/* ---- permits ---- */

static const struct column access_cols[] = {
	{ "APID", 0 },	   { "SEGID", 0 }, { "PID", RIGHT },
	{ "COMMAND", 0 }, { "UID", RIGHT }, { "ACCESS", 0 },
};

static json_object *access_json(const struct xpmem_access_info *a, const struct xpmemctl_view *v)
{
	json_object *o = xpmemctl_jobject();

	jadd_id(o, "apid", a->apid);
	jadd_id(o, "segid", a->segid);
	xpmemctl_jadd_int(o, "pid", a->pid);
	jadd_comm(o, a->pid, v);
	xpmemctl_jadd_int(o, "uid", a->uid);
	xpmemctl_jadd_str(o, "access", xpmemctl_access_name(a->flags));
	return o;
}

json_object *xpmemctl_accesses_json(const struct xpmemctl_records *r,
				    const struct xpmemctl_view *v)
{
	json_object *arr = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(arr, access_json(xpmemctl_record(r, i), v));
	return arr;
}

struct libscols_table *xpmemctl_accesses_table(const struct xpmemctl_records *r,
					       const struct xpmemctl_view *v)
{
	struct libscols_table *tb = table_new(access_cols, ARRAY_SIZE(access_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct xpmem_access_info *a = xpmemctl_record(r, i);
		struct libscols_line *ln = table_line(tb);

		cell(ln, 0, id_string(a->apid));
		cell(ln, 1, id_string(a->segid));
		cell(ln, 2, xpmemctl_asprintf("%d", a->pid));
		cell(ln, 3, live_comm_cell(v, a->pid));
		cell(ln, 4, xpmemctl_asprintf("%u", a->uid));
		cell(ln, 5, xpmemctl_asprintf("%s", xpmemctl_access_name(a->flags)));
	}
	return tb;
}

/* ---- attachments ---- */

static const struct column attachment_cols[] = {
	{ "PID", RIGHT },     { "COMMAND", 0 },	   { "UID", RIGHT },   { "SEGID", 0 },
	{ "VADDR", RIGHT },   { "SIZE", RIGHT },   { "OFFSET", RIGHT }, { "ACCESS", 0 },
	{ "VMAS", RIGHT },    { "FAULTS", RIGHT }, { "RECALLS", RIGHT }, { "4K", RIGHT },
	{ "2M", RIGHT },      { "1G", RIGHT },	   { "NODE", RIGHT },
};

static json_object *attachment_json(const struct xpmem_attachment_info *a,
				    const struct xpmemctl_view *v)
{
	json_object *o = xpmemctl_jobject();

	xpmemctl_jadd_int(o, "pid", a->pid);
	jadd_comm(o, a->pid, v);
	xpmemctl_jadd_int(o, "uid", a->uid);
	jadd_id(o, "segid", a->segid);
	xpmemctl_jadd_u64(o, "vaddr", a->vaddr);
	xpmemctl_jadd_u64(o, "size", a->size);
	xpmemctl_jadd_u64(o, "offset", a->offset);
	xpmemctl_jadd_str(o, "access", xpmemctl_access_name(a->flags));
	xpmemctl_jadd_int(o, "vmas", a->vmas);
	xpmemctl_jadd_u64(o, "faults", a->faults);
	xpmemctl_jadd_u64(o, "huge_faults", a->huge_faults);
	xpmemctl_jadd_u64(o, "recalls", a->recalls);
	xpmemctl_jadd_u64(o, "mapped_4k", a->mapped_4k);
	xpmemctl_jadd_u64(o, "mapped_2m", a->mapped_2m);
	xpmemctl_jadd_u64(o, "mapped_1g", a->mapped_1g);
	xpmemctl_jadd_int(o, "remote_node", a->remote_node);
	return o;
}

json_object *xpmemctl_attachments_json(const struct xpmemctl_records *r,
				       const struct xpmemctl_view *v)
{
	json_object *arr = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(arr, attachment_json(xpmemctl_record(r, i), v));
	return arr;
}

struct libscols_table *xpmemctl_attachments_table(const struct xpmemctl_records *r,
						  const struct xpmemctl_view *v)
{
	struct libscols_table *tb = table_new(attachment_cols, ARRAY_SIZE(attachment_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct xpmem_attachment_info *a = xpmemctl_record(r, i);
		struct libscols_line *ln = table_line(tb);

		cell(ln, 0, xpmemctl_asprintf("%d", a->pid));
		cell(ln, 1, live_comm_cell(v, a->pid));
		cell(ln, 2, xpmemctl_asprintf("%u", a->uid));
		cell(ln, 3, id_string(a->segid));
		cell(ln, 4, xpmemctl_asprintf("0x%" PRIx64, (uint64_t)a->vaddr));
		cell(ln, 5, size_string(a->size, v->bytes));
		cell(ln, 6, size_string(a->offset, v->bytes));
		cell(ln, 7, xpmemctl_asprintf("%s", xpmemctl_access_name(a->flags)));
		cell(ln, 8, xpmemctl_asprintf("%u", a->vmas));
		cell(ln, 9, xpmemctl_asprintf("%" PRIu64, (uint64_t)a->faults));
		cell(ln, 10, xpmemctl_asprintf("%" PRIu64, (uint64_t)a->recalls));
		cell(ln, 11, xpmemctl_asprintf("%" PRIu64, (uint64_t)a->mapped_4k));
		cell(ln, 12, xpmemctl_asprintf("%" PRIu64, (uint64_t)a->mapped_2m));
		cell(ln, 13, xpmemctl_asprintf("%" PRIu64, (uint64_t)a->mapped_1g));
		cell(ln, 14, a->remote_node ? xpmemctl_asprintf("%u", a->remote_node)
					    : xpmemctl_asprintf("-"));
	}
	return tb;
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
	STAT(huge_faults, "faults that mapped a whole 2 MiB exporter huge page"),
	STAT(recalls, "recalls (exporter changes that revoked attacher mappings)"),
	STAT(pinned_pages, "pages pinned while other fabric nodes map them (local attachments pin none)"),
};
#undef STAT
#define NSTATS ARRAY_SIZE(stat_fields)

static uint64_t stat_value(const struct xpmem_stats_info *st, size_t i)
{
	uint64_t v;

	memcpy(&v, (const unsigned char *)st + stat_fields[i].offset, sizeof(v));
	return v;
}

json_object *xpmemctl_stats_json(const struct xpmem_stats_info *st)
{
	json_object *o = xpmemctl_jobject();
	size_t i;

	for (i = 0; i < NSTATS; i++)
		xpmemctl_jadd_u64(o, stat_fields[i].name, stat_value(st, i));
	return o;
}

struct libscols_table *xpmemctl_stats_table(const struct xpmem_stats_info *st)
{
	static const struct column cols[] = {
		{ "COUNTER", 0 }, { "VALUE", RIGHT }, { "DESCRIPTION", 0 },
	};
	struct libscols_table *tb = table_new(cols, ARRAY_SIZE(cols), true);
	size_t i;

	for (i = 0; i < NSTATS; i++) {
		struct libscols_line *ln = table_line(tb);

		cell(ln, 0, xpmemctl_asprintf("%s", stat_fields[i].name));
		cell(ln, 1, xpmemctl_asprintf("%" PRIu64, stat_value(st, i)));
		cell(ln, 2, xpmemctl_asprintf("%s", stat_fields[i].what));
	}
	return tb;
}

struct libscols_table *xpmemctl_stats_line(const struct xpmem_stats_info *st)
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
		cell(ln, i, xpmemctl_asprintf("%" PRIu64, v[i]));
	return tb;
}

/* ---- fabric nodes ---- */

static const struct column node_cols[] = {
	{ "NODE", RIGHT },     { "ROLE", 0 },	     { "STATE", 0 },	  { "EPOCH", RIGHT },
	{ "HEARTBEAT", RIGHT }, { "RTT", RIGHT },     { "WINDOW", 0 },	  { "REQUESTS", RIGHT },
	{ "FAILED", RIGHT },   { "SERVED", RIGHT },   { "REJECTED", RIGHT },
};

static json_object *node_json(const struct xpmem_node_info *n)
{
	json_object *o = xpmemctl_jobject();
	bool self = n->flags & XPMEM_NODE_INFO_SELF;

	xpmemctl_jadd_int(o, "node", n->node);
	xpmemctl_jadd(o, "self", json_object_new_boolean(self));
	xpmemctl_jadd_str(o, "state", xpmemctl_node_state_name(n->state));
	xpmemctl_jadd_u64(o, "epoch", n->epoch);
	if (!self) {
		xpmemctl_jadd_u64(o, "heartbeat_age_ns", n->heartbeat_age_ns);
		xpmemctl_jadd_u64(o, "rtt_ns", n->rtt_ns);
		xpmemctl_jadd(o, "window", json_object_new_boolean(n->flags & XPMEM_NODE_INFO_WINDOW));
		xpmemctl_jadd(o, "fenced", json_object_new_boolean(n->flags & XPMEM_NODE_INFO_FENCED));
		xpmemctl_jadd_u64(o, "window_phys", n->window_phys);
		xpmemctl_jadd_u64(o, "window_size", n->window_size);
		xpmemctl_jadd_u64(o, "rejected", n->rejected);
	}
	xpmemctl_jadd_u64(o, "requests", n->requests);
	xpmemctl_jadd_u64(o, "request_failures", n->request_failures);
	xpmemctl_jadd_u64(o, "served", n->served);
	return o;
}

json_object *xpmemctl_nodes_json(const struct xpmemctl_records *r)
{
	json_object *arr = jarray();
	size_t i;

	for (i = 0; i < r->n; i++)
		jappend(arr, node_json(xpmemctl_record(r, i)));
	return arr;
}

/* Nanoseconds as the shortest readable duration: "850us", "12.3ms", "4.0s". */
static char *duration_string(uint64_t ns)
{
	if (ns < 1000000)
		return xpmemctl_asprintf("%" PRIu64 "us", ns / 1000);
	if (ns < 1000000000)
		return xpmemctl_asprintf("%.1fms", (double)ns / 1e6);
	return xpmemctl_asprintf("%.1fs", (double)ns / 1e9);
}

struct libscols_table *xpmemctl_nodes_table(const struct xpmemctl_records *r, bool bytes)
{
	struct libscols_table *tb = table_new(node_cols, ARRAY_SIZE(node_cols), true);
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct xpmem_node_info *n = xpmemctl_record(r, i);
		struct libscols_line *ln = table_line(tb);
		bool self = n->flags & XPMEM_NODE_INFO_SELF;
		char size[XPMEMCTL_SIZE_TEXT];

		cell(ln, 0, xpmemctl_asprintf("%u", n->node));
		cell(ln, 1, xpmemctl_asprintf("%s", self ? "this node" : "peer"));
		cell(ln, 2, xpmemctl_asprintf("%s%s", xpmemctl_node_state_name(n->state),
					      n->flags & XPMEM_NODE_INFO_FENCED ? " (fenced)" : ""));
		cell(ln, 3, xpmemctl_asprintf("%" PRIu64, (uint64_t)n->epoch));
		cell(ln, 4, self ? xpmemctl_asprintf("-") : duration_string(n->heartbeat_age_ns));
		cell(ln, 5, self || !n->rtt_ns ? xpmemctl_asprintf("-") : duration_string(n->rtt_ns));
		if (n->flags & XPMEM_NODE_INFO_WINDOW) {
			xpmemctl_size_text(size, n->window_size, bytes);
			cell(ln, 6, xpmemctl_asprintf("0x%" PRIx64 "+%s", (uint64_t)n->window_phys,
						      size));
		} else {
			cell(ln, 6, xpmemctl_asprintf("-"));
		}
		cell(ln, 7, xpmemctl_asprintf("%" PRIu64, (uint64_t)n->requests));
		cell(ln, 8, xpmemctl_asprintf("%" PRIu64, (uint64_t)n->request_failures));
		cell(ln, 9, xpmemctl_asprintf("%" PRIu64, (uint64_t)n->served));
		cell(ln, 10, self ? xpmemctl_asprintf("-") :
				    xpmemctl_asprintf("%" PRIu64, (uint64_t)n->rejected));
	}
	return tb;
}
