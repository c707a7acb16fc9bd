// SPDX-License-Identifier: GPL-2.0-only
/*
 * ABI: the legacy ioctl layout spoken with raw byte buffers (deliberately not using
 * include/xpmem_ioctl.h), one ioctl per library call, /proc/xpmem, the user header's
 * constants, and the separately built legacy_demo program.
 */
#include "suite.h"

#include <stddef.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RW (PROT_READ | PROT_WRITE)
#define TAIL 0xcc

/* The existing module's commands: _IO('x', n). */
#define LEGACY_VERSION _IO('x', 0)
#define LEGACY_MAKE _IO('x', 1)
#define LEGACY_REMOVE _IO('x', 2)
#define LEGACY_GET _IO('x', 3)
#define LEGACY_RELEASE _IO('x', 4)
#define LEGACY_ATTACH _IO('x', 5)
#define LEGACY_DETACH _IO('x', 6)

static void put64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static uint64_t get64(const unsigned char *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* A request buffer: the struct's bytes, then a tail that the kernel must not touch. */
static void req_init(unsigned char *b)
{
	memset(b, 0, PEER_PAYLOAD);
}

static void req_tail(unsigned char *b, size_t size)
{
	memset(b + size, TAIL, PEER_PAYLOAD - size);
}

static void assert_tail_intact(const unsigned char *b, size_t size, const char *what)
{
	for (size_t i = size; i < PEER_PAYLOAD; i++)
		if (b[i] != TAIL)
			fail_msg("%s: byte %zu after the %zu-byte struct was written by the kernel", what,
				 i, size);
}

/* Bytes [from, to) of the reply equal those sent. */
static void assert_inputs_kept(const unsigned char *sent, const unsigned char *got, size_t from,
			       size_t to, const char *what)
{
	if (memcmp(sent + from, got + from, to - from) != 0)
		fail_msg("%s: input bytes %zu..%zu changed", what, from, to);
}

static int64_t raw(struct peer *p, int fd, unsigned long cmd, unsigned char *b)
{
	const uint64_t args[5] = { (uint64_t)fd, cmd, 0, 0, 0 };
	int64_t r = peer_call_payload(p, OP_RAW_IOCTL, args, b, PEER_PAYLOAD);

	memcpy(b, p->payload, PEER_PAYLOAD);
	return r;
}

static void abi_raw_ioctl_layout(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att;
	unsigned char b[PEER_PAYLOAD], sent[PEER_PAYLOAD];
	uint64_t buf, at, spot;
	int64_t efd, afd, segid, apid;

	(void)state;
	exp = peer_start("raw-exporter");
	att = peer_start("raw-attacher");
	efd = PC(exp, OP_RAW_OPEN, 0);
	afd = PC(att, OP_RAW_OPEN, 0);
	assert_true(efd >= 0 && afd >= 0);
	buf = (uint64_t)PC(exp, OP_MMAP, len, 0, RW);
	assert_int_equal(PC(exp, OP_FILL, buf, len, 111, 0), 0);

	/* VERSION: the ioctl's return value */
	req_init(b);
	req_tail(b, 0);
	assert_int_equal(raw(exp, (int)efd, LEGACY_VERSION, b), 0x00030000);

	/* MAKE (40 bytes): vaddr@0 size@8 permit_type@16 pad@20 permit_value@24 segid@32 */
	req_init(b);
	put64(b, 0, buf);
	put64(b, 8, len);
	put32(b, 16, 1);
	put64(b, 24, 0666);
	put64(b, 32, 0xaaaaaaaaaaaaaaaaULL);
	req_tail(b, 40);
	memcpy(sent, b, sizeof(b));
	assert_int_equal(raw(exp, (int)efd, LEGACY_MAKE, b), 0);
	assert_tail_intact(b, 40, "make");
	assert_inputs_kept(sent, b, 0, 32, "make");
	segid = (int64_t)get64(b, 32);
	assert_id_valid(segid);

	/* GET (32 bytes): segid@0 flags@8 permit_type@12 permit_value@16 apid@24 */
	req_init(b);
	put64(b, 0, (uint64_t)segid);
	put32(b, 8, 2);
	put32(b, 12, 1);
	put64(b, 16, 0666);
	req_tail(b, 32);
	assert_int_equal(raw(att, (int)afd, LEGACY_GET, b), -EINVAL); /* permit_value must be 0 */
	put64(b, 16, 0);
	put32(b, 8, 0);
	assert_int_equal(raw(att, (int)afd, LEGACY_GET, b), -EINVAL); /* flags 0 */
	put32(b, 8, 2);
	put64(b, 24, 0xbbbbbbbbbbbbbbbbULL);
	memcpy(sent, b, sizeof(b));
	assert_int_equal(raw(att, (int)afd, LEGACY_GET, b), 0);
	assert_tail_intact(b, 32, "get");
	assert_inputs_kept(sent, b, 0, 24, "get");
	apid = (int64_t)get64(b, 24);
	assert_id_valid(apid);

	/* ATTACH (40 bytes): apid@0 offset@8 size@16 vaddr@24 (in/out) fd@32 flags@36 */
	req_init(b);
	put64(b, 0, (uint64_t)apid);
	put64(b, 8, pg);
	put64(b, 16, 2 * pg);
	put64(b, 24, 0);
	put32(b, 32, (uint32_t)afd);
	put32(b, 36, 1);
	req_tail(b, 40);
	assert_int_equal(raw(att, (int)afd, LEGACY_ATTACH, b), -EINVAL); /* flags must be 0 */
	put32(b, 36, 0);
	memcpy(sent, b, sizeof(b));
	assert_int_equal(raw(att, (int)afd, LEGACY_ATTACH, b), 0);
	assert_tail_intact(b, 40, "attach");
	assert_inputs_kept(sent, b, 0, 24, "attach");
	assert_inputs_kept(sent, b, 32, 40, "attach");
	at = get64(b, 24);
	assert_true(at != 0 && at % pg == 0);
	assert_int_equal(PC(att, OP_CHECK, at, 2 * pg, 111, pg / 8), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 8, 0x1d1d), 0);
	assert_int_equal(PC(exp, OP_READ64, buf + pg + 8), 0x1d1d);

	/* ATTACH at a fixed address (fd is not used: -1 is fine). */
	spot = (uint64_t)PC(att, OP_MMAP, 2 * pg, 0, PROT_NONE);
	assert_int_equal(PC(att, OP_MUNMAP, spot, 2 * pg), 0);
	put64(b, 8, 0);
	put64(b, 16, pg);
	put64(b, 24, spot + pg);
	put32(b, 32, (uint32_t)-1);
	req_tail(b, 40);
	assert_int_equal(raw(att, (int)afd, LEGACY_ATTACH, b), 0);
	assert_int_equal(get64(b, 24), spot + pg);
	assert_int_equal(PC(att, OP_CHECK, spot + pg, pg, 111, 0), 0);

	/* DETACH (8 bytes): vaddr@0, any address inside */
	req_init(b);
	put64(b, 0, at + pg + 100);
	req_tail(b, 8);
	assert_int_equal(raw(att, (int)afd, LEGACY_DETACH, b), 0);
	assert_tail_intact(b, 8, "detach");
	assert_int_equal(PC(att, OP_MAPPED, at, pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at + pg, pg), 0);
	put64(b, 0, spot + pg);
	assert_int_equal(raw(att, (int)afd, LEGACY_DETACH, b), 0);
	assert_int_equal(raw(att, (int)afd, LEGACY_DETACH, b), -EINVAL);

	/* RELEASE (8 bytes): apid@0 */
	req_init(b);
	put64(b, 0, (uint64_t)apid);
	req_tail(b, 8);
	assert_int_equal(raw(att, (int)afd, LEGACY_RELEASE, b), 0);
	assert_tail_intact(b, 8, "release");
	assert_int_equal(raw(att, (int)afd, LEGACY_RELEASE, b), -ENOENT);

	/* REMOVE (8 bytes): segid@0 */
	req_init(b);
	put64(b, 0, (uint64_t)segid);
	req_tail(b, 8);
	assert_int_equal(raw(att, (int)afd, LEGACY_REMOVE, b), -EACCES);
	assert_int_equal(raw(exp, (int)efd, LEGACY_REMOVE, b), 0);
	assert_tail_intact(b, 8, "remove");
	assert_int_equal(raw(exp, (int)efd, LEGACY_REMOVE, b), -ENOENT);
	test_finish();
}

/* Each library call is exactly one request (the existing library's make was two). */
static void abi_one_ioctl_per_call(void **state)
{
	struct peer *exp;
	uint64_t base;
	xpmem_segid_t segid, own;
	xpmem_apid_t ap;
	struct xstats s[8];
	void *p;
	char *buf = map_anon(pg, 0);

	(void)state;
	exp = exporter_start("exporter", 2 * pg, 0, 112, 0666, &base, &segid);
	(void)exp;
	stats_get(&s[0]);
	own = xpmem_make(buf, pg, XPMEM_PERMIT_MODE, (void *)0666);
	assert_id_valid(own);
	track_segid(own);
	stats_get(&s[1]);
	ap = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)0666);
	assert_id_valid(ap);
	track_apid(ap);
	stats_get(&s[2]);
	p = xpmem_attach((struct xpmem_addr){ .apid = ap, .offset = (off_t)pg }, pg, NULL);
	assert_true(p != (void *)-1);
	track_attach(p);
	stats_get(&s[3]);
	assert_int_equal(xpmem_detach(p), 0);
	stats_get(&s[4]);
	assert_int_equal(xpmem_release(ap), 0);
	stats_get(&s[5]);
	assert_int_equal(xpmem_remove(own), 0);
	stats_get(&s[6]);
	assert_int_equal(s[1].v[ST_MAKES] - s[0].v[ST_MAKES], 1);
	assert_int_equal(s[1].v[ST_SEGMENTS_LIVE] - s[0].v[ST_SEGMENTS_LIVE], 1);
	assert_int_equal(s[2].v[ST_GETS] - s[1].v[ST_GETS], 1);
	assert_int_equal(s[2].v[ST_ACCESSES_LIVE] - s[1].v[ST_ACCESSES_LIVE], 1);
	assert_int_equal(s[3].v[ST_ATTACHES] - s[2].v[ST_ATTACHES], 1);
	assert_int_equal(s[3].v[ST_ATTACHMENTS_LIVE] - s[2].v[ST_ATTACHMENTS_LIVE], 1);
	assert_int_equal(s[4].v[ST_DETACHES] - s[3].v[ST_DETACHES], 1);
	assert_int_equal(s[4].v[ST_ATTACHMENTS_LIVE], s[2].v[ST_ATTACHMENTS_LIVE]);
	assert_int_equal(s[5].v[ST_RELEASES] - s[4].v[ST_RELEASES], 1);
	assert_int_equal(s[5].v[ST_ACCESSES_LIVE], s[1].v[ST_ACCESSES_LIVE]);
	assert_int_equal(s[6].v[ST_REMOVES] - s[5].v[ST_REMOVES], 1);
	assert_int_equal(s[6].v[ST_SEGMENTS_LIVE], s[0].v[ST_SEGMENTS_LIVE]);
	/* Nothing else moved: no second make, get, ... on the way. */
	assert_int_equal(s[6].v[ST_MAKES] - s[0].v[ST_MAKES], 1);
	assert_int_equal(s[6].v[ST_GETS] - s[0].v[ST_GETS], 1);
	assert_int_equal(s[6].v[ST_ATTACHES] - s[0].v[ST_ATTACHES], 1);
	test_finish();
}

static void abi_proc_files(void **state)
{
	const size_t len = 64 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	struct xstats s0, s1, s2;
	long long pinned, unpinned;
	char why[256];

	(void)state;
	stats_get(&s0);
	for (int i = 0; i < ST_COUNT; i++)
		assert_true(s0.v[i] >= 0);
	exp = exporter_start("exporter", len, 0, 113, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_TOUCH, at, len, 1), 64);
	stats_get(&s1);
	assert_true(s1.v[ST_FAULTS] > s0.v[ST_FAULTS]);
	/* Attached and faulted, yet nothing is pinned. */
	if (global_pages_read(&pinned, &unpinned, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	assert_int_equal(pinned, 0);
	assert_int_equal(unpinned, 0);
	/* The exporter unmapping faulted pages is a recall. */
	assert_int_equal(PC(exp, OP_MUNMAP, base, len), 0);
	stats_get(&s2);
	assert_true(s2.v[ST_RECALLS] > s1.v[ST_RECALLS]);
	test_finish();
}

static void abi_header_constants(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct xpmem_addr), 16);
	assert_int_equal(offsetof(struct xpmem_addr, apid), 0);
	assert_int_equal(offsetof(struct xpmem_addr, offset), 8);
	assert_int_equal(sizeof(xpmem_segid_t), 8);
	assert_int_equal(sizeof(xpmem_apid_t), 8);
	assert_true((xpmem_segid_t)-1 < 0);
	assert_int_equal(XPMEM_MAXADDR_SIZE, (size_t)-1);
	assert_int_equal(XPMEM_ERRNO_NOPROC, 2004);
	assert_int_equal(XPMEM_RDONLY, 1);
	assert_int_equal(XPMEM_RDWR, 2);
	assert_int_equal(XPMEM_PERMIT_MODE, 1);
	test_finish();
}

/* tests/compat/legacy_demo, built separately against the installed-style API. */
static void abi_legacy_demo(void **state)
{
	char path[sizeof(suite_dir) + 32];
	pid_t pid;
	int st;

	(void)state;
	snprintf(path, sizeof(path), "%s/legacy_demo", suite_dir);
	if (access(path, X_OK) != 0)
		fail_msg("%s: %s (build it with 'make user')", path, strerror(errno));
	pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	st = wait_pid_timeout(pid, 120000);
	assert_exited_ok(st);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(abi_raw_ioctl_layout),
	SUITE_T(abi_one_ioctl_per_call),
	SUITE_T(abi_proc_files),
	SUITE_T(abi_header_constants),
	SUITE_T(abi_legacy_demo),
};
SUITE_LIST(abi_tests, tests);
