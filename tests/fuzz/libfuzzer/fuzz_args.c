// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: xpmemctl's command line.
 *
 * Input: the arguments after "xpmemctl", separated by NUL bytes. They go
 * through xpmemctl_parse_args() (getopt_long included), and each one also
 * through the single-value parsers, which are compared with plain digit loops.
 * An accepted command line must only hold values xpmemctl can act on.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpmemctl_parse.h"

#define MAX_ARGS 16

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* A fixed user database: getpwnam() would make runs depend on the machine. */
static bool fake_user(const char *name, uid_t *uid)
{
	if (!strcmp(name, "root"))
		*uid = 0;
	else if (!strcmp(name, "nobody"))
		*uid = 65534;
	else
		return false;
	return true;
}

static int digit(char c, int base)
{
	int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;

	return d < base ? d : -1;
}

/* The reference: one or more digits of the base and nothing else, at most max. */
static bool ref_ulong(const char *s, int base, unsigned long long max, unsigned long long *out)
{
	unsigned __int128 v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		int d = digit(*s, base);

		if (d < 0)
			return false;
		v = v * base + d;
		if (v > max)
			return false;
	}
	*out = (unsigned long long)v;
	return true;
}

static void check_values(const char *s)
{
	static const unsigned long long maxes[] = { INT_MAX, UINT32_MAX - 1, ULONG_MAX, INT64_MAX };
	unsigned long long got, want;
	int64_t segid;
	double interval;
	size_t i;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		bool ok = xpmemctl_parse_ulong(s, 10, maxes[i], &got);

		CHECK(ok == ref_ulong(s, 10, maxes[i], &want));
		CHECK(!ok || got == want);
	}
	{
		const char *p = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? s + 2 : s;
		bool ok = xpmemctl_parse_segid(s, &segid);
		bool ref = ref_ulong(p, 16, INT64_MAX, &want) && want != 0;

		CHECK(ok == ref);
		CHECK(!ok || (uint64_t)segid == want);
	}
	if (xpmemctl_parse_interval(s, &interval)) {
		struct timespec ts;
		double rest;

		CHECK(isfinite(interval) && interval > 0 && interval <= 86400);
		xpmemctl_interval_timespec(interval, &ts);
		CHECK(ts.tv_sec == (time_t)floor(interval));
		CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
		/* Never longer than asked, and short by less than a nanosecond. */
		rest = (interval - (double)ts.tv_sec) * 1e9 - (double)ts.tv_nsec;
		CHECK(rest >= 0 && rest < 1);
	}
}

static void check_options(const struct xpmemctl_options *o)
{
	bool filters = o->have_pid || o->have_uid || o->have_segid;

	switch (o->command) {
	case XPMEMCTL_CMD_HELP:
		return; /* --help wins over anything not parsed yet */
	case XPMEMCTL_CMD_VERSION:
		CHECK(!filters && !o->have_interval && !o->have_count && !o->bytes);
		return;
	case XPMEMCTL_CMD_SEGMENTS:
	case XPMEMCTL_CMD_PERMITS:
	case XPMEMCTL_CMD_ATTACHMENTS:
		CHECK(!o->have_interval && !o->have_count);
		break;
	case XPMEMCTL_CMD_STATS:
		CHECK(!filters && !o->have_interval && !o->have_count);
		break;
	case XPMEMCTL_CMD_SHOW:
		CHECK(!filters && !o->have_interval && !o->have_count && o->segid > 0);
		break;
	case XPMEMCTL_CMD_WATCH:
		break;
	case XPMEMCTL_CMD_NODES:
		CHECK(!filters && !o->have_interval && !o->have_count);
		break;
	case XPMEMCTL_CMD_PING:
		CHECK(!filters && !o->have_interval && o->node >= 1 &&
		      o->node <= XPMEM_FABRIC_MAX_NODE);
		break;
	default:
		CHECK(!"no such command");
	}
	CHECK(!o->have_pid || (o->pid > 0 && o->pid <= INT_MAX));
	/* (uid_t)-1 means "no uid" to the kernel. */
	CHECK(!o->have_uid || o->uid != (uid_t)-1);
	CHECK(!o->have_segid || o->segid > 0);
	CHECK(!o->have_interval || (o->interval > 0 && o->interval <= 86400));
	CHECK(!o->have_count || o->count >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAX_ARGS + 2], *given[MAX_ARGS + 2];
	char *error = (char *)1; /* must be set whatever the result */
	struct xpmemctl_options o;
	enum xpmemctl_args ret;
	int argc = 0, i, j;
	size_t at = 0;

	CHECK(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "xpmemctl";
	while (at <= size && argc <= MAX_ARGS) {
		argv[argc++] = copy + at;
		at += strlen(copy + at) + 1;
	}
	argv[argc] = NULL;
	memcpy(given, argv, sizeof(argv));
	for (i = 1; i < argc; i++)
		check_values(argv[i]);

	ret = xpmemctl_parse_args(argc, argv, fake_user, &o, &error);
	switch (ret) {
	case XPMEMCTL_ARGS_OK:
		CHECK(error == NULL);
		check_options(&o);
		break;
	case XPMEMCTL_ARGS_ERROR:
		CHECK(error && *error);
		free(error);
		break;
	case XPMEMCTL_ARGS_GETOPT:
	case XPMEMCTL_ARGS_NO_COMMAND:
		CHECK(error == NULL);
		break;
	default:
		CHECK(!"unexpected result");
	}
	/* getopt_long permutes argv: every argument must still be there, unchanged. */
	for (i = 1; i < argc; i++) {
		for (j = 1; j < argc && argv[j] != given[i]; j++)
			;
		CHECK(j < argc);
	}
	CHECK(!memcmp(copy, data, size));
	free(copy);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The fuzzer's own output stays readable: getopt_long would print every bad option. */
	opterr = 0;
	return 0;
}
