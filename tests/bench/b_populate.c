// SPDX-License-Identifier: GPL-2.0-only
/*
 * populate: attach N MiB and touch every page, with a source made of 4 KiB pages and
 * one backed by transparent huge pages, against a local first touch of as much
 * memory. Also with XPMEM_ATTACH_PREFAULT, and with fault_around=1, which turns
 * the fault path into single 4 KiB page faults (no fault-around, no 2 MiB entries).
 * Then a source of one 1 GiB hugetlb page (one 1 GiB entry on Linux 6.12), against
 * single-page faults of the same page.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARAMS "/sys/module/xpmem/parameters/"
#define THP_KNOB "/sys/kernel/mm/transparent_hugepage/enabled"

/* Module parameters worth a comparison run, and the value that turns each off. */
static const struct {
	const char *name;
	const char *off;
	const char *meaning;
} knobs[] = {
	{ "fault_around", "1", "single-page faults" },
};

struct pop_case {
	const char *touch;
	bool write;
	unsigned int flags;
};

static const struct pop_case cases[] = {
	{ "read", false, 0 },
	{ "write", true, 0 },
	{ "prefault+read", false, XPMEM_ATTACH_PREFAULT },
};

static int reps;
static bool prefault_ok = true;
static int pinned_checks, pinned_failures;

/* Seconds for attach + touching every page (+ detach, not timed); xpmem faults taken. */
static double populate_once(xpmem_apid_t ap, size_t len, const struct pop_case *c, long long *faults,
			    const char *pin_check)
{
	long long f0 = xpmem_stat("faults");
	double t0 = now_s(), t;
	struct xpmem_addr xa = { .apid = ap, .offset = 0 };
	char *p = c->flags ? xpmem_attach_ext(xa, len, NULL, c->flags) : xpmem_attach(xa, len, NULL);

	if (p == (void *)-1) {
		if (c->flags && (errno == EINVAL || errno == ENOTTY)) {
			prefault_ok = false;
			return -1;
		}
		die("populate: attach of %zu bytes: %s", len, strerror(errno));
	}
	touch_pages(p, len, c->write);
	t = now_s() - t0;
	*faults = xpmem_stat("faults") - f0;
	if (pin_check) {
		pinned_checks++;
		if (check_pinned(pin_check, false, false) != 0)
			pinned_failures++;
	}
	if (xpmem_detach(p) != 0)
		die("populate: detach: %s", strerror(errno));
	return t;
}

static double local_first_touch(size_t len, bool thp)
{
	double v[8];

	for (int r = 0; r < reps; r++) {
		char *p = map_region(len, thp ? BACKING_THP : BACKING_4K);
		double t0 = now_s();

		touch_pages(p, len, true);
		v[r] = now_s() - t0;
		munmap(p, len);
	}
	return median(v, reps);
}

struct source {
	const char *name;
	struct exporter e;
	xpmem_apid_t ap;
};

static void run_cases(struct source *src, int nsrc, size_t len, const char *settings,
		      double local_rate, bool check)
{
	const double pages = (double)(len / pg);

	for (int s = 0; s < nsrc; s++) {
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			double v[8], t;
			long long faults = 0;
			char when[96];

			if (cases[c].flags && !prefault_ok)
				continue;
			for (int r = 0; r < reps; r++) {
				bool last = r == reps - 1;

				snprintf(when, sizeof(when), "after populate (%s, %s, attached)",
					 src[s].name, cases[c].touch);
				v[r] = populate_once(src[s].ap, len, &cases[c], &faults,
						     last && check ? when : NULL);
				if (v[r] < 0)
					break;
			}
			if (!prefault_ok && cases[c].flags)
				continue;
			t = median(v, reps);
			printf("  %-24s %-4s %-14s %9.3f s %12.0f %8.2f %10lld\n", settings, src[s].name,
			       cases[c].touch, t, pages / t, pages / t / local_rate, faults);
			j_obj(NULL);
			j_str("settings", settings);
			j_str("source", src[s].name);
			j_int("source_thp_kb", src[s].e.thp_kb);
			j_str("touch", cases[c].touch);
			j_num("seconds", t);
			j_num("pages_per_s", pages / t);
			j_num("ratio_to_local", pages / t / local_rate);
			j_int("xpmem_faults", faults);
			j_end();
		}
	}
}

/* Attach one exported 1 GiB hugetlb page and read every page: default vs single-page faults. */
static void populate_1g(void)
{
	const char *knob = PARAMS "fault_around";
	const struct pop_case *read = &cases[0];
	const double pages = (double)(GiB / pg);
	double t_default, t_single;
	long long f_default, f_single;
	struct exporter e;
	xpmem_apid_t ap;
	char saved[32];

	printf("\npopulate of a 1 GiB hugetlb page: attach 1 GiB and read every page (1 run each)\n");
	j_obj("populate_1g");
	if (!hugetlb_1g_free() || read_str(knob, saved, sizeof(saved)) != 0) {
		printf("  skipped: %s\n", hugetlb_1g_free() ? "no fault_around parameter" :
			"no free 1 GiB hugetlb page (boot with hugepagesz=1G hugepages=1)");
		j_str("skipped", "no free 1 GiB hugetlb page or no fault_around parameter");
		j_end();
		return;
	}
	exporter_start(&e, GiB, BACKING_1G);
	ap = get_rw(e.segid);
	t_default = populate_once(ap, GiB, read, &f_default, NULL);
	if (write_str(knob, "1") != 0)
		die("populate: cannot set %s: %s", knob, strerror(errno));
	t_single = populate_once(ap, GiB, read, &f_single, NULL);
	write_str(knob, saved);
	printf("  %-24s %11s %12s %10s %14s\n", "settings", "time", "pages/s", "faults",
	       "vs single-page");
	printf("  %-24s %9.3f s %12.0f %10lld %13.1fx\n", "default", t_default, pages / t_default,
	       f_default, t_single / t_default);
	printf("  %-24s %9.3f s %12.0f %10lld %13.1fx\n", "fault_around=1", t_single,
	       pages / t_single, f_single, 1.0);
	j_num("seconds_default", t_default);
	j_int("faults_default", f_default);
	j_num("seconds_single_page", t_single);
	j_int("faults_single_page", f_single);
	j_num("ratio", t_single / t_default);
	j_end();
	xpmem_release(ap);
	exporter_stop(&e);
}

int bench_populate(const struct bench_opts *o)
{
	const size_t len = o->populate_mib * MiB;
	const double pages = (double)(len / pg);
	struct source src[2] = { { .name = "4k" }, { .name = "thp" } };
	char thp_saved[64] = "", buf[128];
	double local4k, localthp;

	reps = o->quick ? 1 : 3;
	pinned_checks = pinned_failures = 0;
	/* THP must be possible for the huge-page source ("never" would make it 4 KiB too). */
	if (read_str(THP_KNOB, buf, sizeof(buf)) == 0 && strstr(buf, "[never]")) {
		snprintf(thp_saved, sizeof(thp_saved), "never");
		write_str(THP_KNOB, "madvise");
	}
	exporter_start(&src[0].e, len, BACKING_4K);
	exporter_start(&src[1].e, len, BACKING_THP);
	for (int s = 0; s < 2; s++)
		src[s].ap = get_rw(src[s].e.segid);

	local4k = local_first_touch(len, false);
	localthp = local_first_touch(len, true);
	printf("\npopulate: attach %zu MiB and touch every page (%d-run median; source THP: %ld of %zu kB huge)\n",
	       o->populate_mib, reps, src[1].e.thp_kb, len / 1024);
	printf("  %-24s %-4s %-14s %11s %12s %8s %10s\n", "settings", "src", "touch", "time",
	       "pages/s", "vs local", "faults");
	printf("  %-24s %-4s %-14s %9.3f s %12.0f %8.2f %10s\n", "local first touch", "4k", "write",
	       local4k, pages / local4k, 1.0, "-");
	printf("  %-24s %-4s %-14s %9.3f s %12.0f %8.2f %10s\n", "local first touch", "thp", "write",
	       localthp, pages / localthp, local4k / localthp, "-");

	j_obj("populate");
	j_int("mib", (long long)o->populate_mib);
	j_int("pages", (long long)(len / pg));
	j_int("runs_per_figure", reps);
	j_obj("local_first_touch");
	j_num("seconds_4k", local4k);
	j_num("pages_per_s_4k", pages / local4k);
	j_num("seconds_thp", localthp);
	j_num("pages_per_s_thp", pages / localthp);
	j_end();
	j_arr("runs");
	run_cases(src, 2, len, "default", pages / local4k, true);
	for (size_t k = 0; k < sizeof(knobs) / sizeof(knobs[0]); k++) {
		char path[128], saved[32], settings[64];

		snprintf(path, sizeof(path), PARAMS "%s", knobs[k].name);
		if (read_str(path, saved, sizeof(saved)) != 0)
			continue;
		if (write_str(path, knobs[k].off) != 0) {
			fprintf(stderr, "xpmem-bench: cannot set %s to %s: %s\n", path, knobs[k].off,
				strerror(errno));
			continue;
		}
		snprintf(settings, sizeof(settings), "%s=%s", knobs[k].name, knobs[k].off);
		run_cases(src, 2, len, settings, pages / local4k, false);
		write_str(path, saved);
	}
	j_end();
	j_int("pinned_checks", pinned_checks);
	j_int("pinned_failures", pinned_failures);
	j_end();
	if (!prefault_ok)
		printf("  (XPMEM_ATTACH_PREFAULT not supported by this module: no prefault rows)\n");
	printf("  pinned pages (/proc/xpmem/global_pages) right after each default populate, still attached: %s (%d checks)\n",
	       pinned_failures ? "FAILED, not 0" : "0", pinned_checks);

	for (int s = 0; s < 2; s++) {
		xpmem_release(src[s].ap);
		exporter_stop(&src[s].e);
	}
	populate_1g();
	if (thp_saved[0])
		write_str(THP_KNOB, thp_saved);
	return pinned_failures ? -1 : 0;
}
