// SPDX-License-Identifier: GPL-2.0-only
/*
 * Recall: every change the exporter's mm goes through is reflected in attachments
 * that already mapped the old pages (munmap, remap, mprotect, MADV_DONTNEED, COW after
 * fork, THP collapse/split, NUMA migration, KSM merging).
 */
#include "suite.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define RW (PROT_READ | PROT_WRITE)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static void recall_munmap_sigbus(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *a1, *a2;
	uint64_t base, w1, w2;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 51, 0666, &base, &segid);
	a1 = peer_start("attacher1");
	a2 = peer_start("attacher2");
	w1 = peer_get_attach(a1, segid, XPMEM_RDWR, 0, len, NULL);
	w2 = peer_get_attach(a2, segid, XPMEM_RDONLY, 0, len, NULL);
	assert_int_equal(PC(a1, OP_CHECK, w1, len, 51, 0), 0);
	assert_int_equal(PC(a2, OP_CHECK, w2, len, 51, 0), 0);
	/* One page goes: only that page faults. */
	assert_int_equal(PC(exp, OP_MUNMAP, base + pg, pg), 0);
	assert_int_equal(PC(a1, OP_CHECK, w1, pg, 51, 0), 0);
	assert_int_equal(PC(a1, OP_CHECK, w1 + 2 * pg, 2 * pg, 51, 2 * pg / 8), 0);
	PDIE(a1, SIGBUS, OP_READ64, w1 + pg + 8);
	/* Everything goes: a page the attacher had mapped faults. */
	assert_int_equal(PC(exp, OP_MUNMAP, base, len), 0);
	PDIE(a2, SIGBUS, OP_READ64, w2 + 3 * pg);
	test_finish();
}

static void recall_remap_new_data(void **state)
{
	const size_t len = 8 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 52, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 52, 0), 0);
	/* munmap + mmap at the same address, new data. */
	assert_int_equal(PC(exp, OP_MUNMAP, base, len), 0);
	assert_int_equal((int64_t)PC(exp, OP_MMAP_FIXED, base, len, RW), (int64_t)base);
	assert_int_equal(PC(exp, OP_FILL, base, len, 53, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at, len, 53, 0), 0);
	/* MAP_FIXED straight over two mapped pages. */
	assert_int_equal((int64_t)PC(exp, OP_MMAP_FIXED, base + 2 * pg, 2 * pg, RW),
			 (int64_t)(base + 2 * pg));
	assert_int_equal(PC(att, OP_CHECK_BYTE, at + 2 * pg, 2 * pg, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, base + 2 * pg, 2 * pg, 54, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 2 * pg, 2 * pg, 54, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at, 2 * pg, 53, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 4 * pg, 4 * pg, 53, 4 * pg / 8), 0);
	/* And the new pages are the ones the attacher writes to. */
	assert_int_equal(PC(att, OP_WRITE64, at + 3 * pg, 0xdada), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 3 * pg), 0xdada);
	test_finish();
}

static void recall_mprotect_none(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *a1, *a2;
	uint64_t base, w1, w2;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 55, 0666, &base, &segid);
	a1 = peer_start("attacher1");
	a2 = peer_start("attacher2");
	w1 = peer_get_attach(a1, segid, XPMEM_RDWR, 0, len, NULL);
	w2 = peer_get_attach(a2, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(a1, OP_CHECK, w1, len, 55, 0), 0);
	assert_int_equal(PC(a2, OP_CHECK, w2, len, 55, 0), 0);
	assert_int_equal(PC(exp, OP_MPROTECT, base, len, PROT_NONE), 0);
	PDIE(a1, SIGBUS, OP_READ64, w1 + 2 * pg);
	assert_int_equal(PC(exp, OP_MPROTECT, base, len, RW), 0);
	assert_int_equal(PC(a2, OP_CHECK, w2, len, 55, 0), 0);
	assert_int_equal(PC(exp, OP_WRITE64, base + 8, 0x1111), 0);
	assert_int_equal(PC(a2, OP_READ64, w2 + 8), 0x1111);
	assert_int_equal(PC(a2, OP_WRITE64, w2 + pg, 0x2222), 0);
	assert_int_equal(PC(exp, OP_READ64, base + pg), 0x2222);
	test_finish();
}

static void recall_madv_dontneed(void **state)
{
	const size_t len = 16 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 56, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 56, 0), 0);
	assert_int_equal(PC(exp, OP_MADVISE, base, len, MADV_DONTNEED), 0);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at, len, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, base, 4 * pg, 57, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at, 4 * pg, 57, 0), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 8 * pg, 0x3333), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 8 * pg), 0x3333);
	assert_int_equal(PC(exp, OP_CHECK_BYTE, base + 9 * pg, 7 * pg, 0), 0);
	test_finish();
}

/*
 * The exporter forks: its pages become copy-on-write. Writes through the attachment
 * must land in the exporter's memory (not the child's), and writes by the exporter
 * (which get it new pages) must be what the attacher reads.
 */
static void recall_cow_after_exporter_fork(void **state)
{
	const size_t len = 8 * pg, half = len / 2;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 58, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 58, 0), 0);
	assert_true(PC(exp, OP_FORK_HOLD, 0) > 0);
	/* Still the same data right after the fork. */
	assert_int_equal(PC(att, OP_CHECK, at, len, 58, 0), 0);
	/* attacher writes first */
	assert_int_equal(PC(att, OP_FILL, at, half, 59, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, base, half, 59, 0), 0);
	/* exporter writes first */
	assert_int_equal(PC(exp, OP_FILL, base + half, half, 60, half / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, at + half, half, 60, half / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, at, half, 59, 0), 0);
	/* The forked child kept the data of the moment of the fork. */
	assert_int_equal(PC(exp, OP_HOLD_CHECK, base, len, 58, 0), 0);
	test_finish();
}

static char thp_saved[64];

static void thp_restore(void *arg)
{
	(void)arg;
	write_file_str("/sys/kernel/mm/transparent_hugepage/enabled", thp_saved);
}

/*
 * THP on madvise for this test (restored after it), the mode where only what
 * asks for huge pages gets them; false: no THP here.
 */
static bool thp_allow(void)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/enabled";
	char cur[128], *mode;

	if (read_file_str(knob, cur, sizeof(cur)) != 0) {
		skip_or_fail("no transparent huge pages in this kernel");
		return false;
	}
	mode = strchr(cur, '[');
	if (!mode || !strchr(mode, ']'))
		fail_msg("unexpected %s: %s", knob, cur);
	*strchr(mode, ']') = '\0';
	snprintf(thp_saved, sizeof(thp_saved), "%s", mode + 1);
	on_teardown(thp_restore, NULL);
	assert_int_equal(write_file_str(knob, "madvise"), 0);
	return true;
}

static void recall_thp_collapse_split(void **state)
{
	const size_t len = 4 * MiB;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int64_t kb_fault, kb_collapse, collapse;

	(void)state;
	if (!thp_allow())
		return;
	exp = peer_start("exporter");
	base = (uint64_t)PC(exp, OP_MMAP, len, 2 * MiB, RW);
	assert_true((int64_t)base > 0);
	assert_int_equal(base % (2 * MiB), 0);
	assert_int_equal(PC(exp, OP_MADVISE, base, len, MADV_HUGEPAGE), 0);
	assert_int_equal(PC(exp, OP_FILL, base, len, 61, 0), 0);
	kb_fault = PC(exp, OP_THP_KB, base);
	segid = PC(exp, OP_MAKE, base, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 61, 0), 0);

	collapse = PC(exp, OP_MADVISE, base, len, MADV_COLLAPSE);
	kb_collapse = PC(exp, OP_THP_KB, base);
	print_message("THP: %lld kB huge after fault, MADV_COLLAPSE %s, %lld kB huge after\n",
		      (long long)kb_fault, collapse == 0 ? "ok" : strerror((int)-collapse),
		      (long long)kb_collapse);
	if (kb_fault < 2048 && kb_collapse < 2048)
		fail_msg("the exporter's region never became a huge page (%lld/%lld kB): the THP part of this test would be vacuous",
			 (long long)kb_fault, (long long)kb_collapse);
	assert_int_equal(PC(att, OP_CHECK, at, len, 61, 0), 0);

	/* Split one PMD by changing the protection of one 4 KiB page inside it. */
	assert_int_equal(PC(exp, OP_MPROTECT, base + 3 * pg, pg, PROT_READ), 0);
	assert_int_equal(PC(att, OP_CHECK, at, len, 61, 0), 0);
	assert_int_equal(PC(exp, OP_WRITE64, base + 5 * pg, 0x4444), 0);
	assert_int_equal(PC(att, OP_READ64, at + 5 * pg), 0x4444);
	assert_int_equal(PC(att, OP_FILL, at + 10 * pg, pg, 62, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, base + 10 * pg, pg, 62, 0), 0);
	assert_int_equal(PC(exp, OP_MPROTECT, base + 3 * pg, pg, RW), 0);
	/* The second (still huge or collapsed) 2 MiB half, both ways. */
	assert_int_equal(PC(att, OP_FILL, at + 2 * MiB, 16 * pg, 63, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, base + 2 * MiB, 16 * pg, 63, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, base + 3 * MiB, 16 * pg, 64, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 3 * MiB, 16 * pg, 64, 0), 0);
	test_finish();
}

/* 2 MiB attacher mappings need special huge PFNMAP entries: Linux 6.12 on. */
static bool kernel_maps_huge(void)
{
	struct utsname u;
	int major, minor;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	       (major > 6 || (major == 6 && minor >= 12));
}

/*
 * An exporter THP reaches the attacher as one 2 MiB mapping (one fault for 512
 * pages), which no GUP can take pages through, and which a split in the
 * exporter recalls whole.
 */
static void huge_pmd_mapping(void **state)
{
	const size_t len = 4 * MiB;
	const bool huge = kernel_maps_huge();
	struct xstats s0, s1;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int64_t kb, touched, faults, huge_faults;

	(void)state;
	if (!thp_allow())
		return;
	exp = peer_start("exporter");
	base = (uint64_t)PC(exp, OP_MMAP, len, 2 * MiB, RW);
	assert_true((int64_t)base > 0);
	assert_int_equal(PC(exp, OP_MADVISE, base, len, MADV_HUGEPAGE), 0);
	assert_int_equal(PC(exp, OP_FILL, base, len, 72, 0), 0);
	kb = PC(exp, OP_THP_KB, base);
	if (kb < 2048)
		fail_msg("the exporter got no huge page (%lld kB): this test would be vacuous", (long long)kb);
	segid = PC(exp, OP_MAKE, base, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	att = peer_start("attacher");
	stats_get(&s0);
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	if (huge && at % (2 * MiB) != base % (2 * MiB))
		fail_msg("attachment at %#llx is not congruent to the source %#llx modulo 2 MiB",
			 (unsigned long long)at, (unsigned long long)base);
	touched = PC(att, OP_TOUCH, at, len, 0);
	assert_int_equal(touched, len / pg);
	stats_get(&s1);
	faults = s1.v[ST_FAULTS] - s0.v[ST_FAULTS];
	huge_faults = s1.v[ST_HUGE_FAULTS] - s0.v[ST_HUGE_FAULTS];
	print_message("exporter %lld kB in huge pages; reading 4 MiB through the attachment took %lld faults, %lld of them 2 MiB mappings\n",
		      (long long)kb, (long long)faults, (long long)huge_faults);
	if (huge) {
		assert_int_equal(huge_faults, kb / 2048);
		/* The rest maps 4 KiB pages, at most one fault per page. */
		assert_true(faults <= huge_faults + (int64_t)((len - (size_t)kb * 1024) / pg));
	} else {
		assert_int_equal(huge_faults, 0);
	}
	assert_int_equal(PC(att, OP_CHECK, at, len, 72, 0), 0);

	/* The kernel cannot take references to the exporter's pages through it. */
	assert_int_equal(PC(att, OP_VMSPLICE, at, 64 * pg), -EFAULT);

	/* A write through a read-mapped huge entry: remapped writable, reaches the exporter. */
	assert_int_equal(PC(att, OP_WRITE64, at + 2 * MiB + 8 * pg, 0x7272), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 2 * MiB + 8 * pg), 0x7272);
	assert_int_equal(PC(exp, OP_WRITE64, base + 2 * MiB + 9 * pg, 0x7373), 0);
	assert_int_equal(PC(att, OP_READ64, at + 2 * MiB + 9 * pg), 0x7373);

	/* Splitting the exporter's first huge page (munmap of one page in it) recalls it. */
	assert_int_equal(PC(exp, OP_MUNMAP, base + 5 * pg, pg), 0);
	assert_int_equal(PC(att, OP_PROBE_PAGE, at + 5 * pg), PROBE_SIGBUS);
	assert_int_equal(PC(att, OP_CHECK, at, 5 * pg, 72, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 6 * pg, 2 * MiB - 6 * pg, 72, 6 * pg / 8), 0);
	assert_int_equal(PC(exp, OP_WRITE64, base + 6 * pg, 0x7474), 0);
	assert_int_equal(PC(att, OP_READ64, at + 6 * pg), 0x7474);
	test_finish();
}

#define GiB (1024 * MiB)

/* A free 1 GiB hugetlb page; the test lab reserves one at boot. */
static bool hugetlb_1g_free(void)
{
	const char *knob = "/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages";
	long long n = read_file_ll(knob, -1);
	char cmdline[4096];

	if (n >= 1)
		return true;
	if (read_file_str("/proc/cmdline", cmdline, sizeof(cmdline)) == 0 &&
	    strstr(cmdline, "hugepagesz=1G"))
		fail_msg("this kernel was booted to reserve 1 GiB pages, but %s is %lld", knob, n);
	skip_or_fail("no free 1 GiB hugetlb page (boot with hugepagesz=1G hugepages=1)");
	return false;
}

static void assert_mapped(xpmem_segid_t segid, uint64_t n4k, uint64_t n2m, uint64_t n1g)
{
	struct mapped_now m = segment_mapped(segid);

	if (m.n4k != n4k || m.n2m != n2m || m.n1g != n1g)
		fail_msg("attacher entries: %llu x 4 KiB, %llu x 2 MiB, %llu x 1 GiB; expected %llu, %llu, %llu",
			 (unsigned long long)m.n4k, (unsigned long long)m.n2m,
			 (unsigned long long)m.n1g, (unsigned long long)n4k,
			 (unsigned long long)n2m, (unsigned long long)n1g);
}

/*
 * An exporter's 1 GiB hugetlb page reaches an attacher placed congruent to it as
 * one 1 GiB mapping (one fault for 262144 pages; Linux 6.12 on, 4 KiB pages
 * before), which a write makes writable in place, and which any change in the
 * exporter recalls whole; the next touch maps 1 GiB again.
 */
static void huge_pud_mapping(void **state)
{
	const size_t len = GiB;
	const bool huge = kernel_maps_huge();
	const uint64_t all4k = huge ? 0 : len / pg, all1g = huge ? 1 : 0;
	struct xstats s0, s1;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int64_t faults, huge_faults, moved;

	(void)state;
	if (!hugetlb_1g_free() || !thp_allow())
		return;
	exp = peer_start("exporter");
	base = (uint64_t)PC(exp, OP_MMAP_HUGETLB, len, 30, RW);
	if ((int64_t)base < 0)
		fail_msg("mmap of a 1 GiB hugetlb page: %s", strerror((int)-(int64_t)base));
	assert_int_equal(base % GiB, 0);
	/* Marks at both ends and in the middle (the first write faults in the whole page). */
	assert_int_equal(PC(exp, OP_WRITE64, base, 0x8101), 0);
	assert_int_equal(PC(exp, OP_WRITE64, base + len / 2 + 8, 0x8102), 0);
	assert_int_equal(PC(exp, OP_WRITE64, base + len - 8, 0x8103), 0);
	segid = PC(exp, OP_MAKE, base, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	att = peer_start("attacher");
	stats_get(&s0);
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	if (huge && at % GiB != base % GiB)
		fail_msg("attachment at %#llx is not congruent to the source %#llx modulo 1 GiB",
			 (unsigned long long)at, (unsigned long long)base);
	assert_int_equal(PC(att, OP_TOUCH, at, len, 0), len / pg);
	stats_get(&s1);
	faults = s1.v[ST_FAULTS] - s0.v[ST_FAULTS];
	huge_faults = s1.v[ST_HUGE_FAULTS] - s0.v[ST_HUGE_FAULTS];
	print_message("reading 1 GiB of a 1 GiB hugetlb page through the attachment took %lld faults, %lld of them huge\n",
		      (long long)faults, (long long)huge_faults);
	assert_mapped(segid, all4k, 0, all1g);
	if (huge) {
		assert_int_equal(faults, 1);
		assert_int_equal(huge_faults, 1);
		assert_int_equal(PC(att, OP_PROBE_PAGE, at + 700 * MiB), PROBE_PRESENT);
	} else {
		assert_int_equal(huge_faults, 0);
	}
	assert_int_equal(PC(att, OP_READ64, at), 0x8101);
	assert_int_equal(PC(att, OP_READ64, at + len / 2 + 8), 0x8102);
	assert_int_equal(PC(att, OP_READ64, at + len - 8), 0x8103);
	/* The kernel cannot take references to the exporter's pages through it. */
	assert_int_equal(PC(att, OP_VMSPLICE, at, 64 * pg), -EFAULT);

	/*
	 * Moved by mremap (to an address still congruent), the mapping reads the
	 * exporter's page again with one 1 GiB entry (the core mm cannot move one:
	 * the old is dropped first, see xpmem_att_vma_copied).
	 */
	moved = PC(att, OP_MREMAP, at, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, at + 2 * GiB);
	assert_int_equal(moved, (int64_t)(at + 2 * GiB));
	at = (uint64_t)moved;
	assert_int_equal(PC(att, OP_READ64, at + len / 2 + 8), 0x8102);
	assert_mapped(segid, all4k, 0, all1g);

	/* Writes through the read-only entry: made writable in place, they reach the exporter. */
	stats_get(&s0);
	assert_int_equal(PC(att, OP_WRITE64, at + 300 * MiB, 0x8104), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 900 * MiB, 0x8105), 0);
	stats_get(&s1);
	assert_int_equal(PC(exp, OP_READ64, base + 300 * MiB), 0x8104);
	assert_int_equal(PC(exp, OP_READ64, base + 900 * MiB), 0x8105);
	if (huge) {
		assert_int_equal(s1.v[ST_FAULTS] - s0.v[ST_FAULTS], 1);
		assert_mapped(segid, 0, 0, 1);
	}

	/* mprotect in the exporter recalls the entry; the next read maps 1 GiB again, read-only. */
	assert_int_equal(PC(exp, OP_MPROTECT, base, len, PROT_READ), 0);
	assert_mapped(segid, 0, 0, 0);
	stats_get(&s0);
	assert_int_equal(PC(att, OP_READ64, at + len - 8), 0x8103);
	stats_get(&s1);
	if (huge) {
		assert_int_equal(s1.v[ST_FAULTS] - s0.v[ST_FAULTS], 1);
		assert_mapped(segid, 0, 0, 1);
	}
	assert_int_equal(PC(att, OP_PROBE_PAGE, at + 8 * pg), huge ? PROBE_PRESENT : PROBE_FAULTED);
	/* ... and a write now fails: the exporter's page is read-only. */
	assert_int_equal(PC(att, OP_PROBE_PAGE, at + 5 * pg, 1), PROBE_SIGSEGV);

	/* A hole punched in the attachment splits it: the rest still reads. */
	assert_int_equal(PC(att, OP_MUNMAP, at + 600 * MiB, pg), 0);
	assert_int_equal(PC(att, OP_PROBE_PAGE, at + 600 * MiB), PROBE_SIGSEGV);
	assert_int_equal(PC(att, OP_READ64, at), 0x8101);
	assert_int_equal(PC(att, OP_READ64, at + 300 * MiB), 0x8104);
	assert_int_equal(PC(att, OP_READ64, at + len / 2 + 8), 0x8102);
	assert_int_equal(PC(att, OP_READ64, at + len - 8), 0x8103);

	/* munmap in the exporter: every entry goes, and an access fails. */
	assert_int_equal(PC(exp, OP_MUNMAP, base, len), 0);
	assert_mapped(segid, 0, 0, 0);
	assert_int_equal(PC(att, OP_PROBE_PAGE, at + 123 * MiB), PROBE_SIGBUS);
	test_finish();
}

static void recall_move_pages(void **state)
{
	enum { N = 16 };
	const size_t len = N * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int nodes[8], nn, from, to = -1;

	(void)state;
	nn = numa_online_nodes(nodes, 8);
	if (nn < 2) {
		skip_or_fail("needs two online NUMA nodes");
		return;
	}
	exp = exporter_start("exporter", len, 0, 65, 0666, &base, &segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 65, 0), 0);
	from = (int)PC(exp, OP_NODE_OF, base);
	assert_true(from >= 0);
	for (int i = 0; i < nn; i++)
		if (nodes[i] != from) {
			to = nodes[i];
			break;
		}
	assert_true(to >= 0);
	/* Exported, attached and mapped by the attacher: the pages still move. */
	assert_int_equal(PC(exp, OP_MOVE_PAGES, base, N, (uint64_t)to), N);
	assert_int_equal(PC(exp, OP_NODE_OF, base + 7 * pg), to);
	assert_int_equal(PC(att, OP_CHECK, at, len, 65, 0), 0);
	assert_int_equal(PC(att, OP_FILL, at, len / 2, 66, 0), 0);
	assert_int_equal(PC(exp, OP_CHECK, base, len / 2, 66, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, base + len / 2, len / 2, 67, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + len / 2, len / 2, 67, 0), 0);
	/* And back. */
	assert_int_equal(PC(exp, OP_MOVE_PAGES, base, N, (uint64_t)from), N);
	assert_int_equal(PC(att, OP_CHECK, at, len / 2, 66, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + len / 2, len / 2, 67, 0), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + pg, 0x5555), 0);
	assert_int_equal(PC(exp, OP_READ64, base + pg), 0x5555);
	test_finish();
}

#define KSM "/sys/kernel/mm/ksm/"
static char ksm_saved[3][32];
static const char *const ksm_knobs[3] = { KSM "run", KSM "sleep_millisecs", KSM "pages_to_scan" };

static void ksm_restore(void *arg)
{
	(void)arg;
	/* Knobs first, run last (0 stops ksmd, merged pages stay merged until freed). */
	for (int i = 2; i >= 0; i--)
		if (ksm_saved[i][0])
			write_file_str(ksm_knobs[i], ksm_saved[i]);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void recall_ksm_merge(void **state)
{
	enum { N = 8, BYTE = 0x5a };
	const size_t len = N * pg;
	const int bound_ms = 90 * 1000;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	int64_t merged = 0, r;
	long long start, sharing0;
	bool per_process;

	(void)state;
	if (access(KSM "run", W_OK) != 0) {
		skip_or_fail("no KSM (/sys/kernel/mm/ksm) in this kernel");
		return;
	}
	for (int i = 0; i < 3; i++)
		if (read_file_str(ksm_knobs[i], ksm_saved[i], sizeof(ksm_saved[i])) != 0)
			ksm_saved[i][0] = '\0';
	on_teardown(ksm_restore, NULL);
	sharing0 = read_file_ll(KSM "pages_sharing", 0);

	exp = peer_start("exporter");
	base = (uint64_t)PC(exp, OP_MMAP, len, 0, RW);
	assert_true((int64_t)base > 0);
	assert_int_equal(PC(exp, OP_MEMSET, base, len, BYTE), 0);
	r = PC(exp, OP_MADVISE, base, len, MADV_MERGEABLE);
	assert_int_equal(r, 0);
	segid = PC(exp, OP_MAKE, base, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at, len, BYTE), 0);

	assert_int_equal(write_file_str(KSM "pages_to_scan", "10000"), 0);
	assert_int_equal(write_file_str(KSM "sleep_millisecs", "0"), 0);
	assert_int_equal(write_file_str(KSM "run", "1"), 0);
	per_process = PC(exp, OP_KSM_MERGING, 0) >= 0;
	start = now_ms();
	for (;;) {
		struct timespec ts = { 0, 20 * 1000000L };

		if (per_process)
			merged = PC(exp, OP_KSM_MERGING, 0);
		else
			merged = read_file_ll(KSM "pages_sharing", 0) - sharing0;
		if (merged >= (per_process ? N : N - 1) || now_ms() - start > bound_ms)
			break;
		nanosleep(&ts, NULL);
	}
	print_message("KSM: %lld page(s) merged after %lld ms (%s)\n", (long long)merged,
		      now_ms() - start, per_process ? "ksm_merging_pages" : "pages_sharing");
	if (merged <= 0)
		fail_msg("KSM merged none of the exporter's %d identical pages within %d s (are they pinned or otherwise referenced by the attachment?)",
			 N, bound_ms / 1000);

	/* A write through the attachment changes that page only, in the exporter. */
	assert_int_equal(PC(att, OP_CHECK_BYTE, at, len, BYTE), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 3 * pg + 16, 0x0123456789abcdefULL), 0);
	assert_int_equal((uint64_t)PC(exp, OP_READ64, base + 3 * pg + 16), 0x0123456789abcdefULL);
	assert_int_equal(PC(exp, OP_CHECK_BYTE, base + 3 * pg, 16, BYTE), 0);
	assert_int_equal(PC(exp, OP_CHECK_BYTE, base + 3 * pg + 24, pg - 24, BYTE), 0);
	assert_int_equal(PC(exp, OP_CHECK_BYTE, base, 3 * pg, BYTE), 0);
	assert_int_equal(PC(exp, OP_CHECK_BYTE, base + 4 * pg, 4 * pg, BYTE), 0);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at + 4 * pg, 4 * pg, BYTE), 0);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at, 3 * pg, BYTE), 0);
	/* And an exporter write to a (possibly still merged) page reaches the attacher only there. */
	assert_int_equal(PC(exp, OP_WRITE64, base + 5 * pg, 0x77), 0);
	assert_int_equal(PC(att, OP_READ64, at + 5 * pg), 0x77);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at + 6 * pg, 2 * pg, BYTE), 0);
	assert_int_equal(PC(att, OP_CHECK_BYTE, at + 4 * pg, pg, BYTE), 0);
	test_finish();
}

/* ---- recall_ptes_gone: the attacher's PTEs themselves, right after the exporter's call ---- */

static char numab_saved[32];

static void numab_restore(void *arg)
{
	(void)arg;
	write_file_str("/proc/sys/kernel/numa_balancing", numab_saved);
}

/* How the attacher's PTEs are observed: /proc/self/pagemap if it shows them, else probing. */
static bool ptes_by_pagemap;

static const char *probe_name(int64_t r)
{
	static const char *const names[] = { "present (no fault)", "absent (faulted in)",
					     "absent (SIGBUS)", "absent (SIGSEGV)" };

	return r >= 0 && r <= PROBE_SIGSEGV ? names[r] : "probe error";
}

/*
 * want[i]: 'P' the attacher must still have a PTE for page i, 'F' it must have none
 * and a touch maps it again, 'B' none and a touch raises SIGBUS. A probe that faults
 * a page in may map its neighbours too (fault-around; and hmm_range_fault() faults
 * every page from the one that needs it to the end of the batch, as an earlier
 * version did), which would hide their state: pages expected present are probed first (no fault, no side effect),
 * then the others from the highest address down.
 */
static void expect_ptes(struct peer *att, uint64_t at, const char *want, size_t n, const char *after)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < n; k++) {
			size_t i = pass == 0 ? k : n - 1 - k;
			bool keep = want[i] == 'P';
			int64_t r;

			if (keep != (pass == 0))
				continue;
			if (ptes_by_pagemap) {
				r = PC(att, OP_PAGEMAP, at + i * pg, 1);
				assert_true(r == 0 || r == 1);
				if (r != keep)
					fail_msg("attachment page %zu: pagemap says %s right after the exporter's %s returned; expected %s",
						 i, r ? "present" : "not present", after,
						 keep ? "present" : "not present");
				continue;
			}
			r = PC(att, OP_PROBE_PAGE, at + i * pg);
			if ((want[i] == 'P' && r != PROBE_PRESENT) ||
			    (want[i] == 'F' && r != PROBE_FAULTED) ||
			    (want[i] == 'B' && r != PROBE_SIGBUS))
				fail_msg("attachment page %zu: %s right after the exporter's %s returned; expected %s",
					 i, probe_name(r), after,
					 want[i] == 'P' ? "present" :
					 want[i] == 'F' ? "absent, faulting back in" : "absent, raising SIGBUS");
		}
	}
}

static void recall_ptes_gone(void **state)
{
	enum { N = 64 };
	const size_t len = N * pg;
	const char *numab = "/proc/sys/kernel/numa_balancing";
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;
	char want[N];
	int64_t seen;

	(void)state;
	/* NUMA balancing would unmap exporter pages (and so attacher PTEs) at random times. */
	if (read_file_str(numab, numab_saved, sizeof(numab_saved)) == 0 &&
	    strcmp(numab_saved, "0") != 0) {
		on_teardown(numab_restore, NULL);
		assert_int_equal(write_file_str(numab, "0"), 0);
	}
	exp = peer_start("exporter");
	base = (uint64_t)PC(exp, OP_MMAP, len, 0, RW);
	assert_true((int64_t)base > 0);
	/* 4 KiB pages only: splitting a huge page would legitimately recall all of it. */
	assert_int_equal(PC(exp, OP_MADVISE, base, len, MADV_NOHUGEPAGE), 0);
	assert_int_equal(PC(exp, OP_FILL, base, len, 68, 0), 0);
	segid = PC(exp, OP_MAKE, base, len, XPMEM_PERMIT_MODE, 0666);
	assert_id_valid(segid);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_TOUCH, at, len, 0), N);

	/* Can pagemap show the attachment's PTEs? (bit 63 "present") */
	seen = PC(att, OP_PAGEMAP, at, N);
	assert_true(seen >= 0);
	if (seen != 0 && seen != N)
		fail_msg("pagemap shows %lld of the %d just-touched attachment pages present", (long long)seen, N);
	ptes_by_pagemap = seen == N;
	if (!ptes_by_pagemap)
		print_message("pagemap shows none of the %d touched attachment pages present (the kernel's page walker skips VM_PFNMAP mappings): observing PTEs by whether a read takes a page fault, in the attacher's own fault counters\n",
			      N);
	memset(want, 'P', sizeof(want));
	expect_ptes(att, at, want, N, "(nothing yet)");

	/* MADV_DONTNEED of pages 4..11: gone, the others stay; they read as zeros. */
	assert_int_equal(PC(exp, OP_MADVISE, base + 4 * pg, 8 * pg, MADV_DONTNEED), 0);
	memset(want + 4, 'F', 8);
	expect_ptes(att, at, want, N, "madvise(MADV_DONTNEED)");
	assert_int_equal(PC(att, OP_CHECK_BYTE, at + 4 * pg, 8 * pg, 0), 0);
	assert_int_equal(PC(exp, OP_FILL, base + 4 * pg, 8 * pg, 68, 4 * pg / 8), 0);
	assert_int_equal(PC(att, OP_CHECK, at, len, 68, 0), 0);
	memset(want, 'P', sizeof(want));
	expect_ptes(att, at, want, N, "refill");

	/* mprotect(PROT_NONE) of pages 20..22. */
	assert_int_equal(PC(exp, OP_MPROTECT, base + 20 * pg, 3 * pg, PROT_NONE), 0);
	memset(want + 20, 'B', 3);
	expect_ptes(att, at, want, N, "mprotect(PROT_NONE)");
	assert_int_equal(PC(exp, OP_MPROTECT, base + 20 * pg, 3 * pg, RW), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 20 * pg, 3 * pg, 68, 20 * pg / 8), 0);

	/* munmap of page 40, then of 44..47, with writable PTEs this time. */
	assert_int_equal(PC(att, OP_TOUCH, at, len, 1), N);
	memset(want, 'P', sizeof(want));
	expect_ptes(att, at, want, N, "mprotect(PROT_READ | PROT_WRITE)");
	assert_int_equal(PC(exp, OP_MUNMAP, base + 40 * pg, pg), 0);
	want[40] = 'B';
	expect_ptes(att, at, want, N, "munmap of one page");
	assert_int_equal(PC(exp, OP_MUNMAP, base + 44 * pg, 4 * pg), 0);
	memset(want + 44, 'B', 4);
	expect_ptes(att, at, want, N, "munmap of four pages");

	/* What stayed is still the exporter's memory, both ways. */
	assert_int_equal(PC(att, OP_CHECK, at, 40 * pg, 68, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 48 * pg, 16 * pg, 68, 48 * pg / 8), 0);
	assert_int_equal(PC(att, OP_WRITE64, at + 50 * pg, 0x6060), 0);
	assert_int_equal(PC(exp, OP_READ64, base + 50 * pg), 0x6060);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(recall_munmap_sigbus),
	SUITE_T(recall_remap_new_data),
	SUITE_T(recall_mprotect_none),
	SUITE_T(recall_madv_dontneed),
	SUITE_T(recall_cow_after_exporter_fork),
	SUITE_T(recall_thp_collapse_split),
	SUITE_T(huge_pmd_mapping),
	SUITE_T(huge_pud_mapping),
	SUITE_T(recall_move_pages),
	SUITE_T(recall_ksm_merge),
	SUITE_T(recall_ptes_gone),
};
SUITE_LIST(recall_tests, tests);
