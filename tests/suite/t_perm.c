// SPDX-License-Identifier: GPL-2.0-only
/*
 * Permissions: the SysV-IPC-like check of xpmem_get across uids and groups, the root
 * override, and read-only enforcement of RDONLY attachments.
 */
#include "suite.h"

#include <sys/mman.h>

struct ident {
	const char *name;
	uid_t uid;
	gid_t gid;
	gid_t g1, g2; /* supplementary groups (0: none) */
	enum { C_OWNER, C_GROUP, C_OTHER, C_ROOT } cls;
};

/* The exporter: uid 1001, egid 1001, also in the shared group 3000. */
static const struct ident owner = { "owner", 1001, 1001, 3000, 0, C_OWNER };

static const struct ident callers[] = {
	/* euid matches: owner bits, whatever the groups */
	{ "same-uid-other-gid", 1001, 1002, 0, 0, C_OWNER },
	/* egid is the owner's egid */
	{ "group-by-egid", 1002, 1001, 0, 0, C_GROUP },
	/* a supplementary group is the owner's egid */
	{ "group-by-supplementary", 1003, 1003, 3000, 1001, C_GROUP },
	/* shares only group 3000 with the owner, which is not the segment's group */
	{ "shares-other-group", 1002, 1002, 3000, 0, C_OTHER },
	{ "other", 1004, 1004, 0, 0, C_OTHER },
	/* CAP_IPC_OWNER */
	{ "root", 0, 0, 0, 0, C_ROOT },
};

static const unsigned modes[] = { 0600, 0640, 0604, 0660, 0644, 0666, 0400,
				  0440, 0444, 0060, 0006, 0000, 0200, 0020 };
#define NMODES (sizeof(modes) / sizeof(modes[0]))
#define NCALLERS (sizeof(callers) / sizeof(callers[0]))

static bool expect_allowed(unsigned mode, int cls, int flags)
{
	unsigned bits, need = flags == XPMEM_RDWR ? 6 : 4;

	switch (cls) {
	case C_ROOT:
		return true;
	case C_OWNER:
		bits = (mode >> 6) & 7;
		break;
	case C_GROUP:
		bits = (mode >> 3) & 7;
		break;
	default:
		bits = mode & 7;
		break;
	}
	return (bits & need) == need;
}

static struct peer *start_as(const struct ident *id)
{
	struct peer *p = peer_start(id->name);

	if (id->cls != C_ROOT || id->uid != 0) {
		int64_t r = PC(p, OP_SETIDS, id->uid, id->gid, id->g1, id->g2);

		if (r != 0)
			fail_msg("peer %s: cannot become uid %u gid %u: %s", id->name, id->uid,
				 id->gid, strerror((int)-r));
	}
	return p;
}

static void perm_matrix(void **state)
{
	struct peer *exp, *cp[NCALLERS];
	xpmem_segid_t segid[NMODES];
	uint64_t base;
	int checked = 0, allowed = 0;

	(void)state;
	exp = start_as(&owner);
	base = (uint64_t)PC(exp, OP_MMAP, NMODES * pg, 0, PROT_READ | PROT_WRITE);
	assert_true((int64_t)base > 0);
	assert_int_equal(PC(exp, OP_FILL, base, NMODES * pg, 21, 0), 0);
	for (size_t m = 0; m < NMODES; m++) {
		segid[m] = PC(exp, OP_MAKE, base + m * pg, pg, XPMEM_PERMIT_MODE, modes[m]);
		assert_id_valid(segid[m]);
	}
	for (size_t c = 0; c < NCALLERS; c++)
		cp[c] = start_as(&callers[c]);

	for (size_t c = 0; c < NCALLERS; c++) {
		for (size_t m = 0; m < NMODES; m++) {
			for (int flags = XPMEM_RDONLY; flags <= XPMEM_RDWR; flags++) {
				bool want = expect_allowed(modes[m], callers[c].cls, flags);
				int64_t ap = PC(cp[c], OP_GET, (uint64_t)segid[m], (uint64_t)flags,
						XPMEM_PERMIT_MODE, 0);
				int64_t at, v;

				checked++;
				if (!want) {
					if (ap != -EACCES)
						fail_msg("%s get(mode %04o, %s): expected EACCES, got %lld",
							 callers[c].name, modes[m],
							 flags == XPMEM_RDWR ? "RDWR" : "RDONLY",
							 (long long)ap);
					continue;
				}
				allowed++;
				if (ap <= 0 || ap >= ID_LIMIT)
					fail_msg("%s get(mode %04o, %s): expected success, got %lld (%s)",
						 callers[c].name, modes[m],
						 flags == XPMEM_RDWR ? "RDWR" : "RDONLY", (long long)ap,
						 ap < 0 ? strerror((int)-ap) : "bad id");
				/* The permit is usable: attach and read the exporter's data. */
				at = PC(cp[c], OP_ATTACH, (uint64_t)ap, 0, pg, 0);
				if (at <= 0)
					fail_msg("%s attach(mode %04o): %s", callers[c].name, modes[m],
						 strerror((int)-at));
				v = PC(cp[c], OP_READ64, (uint64_t)at + 8);
				assert_int_equal((uint64_t)v, pat_word(21, (m * pg + 8) / 8));
				assert_int_equal(PC(cp[c], OP_DETACH, (uint64_t)at), 0);
				assert_int_equal(PC(cp[c], OP_RELEASE, (uint64_t)ap), 0);
			}
		}
	}
	print_message("permission matrix: %d gets checked, %d allowed\n", checked, allowed);
	assert_int_equal(checked, (int)(NCALLERS * NMODES * 2));
	test_finish();
}

/* Root gets and writes a mode-0000 segment of another user. */
static void perm_root_override(void **state)
{
	struct peer *exp, *root;
	uint64_t base, at;
	xpmem_segid_t segid;
	xpmem_apid_t ap;

	(void)state;
	exp = start_as(&owner);
	base = (uint64_t)PC(exp, OP_MMAP, pg, 0, PROT_READ | PROT_WRITE);
	assert_int_equal(PC(exp, OP_FILL, base, pg, 22, 0), 0);
	segid = PC(exp, OP_MAKE, base, pg, XPMEM_PERMIT_MODE, 0000);
	assert_id_valid(segid);
	root = peer_start("root");
	at = peer_get_attach(root, segid, XPMEM_RDWR, 0, pg, &ap);
	assert_int_equal((uint64_t)PC(root, OP_READ64, at), pat_word(22, 0));
	assert_int_equal(PC(root, OP_WRITE64, at + 16, 0x1234567890abcdefULL), 0);
	assert_int_equal((uint64_t)PC(exp, OP_READ64, base + 16), 0x1234567890abcdefULL);
	/* The owner itself is denied by mode 0000. */
	assert_int_equal(PC(exp, OP_GET, (uint64_t)segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, 0),
			 -EACCES);
	test_finish();
}

/* RDONLY: reads work, mprotect to writable is refused, a write kills with SIGSEGV. */
static void perm_rdonly_enforced(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 23, 0666, &base, &segid);
	att = peer_start("attacher");
	assert_int_equal(PC(att, OP_GET, (uint64_t)segid, 0, XPMEM_PERMIT_MODE, 0), -EINVAL);
	at = peer_get_attach(att, segid, XPMEM_RDONLY, 0, len, NULL);
	assert_int_equal(PC(att, OP_CHECK, at, len, 23, 0), 0);
	assert_int_equal(PC(att, OP_MPROTECT, at, len, PROT_READ | PROT_WRITE), -EACCES);
	assert_int_equal(PC(att, OP_MPROTECT, at, len, PROT_READ), 0);
	assert_int_equal(PC(att, OP_CHECK, at, len, 23, 0), 0);
	PDIE(att, SIGSEGV, OP_WRITE64, at + pg + 8, 0xbad);
	assert_int_equal(PC(exp, OP_CHECK, base, len, 23, 0), 0);
	/* RDWR on the same segment writes fine. */
	att = peer_start("writer");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal(PC(att, OP_WRITE64, at + pg + 8, 0x600d), 0);
	assert_int_equal(PC(exp, OP_READ64, base + pg + 8), 0x600d);
	test_finish();
}

/* A RDWR attachment cannot write a page the exporter mapped read-only. */
static void perm_rdwr_on_readonly_source(void **state)
{
	const size_t len = 4 * pg;
	struct peer *exp, *att;
	uint64_t base, at;
	xpmem_segid_t segid;

	(void)state;
	exp = exporter_start("exporter", len, 0, 24, 0666, &base, &segid);
	assert_int_equal(PC(exp, OP_MPROTECT, base + pg, pg, PROT_READ), 0);
	att = peer_start("attacher");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	/* First touch of the read-only page is a write. */
	assert_int_equal(PC(att, OP_CHECK, at, pg, 24, 0), 0);
	assert_int_equal(PC(att, OP_CHECK, at + 2 * pg, 2 * pg, 24, 2 * pg / 8), 0);
	assert_int_equal(PC(att, OP_WRITE64, at, 0x77), 0);
	assert_int_equal(PC(exp, OP_READ64, base), 0x77);
	PDIE(att, SIGSEGV, OP_WRITE64, at + pg + 8, 0xbad);
	assert_int_equal(PC(exp, OP_CHECK, base + pg, pg, 24, pg / 8), 0);
	/* Read-only page already faulted for reading, then written: same outcome. */
	att = peer_start("attacher2");
	at = peer_get_attach(att, segid, XPMEM_RDWR, 0, len, NULL);
	assert_int_equal((uint64_t)PC(att, OP_READ64, at + pg + 8), pat_word(24, pg / 8 + 1));
	PDIE(att, SIGSEGV, OP_WRITE64, at + pg + 8, 0xbad);
	assert_int_equal(PC(exp, OP_CHECK, base + pg, pg, 24, pg / 8), 0);
	test_finish();
}

static const struct CMUnitTest tests[] = {
	SUITE_T(perm_matrix),
	SUITE_T(perm_root_override),
	SUITE_T(perm_rdonly_enforced),
	SUITE_T(perm_rdwr_on_readonly_source),
};
SUITE_LIST(perm_tests, tests);
