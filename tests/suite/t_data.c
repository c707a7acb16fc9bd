// SPDX-License-Identifier: GPL-2.0-only
/*
 * Data: what one process writes the other reads, both ways, at offsets, through
 * fixed-address attachments and through windows of a whole-address-space export.
 */
#include "suite.h"

#include <sys/mman.h>

#define RW (PROT_READ | PROT_WRITE)

static void data_two_way_8mib(void **state)
{
	const size_t len = 8 * MiB, half = len / 2, quarter = len / 4;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 31, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 31, 0), 0);
	/* attacher -> exporter */
	assert_int_equal(PC(att, OP_FILL, at + half, half, 32, half / 8), 0);
	assert_int_equal(PC(exp, OP_CHECK, base, half, 31, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, base + half, half, 32, half / 8), 0);
	/* exporter -> attacher, on pages the attacher has already mapped */
	assert_int_equal(PC(exp, OP_FILL, base, quarter, 33, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at, quarter, 33, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + quarter, quarter, 31, quarter / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, at + half, half, 32, half / 8), 0);
	assert_int_equal(PC(att, OP_DETACH, at), 0);
	assert_int_equal(PC(att, OP_MAPPED, at, pg), 0);
	/* The exporter's memory is unaffected by the detach. */
	assert_int_equal(PC(exp, OP_CHECK, base, quarter, 33, 0), 0);
	test_finish();
}

/* Several windows of one segment at once, all coherent with each other. */
static void data_offset_windows(void **state)
{
	const size_t npages = 64, len = npages * pg;
	static const struct {
		size_t first, n;
	} win[] = { { 1, 3 }, { 17, 1 }, { 63, 1 }, { 0, 64 }, { 30, 20 } };
	enum { NW = sizeof(win) / sizeof(win[0]) };
	struct peer *exp, *att;
	uint64_t base, at[NW];
	xpmem_segid_t segid;
	xpmem_apid_t ap;

	(void)state;
	exp = exporter_start("exporter", len, 0, 34, 0666, &base, &segid);
	att = peer_start("attacher");
	ap = PC(att, OP_GET, (uint64_t)segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, 0);
	assert_id_valid(ap);
	for (int i = 0; i < NW; i++) {
		at[i] = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, win[i].first * pg, win[i].n * pg, 0);
		assert_true((int64_t)at[i] > 0);
		assert_int_equal(PC(att, OP_CHECK, at[i], win[i].n * pg, 34, win[i].first * pg / 8), 0);
	}
	/* Written through the page-17 window, seen through the full one and by the exporter. */
	assert_int_equal(PC(att, OP_WRITE64, at[1] + 40, 0xfeedface), 0);
	assert_int_equal(PC(att, OP_READ64, at[3] + 17 * pg + 40), 0xfeedface);
	assert_int_equal(PC(exp, OP_READ64, base + 17 * pg + 40), 0xfeedface);
	/* Written by the exporter, seen through two overlapping windows. */
	assert_int_equal(PC(exp, OP_WRITE64, base + 31 * pg, 0xc0ffee), 0);
	assert_int_equal(PC(att, OP_READ64, at[4] + pg), 0xc0ffee);
	assert_int_equal(PC(att, OP_READ64, at[3] + 31 * pg), 0xc0ffee);
	/* Detaching one window leaves the others. */
	assert_int_equal(PC(att, OP_DETACH, at[3] + 5 * pg), 0);
	assert_int_equal(PC(att, OP_MAPPED, at[3], pg), 0);
	assert_int_equal(PC(att, OP_READ64, at[4] + pg), 0xc0ffee);
	assert_int_equal(PC(att, OP_CHECK, at[2], pg, 34, 63 * pg / 8), 0);
	test_finish();
}

static void data_fixed_address(void **state)
{
	const size_t len = 16 * pg;
	struct peer *exp, *att;
	uint64_t base, spot, busy, at;
	xpmem_segid_t segid;
	xpmem_apid_t ap;

	(void)state;
	exp = exporter_start("exporter", len, 0, 35, 0666, &base, &segid);
	att = peer_start("attacher");
	ap = PC(att, OP_GET, (uint64_t)segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, 0);
	assert_id_valid(ap);
	/* A free, page-aligned spot chosen by the attacher. */
	spot = (uint64_t)PC(att, OP_MMAP, 2 * len, 0, PROT_NONE);
	assert_true((int64_t)spot > 0);
	assert_int_equal(PC(att, OP_MUNMAP, spot, 2 * len), 0);
	at = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, 4 * pg, 8 * pg, spot + 3 * pg);
	assert_int_equal(at, spot + 3 * pg);
	assert_int_equal(PC(att, OP_CHECK, at, 8 * pg, 35, 4 * pg / 8), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 8, 0xabc), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 4 * pg + 8), 0xabc);
	/* Occupied: EEXIST, and the occupant keeps its data. */
	busy = (uint64_t)PC(att, OP_MMAP, 4 * pg, 0, RW);
	assert_int_equal(PC(att, OP_FILL, busy, 4 * pg, 36, 0), 0);
	assert_int_equal(PC(att, OP_ATTACH, (uint64_t)ap, 0, 4 * pg, busy), -EEXIST);
	assert_int_equal(PC(att, OP_ATTACH, (uint64_t)ap, 0, 2 * pg, busy + 2 * pg), -EEXIST);
	/* ... also when it overlaps an existing attachment. */
	assert_int_equal(PC(att, OP_ATTACH, (uint64_t)ap, 0, 2 * pg, at + 7 * pg), -EEXIST);
	assert_int_equal(PC(att, OP_CHECK, busy, 4 * pg, 36, 0), 0);
	assert_int_equal(PC(att, OP_READ64, at + 8), 0xabc);
	test_finish();
}

/* A process attaching its own segment sees one memory through both addresses. */
static void data_self_attach(void **state)
{
	const size_t len = 8 * pg;
	struct peer *p;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	p = exporter_start("self", len, 0, 37, 0666, &base, &segid);
	at = peer_get_attach(p, segid, XPMEM_RDWR, 0, len, NULL);
	assert_true(at != base);
	assert_int_equal(PC(p, OP_CHECK, at, len, 37, 0), 0);
	assert_int_equal(PC(p, OP_WRITE64, at + 3 * pg, 0x5e1f), 0);
	assert_int_equal(PC(p, OP_READ64, base + 3 * pg), 0x5e1f);
	assert_int_equal(PC(p, OP_WRITE64, base + 5 * pg, 0xf1e5), 0);
	assert_int_equal(PC(p, OP_READ64, at + 5 * pg), 0xf1e5);
	test_finish();
}

/* make(0, XPMEM_MAXADDR_SIZE) and windows at the exporter's own addresses. */
static void data_maxaddr_windows(void **state)
{
	struct peer *exp, *att;
	uint64_t b1, b2, b3, w1, w2, w3;
	xpmem_segid_t segid;
	xpmem_apid_t ap;

	(void)state;
	exp = peer_start("exporter");
	segid = PC(exp, OP_MAKE, 0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	/* Buffers mapped after the make are covered too. */
	b1 = (uint64_t)PC(exp, OP_MMAP, pg, 0, RW);
	b2 = (uint64_t)PC(exp, OP_MMAP, 16 * pg, 0, RW);
	b3 = (uint64_t)PC(exp, OP_MMAP, 2 * MiB, 2 * MiB, RW);
	assert_true((int64_t)b1 > 0 && (int64_t)b2 > 0 && (int64_t)b3 > 0);
	assert_int_equal(PC(exp, OP_FILL, b1, pg, 41, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, b2, 16 * pg, 42, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, b3, 2 * MiB, 43, 0), 0);
	att = peer_start("attacher");
	ap = PC(att, OP_GET, (uint64_t)segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(ap);
	w1 = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, b1, pg, 0);
	w2 = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, b2 + 4 * pg, 8 * pg, 0);
	w3 = (uint64_t)PC(att, OP_ATTACH, (uint64_t)ap, b3, 2 * MiB, 0);
	assert_true((int64_t)w1 > 0 && (int64_t)w2 > 0 && (int64_t)w3 > 0);
	assert_int_equal(PC(att, OP_CHECK, w1, pg, 41, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, w2, 8 * pg, 42, 4 * pg / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, w3, 2 * MiB, 43, 0), 0);
	assert_int_equal(PC(att, OP_FILL, w2 + pg, 2 * pg, 44, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, b2 + 5 * pg, 2 * pg, 44, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, b2 + 4 * pg, pg, 42, 4 * pg / 8), 0);
	assert_int_equal(PC(exp, OP_CHECK, b2 + 7 * pg, 9 * pg, 42, 7 * pg / 8), 0);
	assert_int_equal(PC(exp, OP_FILL, b3 + MiB, pg, 45, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, w3 + MiB, pg, 45, 0), 0);
	test_finish();
}

/* A window over a hole attaches; the mapped parts work; the hole raises SIGBUS. */
static void data_hole_sigbus(void **state)
{
	struct peer *exp, *att;
	uint64_t h, r, w;
	xpmem_segid_t whole, ranged;

	(void)state;
	exp = peer_start("exporter");
	whole = PC(exp, OP_MAKE, 0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(whole);
	h = (uint64_t)PC(exp, OP_MMAP, 3 * pg, 0, RW);
	assert_true((int64_t)h > 0);
	assert_int_equal(PC(exp, OP_FILL, h, 3 * pg, 46, 0), 0);
	assert_int_equal(PC(exp, OP_MUNMAP, h + pg, pg), 0);

	att = peer_start("attacher");
	w = peer_get_attach(att, whole, XPMEM_RDWR, h, 3 * pg, NULL);
	assert_int_equal(PC(att, OP_CHECK, w, pg, 46, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, w + 2 * pg, pg, 46, 2 * pg / 8), 0);
	PDIE(att, SIGBUS, OP_READ64, w + pg + 64);

	/* Same with a segment made over a range that has a hole. */
	r = (uint64_t)PC(exp, OP_MMAP, 3 * pg, 0, RW);
	assert_int_equal(PC(exp, OP_FILL, r, 3 * pg, 47, 0), 0);
	assert_int_equal(PC(exp, OP_MUNMAP, r + pg, pg), 0);
	ranged = PC(exp, OP_MAKE, r, 3 * pg, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(ranged);
	att = peer_start("attacher2");
	w = peer_get_attach(att, ranged, XPMEM_RDONLY, 0, 3 * pg, NULL);
	assert_int_equal(PC(att, OP_CHECK, w + 2 * pg, pg, 47, 2 * pg / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, w, pg, 47, 0), 0);
	PDIE(att, SIGBUS, OP_READ64, w + pg);
	/* A hole the exporter fills later becomes readable. */
	assert_int_equal((int64_t)PC(exp, OP_MMAP_FIXED, r + pg, pg, RW), (int64_t)(r + pg));
	assert_int_equal(PC(exp, OP_FILL, r + pg, pg, 48, 0), 0);
	att = peer_start("attacher3");
	w = peer_get_attach(att, ranged, XPMEM_RDONLY, 0, 3 * pg, NULL);
	assert_int_equal(PC(att, OP_CHECK, w + pg, pg, 48, 0), 0);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(data_two_way_8mib),
	SUITE_T(data_offset_windows),
	SUITE_T(data_fixed_address),
	SUITE_T(data_self_attach),
	SUITE_T(data_maxaddr_windows),
	SUITE_T(data_hole_sigbus),
};
SUITE_LIST(data_tests, tests);
