// SPDX-License-Identifier: GPL-2.0-only
/*
 * Peer side of the lock tests (t_lock.c): the MPI pattern in which processes export
 * their whole address space and attach each other, while every one of them keeps
 * faulting through its attachment, keeps changing the pages the others have mapped,
 * and keeps taking its own mmap lock for writing on unrelated memory.
 *
 * Layout of each process's buffer (LOCKMIX_PAGES pages):
 *   pages [0, LOCKMIX_REPL)             "replaced": only the owner changes them, by
 *                                       moving a freshly filled page over one
 *                                       (mremap, atomic for everyone else) or by
 *                                       dropping it (MADV_DONTNEED: reads as zeros);
 *   pages [LOCKMIX_REPL, LOCKMIX_PAGES) "written": only the predecessor writes them,
 *                                       through its attachment; the owner drops some
 *                                       now and then.
 * A replaced page of version v holds v in word 0 and pat_word(v, page * W + i) in
 * word i; a dropped one holds zeros. The owner publishes each page's state in its ctrl
 * page, seqlock style: CTRL_BUSY before changing the page, the new state after the
 * call returned. A reader (the predecessor) samples ctrl, reads the page, samples
 * ctrl again: when both samples are equal and not busy, the owner's last call had
 * returned before the read began, so the page must read exactly as published. A
 * stale attacher PTE (a recall that had not completed when munmap/mremap/madvise
 * returned) shows up as a mismatch.
 */
#include "suite.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RW (PROT_READ | PROT_WRITE)
#define CTRL_STATE(c) ((c) & 3)
#define CTRL_VER(c) ((c) >> 2)
enum { CTRL_DATA = 0, CTRL_ZERO = 1, CTRL_BUSY = 2 };

enum { N_READERS = 2, N_WRITERS = 1, N_CHURN = 2 };

struct lockmix {
	char *buf;
	uint64_t *ctrl;
	char *att;
	const uint64_t *att_ctrl;
	size_t words; /* 64-bit words per page */
	atomic_bool stop;
	atomic_ullong next_version;
	atomic_ullong reads, strict, torn, writes, replaces, discards, churn, mismatches;
	atomic_int reported;
};

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64 */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void report(struct lockmix *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct lockmix *m, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&m->mismatches, 1);
	/* The first few are enough to debug; stderr reaches the suite's log. */
	if (atomic_fetch_add(&m->reported, 1) >= 5)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "lockmix[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void fill_version(uint64_t *w, size_t words, size_t page, uint64_t v)
{
	for (size_t i = 1; i < words; i++)
		w[i] = pat_word(v, page * words + i);
	w[0] = v;
}

int64_t lockmix_init(char *buf, uint64_t *ctrl)
{
	size_t words = pg / 8;

	if (LOCKMIX_REPL * sizeof(uint64_t) > pg)
		return -EINVAL;
	for (size_t p = 0; p < LOCKMIX_REPL; p++) {
		fill_version((uint64_t *)(buf + p * pg), words, p, p + 1);
		ctrl[p] = (uint64_t)(p + 1) << 2 | CTRL_DATA;
	}
	memset(buf + LOCKMIX_REPL * pg, 0, (LOCKMIX_PAGES - LOCKMIX_REPL) * pg);
	return 0;
}

/* ---- readers: check the successor's replaced pages through the attachment ---- */

static void read_one(struct lockmix *m, size_t p)
{
	const volatile uint64_t *w = (const volatile uint64_t *)(m->att + p * pg);
	const _Atomic uint64_t *cp = (const _Atomic uint64_t *)&m->att_ctrl[p];
	uint64_t c1, c2, w0, bad_i = 0, bad_v = 0;
	bool consistent = true;

	for (int attempt = 0; attempt < 1000; attempt++) {
		c1 = atomic_load_explicit(cp, memory_order_acquire);
		w0 = w[0];
		consistent = true;
		for (size_t i = 1; i < m->words && consistent; i++) {
			uint64_t want = w0 ? pat_word(w0, p * m->words + i) : 0;

			if (w[i] != want) {
				consistent = false;
				bad_i = i;
				bad_v = w[i];
			}
		}
		atomic_thread_fence(memory_order_acquire);
		c2 = atomic_load_explicit(cp, memory_order_acquire);
		if (w[0] != w0 || c1 != c2) {
			/* Replaced while we read: a mix is expected, read again. */
			atomic_fetch_add(&m->torn, 1);
			continue;
		}
		atomic_fetch_add(&m->reads, 1);
		if (!consistent) {
			report(m, "page %zu (version %llu, ctrl %#llx) word %zu reads %#llx: a mix of two pages that did not change under the reader",
			       p, (unsigned long long)w0, (unsigned long long)c1, (size_t)bad_i,
			       (unsigned long long)bad_v);
			return;
		}
		if (CTRL_STATE(c1) == CTRL_BUSY)
			return;
		atomic_fetch_add(&m->strict, 1);
		if (CTRL_STATE(c1) == CTRL_DATA && w0 != CTRL_VER(c1))
			report(m, "page %zu reads version %llu, but the exporter had replaced it with version %llu before the read began (stale attacher PTE)",
			       p, (unsigned long long)w0, (unsigned long long)CTRL_VER(c1));
		else if (CTRL_STATE(c1) == CTRL_ZERO && w0 != 0)
			report(m, "page %zu reads version %llu, but the exporter had dropped it (MADV_DONTNEED, ctrl %#llx) before the read began (stale attacher PTE)",
			       p, (unsigned long long)w0, (unsigned long long)c1);
		return;
	}
	report(m, "page %zu kept changing under the reader for 1000 attempts", p);
}

static void *reader_main(void *v)
{
	struct lockmix *m = v;
	uint64_t s = ((uint64_t)pthread_self() ^ (uint64_t)getpid() << 32) | 1;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed))
		read_one(m, rnd(&s) % LOCKMIX_REPL);
	return NULL;
}

/* ---- writers: write the successor's written pages and read them back ---- */

static void *writer_main(void *v)
{
	struct lockmix *m = v;
	uint64_t s = ((uint64_t)pthread_self() ^ (uint64_t)getpid() << 32) | 1, n = 0;
	const size_t nw = LOCKMIX_PAGES - LOCKMIX_REPL;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		size_t p = LOCKMIX_REPL + rnd(&s) % nw;
		volatile uint64_t *w = (volatile uint64_t *)(m->att + p * pg);
		uint64_t t = (++n << 8) | 0xa5;

		w[0] = t;
		for (size_t i = 1; i < m->words; i++)
			w[i] = pat_word(t, p * m->words + i);
		/* Only we write this page; the owner may drop it meanwhile (then zeros). */
		for (size_t i = 0; i < m->words; i++) {
			uint64_t want = i ? pat_word(t, p * m->words + i) : t;
			uint64_t got = w[i];

			if (got != want && got != 0) {
				report(m, "written page %zu word %zu reads %#llx, wrote %#llx (nobody else writes it)",
				       p, i, (unsigned long long)got, (unsigned long long)want);
				break;
			}
		}
		atomic_fetch_add(&m->writes, 1);
	}
	return NULL;
}

/* ---- the owner's side: replace and drop its own pages ---- */

static void publish(struct lockmix *m, size_t p, uint64_t c)
{
	atomic_store_explicit((_Atomic uint64_t *)&m->ctrl[p], c, memory_order_release);
}

static void *replacer_main(void *v)
{
	struct lockmix *m = v;
	uint64_t s = ((uint64_t)pthread_self() ^ (uint64_t)getpid() << 32) | 1;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		uint64_t r = rnd(&s);
		size_t p = (r >> 8) % LOCKMIX_REPL;
		uint64_t ver = atomic_fetch_add(&m->next_version, 1);
		unsigned op = r % 8;

		if (op < 5) {
			/* A fresh page, filled privately, moved over page p in one step. */
			char *stage = mmap(NULL, pg, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (stage == MAP_FAILED) {
				report(m, "mmap of a staging page: %s", strerror(errno));
				break;
			}
			fill_version((uint64_t *)stage, m->words, p, ver);
			publish(m, p, ver << 2 | CTRL_BUSY);
			if (mremap(stage, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, m->buf + p * pg) ==
			    MAP_FAILED) {
				report(m, "mremap over page %zu: %s", p, strerror(errno));
				break;
			}
			publish(m, p, ver << 2 | CTRL_DATA);
			atomic_fetch_add(&m->replaces, 1);
		} else if (op < 7) {
			publish(m, p, ver << 2 | CTRL_BUSY);
			if (madvise(m->buf + p * pg, pg, MADV_DONTNEED) != 0) {
				report(m, "MADV_DONTNEED of page %zu: %s", p, strerror(errno));
				break;
			}
			publish(m, p, ver << 2 | CTRL_ZERO);
			atomic_fetch_add(&m->discards, 1);
		} else {
			/* A run of the pages the predecessor writes. */
			size_t n = 1 + (r >> 20) % 16;
			size_t q = LOCKMIX_REPL + (r >> 32) % (LOCKMIX_PAGES - LOCKMIX_REPL - n);

			if (madvise(m->buf + q * pg, n * pg, MADV_DONTNEED) != 0) {
				report(m, "MADV_DONTNEED of pages %zu+%zu: %s", q, n, strerror(errno));
				break;
			}
			atomic_fetch_add(&m->discards, n);
		}
	}
	return NULL;
}

/* ---- churn: mmap writers on unrelated memory, so writers queue on our mm ---- */

static void *churn_main(void *v)
{
	struct lockmix *m = v;
	const size_t len = 16 * pg;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		char *p = mmap(NULL, len, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			report(m, "churn mmap: %s", strerror(errno));
			break;
		}
		for (size_t off = 0; off < len; off += pg)
			p[off] = 1;
		if (mprotect(p, len, PROT_READ) != 0 || mprotect(p + len / 2, len / 2, RW) != 0 ||
		    munmap(p, len) != 0) {
			report(m, "churn mprotect/munmap: %s", strerror(errno));
			break;
		}
		atomic_fetch_add(&m->churn, 1);
	}
	return NULL;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int64_t lockmix_run(char *buf, uint64_t *ctrl, char *att, const uint64_t *att_ctrl, unsigned ms,
		    struct lockmix_result *res)
{
	enum { NT = N_READERS + N_WRITERS + N_CHURN + 1 };
	static void *(*const roles[NT])(void *) = {
		reader_main, reader_main, writer_main, churn_main, churn_main, replacer_main,
	};
	struct lockmix *m = calloc(1, sizeof(*m));
	pthread_t th[NT];

	_Static_assert(N_READERS == 2 && N_WRITERS == 1 && N_CHURN == 2, "roles[] lists them");
	if (!m)
		return -ENOMEM;
	m->buf = buf;
	m->ctrl = ctrl;
	m->att = att;
	m->att_ctrl = att_ctrl;
	m->words = pg / 8;
	atomic_init(&m->next_version, LOCKMIX_REPL + 1);
	for (int t = 0; t < NT; t++)
		if (pthread_create(&th[t], NULL, roles[t], m) != 0)
			_exit(4); /* the started threads cannot be stopped cleanly */
	nap_ms(ms);
	atomic_store(&m->stop, true);
	for (int t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	*res = (struct lockmix_result){
		.reads = m->reads,
		.strict = m->strict,
		.torn = m->torn,
		.writes = m->writes,
		.replaces = m->replaces,
		.discards = m->discards,
		.churn = m->churn,
		.mismatches = m->mismatches,
	};
	free(m);
	return (int64_t)res->mismatches;
}
