// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: an XPMEM_CMD_QUERY reply as xpmemctl decodes and renders it.
 *
 * Input: a 38-byte header, then the record bytes the "kernel" wrote.
 *   0      kind (any byte: unknown kinds must be refused)
 *   1      bit 0: --bytes; bit 1: the live process is gone; bit 2: pretty JSON
 *   2..13  record_size, count, total (little-endian u32, unchecked)
 *   14..37 what /proc/PID/comm of a live process says (not terminated)
 * The reply is checked like query() does, decoded, and every accepted record is
 * rendered to JSON and to tables, which must hold what the records hold.
 */
#include <assert.h>
#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpmemctl_parse.h"
#include "xpmemctl_render.h"

#define HEADER 38
#define LIVE_NAME 24

/* Invariants are checked in every build: assert() would vanish with NDEBUG. */
#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

void xpmemctl_oom(void)
{
	/* The inputs are small: running out of memory is a bug here. */
	abort();
}

static const unsigned char *live_name;
static bool live_gone;

static bool fake_live_comm(pid_t pid, char *buf, size_t size)
{
	(void)pid;
	if (live_gone)
		return false;
	/* Like fgets() on /proc/PID/comm: at most size - 1 bytes, terminated. */
	CHECK(size > LIVE_NAME);
	memcpy(buf, live_name, LIVE_NAME);
	buf[LIVE_NAME] = '\0';
	return true;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* glibc's iconv refuses overlong forms, surrogates and code points past U+10FFFF. */
static bool valid_utf8(const char *s)
{
	static iconv_t cd = (iconv_t)-1;
	char out[4 * 256], *in = (char *)s, *o = out;
	size_t il = strlen(s), ol = sizeof(out);

	CHECK(il <= 256);
	if (cd == (iconv_t)-1) {
		cd = iconv_open("UTF-32LE", "UTF-8");
		CHECK(cd != (iconv_t)-1);
	}
	iconv(cd, NULL, NULL, NULL, NULL);
	return iconv(cd, &in, &il, &o, &ol) != (size_t)-1 && il == 0;
}

/* A name rendered for JSON: valid UTF-8, and unchanged if it was valid already. */
static void check_name(const char *name, size_t len)
{
	char text[XPMEMCTL_NAME_TEXT(XPMEMCTL_COMM_MAX)], raw[XPMEMCTL_COMM_MAX + 1];
	size_t n;

	CHECK(len <= XPMEMCTL_COMM_MAX);
	n = xpmemctl_name_text(text, name, len);
	CHECK(n == strlen(text) && n <= 3 * len);
	CHECK(valid_utf8(text));
	xpmemctl_name_raw(raw, name, len);
	CHECK(strlen(raw) <= len && !memcmp(raw, name, strlen(raw)));
	if (valid_utf8(raw))
		CHECK(!strcmp(text, raw));
}

/* Sizes are shown rounded down to one decimal of their unit, never overstated. */
static void check_size(uint64_t v)
{
	char buf[XPMEMCTL_SIZE_TEXT], *end;
	unsigned __int128 unit = 1, tenths, shown;
	unsigned long long whole, frac = 0;
	const char *units = "BKMGTPE", *u;

	xpmemctl_size_text(buf, v, true);
	CHECK(strtoull(buf, &end, 10) == v && *end == '\0');
	xpmemctl_size_text(buf, v, false);
	whole = strtoull(buf, &end, 10);
	if (*end == '.') {
		CHECK(end[1] >= '0' && end[1] <= '9');
		frac = (unsigned long long)(end[1] - '0');
		end += 2;
	}
	u = strchr(units, *end);
	CHECK(*end && u && end[1] == '\0');
	for (; u > units; u--)
		unit *= 1024;
	tenths = (unsigned __int128)whole * 10 + frac;
	shown = tenths * unit;
	CHECK(shown <= (unsigned __int128)v * 10);
	/* Exact, or short by less than the last digit shown. */
	if (shown != (unsigned __int128)v * 10)
		CHECK((unsigned __int128)v * 10 < shown + (frac || whole < 100 ? unit : 10 * unit));
}

static void check_id(int64_t id, const char *text)
{
	char buf[XPMEMCTL_ID_TEXT];

	xpmemctl_id_text(buf, id);
	CHECK(strtoull(buf + 2, NULL, 16) == (uint64_t)id && !strncmp(buf, "0x", 2));
	if (text)
		CHECK(!strcmp(buf, text));
}

/* Prints and frees tb; returns its number of lines. */
static size_t table_lines(struct libscols_table *tb)
{
	char *out = NULL;
	size_t size = 0, lines = 0, i;
	FILE *f = open_memstream(&out, &size);

	CHECK(f);
	xpmemctl_table_print(tb, f);
	CHECK(fclose(f) == 0);
	for (i = 0; i < size; i++)
		lines += out[i] == '\n';
	/* libsmartcols escapes what a name could break lines or the terminal with. */
	CHECK(!memchr(out, '\033', size) && strlen(out) == size);
	free(out);
	return lines;
}

/* Prints and frees o; returns it parsed back, strictly, UTF-8 checked. */
static json_object *json_round_trip(json_object *o, bool pretty)
{
	struct json_tokener *tok = json_tokener_new();
	char *out = NULL;
	size_t size = 0;
	json_object *back;
	FILE *f = open_memstream(&out, &size);

	CHECK(f && tok);
	xpmemctl_json_print(o, pretty, f);
	CHECK(fclose(f) == 0);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, out, (int)size);
	CHECK(back && json_tokener_get_error(tok) == json_tokener_success);
	json_tokener_free(tok);
	free(out);
	return back;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static uint64_t ju64(json_object *o, const char *key)
{
	json_object *v;

	CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int));
	return json_object_get_uint64(v);
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static void check_live_comm(json_object *o)
{
	json_object *v;

	CHECK(json_object_object_get_ex(o, "comm", &v));
	if (live_gone)
		CHECK(v == NULL);
	else
		CHECK(json_object_is_type(v, json_type_string) &&
		      valid_utf8(json_object_get_string(v)));
}

static void render_segments(const struct xpmemctl_records *r, const struct xpmemctl_view *v,
			    bool pretty)
{
	json_object *arr = json_round_trip(xpmemctl_segments_json(r), pretty);
	size_t i;

	CHECK(json_object_array_length(arr) == r->n);
	for (i = 0; i < r->n; i++) {
		const struct xpmem_segment_info *s = xpmemctl_record(r, i);
		json_object *o = json_object_array_get_idx(arr, i);
		const char *comm = jstr(o, "owner_comm");

		check_id(s->segid, jstr(o, "segid"));
		CHECK(jint(o, "owner_pid") == s->owner_pid && jint(o, "owner_uid") == s->owner_uid);
		CHECK(ju64(o, "size") == s->size && ju64(o, "start") == s->start);
		CHECK(ju64(o, "faults") == s->faults && ju64(o, "recalls") == s->recalls);
		CHECK(strlen(jstr(o, "mode")) == 4 && strlen(comm) <= 3 * XPMEM_QUERY_COMM_LEN);
		CHECK(valid_utf8(comm));
		check_name(s->owner_comm, sizeof(s->owner_comm));
		check_size(s->size);
		check_size(s->start);
		if (i == 0)
			CHECK(table_lines(xpmemctl_segment_detail(s, v)) == 13); /* one line per field */
	}
	json_object_put(arr);
	CHECK(table_lines(xpmemctl_segments_table(r, v)) == r->n + 1);
}

static void render_accesses(const struct xpmemctl_records *r, const struct xpmemctl_view *v,
			    bool pretty)
{
	json_object *arr = json_round_trip(xpmemctl_accesses_json(r, v), pretty);
	size_t i;

	CHECK(json_object_array_length(arr) == r->n);
	for (i = 0; i < r->n; i++) {
		const struct xpmem_access_info *a = xpmemctl_record(r, i);
		json_object *o = json_object_array_get_idx(arr, i);

		check_id(a->apid, jstr(o, "apid"));
		check_id(a->segid, jstr(o, "segid"));
		CHECK(jint(o, "pid") == a->pid && jint(o, "uid") == a->uid);
		check_live_comm(o);
	}
	json_object_put(arr);
	CHECK(table_lines(xpmemctl_accesses_table(r, v)) == r->n + 1);
}

static void render_attachments(const struct xpmemctl_records *r, const struct xpmemctl_view *v,
			       bool pretty)
{
	json_object *arr = json_round_trip(xpmemctl_attachments_json(r, v), pretty);
	size_t i;

	CHECK(json_object_array_length(arr) == r->n);
	for (i = 0; i < r->n; i++) {
		const struct xpmem_attachment_info *a = xpmemctl_record(r, i);
		json_object *o = json_object_array_get_idx(arr, i);

		check_id(a->segid, jstr(o, "segid"));
		CHECK(jint(o, "pid") == a->pid && jint(o, "vmas") == a->vmas);
		CHECK(ju64(o, "vaddr") == a->vaddr && ju64(o, "size") == a->size &&
		      ju64(o, "offset") == a->offset);
		check_live_comm(o);
		check_size(a->size);
		check_size(a->offset);
	}
	json_object_put(arr);
	CHECK(table_lines(xpmemctl_attachments_table(r, v)) == r->n + 1);
}

static void render_stats(const struct xpmemctl_records *r, bool pretty)
{
	const struct xpmem_stats_info *st;
	json_object *o;

	/* xpmemctl refuses a stats reply with any other number of records. */
	if (r->n != 1)
		return;
	st = xpmemctl_record(r, 0);
	o = json_round_trip(xpmemctl_stats_json(st), pretty);
	/* Every counter of the record (all __u64) is shown, and nothing else. */
	CHECK(json_object_object_length(o) == (int)(sizeof(*st) / sizeof(__u64)));
	CHECK(ju64(o, "segments_live") == st->segments_live &&
	      ju64(o, "pinned_pages") == st->pinned_pages &&
	      ju64(o, "huge_faults") == st->huge_faults);
	json_object_put(o);
	CHECK(table_lines(xpmemctl_stats_table(st)) == sizeof(*st) / sizeof(__u64) + 1);
	CHECK(table_lines(xpmemctl_stats_line(st)) == 2);
}

static void render_nodes(const struct xpmemctl_records *r, bool pretty)
{
	json_object *arr = json_round_trip(xpmemctl_nodes_json(r), pretty);
	size_t i;

	CHECK(json_object_array_length(arr) == r->n);
	for (i = 0; i < r->n; i++) {
		const struct xpmem_node_info *n = xpmemctl_record(r, i);
		json_object *o = json_object_array_get_idx(arr, i);

		CHECK(ju64(o, "node") == n->node && ju64(o, "epoch") == n->epoch &&
		      ju64(o, "served") == n->served);
	}
	json_object_put(arr);
	CHECK(table_lines(xpmemctl_nodes_table(r, pretty)) == r->n + 1);
}

static void check_retry(const struct xpmem_cmd_query *q)
{
	unsigned __int128 want = ((unsigned __int128)q->total + q->total / 8 + 8) * q->record_size;
	size_t next = xpmemctl_retry_size(q);

	CHECK(next <= XPMEMCTL_QUERY_MAX_BYTES);
	if (q->record_size && want <= XPMEMCTL_QUERY_MAX_BYTES)
		CHECK(next == want);
	else
		CHECK(next == XPMEMCTL_QUERY_MAX_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xpmem_cmd_query q = { .argsz = sizeof(q) };
	struct xpmemctl_view view;
	struct xpmemctl_records r;
	size_t local, min, buf_size, keep, i;
	enum xpmemctl_reply reply;
	bool malformed, pretty;
	const uint8_t *buf;
	int ret;

	if (size < HEADER)
		return 0;
	q.kind = data[0];
	q.record_size = le32(data + 2);
	q.count = le32(data + 6);
	q.total = le32(data + 10);
	live_name = data + 14;
	live_gone = data[1] & 2;
	pretty = data[1] & 4;
	view = (struct xpmemctl_view){ .bytes = data[1] & 1, .live_comm = fake_live_comm };
	/* A copy of exactly the record bytes: ASan sees any read past them. */
	buf_size = size - HEADER;
	buf = malloc(buf_size ? buf_size : 1);
	CHECK(buf);
	memcpy((void *)buf, data + HEADER, buf_size);
	q.buf_size = (uint32_t)buf_size;

	local = xpmemctl_record_size(q.kind);
	min = xpmemctl_record_min(q.kind);
	CHECK(min <= local);
	CHECK((local == 0) == (q.kind < XPMEM_QUERY_SEGMENTS || q.kind > XPMEM_QUERY_NODES));
	malformed = !local || q.record_size < min ||
		    (unsigned __int128)q.count * q.record_size > buf_size;
	reply = xpmemctl_reply_check(&q, buf_size);
	CHECK((reply == XPMEMCTL_REPLY_MALFORMED) == malformed);
	if (!malformed)
		CHECK((reply == XPMEMCTL_REPLY_PARTIAL) == (q.total > q.count));
	check_retry(&q);

	ret = xpmemctl_records_decode(&q, buf, buf_size, &r);
	if (malformed) {
		CHECK(ret == -EINVAL && r.data == NULL && r.n == 0);
		free((void *)buf);
		return 0;
	}
	CHECK(ret == 0 && r.data && r.size == local && r.n == q.count);
	/* Never more records than the reply's bytes hold. */
	CHECK(r.n * q.record_size <= buf_size);
	keep = q.record_size < local ? q.record_size : local;
	for (i = 0; i < r.n; i++) {
		const unsigned char *rec = xpmemctl_record(&r, i);
		size_t k;

		CHECK(!memcmp(rec, buf + i * q.record_size, keep));
		/* Fields the kernel did not send read as zero. */
		for (k = keep; k < local; k++)
			CHECK(rec[k] == 0);
	}
	free((void *)buf);
	check_name((const char *)live_name, LIVE_NAME);

	switch (q.kind) {
	case XPMEM_QUERY_SEGMENTS:
		render_segments(&r, &view, pretty);
		break;
	case XPMEM_QUERY_ACCESSES:
		render_accesses(&r, &view, pretty);
		break;
	case XPMEM_QUERY_ATTACHMENTS:
		render_attachments(&r, &view, pretty);
		break;
	case XPMEM_QUERY_STATS:
		render_stats(&r, pretty);
		break;
	case XPMEM_QUERY_NODES:
		render_nodes(&r, pretty);
		break;
	}
	xpmemctl_records_free(&r);
	CHECK(r.data == NULL && r.n == 0);
	return 0;
}
