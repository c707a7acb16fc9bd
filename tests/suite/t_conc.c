// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency: many threads faulting in one attachment, several attacher processes
 * at once, threads attaching and detaching windows of one permit concurrently.
 */
#include "suite.h"

static void conc_threads_fault_16mib(void **state)
{
	const size_t len = 16 * MiB;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 71, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	/* 8 threads verify interleaved pages (first touch), then rewrite them with seed 72. */
	assert_int_equal(PC(att, OP_THREADS, at, len, 8, 71), 0);
	assert_int_equal(PC(exp, OP_CHECK, base, len, 72, 0), 0);
	test_finish();
}

static void conc_several_attachers(void **state)
{
	enum { N = 4 };
	const size_t len = 4 * MiB, q = len / N;
	struct peer *exp, *att[N];
	uint64_t base, at[N];
	xpmem_segid_t segid;
	char name[16];

	(void)state;
	exp = exporter_start("exporter", len, 0, 73, 0666, &base, &segid);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "attacher%d", i);
		att[i] = peer_start(name);
		at[i] = peer_get_attach(att[i], segid, XPMEM_RDWR, 0, len, NULL);
	}
	/* All read everything at once. */
	for (int i = 0; i < N; i++)
		PSEND(att[i], OP_CHECK, at[i], len, 73, 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(peer_recv(att[i]), 0);
	/* Each writes its quarter, all at once. */
	for (int i = 0; i < N; i++)
		PSEND(att[i], OP_FILL, at[i] + i * q, q, 80 + (uint64_t)i, i * q / 8);
	for (int i = 0; i < N; i++)
		assert_int_equal(peer_recv(att[i]), 0);
	/* Each sees every quarter, including the others'. */
	for (int j = 0; j < N; j++) {
		for (int i = 0; i < N; i++)
			PSEND(att[i], OP_CHECK, at[i] + j * q, q, 80 + (uint64_t)j, j * q / 8);
		for (int i = 0; i < N; i++)
			assert_int_equal(peer_recv(att[i]), 0);
		assert_int_equal(PC(exp, OP_CHECK, base + j * q, q, 80 + (uint64_t)j, j * q / 8), 0);
	}
	test_finish();
}

static void conc_attach_detach_storm(void **state)
{
	enum { N = 2 };
	const size_t len = 64 * pg;
	struct peer *exp, *att[N];
	uint64_t base;
	xpmem_segid_t segid;
	int64_t ap[N];
	struct xstats s0, s1;

	(void)state;
	exp = exporter_start("exporter", len, 0, 75, 0666, &base, &segid);
	(void)exp;
	for (int i = 0; i < N; i++) {
		att[i] = peer_start(i ? "stormer1" : "stormer0");
		ap[i] = PC(att[i], OP_GET, (uint64_t)segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, 0);
		assert_id_valid(ap[i]);
	}
	stats_get(&s0);
	/* 4 threads per process, 100 attach/read/detach rounds each. */
	for (int i = 0; i < N; i++)
		PSEND(att[i], OP_ATTACH_STORM, (uint64_t)ap[i], len, 100, 75);
	for (int i = 0; i < N; i++)
		assert_int_equal(peer_recv(att[i]), 0);
	stats_get(&s1);
	assert_int_equal(s1.v[ST_ATTACHMENTS_LIVE], s0.v[ST_ATTACHMENTS_LIVE]);
	assert_int_equal(s1.v[ST_ATTACHES] - s0.v[ST_ATTACHES], N * 4 * 100);
	assert_int_equal(s1.v[ST_DETACHES] - s0.v[ST_DETACHES], N * 4 * 100);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(conc_threads_fault_16mib),
	SUITE_T(conc_several_attachers),
	SUITE_T(conc_attach_detach_storm),
};
SUITE_LIST(concurrency_tests, tests);
