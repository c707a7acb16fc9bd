// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemctl: parsing of what comes from outside (see xpmemctl_parse.h). No I/O
 * here but getopt_long's own messages and the user lookup the caller passes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpmemctl_parse.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* Bytes up to the end of a field: a layout's size without its tail padding. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- query replies ---- */

size_t xpmemctl_record_size(uint32_t kind)
{
	switch (kind) {
	case XPMEM_QUERY_SEGMENTS:
		return sizeof(struct xpmem_segment_info);
	case XPMEM_QUERY_ACCESSES:
		return sizeof(struct xpmem_access_info);
	case XPMEM_QUERY_ATTACHMENTS:
		return sizeof(struct xpmem_attachment_info);
	case XPMEM_QUERY_STATS:
		return sizeof(struct xpmem_stats_info);
	case XPMEM_QUERY_NODES:
		return sizeof(struct xpmem_node_info);
	}
	return 0;
}

/*
 * Records only grow by appended fields, so no kernel sends less than the first
 * layout of a kind (the one ending with these fields). Shorter records would
 * be mostly invented zeros, and a record size of 1 would make the tool widen
 * 16 MiB of reply into a hundred times that.
 */
size_t xpmemctl_record_min(uint32_t kind)
{
	switch (kind) {
	case XPMEM_QUERY_SEGMENTS:
		return END_OF(struct xpmem_segment_info, owner_comm);
	case XPMEM_QUERY_ACCESSES:
		return END_OF(struct xpmem_access_info, pad);
	case XPMEM_QUERY_ATTACHMENTS:
		return END_OF(struct xpmem_attachment_info, recalls);
	case XPMEM_QUERY_STATS:
		return END_OF(struct xpmem_stats_info, pinned_pages);
	case XPMEM_QUERY_NODES:
		return END_OF(struct xpmem_node_info, served);
	}
	return 0;
}

enum xpmemctl_reply xpmemctl_reply_check(const struct xpmem_cmd_query *q, size_t buf_size)
{
	size_t min = xpmemctl_record_min(q->kind);

	/* 32-bit factors: the product cannot wrap in 64 bits. */
	if (!min || q->record_size < min || (uint64_t)q->count * q->record_size > buf_size)
		return XPMEMCTL_REPLY_MALFORMED;
	return q->total <= q->count ? XPMEMCTL_REPLY_COMPLETE : XPMEMCTL_REPLY_PARTIAL;
}

size_t xpmemctl_retry_size(const struct xpmem_cmd_query *q)
{
	/* Room for what appeared meanwhile too. */
	uint64_t want = (uint64_t)q->total + q->total / 8 + 8;

	/* Compared before multiplying: a huge total times a huge record size wraps. */
	if (!q->record_size || want > XPMEMCTL_QUERY_MAX_BYTES / q->record_size)
		return XPMEMCTL_QUERY_MAX_BYTES;
	return (size_t)(want * q->record_size);
}

int xpmemctl_records_decode(const struct xpmem_cmd_query *q, const void *buf, size_t buf_size,
			    struct xpmemctl_records *out)
{
	size_t local = xpmemctl_record_size(q->kind);
	size_t keep, i;

	out->data = NULL;
	out->size = local;
	out->n = 0;
	if (xpmemctl_reply_check(q, buf_size) == XPMEMCTL_REPLY_MALFORMED)
		return -EINVAL;
	/* Never empty: qsort and memcpy want a valid pointer even for no records. */
	out->data = calloc(q->count ? q->count : 1, local);
	if (!out->data)
		return -ENOMEM;
	out->n = q->count;
	/* Fields this tool knows and the kernel does not stay zero (calloc). */
	keep = q->record_size < local ? q->record_size : local;
	for (i = 0; i < q->count; i++)
		memcpy(out->data + i * local, (const unsigned char *)buf + i * q->record_size,
		       keep);
	return 0;
}

void xpmemctl_records_free(struct xpmemctl_records *r)
{
	free(r->data);
	r->data = NULL;
	r->n = 0;
}

/* ---- command line ---- */

bool xpmemctl_parse_ulong(const char *s, int base, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	/*
	 * strtoull skips blanks and takes a sign after them, so " -1" would be
	 * ULLONG_MAX: a number starts with a digit.
	 */
	if (!*s || (base == 16 ? !strchr("0123456789abcdefABCDEF", *s) : (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

bool xpmemctl_parse_segid(const char *s, int64_t *segid)
{
	unsigned long long v;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	/* strtoull would accept a second 0x: digits only. */
	if (!*p || strspn(p, "0123456789abcdefABCDEF") != strlen(p) ||
	    !xpmemctl_parse_ulong(p, 16, INT64_MAX, &v) || v == 0)
		return false;
	*segid = (int64_t)v;
	return true;
}

bool xpmemctl_parse_interval(const char *s, double *interval)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 86400)
		return false;
	*interval = v;
	return true;
}

void xpmemctl_interval_timespec(double interval, struct timespec *ts)
{
	double whole = floor(interval);

	ts->tv_sec = (time_t)whole;
	ts->tv_nsec = (long)((interval - whole) * 1e9);
}

static const struct {
	const char *name;
	enum xpmemctl_command command;
} commands[] = {
	{ "segments", XPMEMCTL_CMD_SEGMENTS }, { "permits", XPMEMCTL_CMD_PERMITS },
	{ "attachments", XPMEMCTL_CMD_ATTACHMENTS }, { "stats", XPMEMCTL_CMD_STATS },
	{ "show", XPMEMCTL_CMD_SHOW }, { "watch", XPMEMCTL_CMD_WATCH },
	{ "nodes", XPMEMCTL_CMD_NODES }, { "ping", XPMEMCTL_CMD_PING },
};

static enum xpmemctl_args __attribute__((format(printf, 2, 3)))
args_error(char **error, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(error, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*error = NULL;
		return XPMEMCTL_ARGS_NOMEM;
	}
	return XPMEMCTL_ARGS_ERROR;
}

#define SEGID_ERROR "invalid segid '%s' (expected a positive hex number such as 0x1a2b)"

enum xpmemctl_args xpmemctl_parse_args(int argc, char **argv, xpmemctl_user_lookup lookup,
				       struct xpmemctl_options *o, char **error)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },	     { "bytes", no_argument, NULL, 'b' },
		{ "pid", required_argument, NULL, 'p' },     { "uid", required_argument, NULL, 'u' },
		{ "segid", required_argument, NULL, 's' },   { "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },   { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	bool version = false;
	unsigned long long v;
	const char *name;
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	*error = NULL;
	/* 0, not 1: glibc then also forgets the state of an earlier scan. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "jbp:u:s:i:c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 'b':
			o->bytes = true;
			break;
		case 'p':
			if (!xpmemctl_parse_ulong(optarg, 10, INT_MAX, &v) || v == 0)
				return args_error(error, "invalid pid '%s'", optarg);
			o->have_pid = true;
			o->pid = (pid_t)v;
			break;
		case 'u':
			/* (uid_t)-1 is no uid: chown() and setreuid() take it as "unchanged". */
			if (xpmemctl_parse_ulong(optarg, 10, UINT32_MAX - 1, &v))
				o->uid = (uid_t)v;
			else if (!lookup(optarg, &o->uid))
				return args_error(error, "invalid uid or unknown user '%s'",
						  optarg);
			o->have_uid = true;
			break;
		case 's':
			if (!xpmemctl_parse_segid(optarg, &o->segid))
				return args_error(error, SEGID_ERROR, optarg);
			o->have_segid = true;
			break;
		case 'i':
			if (!xpmemctl_parse_interval(optarg, &o->interval))
				return args_error(error, "invalid interval '%s' (seconds, > 0)",
						  optarg);
			o->have_interval = true;
			break;
		case 'c':
			if (!xpmemctl_parse_ulong(optarg, 10, ULONG_MAX, &v) || v == 0)
				return args_error(error, "invalid count '%s' (a number >= 1)",
						  optarg);
			o->have_count = true;
			o->count = (unsigned long)v;
			break;
		case 'V':
			version = true;
			break;
		case 'h':
			o->command = XPMEMCTL_CMD_HELP;
			return XPMEMCTL_ARGS_OK;
		default:
			return XPMEMCTL_ARGS_GETOPT;
		}
	}

	if (version) {
		if (optind < argc || o->have_pid || o->have_uid || o->have_segid ||
		    o->have_interval || o->have_count || o->bytes)
			return args_error(error,
					  "--version takes no command and no option but --json");
		o->command = XPMEMCTL_CMD_VERSION;
		return XPMEMCTL_ARGS_OK;
	}
	if (optind >= argc)
		return XPMEMCTL_ARGS_NO_COMMAND;
	name = argv[optind++];
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			o->command = commands[i].command;
	if (o->command == XPMEMCTL_CMD_NONE)
		return args_error(error, "unknown command '%s'", name);

	if (o->command == XPMEMCTL_CMD_SHOW) {
		if (optind >= argc)
			return args_error(error, "show: missing SEGID");
		if (!xpmemctl_parse_segid(argv[optind], &o->segid))
			return args_error(error, SEGID_ERROR, argv[optind]);
		optind++;
	}
	if (o->command == XPMEMCTL_CMD_PING) {
		if (optind >= argc)
			return args_error(error, "ping: missing NODE");
		if (!xpmemctl_parse_ulong(argv[optind], 10, XPMEM_FABRIC_MAX_NODE, &v) || v == 0)
			return args_error(error, "ping: invalid node '%s' (1..%d)", argv[optind],
					  XPMEM_FABRIC_MAX_NODE);
		o->node = (uint32_t)v;
		optind++;
	}
	if (optind < argc)
		return args_error(error, "%s: unexpected argument '%s'", name, argv[optind]);
	if (o->have_interval && o->command != XPMEMCTL_CMD_WATCH)
		return args_error(error, "%s: --interval is for watch only", name);
	if (o->have_count && o->command != XPMEMCTL_CMD_WATCH && o->command != XPMEMCTL_CMD_PING)
		return args_error(error, "%s: --count is for watch and ping only", name);
	if ((o->have_pid || o->have_uid || o->have_segid) &&
	    (o->command == XPMEMCTL_CMD_STATS || o->command == XPMEMCTL_CMD_SHOW ||
	     o->command == XPMEMCTL_CMD_NODES || o->command == XPMEMCTL_CMD_PING))
		return args_error(error, "%s: --pid, --uid and --segid are for segments, "
				  "permits, attachments and watch", name);
	return XPMEMCTL_ARGS_OK;
}

/* ---- text from record fields ---- */

void xpmemctl_id_text(char buf[XPMEMCTL_ID_TEXT], int64_t id)
{
	snprintf(buf, XPMEMCTL_ID_TEXT, "0x%" PRIx64, (uint64_t)id);
}

void xpmemctl_size_text(char buf[XPMEMCTL_SIZE_TEXT], uint64_t v, bool bytes)
{
	static const char units[] = "BKMGTPE";
	unsigned int u = 0;
	uint64_t div = 1;

	if (bytes) {
		snprintf(buf, XPMEMCTL_SIZE_TEXT, "%" PRIu64, v);
		return;
	}
	while (u < sizeof(units) - 2 && v / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, XPMEMCTL_SIZE_TEXT, "%" PRIu64 "B", v);
	else if (v % div == 0 || v / div >= 100)
		snprintf(buf, XPMEMCTL_SIZE_TEXT, "%" PRIu64 "%c", v / div, units[u]);
	else /* v % div < 2^60, so times 10 fits */
		snprintf(buf, XPMEMCTL_SIZE_TEXT, "%" PRIu64 ".%" PRIu64 "%c", v / div,
			 (v % div) * 10 / div, units[u]);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if there is none. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0; /* a continuation byte, an overlong 0xc0/0xc1 or beyond U+10FFFF */
	/* The second byte rules out overlong forms, surrogates and beyond U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t xpmemctl_name_text(char *buf, const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strnlen(name, len), i = 0, out = 0;

	while (i < n) {
		size_t k = utf8_sequence(s + i, n - i);

		if (k) {
			memcpy(buf + out, s + i, k);
			out += k;
			i += k;
		} else {
			memcpy(buf + out, "\xef\xbf\xbd", 3);
			out += 3;
			i++;
		}
	}
	buf[out] = '\0';
	return out;
}

void xpmemctl_name_raw(char *buf, const char *name, size_t len)
{
	size_t n = strnlen(name, len);

	memcpy(buf, name, n);
	buf[n] = '\0';
}

const char *xpmemctl_node_state_name(uint32_t state)
{
	switch (state) {
	case XPMEM_NODE_UNKNOWN:
		return "unknown";
	case XPMEM_NODE_UP:
		return "up";
	case XPMEM_NODE_SUSPECT:
		return "suspect";
	case XPMEM_NODE_DEAD:
		return "dead";
	}
	return "?";
}

const char *xpmemctl_access_name(uint32_t flags)
{
	return flags == XPMEM_IOCTL_RDWR ? "rdwr" : flags == XPMEM_IOCTL_RDONLY ? "rdonly" : "?";
}
