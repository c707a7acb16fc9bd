/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemctl: query records as json-c objects and libsmartcols tables. Apart from
 * the output stream, the only thing read from outside is the command name of
 * live processes, through the view's live_comm, so a fuzz target can render
 * any record without a kernel or /proc.
 */
#ifndef XPMEMCTL_RENDER_H
#define XPMEMCTL_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>
#include <libsmartcols/libsmartcols.h>

#include "xpmemctl_parse.h"

/* Buffer for a live process's command name (/proc/PID/comm). */
#define XPMEMCTL_COMM_MAX 64

/* Provided by the program: memory ran out. */
void xpmemctl_oom(void) __attribute__((noreturn));

struct xpmemctl_view {
	bool bytes; /* sizes in bytes instead of K/M/G units */
	/* Command name of a live process into buf; false once it is gone. */
	bool (*live_comm)(pid_t pid, char *buf, size_t size);
};

char *xpmemctl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

json_object *xpmemctl_jobject(void);
void xpmemctl_jadd(json_object *o, const char *key, json_object *v);
void xpmemctl_jadd_str(json_object *o, const char *key, const char *s);
void xpmemctl_jadd_int(json_object *o, const char *key, int64_t v);
void xpmemctl_jadd_u64(json_object *o, const char *key, uint64_t v);
/* Prints and frees o. */
void xpmemctl_json_print(json_object *o, bool pretty, FILE *out);

json_object *xpmemctl_segment_json(const struct xpmem_segment_info *s);
json_object *xpmemctl_segments_json(const struct xpmemctl_records *r);
json_object *xpmemctl_accesses_json(const struct xpmemctl_records *r,
				    const struct xpmemctl_view *v);
json_object *xpmemctl_attachments_json(const struct xpmemctl_records *r,
				       const struct xpmemctl_view *v);
json_object *xpmemctl_stats_json(const struct xpmem_stats_info *st);
json_object *xpmemctl_nodes_json(const struct xpmemctl_records *r);
struct libscols_table *xpmemctl_nodes_table(const struct xpmemctl_records *r, bool bytes);

struct libscols_table *xpmemctl_segments_table(const struct xpmemctl_records *r,
					       const struct xpmemctl_view *v);
/* show: one segment as FIELD/VALUE lines without headings. */
struct libscols_table *xpmemctl_segment_detail(const struct xpmem_segment_info *s,
					       const struct xpmemctl_view *v);
struct libscols_table *xpmemctl_accesses_table(const struct xpmemctl_records *r,
					       const struct xpmemctl_view *v);
struct libscols_table *xpmemctl_attachments_table(const struct xpmemctl_records *r,
						  const struct xpmemctl_view *v);
/* stats: one line per counter, with its description. */
struct libscols_table *xpmemctl_stats_table(const struct xpmem_stats_info *st);
/* watch: the main counters on one line. */
struct libscols_table *xpmemctl_stats_line(const struct xpmem_stats_info *st);
/* Prints and frees tb; an empty table still shows its headings. */
void xpmemctl_table_print(struct libscols_table *tb, FILE *out);

#endif /* XPMEMCTL_RENDER_H */
