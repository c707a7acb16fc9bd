// SPDX-License-Identifier: GPL-2.0-only
/*
 * Lifetime: exporter exit and removal under live attachments, attacher exit, release
 * with live attachments, fork, the attacher reshaping its attachment (munmap, mprotect,
 * mremap), IPC namespaces.
 */
#include "suite.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define RW (PROT_READ | PROT_WRITE)

static void life_exporter_exit(void **state)
{
	const size_t len = 8 * pg;
	struct peer *exp, *a1, *a2;
	uint64_t base, w1, w2;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 91, 0666, &base, &segid);
	a1 = peer_start("faulted");
	a2 = peer_start("untouched");
	w1 = peer_get_attach(a1, segid, XPMEM_RDWR, 0, len, NULL);
	w2 = peer_get_attach(a2, segid, XPMEM_RDONLY, 0, len, NULL);
	assert_int_equal(PC(a1, OP_CHECK, w1, len, 91, 0), 0);
	peer_stop(exp);
	/* The segment went with its exporter. */
	assert_fails_with(xpmem_get(segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, (void *)0666), ENOENT);
	/* Attachments stay mapped but touching them raises SIGBUS. */
	assert_int_equal(PC(a1, OP_MAPPED, w1, len), 1);
	PDIE(a1, SIGBUS, OP_READ64, w1 + 2 * pg);
	PDIE(a2, SIGBUS, OP_READ64, w2 + 5 * pg);
	test_finish();
}

/* The exporter is killed while an attacher is reading in a loop. */
static void life_exporter_killed_mid_use(void **state)
{
	const size_t len = 4 * MiB;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 92, 0666, &base, &segid);
	att = peer_start("reader");
	at = peer_get_attach(att, segid, XPMEM_RDONLY, 0, len, NULL);
	/* Returns after one full pass, then keeps reading. */
	PC(att, OP_SPIN_READ, at, len);
	peer_kill(exp);
	peer_wait_death(att, SIGBUS, 60000);
	test_finish();
}

/* An attacher exiting with a permit and attachments leaves nothing behind. */
static void life_attacher_exit_live(void **state)
{
	const size_t len = 8 * pg;
	struct peer *exp, *att, *other;
	uint64_t base, w[3];
	xpmem_segid_t segid;
	xpmem_apid_t ap;
	struct xstats s0, s1, s2;

	(void)state;
	exp = exporter_start("exporter", len, 0, 93, 0666, &base, &segid);
	att = peer_start("attacher");
	stats_get(&s0);
	w[0] = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, &ap);
	w[1] = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, pg, 2 * pg, 0);
	w[2] = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, 4 * pg, 4 * pg, 0);
	assert_true((int64_t)w[1] > 0 && (int64_t)w[2] > 0);
	for (int i = 0; i < 3; i++)
		assert_true(PC(att, OP_TOUCH, w[i], pg, 1) == 1);
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ACCESSES_LIVE] - s0.v[ST_ACCESSES_LIVE], 1);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE] - s0.v[ST_ATTACHMENTS_LIVE], 3);
	peer_stop(att);
	if (stats_wait_live(&s0, &s2, 15000) != 0)
		fail_msg("after the attacher exited: accesses_live %lld (was %lld), attachments_live %lld (was %lld)",
			 s2.v[ST_ACCESSES_LIVE], s0.v[ST_ACCESSES_LIVE], s2.v[ST_ATTACHMENTS_LIVE],
			 s0.v[ST_ATTACHMENTS_LIVE]);
	/* The exporter and its segment are untouched. */
	assert_int_equal(PC(exp, OP_CHECK, base, len, 93, 0), 0);
	other = peer_start("other");
	w[0] = peer_get_attach(other, segid, XPMEM_RDONLY, 0, len, NULL);
	assert_int_equal(PC(other, OP_CHECK, w[0], len, 93, 0), 0);
	test_finish();
}

static void life_remove_while_attached(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 94, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 94, 0), 0);
	assert_int_equal(PC(exp, OP_REMOVE, (uint64_t)segid), 0);
	assert_fails_with(xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)0666), ENOENT);
	PDIE(att, SIGBUS, OP_READ64, at + pg);
	/* The exporter's own memory is not affected. */
	assert_int_equal(PC(exp, OP_CHECK, base, len, 94, 0), 0);
	test_finish();
}

static void life_release_keeps_attachment(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	xpmem_apid_t ap;
	struct xstats s0, s1;

	(void)state;
	exp = exporter_start("exporter", len, 0, 95, 0666, &base, &segid);
	att = peer_start("attacher");
	stats_get(&s0);
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, &ap);
	assert_int_equal(PC(att, OP_RELEASE, (uint64_t)ap), 0);
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ACCESSES_LIVE], s0.v[ST_ACCESSES_LIVE]);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE] - s0.v[ST_ATTACHMENTS_LIVE], 1);
	assert_int_equal(PC(att, OP_CHECK, at, len, 95, 0), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 3 * pg, 0x9999), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 3 * pg), 0x9999);
	assert_int_equal(PC(att, OP_ATTACH, (uint64_t)ap, 0, pg, 0), -ENOENT);
	assert_int_equal(PC(att, OP_DETACH, at), 0);
	test_finish();
}

static void life_fork_not_inherited(void **state)
{
	const size_t len = 4 * pg;
	struct peer *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int64_t st;

	(void)state;
	exporter_start("exporter", len, 0, 96, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 96, 0), 0);
	st = PC(att, OP_FORK_PROBE, at + pg, 0);
	assert_killed_by((int)st, SIGSEGV);
	st = PC(att, OP_FORK_PROBE, at + 2 * pg, 1);
	assert_killed_by((int)st, SIGSEGV);
	/* The parent's attachment is unaffected by the fork. */
	assert_int_equal(PC(att, OP_CHECK, at, len, 96, 0), 0);
	test_finish();
}

/* A forked child (every peer is one) uses the library state it inherited. */
static void life_fork_child_uses_library(void **state)
{
	const size_t len = 4 * pg;
	char *mine = map_anon(len, 0);
	struct peer *child;
	xpmem_segid_t my_seg, its_seg;
	xpmem_apid_t ap;
	uint64_t its_buf, at;
	void *p;

	(void)state;
	pat_fill(mine, len, 97, 0);
	my_seg = xpmem_make(mine, len, XPMEM_PERMIT_MODE, (void *)0600);
	assert_id_valid(my_seg);
	track_segid(my_seg);
	child = peer_start("child");
	assert_int_equal(PC(child, OP_VERSION, 0), xpmem_version());
	/* child attaches the parent's segment */
	at = peer_get_attach(child, my_seg, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(child, OP_CHECK, at, len, 97, 0), 0);
	assert_int_equal(PC(child, OP_WRITE64, at + 8, 0xaaaa), 0);
	assert_int_equal(*(volatile uint64_t *)(mine + 8), 0xaaaa);
	/* child exports, parent attaches */
	its_buf = (uint64_t)PC(child, OP_MMAP, len, 0, RW);
	assert_int_equal(PC(child, OP_FILL, its_buf, len, 98, 0), 0);
	its_seg = PC(child, OP_MAKE, its_buf, len, XPMEM_PERMIT_MODE, 0600);
	assert_id_valid(its_seg);
	ap = xpmem_get(its_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)0600);
	assert_id_valid(ap);
	track_apid(ap);
	p = xpmem_attach((struct xpmem_addr){ .apid = ap, .offset = 0 }, len, NULL);
	assert_true(p != (void *)-1);
	track_attach(p);
	assert_int_equal(pat_check(p, len, 98, 0), 0);
	((volatile uint64_t *)p)[1] = 0xbbbb;
	assert_int_equal(PC(child, OP_READ64, its_buf + 8), 0xbbbb);
	assert_int_equal(xpmem_detach(p), 0);
	assert_int_equal(xpmem_release(ap), 0);
	assert_int_equal(PC(child, OP_REMOVE, (uint64_t)its_seg), 0);
	test_finish();
}

static void life_attacher_munmap_part(void **state)
{
	const size_t len = 8 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	struct xstats s0, s1;

	(void)state;
	exp = exporter_start("exporter", len, 0, 99, 0666, &base, &segid);
	att = peer_start("attacher");
	stats_get(&s0);
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 99, 0), 0);
	assert_int_equal(PC(att, OP_MUNMAP, at + 2 * pg, 2 * pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at + 2 * pg, pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at + 3 * pg, pg), 0);
	assert_int_equal(PC(att, OP_CHECK, at, 2 * pg, 99, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 4 * pg, 4 * pg, 99, 4 * pg / 8), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 6 * pg, 0x6666), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 6 * pg), 0x6666);
	/* Detach through one piece removes the whole (split) attachment. */
	assert_int_equal(PC(att, OP_DETACH, at + 5 * pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at + 4 * pg, pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at, pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at + pg, pg), 0);
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE], s0.v[ST_ATTACHMENTS_LIVE]);
	/* Unmapping an attachment entirely with munmap is a detach too. */
	at = (uint64_t)PC(att, OP_ATTACH, (uint64_t)PC(att, OP_GET, (uint64_t)segid, XPMEM_RDONLY,
						       XPMEM_PERMIT_MODE, 0),
			  0, len, 0);
	assert_true((int64_t)at > 0);
	assert_int_equal(PC(att, OP_TOUCH, at, len, 0), 8);
	assert_int_equal(PC(att, OP_MUNMAP, at, len), 0);
	assert_int_equal(PC(att, OP_DETACH, at), -EINVAL);
	peer_stop(att); /* it was not killed along the way */
	test_finish();
}

static void life_attacher_mprotect(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att, *att2;
	uint64_t base, at, at2;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 100, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 100, 0), 0);
	assert_int_equal(PC(att, OP_MPROTECT, at, len, PROT_READ), 0);
	assert_int_equal(PC(att, OP_CHECK, at, len, 100, 0), 0);
	assert_int_equal(PC(att, OP_MPROTECT, at, len, RW), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + pg, 0x7777), 0);
	assert_int_equal(PC(exp, OP_READ64, base + pg), 0x7777);
	/* One page read-only: splits the attachment's mapping. */
	assert_int_equal(PC(att, OP_MPROTECT, at + 2 * pg, pg, PROT_READ), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 3 * pg, 0x7778), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 3 * pg), 0x7778);
	assert_int_equal(PC(att, OP_CHECK, at + 2 * pg, pg, 100, 2 * pg / 8), 0);
	PDIE(att, SIGSEGV, OP_WRITE64, at + 2 * pg, 0xbad);
	assert_int_equal(PC(exp, OP_CHECK, base + 2 * pg, pg, 100, 2 * pg / 8), 0);
	/* PROT_NONE by the attacher: its own access faults with SIGSEGV. */
	att2 = peer_start("attacher2");
	at2 = peer_get_attach(att2, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att2, OP_TOUCH, at2, len, 0), 4);
	assert_int_equal(PC(att2, OP_MPROTECT, at2, len, PROT_NONE), 0);
	PDIE(att2, SIGSEGV, OP_READ64, at2);
	test_finish();
}

static void life_attacher_mremap(void **state)
{
	const size_t len = 8 * pg;
	struct peer *exp, *att;
	uint64_t base, at, dst;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 101, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 101, 0), 0);
	dst = (uint64_t)PC(att, OP_MMAP, len, 0, PROT_NONE);
	assert_true((int64_t)dst > 0);
	assert_int_equal((int64_t)PC(att, OP_MREMAP, at, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst),
			 (int64_t)dst);
	assert_int_equal(PC(att, OP_MAPPED, at, pg), 0);
	assert_int_equal(PC(att, OP_CHECK, dst, len, 101, 0), 0);
	assert_int_equal(PC(att, OP_WRITE64, dst + 3 * pg, 0x8888), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 3 * pg), 0x8888);
	assert_int_equal(PC(exp, OP_WRITE64, base + 6 * pg, 0x8889), 0);
	assert_int_equal(PC(att, OP_READ64, dst + 6 * pg), 0x8889);
	/* Still an attachment at its new place. */
	assert_int_equal(PC(att, OP_DETACH, dst + pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, dst, pg), 0);
	peer_stop(att); /* not killed */
	test_finish();
}

static void life_ipc_namespace(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *c;
	uint64_t base, cbuf, at;
	xpmem_segid_t segid, nsseg;
	int64_t ap;

	(void)state;
	exp = exporter_start("exporter", len, 0, 102, 0666, &base, &segid);
	c = peer_start("namespaced");
	/* Visible before unsharing ... */
	ap = PC(c, OP_GET, (uint64_t)segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, 0);
	assert_id_valid(ap);
	assert_int_equal(PC(c, OP_RELEASE, (uint64_t)ap), 0);
	assert_int_equal(PC(c, OP_UNSHARE, CLONE_NEWIPC), 0);
	/* ... not after. */
	assert_int_equal(PC(c, OP_GET, (uint64_t)segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, 0), -ENOENT);
	/* Inside the new namespace XPMEM works, and is invisible from outside. */
	cbuf = (uint64_t)PC(c, OP_MMAP, len, 0, RW);
	assert_int_equal(PC(c, OP_FILL, cbuf, len, 103, 0), 0);
	nsseg = PC(c, OP_MAKE, cbuf, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(nsseg);
	at = peer_get_attach(c, nsseg, XPMEM_RDONLY, 0, len, NULL);
	assert_int_equal(PC(c, OP_CHECK, at, len, 103, 0), 0);
	assert_fails_with(xpmem_get(nsseg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, (void *)0666), ENOENT);
	assert_int_equal(PC(exp, OP_GET, (uint64_t)nsseg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, 0), -ENOENT);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(life_exporter_exit),
	SUITE_T(life_exporter_killed_mid_use),
	SUITE_T(life_attacher_exit_live),
	SUITE_T(life_remove_while_attached),
	SUITE_T(life_release_keeps_attachment),
	SUITE_T(life_fork_not_inherited),
	SUITE_T(life_fork_child_uses_library),
	SUITE_T(life_attacher_munmap_part),
	SUITE_T(life_attacher_mprotect),
	SUITE_T(life_attacher_mremap),
	SUITE_T(life_ipc_namespace),
};
SUITE_LIST(lifetime_tests, tests);
