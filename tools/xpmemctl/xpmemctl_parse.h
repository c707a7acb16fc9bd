/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemctl: everything that reads data from outside the tool, kept free of I/O
 * so that the fuzz targets in tests/fuzz/libfuzzer/ can drive it directly:
 * XPMEM_CMD_QUERY replies and their records, the command line, and the text
 * made from record fields.
 */
#ifndef XPMEMCTL_PARSE_H
#define XPMEMCTL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "xpmem_fabric.h" /* and xpmem_ioctl.h */

/* The kernel refuses replies larger than this (XPMEM_QUERY_MAX_BYTES). */
#define XPMEMCTL_QUERY_MAX_BYTES (16U << 20)
/* Records room is made for in the first query of a kind. */
#define XPMEMCTL_QUERY_FIRST_RECORDS 64

/* ---- query replies ---- */

/* Records of one kind, each widened or cut to the layout this tool knows. */
struct xpmemctl_records {
	unsigned char *data;
	size_t size; /* sizeof the local struct */
	size_t n;
};

static inline const void *xpmemctl_record(const struct xpmemctl_records *r, size_t i)
{
	return r->data + i * r->size;
}

/* sizeof the local struct for a query kind; 0 for an unknown kind. */
size_t xpmemctl_record_size(uint32_t kind);
/* The shortest record a kernel may send: the first layout of the kind. */
size_t xpmemctl_record_min(uint32_t kind);

enum xpmemctl_reply {
	XPMEMCTL_REPLY_MALFORMED,
	XPMEMCTL_REPLY_COMPLETE, /* every visible record is in the buffer */
	XPMEMCTL_REPLY_PARTIAL, /* total > count: a larger buffer shows more */
};

/* Checks the out fields of a reply to q->kind that had buf_size bytes to fill. */
enum xpmemctl_reply xpmemctl_reply_check(const struct xpmem_cmd_query *q, size_t buf_size);
/* Buffer size for the next attempt after a partial reply, at most the kernel's limit. */
size_t xpmemctl_retry_size(const struct xpmem_cmd_query *q);
/*
 * Copies the q->count records at buf (buf_size bytes) into out, each cut or
 * zero-padded to the local layout of q->kind. 0, -EINVAL for a reply that
 * xpmemctl_reply_check() rejects, or -ENOMEM.
 */
int xpmemctl_records_decode(const struct xpmem_cmd_query *q, const void *buf, size_t buf_size,
			    struct xpmemctl_records *out);
void xpmemctl_records_free(struct xpmemctl_records *r);

/* ---- command line ---- */

enum xpmemctl_command {
	XPMEMCTL_CMD_NONE,
	XPMEMCTL_CMD_SEGMENTS,
	XPMEMCTL_CMD_PERMITS,
	XPMEMCTL_CMD_ATTACHMENTS,
	XPMEMCTL_CMD_STATS,
	XPMEMCTL_CMD_SHOW,
	XPMEMCTL_CMD_WATCH,
	XPMEMCTL_CMD_NODES,
	XPMEMCTL_CMD_PING,
	XPMEMCTL_CMD_VERSION,
	XPMEMCTL_CMD_HELP,
};

struct xpmemctl_options {
	enum xpmemctl_command command;
	bool json;
	bool bytes;
	bool have_pid, have_uid, have_segid, have_interval, have_count;
	pid_t pid;
	uid_t uid;
	int64_t segid; /* --segid, or the SEGID of show */
	double interval;
	unsigned long count;
	uint32_t node; /* ping NODE */
};

enum xpmemctl_args {
	XPMEMCTL_ARGS_OK,
	XPMEMCTL_ARGS_ERROR, /* *error is the message (allocated) */
	XPMEMCTL_ARGS_GETOPT, /* getopt_long has printed what was wrong */
	XPMEMCTL_ARGS_NO_COMMAND,
	XPMEMCTL_ARGS_NOMEM,
};

/* Looks a user name up; false if there is no such user. */
typedef bool (*xpmemctl_user_lookup)(const char *name, uid_t *uid);

/*
 * Parses argv (getopt_long, which may permute it) into o. A --help stops at
 * once with o->command XPMEMCTL_CMD_HELP, like the first invalid option does.
 */
enum xpmemctl_args xpmemctl_parse_args(int argc, char **argv, xpmemctl_user_lookup lookup,
				       struct xpmemctl_options *o, char **error);

/* Decimal (base 10) or hex (base 16) digits only, at most max. */
bool xpmemctl_parse_ulong(const char *s, int base, unsigned long long max, unsigned long long *out);
/* A segid: hex with an optional 0x, 1..INT64_MAX. */
bool xpmemctl_parse_segid(const char *s, int64_t *segid);
/* Seconds for watch: finite, > 0 and at most a day. */
bool xpmemctl_parse_interval(const char *s, double *interval);
void xpmemctl_interval_timespec(double interval, struct timespec *ts);

/* ---- text from record fields ---- */

/* "0x..." of a 52-bit id, or of any 64 bits a malformed record has. */
#define XPMEMCTL_ID_TEXT 19
/* Longest size text: 20 digits and a unit. */
#define XPMEMCTL_SIZE_TEXT 24
/* A name of n bytes becomes at most 3 * n bytes of text (U+FFFD per bad byte). */
#define XPMEMCTL_NAME_TEXT(n) (3 * (n) + 1)

void xpmemctl_id_text(char buf[XPMEMCTL_ID_TEXT], int64_t id);
/* 4096 -> "4K", 1572864 -> "1.5M"; rounds down so a size is never overstated. */
void xpmemctl_size_text(char buf[XPMEMCTL_SIZE_TEXT], uint64_t v, bool bytes);
/*
 * A process name (comm) of at most len bytes, which need not be terminated,
 * as UTF-8 text: it ends at the first NUL and each byte that is not part of a
 * valid UTF-8 sequence becomes U+FFFD, because JSON must be UTF-8 and the
 * kernel cuts names at 15 bytes, also inside a character. buf holds
 * XPMEMCTL_NAME_TEXT(len) bytes; returns the text's length.
 */
size_t xpmemctl_name_text(char *buf, const char *name, size_t len);
/* The bytes of a name up to its first NUL, at most len: table cells escape the rest. */
void xpmemctl_name_raw(char *buf, const char *name, size_t len);
const char *xpmemctl_access_name(uint32_t flags);
/* "up", "suspect", ... for enum xpmem_fabric_node_state; "?" for others. */
const char *xpmemctl_node_state_name(uint32_t state);

#endif /* XPMEMCTL_PARSE_H */
