// SPDX-License-Identifier: GPL-2.0-only
/*
 * xpmem-suite: the in-guest test suite of XPMEM (run as root, module loaded).
 *
 * Usage:
 *   xpmem-suite [--list] [PATTERN...]
 *
 *   PATTERN   fnmatch(3) glob over test names; a test runs if it matches any pattern
 *             (no pattern: every test). Test names are <topic>_<what>, topics being
 *             api, perm, data, recall, huge, conc, life, abi, lock; e.g. 'recall_*' 'api_make_*'.
 *             A pattern starting with '!' excludes the tests it matches.
 *             The two final checks (zz_final_*) always run last.
 *   --list    print the test names and exit.
 *
 * Environment:
 *   XPMEM_SUITE_FILTER   patterns, space separated, used when none are given as arguments
 *   XPMEM_SUITE_STRICT=1 a test that would be skipped for want of something in the
 *                        environment (second NUMA node, KSM, THP) fails instead
 *   CMOCKA_TEST_ABORT=1  (cmocka) abort at the first failing assertion
 *   CMOCKA_MESSAGE_OUTPUT=stdout|subunit|tap|xml  (cmocka) output format
 *
 * Output: cmocka's, one group named "xpmem" holding every selected test, ending in
 *   [==========] N test(s) run.
 *   [  PASSED  ] P test(s).
 *   [  FAILED  ] F test(s), listed below:     (only when F > 0, then one line per test)
 * Exit status: 0 if every selected test passed (or was skipped), 1 otherwise, 2 if the
 * suite could not start (no /dev/xpmem).
 */
#include "suite.h"

#include <fnmatch.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static const struct suite_list *const lists[] = {
	&api_tests, &perm_tests, &data_tests, &recall_tests, &concurrency_tests, &lifetime_tests,
	&abi_tests, &lock_tests,
};

/* ---- final checks: nothing pinned, nothing left over from the whole run ---- */

static void zz_final_global_pages(void **state)
{
	long long pinned = -1, unpinned = -1;
	char why[256];

	(void)state;
	if (global_pages_read(&pinned, &unpinned, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	print_message("global_pages: pinned %lld unpinned %lld\n", pinned, unpinned);
	assert_int_equal(pinned, unpinned);
	assert_int_equal(pinned, 0);
	test_finish();
}

static void zz_final_live_counters(void **state)
{
	struct xstats cur;

	(void)state;
	if (stats_wait_live(&suite_base, &cur, 15000) != 0)
		fail_msg("live counters not back to their values at suite start: segments_live %lld -> %lld, accesses_live %lld -> %lld, attachments_live %lld -> %lld",
			 suite_base.v[ST_SEGMENTS_LIVE], cur.v[ST_SEGMENTS_LIVE],
			 suite_base.v[ST_ACCESSES_LIVE], cur.v[ST_ACCESSES_LIVE],
			 suite_base.v[ST_ATTACHMENTS_LIVE], cur.v[ST_ATTACHMENTS_LIVE]);
	print_message("stats at the end:");
	for (int i = 0; i < ST_COUNT; i++)
		print_message(" %s=%lld", stat_names[i], cur.v[i]);
	print_message("\n");
	test_finish();
}

static const struct CMUnitTest final_tests[] = {
	SUITE_T(zz_final_global_pages),
	SUITE_T(zz_final_live_counters),
};

static bool selected(const char *name, char **pats, int npats)
{
	bool any_include = false, inc = false;

	for (int i = 0; i < npats; i++) {
		if (pats[i][0] == '!') {
			if (fnmatch(pats[i] + 1, name, 0) == 0)
				return false;
		} else {
			any_include = true;
			if (fnmatch(pats[i], name, 0) == 0)
				inc = true;
		}
	}
	return inc || !any_include;
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * The suite's children must die of SIGSEGV/SIGBUS like any process would: keep the
 * sanitizer from turning those signals into reports and exit(1).
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1";
}
#endif

int main(int argc, char **argv)
{
	char *env_pats[64];
	char **pats = argv + 1;
	int npats = argc - 1;
	bool list = false;
	char *env_copy = NULL;
	char why[256];
	struct CMUnitTest *sel;
	size_t total = 0, n = 0;
	char exe[sizeof(suite_dir)];
	ssize_t len;
	int rc;

	if (npats > 0 && (strcmp(pats[0], "--help") == 0 || strcmp(pats[0], "-h") == 0)) {
		printf("usage: %s [--list] [PATTERN...]   (PATTERN: fnmatch glob on test names, '!' excludes;\n"
		       "       env XPMEM_SUITE_FILTER, XPMEM_SUITE_STRICT=1, CMOCKA_TEST_ABORT=1)\n",
		       argv[0]);
		return 0;
	}
	if (npats > 0 && strcmp(pats[0], "--list") == 0) {
		list = true;
		pats++;
		npats--;
	}
	if (npats == 0 && getenv("XPMEM_SUITE_FILTER")) {
		char *save = NULL;

		env_copy = strdup(getenv("XPMEM_SUITE_FILTER"));
		for (char *t = strtok_r(env_copy, " \t", &save); t && npats < 64;
		     t = strtok_r(NULL, " \t", &save))
			env_pats[npats++] = t;
		pats = env_pats;
	}

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		total += lists[i]->count;
	sel = calloc(total + 2, sizeof(*sel));
	if (!sel)
		return 2;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (size_t j = 0; j < lists[i]->count; j++)
			if (selected(lists[i]->tests[j].name, pats, npats))
				sel[n++] = lists[i]->tests[j];
	if (list) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", sel[i].name);
		free(sel);
		free(env_copy);
		return 0;
	}
	sel[n++] = final_tests[0];
	sel[n++] = final_tests[1];

	pg = (size_t)sysconf(_SC_PAGESIZE);
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		snprintf(suite_dir, sizeof(suite_dir), "%s", dirname(exe));
	}
	/* Orphaned grandchildren (fork holders, probes) come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);

	if (xpmem_init() != 0) {
		fprintf(stderr, "xpmem-suite: cannot open /dev/xpmem: %s (is the module loaded?)\n",
			strerror(errno));
		free(sel);
		free(env_copy);
		return 2;
	}
	if (stats_read(&suite_base, why, sizeof(why)) != 0)
		fprintf(stderr, "xpmem-suite: %s (the final checks will fail)\n", why);

	rc = _cmocka_run_group_tests("xpmem", sel, n, NULL, NULL);
	free(sel);
	free(env_copy);
	return rc == 0 ? 0 : 1;
}
