// SPDX-License-Identifier: GPL-2.0-only
/*
 * xpmem-bench: micro-benchmarks of XPMEM, run as root with the module loaded.
 *
 * Usage:
 *   xpmem-bench [--json FILE] [--quick] [--populate-mib N] [BENCH...]
 *
 *   BENCH         populate, copy, attach, recall, teardown (default: all, in that order)
 *   --json FILE   write the figures as one JSON document to FILE
 *   --quick       small sizes, one repetition (a smoke run, figures not comparable)
 *   --populate-mib N  size of the populate benchmark (default 64)
 *
 * Prints a human-readable table per benchmark. Runs in emulated guests are only
 * meaningful as ratios between figures of the same run; nothing here asserts a time.
 * The one correctness check: /proc/xpmem/global_pages must show no pinned page
 * after populate (attachments still mapped) and at the end.
 *
 * Exit status: 0, or 1 if a pinned-page check failed or a benchmark could not run.
 */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const struct {
	const char *name;
	int (*fn)(const struct bench_opts *o);
} benches[] = {
	{ "populate", bench_populate }, { "copy", bench_copy },		{ "attach", bench_attach },
	{ "recall", bench_recall },	{ "teardown", bench_teardown },
};
enum { NB = sizeof(benches) / sizeof(benches[0]) };

static void usage(void)
{
	fprintf(stderr, "usage: xpmem-bench [--json FILE] [--quick] [--populate-mib N] [populate|copy|attach|recall|teardown...]\n");
	exit(2);
}

static void env_json(void)
{
	static const char *const params[] = { "fault_around", "huge_mappings" };
	struct utsname u;
	char buf[128];

	uname(&u);
	j_obj("env");
	j_str("kernel", u.release);
	j_int("cpus", sysconf(_SC_NPROCESSORS_ONLN));
	j_int("page_size", (long long)pg);
	j_int("xpmem_version", xpmem_version());
	if (read_str("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) == 0)
		j_str("thp", buf);
	j_obj("module_params");
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		char path[128];

		snprintf(path, sizeof(path), "/sys/module/xpmem/parameters/%s", params[i]);
		if (read_str(path, buf, sizeof(buf)) == 0)
			j_str(params[i], buf);
	}
	j_end();
	j_end();
	printf("xpmem-bench: kernel %s, %ld CPUs, interface version %#x (emulated guests: compare ratios only)\n",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), (unsigned)xpmem_version());
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .populate_mib = 64 };
	bool want[NB] = { false }, any = false;
	const char *json = NULL;
	FILE *jf = NULL;
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
			json = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			o.quick = true;
		} else if (strcmp(argv[i], "--populate-mib") == 0 && i + 1 < argc) {
			o.populate_mib = strtoul(argv[++i], NULL, 10);
			if (!o.populate_mib)
				usage();
		} else {
			int b;

			for (b = 0; b < NB && strcmp(argv[i], benches[b].name) != 0; b++)
				;
			if (b == NB)
				usage();
			want[b] = any = true;
		}
	}
	pg = (size_t)sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (xpmem_init() != 0)
		die("cannot open /dev/xpmem: %s (is the module loaded?)", strerror(errno));
	if (json) {
		jf = fopen(json, "we");
		if (!jf)
			die("%s: %s", json, strerror(errno));
		j_open(jf);
	}
	env_json();
	for (int b = 0; b < NB; b++) {
		if (any && !want[b])
			continue;
		if (benches[b].fn(&o) != 0) {
			printf("  %s: FAILED\n", benches[b].name);
			failed = 1;
		}
	}
	printf("\n");
	j_arr("pinned_at_end");
	if (check_pinned("at the end", true, true) != 0)
		failed = 1;
	j_end();
	j_bool("ok", !failed);
	j_close();
	if (jf && fclose(jf) != 0)
		die("%s: %s", json, strerror(errno));
	printf("xpmem-bench: %s\n", failed ? "FAILED" : "done");
	return failed;
}
