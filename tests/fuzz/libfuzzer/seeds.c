// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Writes the seed corpora of the libFuzzer targets: replies like the kernel's
 * (so the fuzzer starts from records that decode and render) and typical
 * command lines. Usage: seeds QUERY_DIR ARGS_DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpmem_ioctl.h"

#define HEADER 38

static const char *query_dir, *args_dir;

static void write_file(const char *dir, const char *name, const void *data, size_t size)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

/* A reply of kind with count records of record_size bytes (from recs, stride local). */
static void reply(const char *name, uint32_t kind, uint8_t flags, uint32_t record_size,
		  uint32_t count, uint32_t total, const char *live, const void *recs, size_t local)
{
	unsigned char buf[HEADER + 4 * 256] = { 0 };
	size_t i, keep = record_size < local ? record_size : local;

	if (HEADER + (size_t)count * record_size > sizeof(buf))
		abort();
	buf[0] = (uint8_t)kind;
	buf[1] = flags;
	put32(buf + 2, record_size);
	put32(buf + 6, count);
	put32(buf + 10, total);
	strncpy((char *)buf + 14, live, 24);
	for (i = 0; i < count; i++)
		memcpy(buf + HEADER + i * record_size, (const char *)recs + i * local, keep);
	write_file(query_dir, name, buf, HEADER + (size_t)count * record_size);
}

/* Records as long as this build's layout, the kernel's usual answer. */
#define REPLY(name, kind, flags, count, total, live, recs) \
	reply(name, kind, flags, sizeof((recs)[0]), count, total, live, recs, sizeof((recs)[0]))

static void query_seeds(void)
{
	struct xpmem_segment_info seg[2] = {
		{ .segid = 0x5f3a12345678, .start = 0x7f0000000000, .size = 1572864,
		  .owner_pid = 1234, .owner_uid = 1000, .owner_gid = 1000, .mode = 0640,
		  .accesses = 1, .attachments = 1, .faults = 3, .recalls = 1,
		  .owner_comm = "exporter" },
		/* An exporter that is gone, with a name the kernel cut inside a character. */
		{ .segid = 0x1, .start = 0x1000, .size = 4096, .removed = 1, .mode = 0600,
		  .owner_comm = "caf\xc3\xa9-\xe2\x82\xac-long\xc3" },
	};
	struct xpmem_access_info acc[2] = {
		{ .apid = 0x77aa, .segid = 0x5f3a12345678, .pid = 1235, .uid = 1000,
		  .flags = XPMEM_IOCTL_RDWR },
		{ .apid = 0x77ab, .segid = 0x1, .pid = 1236, .flags = XPMEM_IOCTL_RDONLY },
	};
	struct xpmem_attachment_info att[2] = {
		{ .segid = 0x5f3a12345678, .pid = 1235, .uid = 1000, .vaddr = 0x7f1000000000,
		  .size = 8192, .offset = 4096, .flags = XPMEM_IOCTL_RDONLY, .vmas = 1,
		  .faults = 2 },
		{ .segid = 0x1, .pid = 1236, .vaddr = 0x7f2000000000, .size = 1ULL << 40,
		  .flags = XPMEM_IOCTL_RDWR, .vmas = 3, .recalls = 9 },
	};
	struct xpmem_stats_info st[1] = { {
		.segments_live = 2, .accesses_live = 2, .attachments_live = 2, .makes = 5,
		.gets = 4, .attaches = 3, .faults = 100, .fault_retries = 1, .recalls = 7,
	} };

	struct xpmem_node_info nodes[2] = {
		{ .node = 1, .state = XPMEM_NODE_UP, .epoch = 1700000000000000000ULL,
		  .flags = XPMEM_NODE_INFO_SELF, .served = 3 },
		{ .node = 2, .state = XPMEM_NODE_SUSPECT, .epoch = 1700000000000000001ULL,
		  .heartbeat_age_ns = 1500000000, .rtt_ns = 850000, .rejected = 2,
		  .flags = XPMEM_NODE_INFO_WINDOW, .window_phys = 0x800000000,
		  .window_size = 512 << 20, .requests = 9, .request_failures = 1 },
	};

	REPLY("segments", XPMEM_QUERY_SEGMENTS, 0, 2, 2, "attacher", seg);
	REPLY("nodes", XPMEM_QUERY_NODES, 0, 2, 2, "", nodes);
	REPLY("segments-bytes-partial", XPMEM_QUERY_SEGMENTS, 5, 1, 40, "x", seg);
	REPLY("permits", XPMEM_QUERY_ACCESSES, 0, 2, 2, "holder", acc);
	REPLY("permits-gone", XPMEM_QUERY_ACCESSES, 2, 2, 2, "", acc);
	REPLY("attachments", XPMEM_QUERY_ATTACHMENTS, 4, 2, 2, "attacher", att);
	REPLY("stats", XPMEM_QUERY_STATS, 0, 1, 1, "", st);
	REPLY("stats-empty", XPMEM_QUERY_STATS, 0, 0, 0, "", st);
	/* The first layout (an older kernel) and a longer one (a newer kernel). */
	reply("attachments-old", XPMEM_QUERY_ATTACHMENTS, 1,
	      offsetof(struct xpmem_attachment_info, recalls) + 8, 2, 2, "a\xff", att,
	      sizeof(att[0]));
	reply("segments-new", XPMEM_QUERY_SEGMENTS, 0, sizeof(seg[0]) + 16, 2, 2, "n", seg,
	      sizeof(seg[0]));
}

static void args(const char *name, const char *const *argv)
{
	char buf[512];
	size_t n = 0, len;

	for (; *argv; argv++) {
		len = strlen(*argv) + 1; /* the NUL separates arguments */
		if (n + len > sizeof(buf))
			abort();
		memcpy(buf + n, *argv, len);
		n += len;
	}
	/* No separator after the last one. */
	write_file(args_dir, name, buf, n ? n - 1 : 0);
}

#define ARGS(name, ...) args(name, (const char *const[]){ __VA_ARGS__, NULL })

static void args_seeds(void)
{
	ARGS("segments", "segments", "--json", "--bytes");
	ARGS("filters", "-p", "1234", "attachments", "-u", "root", "-s", "0x1a2b");
	ARGS("uid", "permits", "--uid=1000", "--pid=7");
	ARGS("show", "show", "0X5f3a12345678", "-j");
	ARGS("watch", "watch", "-i", "0.25", "-c", "3", "--segid", "ff");
	ARGS("watch-long", "watch", "--interval=1e-3", "--count=18446744073709551615");
	ARGS("version", "--version", "--json");
	ARGS("stats", "stats", "-jb");
	ARGS("help", "-h", "nobody");
	ARGS("bad", "show", "0x0x1", "--", "-x");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s QUERY_DIR ARGS_DIR\n", argv[0]);
		return 2;
	}
	query_dir = argv[1];
	args_dir = argv[2];
	query_seeds();
	args_seeds();
	return 0;
}
