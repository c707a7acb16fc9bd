/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xpmem-bench: shared declarations. Every benchmark prints a human-readable table on
 * stdout and adds its figures to one JSON document. Guests are emulated: the figures
 * are only meaningful as ratios between measurements of the same run.
 */
#ifndef XPMEM_BENCH_H
#define XPMEM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "xpmem.h"

#define KiB 1024UL
#define MiB (1024UL * 1024UL)
#define GiB (1024UL * MiB)

extern size_t pg;

/* ---- time and errors ---- */
double now_s(void);
void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...);
/* A human-readable size: "4 KiB", "2 MiB". */
const char *size_str(size_t bytes, char *buf, size_t len);
int cmp_double(const void *a, const void *b);
double median(double *v, int n);

/* ---- the JSON document (keys are added in order; commas are handled) ---- */
void j_open(FILE *f);
void j_close(void);
void j_obj(const char *key); /* key NULL: an element of the enclosing array */
void j_arr(const char *key);
void j_end(void); /* closes the innermost object or array */
void j_num(const char *key, double v);
void j_int(const char *key, long long v);
void j_str(const char *key, const char *v);
void j_bool(const char *key, bool v);

/* ---- system helpers ---- */
int read_str(const char *path, char *buf, size_t len);
int write_str(const char *path, const char *val);
/* AnonHugePages (kB) of the mapping of the calling process that contains addr, or -1. */
long smaps_thp_kb(const void *addr);
/* /proc/xpmem/global_pages: 0, or -1 if unreadable. */
int global_pages(long long *pinned, long long *unpinned);
/* A counter of /proc/xpmem/stats (e.g. "faults"), or -1. */
long long xpmem_stat(const char *name);
/* What backs a region: 4 KiB pages, transparent huge pages, or 1 GiB hugetlb pages. */
enum backing { BACKING_4K, BACKING_THP, BACKING_1G };
/* mmap an anonymous private region of len bytes, aligned to its page size. */
char *map_region(size_t len, enum backing b);
/* Whether a 1 GiB hugetlb page is free (the bench guest reserves one at boot). */
bool hugetlb_1g_free(void);
/* Write to (or read) one byte of every page. */
void touch_pages(volatile char *p, size_t len, bool write);

/* ---- an exporter in a child process ---- */
struct exporter {
	pid_t pid;
	int cmd_fd; /* closed: the exporter exits */
	uint64_t addr;
	size_t len;
	xpmem_segid_t segid;
	long thp_kb; /* AnonHugePages of its buffer */
};
/* Maps len bytes backed as b, fills them, exports them with mode 0666. */
void exporter_start(struct exporter *e, size_t len, enum backing b);
void exporter_stop(struct exporter *e);
xpmem_apid_t get_rw(xpmem_segid_t segid);
void *attach_or_die(xpmem_apid_t apid, uint64_t offset, size_t len, unsigned int flags);

/* ---- the benchmarks ---- */
struct bench_opts {
	size_t populate_mib;
	bool quick; /* smaller sizes and fewer repetitions (a smoke run) */
};
int bench_populate(const struct bench_opts *o);
int bench_copy(const struct bench_opts *o);
int bench_attach(const struct bench_opts *o);
int bench_recall(const struct bench_opts *o);
int bench_teardown(const struct bench_opts *o);
/*
 * The correctness check: nothing may be pinned (-1 otherwise). Printed if print or
 * failed; with json, added as an element of the JSON array being written.
 */
int check_pinned(const char *when, bool print, bool json);

#endif /* XPMEM_BENCH_H */
