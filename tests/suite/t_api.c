// SPDX-License-Identifier: GPL-2.0-only
/*
 * API: every call's success path and every documented error (exact errno).
 * These tests call the library from the orchestrator itself; the memory that is
 * exported belongs to a peer unless the test is about the caller's own segments.
 */
#include "suite.h"
#include "xpmem_ioctl.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MODE ((void *)0666)

static xpmem_segid_t make_tracked(void *addr, size_t len, unsigned mode)
{
	xpmem_segid_t id = xpmem_make(addr, len, XPMEM_PERMIT_MODE, (void *)(uintptr_t)mode);

	assert_id_valid(id);
	track_segid(id);
	return id;
}

static xpmem_apid_t get_tracked(xpmem_segid_t segid, int flags)
{
	xpmem_apid_t id = xpmem_get(segid, flags, XPMEM_PERMIT_MODE, MODE);

	assert_id_valid(id);
	track_apid(id);
	return id;
}

static void *attach_tracked(xpmem_apid_t apid, off_t off, size_t len, void *at)
{
	struct xpmem_addr xa = { .apid = apid, .offset = off };
	void *p = xpmem_attach(xa, len, at);

	if (p == (void *)-1)
		fail_msg("xpmem_attach(apid %lld, offset %lld, size %zu, %p): %s", (long long)apid,
			 (long long)off, len, at, strerror(errno));
	track_attach(p);
	return p;
}

static void *attach_raw(xpmem_apid_t apid, off_t off, size_t len, void *at)
{
	struct xpmem_addr xa = { .apid = apid, .offset = off };

	return xpmem_attach(xa, len, at);
}

static void api_version(void **state)
{
	int v;

	(void)state;
	v = xpmem_version();
	assert_true(v >= 0x00026005);
	assert_int_equal(v, XPMEM_INTERFACE_VERSION);
	test_finish();
}

/* xpmem_init opens the device once, close-on-exec. */
static void api_init_one_cloexec_fd(void **state)
{
	DIR *d;
	struct dirent *de;
	int found = 0, flags = 0;

	(void)state;
	assert_int_equal(xpmem_init(), 0);
	assert_int_equal(xpmem_init(), 0);
	assert_true(xpmem_version() > 0);
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[300], target[256];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "/dev/xpmem") == 0) {
			found++;
			flags = fcntl(atoi(de->d_name), F_GETFD);
		}
	}
	closedir(d);
	assert_int_equal(found, 1);
	assert_true(flags & FD_CLOEXEC);
	test_finish();
}

static void api_make_remove(void **state)
{
	char *buf = map_anon(4 * pg, 0);
	struct xstats s0, s1, s2;
	xpmem_segid_t id;

	(void)state;
	stats_get(&s0);
	id = make_tracked(buf, 4 * pg, 0600);
	stats_get(&s1);
	/* One call, one segment (the existing library made two). */
	assert_int_equal(s1.v[ST_MAKES] - s0.v[ST_MAKES], 1);
	assert_int_equal(s1.v[ST_SEGMENTS_LIVE] - s0.v[ST_SEGMENTS_LIVE], 1);
	assert_int_equal(xpmem_remove(id), 0);
	stats_get(&s2);
	assert_int_equal(s2.v[ST_SEGMENTS_LIVE], s0.v[ST_SEGMENTS_LIVE]);
	assert_int_equal(s2.v[ST_REMOVES] - s1.v[ST_REMOVES], 1);
	assert_fails_with(xpmem_remove(id), ENOENT);
	test_finish();
}

static void api_make_einval(void **state)
{
	char *buf = map_anon(4 * pg, 0);
	struct {
		uint64_t vaddr, size;
		int type;
		uint64_t mode;
		const char *what;
	} cases[] = {
		{ (uintptr_t)buf + 1, pg, XPMEM_PERMIT_MODE, 0666, "vaddr not page aligned" },
		{ (uintptr_t)buf + pg / 2, 2 * pg, XPMEM_PERMIT_MODE, 0666, "vaddr half page" },
		{ (uintptr_t)buf, 0, XPMEM_PERMIT_MODE, 0666, "size 0" },
		{ (uintptr_t)buf, pg + 1, XPMEM_PERMIT_MODE, 0666, "size not page aligned" },
		{ (uintptr_t)buf, pg / 2, XPMEM_PERMIT_MODE, 0666, "size half page" },
		{ (uintptr_t)buf, pg, 0, 0666, "permit_type 0" },
		{ (uintptr_t)buf, pg, 2, 0666, "permit_type 2" },
		{ (uintptr_t)buf, pg, -1, 0666, "permit_type -1" },
		{ (uintptr_t)buf, pg, XPMEM_PERMIT_MODE, 01000, "mode 01000" },
		{ (uintptr_t)buf, pg, XPMEM_PERMIT_MODE, 04666, "mode 04666 (setuid bit)" },
		{ (uintptr_t)buf, pg, XPMEM_PERMIT_MODE, 0x10000, "mode 0x10000" },
		{ (uintptr_t)buf, pg, XPMEM_PERMIT_MODE, ~0ULL, "mode all ones" },
		{ 1ULL << 56, pg, XPMEM_PERMIT_MODE, 0666, "vaddr beyond user space (2^56)" },
		{ 0xffff800000000000ULL, pg, XPMEM_PERMIT_MODE, 0666, "kernel address" },
		{ (1ULL << 56) - pg, 2 * pg, XPMEM_PERMIT_MODE, 0666, "range ends beyond user space" },
		{ 0xffffffffffff0000ULL, 0x20000, XPMEM_PERMIT_MODE, 0666, "vaddr + size wraps" },
		{ 2 * pg, (uint64_t)0 - pg, XPMEM_PERMIT_MODE, 0666, "huge size, wraps" },
		{ (uintptr_t)buf + 1, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, 0666,
		  "MAXADDR with unaligned vaddr" },
		{ 0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, 01777, "MAXADDR with mode 01777" },
		{ 0, XPMEM_MAXADDR_SIZE, 3, 0666, "MAXADDR with permit_type 3" },
	};
	struct xstats s0, s1;

	(void)state;
	stats_get(&s0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xpmem_segid_t id;
		int err;

		errno = 0;
		id = xpmem_make((void *)(uintptr_t)cases[i].vaddr, cases[i].size, cases[i].type,
				(void *)(uintptr_t)cases[i].mode);
		err = errno;
		if (id != -1) {
			track_segid(id);
			fail_msg("make(%s) succeeded with segid %lld", cases[i].what, (long long)id);
		}
		if (err != EINVAL)
			fail_msg("make(%s): errno %s, expected EINVAL", cases[i].what,
				 strerrorname_np(err));
	}
	stats_get(&s1);
	assert_int_equal(s1.v[ST_SEGMENTS_LIVE], s0.v[ST_SEGMENTS_LIVE]);
	test_finish();
}

/* Holes inside the range, a range that is entirely unmapped, overlapping segments. */
static void api_make_holes_and_overlaps(void **state)
{
	char *buf = map_anon(8 * pg, 0);
	xpmem_segid_t a, b, c;

	(void)state;
	assert_int_equal(munmap(buf + 2 * pg, 2 * pg), 0);
	a = make_tracked(buf, 8 * pg, 0666);
	b = make_tracked(buf + 2 * pg, 2 * pg, 0666); /* only a hole */
	c = make_tracked(buf, 8 * pg, 0666); /* same range again: a distinct segment */
	assert_true(a != c && a != b && b != c);
	assert_int_equal(xpmem_remove(a), 0);
	assert_int_equal(xpmem_remove(b), 0);
	assert_int_equal(xpmem_remove(c), 0);
	test_finish();
}

static void api_make_maxaddr(void **state)
{
	xpmem_segid_t a, b, c;

	(void)state;
	a = make_tracked(0, XPMEM_MAXADDR_SIZE, 0666);
	/* The MPI transports and UCX each do this once in the same process. */
	b = make_tracked(0, XPMEM_MAXADDR_SIZE, 0666);
	c = make_tracked((void *)(16 * pg), XPMEM_MAXADDR_SIZE, 0600);
	assert_true(a != b && b != c && a != c);
	/* The segment ends where the user address space does. */
	{
		xpmem_apid_t ap = get_tracked(a, XPMEM_RDONLY);

		assert_attach_fails(attach_raw(ap, (off_t)(1LL << 56), pg, NULL), EINVAL);
		assert_attach_fails(attach_raw(ap, (off_t)(1LL << 56) - (off_t)pg, 2 * pg, NULL),
				    EINVAL);
		assert_int_equal(xpmem_release(ap), 0);
	}
	assert_int_equal(xpmem_remove(a), 0);
	assert_int_equal(xpmem_remove(b), 0);
	assert_int_equal(xpmem_remove(c), 0);
	test_finish();
}

/* ids are valid, distinct and not (counter << 32 | pid) like the existing module's. */
static void api_ids_not_guessable(void **state)
{
	enum { N = 8 };
	char *buf = map_anon(pg, 0);
	xpmem_segid_t s[N];
	xpmem_apid_t ap[N];
	int pid_like = 0;
	bool constant_step = true;

	(void)state;
	for (int i = 0; i < N; i++) {
		s[i] = make_tracked(buf, pg, 0666);
		if ((s[i] & 0xffffffffLL) == getpid())
			pid_like++;
		for (int j = 0; j < i; j++)
			assert_true(s[i] != s[j]);
	}
	for (int i = 2; i < N; i++)
		if (s[i] - s[i - 1] != s[1] - s[0])
			constant_step = false;
	assert_int_not_equal(pid_like, N);
	assert_false(constant_step);
	for (int i = 0; i < N; i++) {
		ap[i] = get_tracked(s[0], XPMEM_RDWR);
		for (int j = 0; j < i; j++)
			assert_true(ap[i] != ap[j]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(xpmem_release(ap[i]), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(xpmem_remove(s[i]), 0);
	test_finish();
}

static void api_remove_errors(void **state)
{
	char *buf = map_anon(pg, 0);
	xpmem_segid_t id;
	xpmem_apid_t ap;
	struct peer *other;

	(void)state;
	id = make_tracked(buf, pg, 0666);
	/* Another process, same uid (root): still not the owner. */
	other = peer_start("other");
	assert_int_equal(PC(other, OP_REMOVE, (uint64_t)id), -EACCES);
	/* ... and the segment is intact. */
	ap = get_tracked(id, XPMEM_RDONLY);
	assert_int_equal(xpmem_release(ap), 0);
	assert_fails_with(xpmem_remove((1LL << 51) + 0x5a5a5), ENOENT);
	assert_int_equal(xpmem_remove(id), 0);
	assert_fails_with(xpmem_remove(id), ENOENT);
	assert_int_equal(PC(other, OP_REMOVE, (uint64_t)id), -ENOENT);
	test_finish();
}

static void api_get_errors(void **state)
{
	char *buf = map_anon(pg, 0);
	xpmem_segid_t id, gone;
	static const int bad_flags[] = { 0, 3, 4, 0x10, -1, XPMEM_RDWR | 0x100 };

	(void)state;
	id = make_tracked(buf, pg, 0666);
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++)
		assert_fails_with(xpmem_get(id, bad_flags[i], XPMEM_PERMIT_MODE, MODE), EINVAL);
	assert_fails_with(xpmem_get(id, XPMEM_RDWR, 0, MODE), EINVAL);
	assert_fails_with(xpmem_get(id, XPMEM_RDWR, 2, MODE), EINVAL);
	assert_fails_with(xpmem_get(id, XPMEM_RDONLY, -1, MODE), EINVAL);
	assert_fails_with(xpmem_get((1LL << 51) + 0x5a5a5, XPMEM_RDWR, XPMEM_PERMIT_MODE, MODE),
			  ENOENT);
	gone = make_tracked(buf, pg, 0666);
	assert_int_equal(xpmem_remove(gone), 0);
	assert_fails_with(xpmem_get(gone, XPMEM_RDWR, XPMEM_PERMIT_MODE, MODE), ENOENT);
	test_finish();
}

/* Real callers pass a mode to get; the library must accept and not forward it. */
static void api_get_permit_value_ignored(void **state)
{
	char *buf = map_anon(pg, 0);
	static const uintptr_t values[] = { 0, 0666, 0600, 0777, 0xdeadbeef };
	xpmem_segid_t id;

	(void)state;
	id = make_tracked(buf, pg, 0600);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		xpmem_apid_t ap = xpmem_get(id, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)values[i]);

		assert_id_valid(ap);
		track_apid(ap);
		assert_int_equal(xpmem_release(ap), 0);
	}
	test_finish();
}

static void api_release_errors(void **state)
{
	char *buf = map_anon(pg, 0);
	xpmem_segid_t id;
	xpmem_apid_t ap, theirs;
	struct peer *other;

	(void)state;
	id = make_tracked(buf, pg, 0666);
	ap = get_tracked(id, XPMEM_RDWR);
	assert_int_equal(xpmem_release(ap), 0);
	assert_fails_with(xpmem_release(ap), ENOENT);
	assert_fails_with(xpmem_release((1LL << 51) + 0x5a5a5), ENOENT);
	other = peer_start("other");
	theirs = PC(other, OP_GET, (uint64_t)id, XPMEM_RDWR, XPMEM_PERMIT_MODE, 0);
	assert_id_valid(theirs);
	assert_fails_with(xpmem_release(theirs), EACCES);
	assert_attach_fails(attach_raw(theirs, 0, pg, NULL), EACCES);
	/* Still the getter's. */
	assert_int_equal(PC(other, OP_RELEASE, (uint64_t)theirs), 0);
	assert_int_equal(PC(other, OP_RELEASE, (uint64_t)theirs), -ENOENT);
	test_finish();
}

static void api_attach_errors(void **state)
{
	const size_t len = 8 * pg;
	uint64_t eaddr;
	xpmem_segid_t segid;
	xpmem_apid_t ap, gone;
	char *spot = free_spot(4 * pg); /* unmapped: only the alignment is wrong below */

	(void)state;
	exporter_start("exporter", len, 0, 11, 0666, &eaddr, &segid);
	ap = get_tracked(segid, XPMEM_RDWR);
	assert_attach_fails(attach_raw(ap, 1, pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, (off_t)pg / 2, pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, -(off_t)pg, pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, 0, 0, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, 0, len + pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, 0, len + 1, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, (off_t)len, pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, (off_t)(len - pg), 2 * pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, (off_t)pg, (size_t)0 - pg, NULL), EINVAL);
	assert_attach_fails(attach_raw(ap, 0, pg, spot + 1), EINVAL);
	assert_attach_fails(attach_raw(ap, 0, pg, spot + pg / 2), EINVAL);
	assert_attach_fails(attach_raw((1LL << 51) + 0x5a5a5, 0, pg, NULL), ENOENT);
	gone = get_tracked(segid, XPMEM_RDWR);
	assert_int_equal(xpmem_release(gone), 0);
	assert_attach_fails(attach_raw(gone, 0, pg, NULL), ENOENT);
	/* A valid request still works. */
	{
		uint64_t *p = attach_tracked(ap, (off_t)(len - pg), pg, NULL);

		assert_int_equal(p[0], pat_word(11, (len - pg) / 8));
		assert_int_equal(xpmem_detach(p), 0);
	}
	test_finish();
}

/* The size is rounded up to whole pages. */
static void api_attach_size_rounded_up(void **state)
{
	const size_t len = 8 * pg;
	uint64_t eaddr;
	xpmem_segid_t segid;
	xpmem_apid_t ap;
	char *p;
	uintptr_t s, e;

	(void)state;
	exporter_start("exporter", len, 0, 12, 0666, &eaddr, &segid);
	ap = get_tracked(segid, XPMEM_RDONLY);
	p = attach_tracked(ap, (off_t)pg, pg + 1, NULL);
	assert_int_equal((uintptr_t)p % pg, 0);
	assert_int_equal(vma_bounds(p, &s, &e), 0);
	assert_int_equal(s, (uintptr_t)p);
	assert_int_equal(e - s, 2 * pg);
	assert_int_equal(*(uint64_t *)p, pat_word(12, pg / 8));
	assert_int_equal(*(uint64_t *)(p + 2 * pg - 8), pat_word(12, 3 * pg / 8 - 1));
	assert_int_equal(xpmem_detach(p), 0);
	test_finish();
}

static void api_attach_fixed_and_eexist(void **state)
{
	const size_t len = 4 * pg;
	uint64_t eaddr;
	xpmem_segid_t segid;
	xpmem_apid_t ap;
	char *hole, *busy, *p;

	(void)state;
	exporter_start("exporter", len, 0, 13, 0666, &eaddr, &segid);
	ap = get_tracked(segid, XPMEM_RDWR);

	/* A free spot: attach exactly there. */
	hole = free_spot(len);
	p = attach_tracked(ap, 0, len, hole);
	assert_ptr_equal(p, hole);
	assert_int_equal(pat_check(p, len, 13, 0), 0);
	assert_int_equal(xpmem_detach(p), 0);

	/* An occupied spot: EEXIST and the occupant is untouched. */
	busy = map_anon(6 * pg, 0);
	pat_fill(busy, 6 * pg, 99, 0);
	assert_attach_fails(attach_raw(ap, 0, len, busy + 2 * pg), EEXIST);
	/* Partly occupied: [busy - ..., ) with the first two pages free. */
	assert_int_equal(munmap(busy, 2 * pg), 0);
	assert_attach_fails(attach_raw(ap, 0, len, busy), EEXIST);
	assert_true(range_unmapped(busy, 2 * pg));
	assert_int_equal(pat_check(busy + 2 * pg, 4 * pg, 99, 2 * pg / 8), 0);
	test_finish();
}

static void api_detach(void **state)
{
	const size_t len = 8 * pg;
	uint64_t eaddr;
	xpmem_segid_t segid;
	xpmem_apid_t ap;
	char *p, *plain;
	struct xstats s0, s1;

	(void)state;
	exporter_start("exporter", len, 0, 14, 0666, &eaddr, &segid);
	ap = get_tracked(segid, XPMEM_RDWR);
	stats_get(&s0);
	p = attach_tracked(ap, 0, len, NULL);
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE] - s0.v[ST_ATTACHMENTS_LIVE], 1);
	assert_int_equal(pat_check(p + 5 * pg, pg, 14, 5 * pg / 8), 0);
	/* Not an attachment of another process: EINVAL there, and ours stays. */
	{
		struct peer *other = peer_start("other");

		assert_int_equal(PC(other, OP_DETACH, (uint64_t)(uintptr_t)p), -EINVAL);
		assert_true(range_mapped(p, len));
	}
	/* Any address inside removes the whole attachment. */
	assert_int_equal(xpmem_detach(p + 3 * pg + 17), 0);
	assert_true(range_unmapped(p, len));
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE], s0.v[ST_ATTACHMENTS_LIVE]);
	assert_fails_with(xpmem_detach(p), EINVAL);
	assert_fails_with(xpmem_detach(NULL), EINVAL);
	plain = map_anon(pg, 0);
	plain[0] = 7;
	assert_fails_with(xpmem_detach(plain), EINVAL);
	assert_int_equal(plain[0], 7);
	assert_true(range_mapped(plain, pg));
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(api_version),
	SUITE_T(api_init_one_cloexec_fd),
	SUITE_T(api_make_remove),
	SUITE_T(api_make_einval),
	SUITE_T(api_make_holes_and_overlaps),
	SUITE_T(api_make_maxaddr),
	SUITE_T(api_ids_not_guessable),
	SUITE_T(api_remove_errors),
	SUITE_T(api_get_errors),
	SUITE_T(api_get_permit_value_ignored),
	SUITE_T(api_release_errors),
	SUITE_T(api_attach_errors),
	SUITE_T(api_attach_size_rounded_up),
	SUITE_T(api_attach_fixed_and_eexist),
	SUITE_T(api_detach),
};
SUITE_LIST(api_tests, tests);
