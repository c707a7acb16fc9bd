// SPDX-License-Identifier: GPL-2.0-only
/*
 * xpmem-stress: exporters that keep changing their memory race attachers that keep
 * reading and writing it through XPMEM attachments, and every byte read through an
 * attachment is checked against what the exporter's page held at that moment.
 *
 * Processes (all forked from the orchestrator, which only watches and respawns):
 *   exporters  one per slot; 8 MiB (default) of anonymous memory, 2 MiB aligned,
 *              MADV_HUGEPAGE, exported; "mutator" threads keep changing it (remap,
 *              munmap holes, MADV_DONTNEED, mprotect NONE/RO, fork + COW, THP
 *              collapse and split, move_pages between NUMA nodes, mremap away and
 *              back); the main thread removes and remakes the segment, exits
 *              abruptly or after a remove, and attaches other exporters' (and its
 *              own) segments for reading.
 *   attachers  several threads each: get, attach (anywhere, fixed, prefault),
 *              read/write/scan with checks, release while attached, detach (also
 *              after splitting or moving the attachment themselves), fork probes;
 *              whole processes exit abruptly with attachments and permits alive.
 *
 * Consistency protocol. Word 0 of exporter page p holds a stamp
 * (slot, exporter epoch, p, generation). The control area (MAP_SHARED, created before
 * any fork) publishes per page pub = (epoch, generation G, state), written only by
 * the page's mutator thread:
 *   STABLE G      the page holds stamp G and is readable and writable
 *   READONLY G    holds stamp G, mprotect(PROT_READ) has returned: writes must SIGSEGV
 *   NOACCESS G    PROT_NONE / unmapped / mremapped away (call returned): must SIGBUS
 *   FRESH G       content destroyed (the call returned): zeros or stamp G
 *   CHG_KEEP G    a content-preserving change is under way: stamp G or G+1, a signal
 *   CHG_DESTROY G a content-destroying change is under way: zeros, stamp G or G+1
 * A mutator publishes CHG_* before its system call, the resulting state after it
 * returns, and after every change writes stamp G+1 into the page (through its own
 * mapping) before publishing STABLE G+1. An attacher reads pub (p1), accesses the page,
 * reads pub again (p2). Whatever happened, a non-zero stamp must name the right
 * slot/epoch/page and have generation >= G(p1) (older = STALE: the attachment still
 * maps a page the exporter replaced) and <= G(p2) + 1; if p1 == p2 the state held for
 * the whole access and the outcome must be exactly the one the state allows.
 *
 * Writers own one word per page (WSLOT0 + writer id). A write of a unique token T is
 * read back; when p1 == p2 == STABLE and the stamp read back is G, the write is
 * "confirmed" and recorded in the control area. Content-preserving changes (migration,
 * COW, THP, mprotect, mremap) must keep confirmed tokens: the mutator checks its own
 * view of every confirmed token before restamping (lost writes). A forked child of the
 * exporter checks that its COW copy never changes (writes leaking into it).
 *
 * Segments: slot state (seq, LIVE/REMOVING/REMOVED/EXITING/EXITED). After
 * xpmem_remove returned every access must SIGBUS; after the exporter was reaped (plus a
 * grace period for the asynchronous mm teardown) too. SIGBUS/SIGSEGV are expected only
 * where the states above allow them; any other signal kills the process (counted).
 *
 * Usage: xpmem-stress [--duration S] [--exporters N] [--attachers N] [--threads N]
 *        [--mutators N] [--chunks N] [--seed N] [--max-print N] [--verbose]
 * Exit status: 0 no failure, 1 failures, 2 usage or environment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define PAGE 4096UL
#define CHUNK (2UL << 20)
#define CHUNK_PAGES (CHUNK / PAGE)
#define MAX_SLOTS 8
#define MAX_CHUNKS 8 /* <= 4096 pages: the stamp has 12 bits of page index */
#define MAX_MUT 4
#define MAX_WRITERS 127 /* 7 bits in a token */
#define MAX_THREADS 16
#define WSLOT0 8 /* word of writer w in every page: WSLOT0 + w */
#define RING 64
#define EXIT_GRACE_MS 3000
#define RW (PROT_READ | PROT_WRITE)
#define EXIT_CRASH 70 /* unexpected signal in a child */
#define EXIT_BROKEN 71 /* the test itself could not go on */
#define EXIT_PROBE_SEGV 42 /* a fork probe child got its SIGSEGV */

/* ------------------------------------------------------------------ counters */

#define COUNTERS(X)                                                                   \
	X(exp_started, "exporter processes started")                                  \
	X(remake, "segments removed and remade by a live exporter")                   \
	X(exp_exit_abrupt, "exporters exited without removing")                       \
	X(exp_exit_removed, "exporters exited right after xpmem_remove")               \
	X(maxaddr_makes, "segments made with XPMEM_MAXADDR_SIZE")                     \
	X(op_remap, "exporter mmap(MAP_FIXED) over a range")                          \
	X(op_remap_hole, "exporter munmap, hole, mmap again")                         \
	X(op_dontneed, "exporter MADV_DONTNEED")                                      \
	X(op_mprot_none, "exporter mprotect PROT_NONE and back")                      \
	X(op_mprot_ro, "exporter mprotect PROT_READ and back")                        \
	X(op_mremap, "exporter mremap away and back")                                 \
	X(op_mremap_fail, "exporter mremap refused (range spans VMAs)")               \
	X(op_fork, "exporter fork (COW), child checks its copy")                      \
	X(op_collapse_ok, "exporter MADV_COLLAPSE succeeded")                         \
	X(op_collapse_fail, "exporter MADV_COLLAPSE failed (EAGAIN/EINVAL/...)")      \
	X(op_split, "exporter THP split (mprotect part, move_pages one page)")        \
	X(op_migrate, "exporter move_pages calls")                                    \
	X(pages_migrated, "pages moved to the other NUMA node")                       \
	X(op_restamp, "exporter restamp only")                                        \
	X(shm_exporters, "exporters of shared memfd memory (others: private anon)")   \
	X(op_punch, "shared exporter fallocate(PUNCH_HOLE) / MADV_REMOVE")            \
	X(token_checks, "confirmed writes re-checked by the exporter after a change") \
	X(cow_checks, "forked COW copies checked unchanged")                          \
	X(att_started, "attacher processes started")                                  \
	X(att_exit_abrupt, "attacher processes exited with live attachments")         \
	X(att_exit_clean, "attacher processes exited after cleaning up")              \
	X(get, "xpmem_get")                                                           \
	X(get_enoent, "xpmem_get ENOENT (segment gone)")                              \
	X(release, "xpmem_release")                                                   \
	X(release_attached, "permits released while attached")                        \
	X(attach, "xpmem_attach succeeded")                                           \
	X(attach_prefault, "  of which XPMEM_ATTACH_PREFAULT")                        \
	X(attach_fixed, "  of which at a fixed address")                              \
	X(attach_enoent, "xpmem_attach ENOENT (permit released / segment gone)")      \
	X(attach_eexist, "xpmem_attach EEXIST (fixed address taken)")                 \
	X(detach, "xpmem_detach")                                                     \
	X(detach_split, "  of which after munmap of a page inside")                   \
	X(att_mremap, "attachments moved with mremap by the attacher")                \
	X(att_mprotect, "attachments made read-only by the attacher (write SIGSEGV)") \
	X(left_attached, "attachments left for process exit")                         \
	X(fork_probe, "forked children touching an attachment (SIGSEGV)")             \
	X(burst, "get/attach/touch/detach/release bursts")                            \
	X(probe, "exporter main threads reading other/own segments")                  \
	X(read, "checked reads")                                                      \
	X(write, "checked writes")                                                    \
	X(scan_page, "checked scan reads")                                            \
	X(strict_checks, "accesses checked against a state that held throughout")     \
	X(loose_checks, "accesses checked across a change (bounds only)")             \
	X(confirmed, "writes confirmed on a stable page")                             \
	X(sigbus, "SIGBUS expected (hole, PROT_NONE, change under way)")              \
	X(sigbus_gone, "SIGBUS after remove / exporter exit")                         \
	X(sigsegv, "SIGSEGV expected (write to read-only)")                           \
	X(f_stale, "FAIL stale reads (old generation or old zero page)")              \
	X(f_wrong_page, "FAIL wrong page (stamp of another page/exporter)")           \
	X(f_bad_value, "FAIL impossible value")                                       \
	X(f_lost_write, "FAIL lost or misplaced writes")                              \
	X(f_revoked, "FAIL access succeeded where it must fault")                     \
	X(f_ro_write, "FAIL write succeeded to a read-only page/attachment")          \
	X(f_signal, "FAIL unexpected SIGBUS/SIGSEGV")                                 \
	X(f_api, "FAIL unexpected xpmem call result")                                 \
	X(f_cow_leak, "FAIL COW copy of a forked exporter changed")                   \
	X(f_child, "FAIL child crashed or exited badly")                              \
	X(f_hang, "FAIL no progress / processes hung")                                \
	X(f_leak, "FAIL live objects left in /proc/xpmem/stats")                      \
	X(f_internal, "FAIL test-internal inconsistency")

enum cnt {
#define X(n, d) C_##n,
	COUNTERS(X)
#undef X
	C_COUNT
};
static const char *const cnt_name[] = {
#define X(n, d) #n,
	COUNTERS(X)
#undef X
};
static const char *const cnt_desc[] = {
#define X(n, d) d,
	COUNTERS(X)
#undef X
};
#define C_FIRST_FAIL C_f_stale

/* ------------------------------------------------------------------ shared state */

enum slot_state { SS_EMPTY, SS_LIVE, SS_REMOVING, SS_REMOVED, SS_EXITING, SS_EXITED };

struct slot {
	_Atomic uint64_t state; /* seq << 8 | SS_* */
	_Atomic int64_t segid; /* of the current seq; written before LIVE */
	_Atomic uint32_t epoch; /* exporter process instance, in every stamp */
	_Atomic int32_t pid;
	_Atomic uint64_t ring[RING]; /* seq << 8 | SS_REMOVED or SS_EXITED: how seq ended */
	_Atomic int64_t ended_ms[RING];
};

struct ctl {
	_Atomic int stop;
	_Atomic uint64_t progress;
	_Atomic int printed;
	_Atomic uint64_t c[C_COUNT];
	_Atomic uint32_t wcount[MAX_WRITERS];
	struct slot slot[MAX_SLOTS];
};

static struct ctl *ctl;
static _Atomic uint64_t *pubs; /* [slot][page] */
static _Atomic uint64_t *recs; /* [slot][writer][page] */

static struct {
	unsigned duration, nexp, natt, nthr, nmut, nchunks, npages, nwriters, max_print;
	uint64_t seed;
	int nnodes;
	int nodes[8];
	bool verbose;
} cfg = {
	.duration = 40, .nexp = 3, .natt = 4, .nthr = 3, .nmut = 2, .nchunks = 4,
	.max_print = 40,
};
static int64_t t0_ms;

/* Page publication words. */
enum pstate { PS_NONE, PS_STABLE, PS_READONLY, PS_NOACCESS, PS_FRESH, PS_CHG_KEEP, PS_CHG_DESTROY };
static const char *const ps_name[] = { "none", "STABLE", "READONLY", "NOACCESS", "FRESH",
				       "CHG_KEEP", "CHG_DESTROY" };

static inline uint64_t pub_make(uint32_t epoch, uint32_t gen, int st)
{
	return (uint64_t)(epoch & 0xffff) << 48 | (uint64_t)gen << 8 | (unsigned)st;
}
static inline uint32_t pub_epoch(uint64_t p) { return (uint32_t)(p >> 48); }
static inline uint32_t pub_gen(uint64_t p) { return (uint32_t)(p >> 8); }
static inline int pub_state(uint64_t p) { return (int)(p & 0xff); }

static inline uint64_t stamp(int slot, uint32_t epoch, size_t page, uint32_t gen)
{
	return (uint64_t)(slot + 1) << 60 | (uint64_t)(epoch & 0xffff) << 44 |
	       (uint64_t)(page & 0xfff) << 32 | gen;
}
static inline uint32_t stamp_gen(uint64_t h) { return (uint32_t)h; }

/* Writer records: 0 unknown, 1 write in progress, else a confirmed token (bit 63). */
#define REC_UNKNOWN 0ULL
#define REC_BUSY 1ULL
static inline uint64_t token_make(int wid, uint32_t epoch, uint32_t gen, uint32_t n)
{
	return 1ULL << 63 | (uint64_t)(wid & 0x7f) << 56 | (uint64_t)(epoch & 0xff) << 48 |
	       (uint64_t)(gen & 0xffffff) << 24 | (n & 0xffffff);
}

static inline _Atomic uint64_t *pubp(int s, size_t p)
{
	return &pubs[(size_t)s * cfg.npages + p];
}
static inline _Atomic uint64_t *recp(int s, int w, size_t p)
{
	return &recs[((size_t)s * cfg.nwriters + (size_t)w) * cfg.npages + p];
}

static inline void count(enum cnt c)
{
	atomic_fetch_add_explicit(&ctl->c[c], 1, memory_order_relaxed);
}
static inline void count_n(enum cnt c, uint64_t n)
{
	atomic_fetch_add_explicit(&ctl->c[c], n, memory_order_relaxed);
}
static inline void progress(void)
{
	atomic_fetch_add_explicit(&ctl->progress, 1, memory_order_relaxed);
}
static inline bool stopping(void)
{
	return atomic_load_explicit(&ctl->stop, memory_order_relaxed);
}

/* ------------------------------------------------------------------ utilities */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

struct rng {
	uint64_t s;
};

static uint64_t rnd64(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n). */
static uint32_t rnd(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rnd64(r) >> 32) * n) >> 32);
}

static void rng_seed(struct rng *r, uint64_t a, uint64_t b)
{
	r->s = (a ^ (b * 0x9e3779b97f4a7c15ULL)) | 1;
	for (int i = 0; i < 8; i++)
		rnd64(r);
}

/* One line to stderr, written at once (several processes share the stream). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[640];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0)
		return;
}

static void fail(enum cnt kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(enum cnt kind, const char *fmt, ...)
{
	char buf[560];
	va_list ap;

	count(kind);
	if (atomic_fetch_add(&ctl->printed, 1) >= (int)cfg.max_print)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("xpmem-stress: FAIL %s [pid %d, %.1f s]: %s", cnt_name[kind], getpid(),
	    (double)(now_ms() - t0_ms) / 1000.0, buf);
}

/* The test cannot go on in this process (a system call that must work failed). */
static void broken(const char *what) __attribute__((noreturn));
static void broken(const char *what)
{
	fail(C_f_internal, "%s: %s", what, strerror(errno));
	_exit(EXIT_BROKEN);
}

/* ------------------------------------------------------------------ faults */

static _Thread_local sigjmp_buf *t_env;
static _Thread_local volatile sig_atomic_t t_armed;
static _Thread_local void *volatile t_faddr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "xpmem-stress: unexpected SIGBUS/SIGSEGV outside a guarded access\n";

	(void)uc;
	if (t_armed) {
		t_armed = 0;
		t_faddr = si->si_addr;
		siglongjmp(*t_env, sig);
	}
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(EXIT_CRASH);
	_exit(EXIT_CRASH);
}

static void install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	/* NODEFER: the handler jumps out, and sigsetjmp(env, 0) does not restore masks. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

enum kind { K_READ, K_WRITE };

/* One guarded access of a page: a read of the stamp, or write + read back + stamp. */
struct acc {
	volatile uint64_t *page;
	int kind;
	unsigned word;
	uint64_t token;
	uint64_t h, v;
};

static int __attribute__((noinline)) guarded_access(struct acc *a)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	if (a->kind == K_WRITE) {
		a->page[a->word] = a->token;
		a->v = a->page[a->word];
	}
	a->h = a->page[0];
	t_armed = 0;
	return 0;
}

/* Guarded read of the stamps of n consecutive pages; *done = pages read. */
static int __attribute__((noinline)) guarded_scan(volatile char *start, size_t n, uint64_t *out,
						  volatile size_t *done)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	*done = 0;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	for (size_t i = 0; i < n; i++) {
		out[i] = *(volatile uint64_t *)(start + i * PAGE);
		*done = i + 1;
	}
	t_armed = 0;
	return 0;
}

/* Guarded write of one word (expected to fault). */
static int __attribute__((noinline)) guarded_poke(volatile uint64_t *w, uint64_t val)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	*w = val;
	t_armed = 0;
	return 0;
}

/* ------------------------------------------------------------------ checks */

/* An attachment as its attacher knows it. */
struct att {
	int slot;
	uint32_t epoch;
	uint64_t seq;
	int64_t apid;
	char *addr;
	size_t first; /* exporter page index of addr */
	size_t n; /* pages */
	bool writable;
	bool rdonly_permit;
};

struct tctx {
	struct rng rng;
	int wid; /* writer id, -1: never writes */
};

/* Everything known about one access of exporter page p through attachment a. */
struct obs {
	const struct att *a;
	size_t p;
	char *addr;
	int kind;
	int64_t t1;
	uint64_t ss1, ss2, p1, p2;
	int sig;
	void *faddr;
	uint64_t h, v, token;
};

enum segview { SEG_ALIVE, SEG_GONE, SEG_LOOSE };

/* How the attachment's segment stood during the access. */
static enum segview seg_view(const struct obs *o)
{
	const struct att *a = o->a;
	struct slot *sl = &ctl->slot[a->slot];
	uint64_t q1 = o->ss1 >> 8, st1 = o->ss1 & 0xff;

	if (o->ss1 == o->ss2 && q1 == a->seq && st1 == SS_LIVE)
		return SEG_ALIVE;
	if (q1 == a->seq && st1 == SS_REMOVED)
		return SEG_GONE;
	if (q1 > a->seq || (q1 == a->seq && st1 == SS_EXITED)) {
		uint64_t r = atomic_load(&sl->ring[a->seq % RING]);

		if (r >> 8 == a->seq) {
			if ((r & 0xff) == SS_REMOVED)
				return SEG_GONE;
			/* Exit: the exporter's mm may be torn down a little after it is reaped. */
			if ((r & 0xff) == SS_EXITED &&
			    o->t1 - atomic_load(&sl->ended_ms[a->seq % RING]) > EXIT_GRACE_MS)
				return SEG_GONE;
		}
	}
	return SEG_LOOSE;
}

static const char *signame(int sig)
{
	return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : sig ? "signal" : "none";
}

#define OBS_FMT "slot %d epoch %u seq %" PRIu64 " page %zu (%s at %p): pub %s/%u -> %s/%u, got %s stamp %#" PRIx64
#define OBS_ARGS(o)                                                                              \
	(o)->a->slot, (o)->a->epoch, (o)->a->seq, (o)->p, (o)->kind == K_WRITE ? "write" : "read", \
		(void *)(o)->addr, ps_name[pub_state((o)->p1)], pub_gen((o)->p1),                  \
		ps_name[pub_state((o)->p2)], pub_gen((o)->p2), signame((o)->sig), (o)->h

/*
 * Judge one access. Returns true when a write is confirmed (it landed in the page of
 * the generation that was stable before and after it).
 */
static bool judge(const struct obs *o)
{
	const struct att *a = o->a;
	bool write = o->kind == K_WRITE;
	uint64_t want = stamp(a->slot, a->epoch, o->p, 0);
	uint32_t g1 = pub_gen(o->p1), g2 = pub_gen(o->p2), hg = stamp_gen(o->h);
	int st = pub_state(o->p1);
	bool same = o->p1 == o->p2, bad = false;

	if (o->sig && ((char *)o->faddr < o->addr || (char *)o->faddr >= o->addr + PAGE)) {
		fail(C_f_signal, "%s at %p, outside the page accessed; " OBS_FMT, signame(o->sig),
		     o->faddr, OBS_ARGS(o));
		return false;
	}
	if (write && !a->writable) {
		/* The core mm refuses this before the module sees it. */
		if (o->sig == SIGSEGV)
			count(C_sigsegv);
		else
			fail(o->sig ? C_f_signal : C_f_ro_write,
			     "write through a read-only attachment: " OBS_FMT, OBS_ARGS(o));
		return false;
	}
	switch (seg_view(o)) {
	case SEG_GONE:
		if (o->sig == SIGBUS)
			count(C_sigbus_gone);
		else
			fail(o->sig ? C_f_signal : C_f_revoked,
			     "access after the segment was removed / its exporter reaped: " OBS_FMT,
			     OBS_ARGS(o));
		return false;
	case SEG_LOOSE:
		if (o->sig == SIGBUS || (o->sig == SIGSEGV && write)) {
			count(o->sig == SIGBUS ? C_sigbus_gone : C_sigsegv);
			return false;
		}
		if (o->sig) {
			fail(C_f_signal, "SIGSEGV on a read: " OBS_FMT, OBS_ARGS(o));
			return false;
		}
		if (o->h && (o->h & ~0xffffffffULL) != want) {
			fail(C_f_wrong_page, "stamp of another page (segment going away): " OBS_FMT,
			     OBS_ARGS(o));
		} else if (o->h && pub_epoch(o->p1) == (a->epoch & 0xffff) && hg < g1) {
			fail(C_f_stale, "generation %u older than published %u (segment going away): " OBS_FMT,
			     hg, g1, OBS_ARGS(o));
		}
		count(C_loose_checks);
		return false;
	case SEG_ALIVE:
		break;
	}
	if (pub_epoch(o->p1) != (a->epoch & 0xffff) || pub_epoch(o->p2) != (a->epoch & 0xffff)) {
		fail(C_f_internal, "publication of another exporter on a live segment: " OBS_FMT,
		     OBS_ARGS(o));
		return false;
	}

	/* Bounds that hold whatever happened during the access. */
	if (!o->sig && o->h) {
		if ((o->h & ~0xffffffffULL) != want) {
			fail(C_f_wrong_page, "expected the stamp of slot %d epoch %u page %zu: " OBS_FMT,
			     a->slot, a->epoch, o->p, OBS_ARGS(o));
			bad = true;
		} else if (hg < g1) {
			fail(C_f_stale, "generation %u older than published %u: " OBS_FMT, hg, g1,
			     OBS_ARGS(o));
			bad = true;
		} else if (hg > g2 + 1) {
			fail(C_f_bad_value, "generation %u newer than ever published: " OBS_FMT, hg,
			     OBS_ARGS(o));
			bad = true;
		}
	}
	if (!o->sig && write && o->v != o->token && o->v != 0) {
		fail(C_f_lost_write, "wrote %#" PRIx64 ", read back %#" PRIx64 ": " OBS_FMT, o->token,
		     o->v, OBS_ARGS(o));
		bad = true;
	}
	if (bad)
		return false;

	if (!same) {
		if (o->sig == SIGSEGV && !write)
			fail(C_f_signal, "SIGSEGV on a read: " OBS_FMT, OBS_ARGS(o));
		else if (o->sig)
			count(o->sig == SIGBUS ? C_sigbus : C_sigsegv);
		else
			count(C_loose_checks);
		return false;
	}

	/* The state held for the whole access: the outcome must be exactly what it allows. */
	switch (st) {
	case PS_STABLE:
	case PS_READONLY:
		if (st == PS_READONLY && write) {
			if (o->sig == SIGSEGV)
				count(C_sigsegv);
			else if (o->sig)
				fail(C_f_signal, "write to a read-only source page: " OBS_FMT, OBS_ARGS(o));
			else
				fail(C_f_ro_write, "write succeeded on a page the exporter made read-only: " OBS_FMT,
				     OBS_ARGS(o));
			return false;
		}
		if (o->sig) {
			fail(C_f_signal, "fault on a page the exporter has mapped and accessible: " OBS_FMT,
			     OBS_ARGS(o));
			return false;
		}
		if (o->h != stamp(a->slot, a->epoch, o->p, g1)) {
			fail(C_f_stale, "%s on a stable page of generation %u: " OBS_FMT,
			     o->h ? "other generation" : "zero page", g1, OBS_ARGS(o));
			return false;
		}
		if (write && o->v != o->token) {
			fail(C_f_lost_write, "write of %#" PRIx64 " read back %#" PRIx64 " on a stable page: " OBS_FMT,
			     o->token, o->v, OBS_ARGS(o));
			return false;
		}
		count(C_strict_checks);
		return write && st == PS_STABLE;
	case PS_NOACCESS:
		if (o->sig == SIGBUS)
			count(C_sigbus);
		else
			fail(o->sig ? C_f_signal : C_f_revoked,
			     "page unmapped/PROT_NONE/moved away by the exporter: " OBS_FMT, OBS_ARGS(o));
		return false;
	case PS_FRESH:
		if (o->sig) {
			fail(C_f_signal, "fault on a freshly replaced page: " OBS_FMT, OBS_ARGS(o));
			return false;
		}
		if (o->h && hg != g1) {
			fail(C_f_stale, "fresh page of generation %u: " OBS_FMT, g1, OBS_ARGS(o));
			return false;
		}
		if (write && o->v != o->token) {
			fail(C_f_lost_write, "write of %#" PRIx64 " read back %#" PRIx64 ": " OBS_FMT,
			     o->token, o->v, OBS_ARGS(o));
			return false;
		}
		count(C_strict_checks);
		return false;
	case PS_CHG_KEEP:
	case PS_CHG_DESTROY:
		if (o->sig == SIGBUS || (o->sig == SIGSEGV && write && st == PS_CHG_KEEP)) {
			count(o->sig == SIGBUS ? C_sigbus : C_sigsegv);
			return false;
		}
		if (o->sig) {
			fail(C_f_signal, "unexpected fault during a change: " OBS_FMT, OBS_ARGS(o));
			return false;
		}
		if (st == PS_CHG_KEEP && !o->h) {
			fail(C_f_stale, "zero page while the content is being preserved: " OBS_FMT,
			     OBS_ARGS(o));
			return false;
		}
		if (st == PS_CHG_KEEP && write && o->v != o->token) {
			fail(C_f_lost_write, "write of %#" PRIx64 " read back %#" PRIx64 " while content is preserved: " OBS_FMT,
			     o->token, o->v, OBS_ARGS(o));
			return false;
		}
		count(C_strict_checks);
		return false;
	default:
		fail(C_f_internal, "bad publication word %#" PRIx64 ": " OBS_FMT, o->p1, OBS_ARGS(o));
		return false;
	}
}

/* Access page w of attachment a (read or checked write) and judge it. */
static void access_page(struct tctx *t, const struct att *a, size_t w, int kind)
{
	struct obs o = { .a = a, .p = a->first + w, .addr = a->addr + w * PAGE, .kind = kind };
	struct acc ac = { .page = (volatile uint64_t *)o.addr, .kind = kind };
	_Atomic uint64_t *pub = pubp(a->slot, o.p);
	_Atomic uint64_t *state = &ctl->slot[a->slot].state;
	_Atomic uint64_t *rec = NULL;
	bool confirmed;

	o.t1 = now_ms();
	o.ss1 = atomic_load_explicit(state, memory_order_acquire);
	o.p1 = atomic_load_explicit(pub, memory_order_acquire);
	if (kind == K_WRITE && a->writable) {
		uint32_t n = atomic_fetch_add_explicit(&ctl->wcount[t->wid], 1, memory_order_relaxed);

		ac.word = WSLOT0 + (unsigned)t->wid;
		ac.token = token_make(t->wid, a->epoch, pub_gen(o.p1), n);
		rec = recp(a->slot, t->wid, o.p);
		atomic_store(rec, REC_BUSY);
	} else if (kind == K_WRITE) {
		ac.word = WSLOT0 + (unsigned)(t->wid < 0 ? 0 : t->wid);
		ac.token = 0xbad;
	}
	o.token = ac.token;
	o.sig = guarded_access(&ac);
	o.faddr = t_faddr;
	atomic_thread_fence(memory_order_acquire);
	o.p2 = atomic_load_explicit(pub, memory_order_acquire);
	o.ss2 = atomic_load_explicit(state, memory_order_acquire);
	o.h = o.sig ? 0 : ac.h;
	o.v = o.sig ? 0 : ac.v;
	confirmed = judge(&o);
	if (rec) {
		atomic_store(rec, confirmed ? ac.token : REC_UNKNOWN);
		if (confirmed)
			count(C_confirmed);
	}
	count(kind == K_WRITE ? C_write : C_read);
	progress();
}

/* Read the stamps of up to 32 consecutive pages of the attachment at once. */
static void scan_pages(struct tctx *t, const struct att *a)
{
	uint64_t p1[32], out[32], ss1, ss2;
	volatile size_t done = 0;
	size_t w0 = rnd(&t->rng, (uint32_t)a->n), n = 1 + rnd(&t->rng, 32);
	_Atomic uint64_t *state = &ctl->slot[a->slot].state;
	int64_t t1 = now_ms();
	int sig;

	if (n > a->n - w0)
		n = a->n - w0;
	ss1 = atomic_load_explicit(state, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		p1[i] = atomic_load_explicit(pubp(a->slot, a->first + w0 + i), memory_order_acquire);
	sig = guarded_scan(a->addr + w0 * PAGE, n, out, &done);
	atomic_thread_fence(memory_order_acquire);
	ss2 = atomic_load_explicit(state, memory_order_acquire);
	for (size_t i = 0; i < n && i <= done; i++) {
		struct obs o = { .a = a, .p = a->first + w0 + i, .addr = a->addr + (w0 + i) * PAGE,
				 .kind = K_READ, .t1 = t1, .ss1 = ss1, .ss2 = ss2, .p1 = p1[i] };

		if (i == done && !sig)
			break;
		o.p2 = atomic_load_explicit(pubp(a->slot, o.p), memory_order_acquire);
		if (i == done) {
			o.sig = sig;
			o.faddr = t_faddr;
		} else {
			o.h = out[i];
		}
		judge(&o);
		count(C_scan_page);
	}
	progress();
}

/* ------------------------------------------------------------------ slots */

struct snap {
	uint64_t seq;
	int64_t segid;
	uint32_t epoch;
};

static bool slot_snapshot(int s, struct snap *sn)
{
	struct slot *sl = &ctl->slot[s];
	uint64_t a = atomic_load(&sl->state);

	if ((a & 0xff) != SS_LIVE)
		return false;
	sn->segid = atomic_load(&sl->segid);
	sn->epoch = atomic_load(&sl->epoch);
	if (atomic_load(&sl->state) != a)
		return false;
	sn->seq = a >> 8;
	return true;
}

static bool slot_live(int s, uint64_t seq)
{
	return atomic_load(&ctl->slot[s].state) == (seq << 8 | SS_LIVE);
}

/* ------------------------------------------------------------------ exporters */

struct exporter;

struct mutator {
	struct exporter *e;
	int idx;
	struct tctx t;
	char *spare; /* PROT_NONE reservation of one chunk, target of mremap */
	pthread_t th;
};

struct exporter {
	int slot;
	bool shm; /* MAP_SHARED memfd instead of private anonymous memory */
	int memfd;
	uint32_t epoch;
	char *base;
	size_t npages;
	uint32_t *gen; /* per page; owned by the page's mutator */
	uint32_t *destroyed; /* generation since which the content is what it is */
	uint64_t seq;
	int64_t segid;
	atomic_int stop_mut;
	/*
	 * Shared by mutators while part of the region is a hole (munmap, mremap away),
	 * exclusive for the main thread's attaches: an attachment placed by the kernel
	 * must not land in the hole that the mutator is about to fill again.
	 */
	pthread_rwlock_t va_lock;
	struct mutator mut[MAX_MUT];
	struct tctx t;
};

static inline volatile uint64_t *epage(struct exporter *e, size_t p)
{
	return (volatile uint64_t *)(e->base + p * PAGE);
}

/* Map exported memory at addr: anonymous, or the memfd at the matching offset. */
static void *exp_map(struct exporter *e, char *addr, size_t len, size_t first, int fixed)
{
	if (e->shm)
		return mmap(addr, len, RW, MAP_SHARED | fixed, e->memfd, (off_t)(first * PAGE));
	return mmap(addr, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0);
}

static void pub_range(struct exporter *e, size_t first, size_t n, int st)
{
	for (size_t p = first; p < first + n; p++)
		atomic_store(pubp(e->slot, p), pub_make(e->epoch, e->gen[p], st));
}

/* Every confirmed write still in the exporter's own view of the pages. */
static void verify_tokens(struct exporter *e, size_t first, size_t n, const char *op)
{
	uint64_t checks = 0;

	for (size_t p = first; p < first + n; p++) {
		volatile uint64_t *pg = epage(e, p);
		uint32_t g = e->gen[p], span = g - e->destroyed[p];

		for (unsigned w = 0; w < cfg.nwriters; w++) {
			_Atomic uint64_t *rec = recp(e->slot, (int)w, p);
			uint64_t r1 = atomic_load_explicit(rec, memory_order_acquire), v;
			uint32_t tg;

			if (!(r1 >> 63) || ((r1 >> 48) & 0xff) != (e->epoch & 0xff))
				continue;
			tg = (uint32_t)(r1 >> 24) & 0xffffff;
			if (((g - tg) & 0xffffff) > span)
				continue; /* from before the content was last destroyed */
			v = pg[WSLOT0 + w];
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(rec, memory_order_relaxed) != r1)
				continue; /* rewritten meanwhile */
			checks++;
			if (v != r1)
				fail(C_f_lost_write,
				     "slot %d epoch %u page %zu: writer %u's confirmed write %#" PRIx64
				     " (generation %u) reads %#" PRIx64 " in the exporter after %s",
				     e->slot, e->epoch, p, w, r1, tg, v, op);
		}
	}
	count_n(C_token_checks, checks);
}

/* After a content-preserving change: check confirmed writes, stamp G+1, publish STABLE. */
static void keep_restamp(struct exporter *e, size_t first, size_t n, const char *op)
{
	verify_tokens(e, first, n, op);
	for (size_t p = first; p < first + n; p++) {
		e->gen[p]++;
		*epage(e, p) = stamp(e->slot, e->epoch, p, e->gen[p]);
		atomic_store(pubp(e->slot, p), pub_make(e->epoch, e->gen[p], PS_STABLE));
	}
	progress();
}

/* After a content-destroying change: publish FRESH G+1, stamp, publish STABLE. */
static void fresh_restamp(struct exporter *e, size_t first, size_t n)
{
	for (size_t p = first; p < first + n; p++)
		atomic_store(pubp(e->slot, p), pub_make(e->epoch, e->gen[p] + 1, PS_FRESH));
	for (size_t p = first; p < first + n; p++) {
		e->gen[p]++;
		e->destroyed[p] = e->gen[p];
		*epage(e, p) = stamp(e->slot, e->epoch, p, e->gen[p]);
		atomic_store(pubp(e->slot, p), pub_make(e->epoch, e->gen[p], PS_STABLE));
	}
	progress();
}

/* Diagnostics: the /proc/self/maps lines overlapping [lo, hi), and where the spares are. */
static void dump_maps(struct exporter *e, uintptr_t lo, uintptr_t hi)
{
	static char buf[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1), off = 0;

	if (fd >= 0)
		close(fd);
	for (unsigned i = 0; i < cfg.nmut; i++)
		say("xpmem-stress: exporter %d: base %p, mutator %u spare %p", e->slot, (void *)e->base, i,
		    (void *)e->mut[i].spare);
	while (n > 0 && off < n) {
		char *line = buf + off, *nl = memchr(line, '\n', (size_t)(n - off));
		unsigned long s0, e0;

		if (!nl)
			break;
		*nl = '\0';
		off = nl - buf + 1;
		if (sscanf(line, "%lx-%lx", &s0, &e0) == 2 && s0 < hi && e0 > lo)
			say("xpmem-stress: maps: %s", line);
	}
}

static int node_of(void *addr)
{
	int status = -1;

	if (syscall(SYS_move_pages, 0, 1UL, &addr, NULL, &status, 0) < 0)
		return -1;
	return status;
}

static void migrate(struct exporter *e, size_t first, size_t n)
{
	void *pages[CHUNK_PAGES];
	int nodes[CHUNK_PAGES], status[CHUNK_PAGES];
	int cur = node_of(e->base + first * PAGE), target = cfg.nodes[0];
	size_t moved = 0;

	for (int i = 0; i < cfg.nnodes; i++)
		if (cfg.nodes[i] != cur) {
			target = cfg.nodes[i];
			break;
		}
	for (size_t i = 0; i < n; i++) {
		pages[i] = e->base + (first + i) * PAGE;
		nodes[i] = target;
		status[i] = -1;
	}
	if (syscall(SYS_move_pages, 0, (unsigned long)n, pages, nodes, status, MPOL_MF_MOVE) < 0 &&
	    errno != ENOENT && errno != EBUSY)
		broken("move_pages");
	for (size_t i = 0; i < n; i++)
		moved += status[i] == target;
	count(C_op_migrate);
	count_n(C_pages_migrated, moved);
}

/* Forked child of an exporter: its copy of [addr, addr+len) must never change. */
static void cow_child(const char *addr, size_t len, uint32_t sleep_us) __attribute__((noreturn));
static void cow_child(const char *addr, size_t len, uint32_t sleep_us)
{
	uint64_t *copy = mmap(NULL, len, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const volatile uint64_t *live = (const volatile uint64_t *)addr;

	if (copy == MAP_FAILED)
		_exit(0);
	for (size_t i = 0; i < len / 8; i++)
		copy[i] = live[i];
	nap_us(sleep_us);
	for (size_t i = 0; i < len / 8; i++) {
		if (live[i] != copy[i]) {
			char buf[256];
			int n;

			/* Forked from a threaded process: integer formatting and write(2) only. */
			count(C_f_cow_leak);
			n = snprintf(buf, sizeof(buf),
				     "xpmem-stress: FAIL f_cow_leak [pid %d]: forked exporter's copy changed: "
				     "page offset %zu word %zu %#" PRIx64 " became %#" PRIx64
				     " (a write reached a COW-shared page)\n",
				     getpid(), i * 8 / PAGE, i % (PAGE / 8), copy[i], live[i]);
			if (n > 0 && write(2, buf, (size_t)n) < 0)
				_exit(0);
			_exit(0);
		}
	}
	count(C_cow_checks);
	_exit(0);
}

enum mop { M_REMAP, M_REMAP_HOLE, M_DONTNEED, M_MPROT_NONE, M_MPROT_RO, M_MREMAP, M_MIGRATE,
	   M_FORK, M_COLLAPSE, M_SPLIT, M_RESTAMP, M_COUNT };
static const unsigned mop_weight[M_COUNT] = { 10, 6, 12, 10, 10, 8, 14, 5, 8, 8, 4 };

static int pick_mop(struct rng *r)
{
	unsigned total = 0, x;

	for (int i = 0; i < M_COUNT; i++)
		total += mop_weight[i];
	x = rnd(r, total);
	for (int i = 0; i < M_COUNT; i++) {
		if (x < mop_weight[i])
			return i;
		x -= mop_weight[i];
	}
	return M_RESTAMP;
}

static void mutate(struct mutator *m)
{
	struct exporter *e = m->e;
	struct rng *r = &m->t.rng;
	unsigned own = (cfg.nchunks - (unsigned)m->idx + cfg.nmut - 1) / cfg.nmut;
	size_t c = (size_t)m->idx + (size_t)rnd(r, own) * cfg.nmut;
	size_t cfirst = c * CHUNK_PAGES, first, n, off;
	int op = pick_mop(r);
	char *addr;
	size_t len;

	if (op == M_MIGRATE && cfg.nnodes < 2)
		op = M_RESTAMP;
	if (op == M_FORK || op == M_COLLAPSE || op == M_SPLIT || rnd(r, 100) < 30) {
		first = cfirst;
		n = CHUNK_PAGES;
	} else {
		off = rnd(r, CHUNK_PAGES);
		first = cfirst + off;
		n = 1 + rnd(r, (uint32_t)(CHUNK_PAGES - off < 64 ? CHUNK_PAGES - off : 64));
	}
	addr = e->base + first * PAGE;
	len = n * PAGE;

	/* Shared memory: no COW to check; remapping the memfd keeps its pages. */
	if (e->shm && op == M_FORK)
		op = M_RESTAMP;
	switch (op) {
	case M_REMAP:
		pub_range(e, first, n, e->shm ? PS_CHG_KEEP : PS_CHG_DESTROY);
		if (exp_map(e, addr, len, first, MAP_FIXED) != addr)
			broken("mmap MAP_FIXED over exported memory");
		/* Same flags as the neighbours, so the VMAs merge again. */
		madvise(addr, len, MADV_HUGEPAGE);
		if (e->shm)
			keep_restamp(e, first, n, "mmap of the same memfd pages");
		else
			fresh_restamp(e, first, n);
		count(C_op_remap);
		break;
	case M_REMAP_HOLE:
		pub_range(e, first, n, e->shm ? PS_CHG_KEEP : PS_CHG_DESTROY);
		pthread_rwlock_rdlock(&e->va_lock);
		if (munmap(addr, len))
			broken("munmap of exported memory");
		pub_range(e, first, n, PS_NOACCESS);
		nap_us(rnd(r, 10000));
		pub_range(e, first, n, e->shm ? PS_CHG_KEEP : PS_CHG_DESTROY);
		if (exp_map(e, addr, len, first, MAP_FIXED_NOREPLACE) != addr) {
			dump_maps(e, (uintptr_t)e->base - CHUNK, (uintptr_t)e->base + e->npages * PAGE + CHUNK);
			dump_maps(e, (uintptr_t)addr, (uintptr_t)addr + len);
			broken("mmap into the exporter's own hole");
		}
		pthread_rwlock_unlock(&e->va_lock);
		madvise(addr, len, MADV_HUGEPAGE);
		if (e->shm)
			keep_restamp(e, first, n, "munmap and mmap of the same memfd pages");
		else
			fresh_restamp(e, first, n);
		count(C_op_remap_hole);
		break;
	case M_DONTNEED:
		if (e->shm && rnd(r, 3)) {
			/* Frees the file's pages: what is mapped afterwards is new and zero. */
			pub_range(e, first, n, PS_CHG_DESTROY);
			if (rnd(r, 2) ? fallocate(e->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						  (off_t)(first * PAGE), (off_t)len)
				      : madvise(addr, len, MADV_REMOVE))
				broken("hole punch in the memfd");
			fresh_restamp(e, first, n);
			count(C_op_punch);
			break;
		}
		/* On shared memory, DONTNEED only drops the mapping: the content stays. */
		pub_range(e, first, n, e->shm ? PS_CHG_KEEP : PS_CHG_DESTROY);
		if (madvise(addr, len, MADV_DONTNEED))
			broken("madvise(MADV_DONTNEED)");
		if (e->shm)
			keep_restamp(e, first, n, "MADV_DONTNEED of shared memory");
		else
			fresh_restamp(e, first, n);
		count(C_op_dontneed);
		break;
	case M_MPROT_NONE:
	case M_MPROT_RO:
		pub_range(e, first, n, PS_CHG_KEEP);
		if (mprotect(addr, len, op == M_MPROT_NONE ? PROT_NONE : PROT_READ))
			broken("mprotect of exported memory");
		pub_range(e, first, n, op == M_MPROT_NONE ? PS_NOACCESS : PS_READONLY);
		nap_us(rnd(r, 10000));
		pub_range(e, first, n, PS_CHG_KEEP);
		if (mprotect(addr, len, RW))
			broken("mprotect back to read-write");
		keep_restamp(e, first, n, op == M_MPROT_NONE ? "mprotect(PROT_NONE)" : "mprotect(PROT_READ)");
		count(op == M_MPROT_NONE ? C_op_mprot_none : C_op_mprot_ro);
		break;
	case M_MREMAP:
		pub_range(e, first, n, PS_CHG_KEEP);
		pthread_rwlock_rdlock(&e->va_lock);
		if (mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, m->spare) == MAP_FAILED) {
			/* MREMAP_FIXED unmapped the target before failing: reserve it again. */
			if (mmap(m->spare, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
				 0) != m->spare)
				broken("re-reserving the mremap area");
			pthread_rwlock_unlock(&e->va_lock);
			/* EFAULT: the range spans several VMAs. */
			if (errno != EFAULT && errno != EINVAL && errno != ENOMEM)
				broken("mremap away");
			keep_restamp(e, first, n, "failed mremap");
			count(C_op_mremap_fail);
			break;
		}
		pub_range(e, first, n, PS_NOACCESS);
		nap_us(rnd(r, 10000));
		pub_range(e, first, n, PS_CHG_KEEP);
		if (mremap(m->spare, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) != addr)
			broken("mremap back");
		pthread_rwlock_unlock(&e->va_lock);
		if (mmap(m->spare, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			 -1, 0) != m->spare)
			broken("re-reserving the mremap area");
		keep_restamp(e, first, n, "mremap away and back");
		count(C_op_mremap);
		break;
	case M_MIGRATE:
		pub_range(e, first, n, PS_CHG_KEEP);
		migrate(e, first, n);
		keep_restamp(e, first, n, "move_pages");
		break;
	case M_FORK: {
		uint32_t sleep_us = 20000 + rnd(r, 60000);
		pid_t pid;
		int status;

		pub_range(e, first, n, PS_CHG_KEEP);
		pid = fork();
		if (pid == 0)
			cow_child(addr, len, sleep_us);
		if (pid < 0)
			broken("fork");
		keep_restamp(e, first, n, "fork");
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail(C_f_child, "forked exporter child ended with status %#x", status);
		count(C_op_fork);
		break;
	}
	case M_COLLAPSE:
		pub_range(e, first, n, PS_CHG_KEEP);
		madvise(addr, len, MADV_HUGEPAGE);
		count(madvise(addr, len, MADV_COLLAPSE) == 0 ? C_op_collapse_ok : C_op_collapse_fail);
		keep_restamp(e, first, n, "MADV_COLLAPSE");
		break;
	case M_SPLIT:
		pub_range(e, first, n, PS_CHG_KEEP);
		if (cfg.nnodes < 2 || rnd(r, 2)) {
			char *mid = addr + (size_t)rnd(r, CHUNK_PAGES - 16) * PAGE;

			if (mprotect(mid, 16 * PAGE, PROT_READ) || mprotect(mid, 16 * PAGE, RW))
				broken("mprotect (THP split)");
		} else {
			migrate(e, first + rnd(r, CHUNK_PAGES), 1);
		}
		keep_restamp(e, first, n, "THP split");
		count(C_op_split);
		break;
	default:
		pub_range(e, first, n, PS_CHG_KEEP);
		keep_restamp(e, first, n, "restamp");
		count(C_op_restamp);
		break;
	}
}

static void *mutator_main(void *arg)
{
	struct mutator *m = arg;

	while (!atomic_load(&m->e->stop_mut) && !stopping()) {
		mutate(m);
		nap_us(200 + rnd(&m->t.rng, 3000));
	}
	return NULL;
}

static int64_t make_segment(struct exporter *e)
{
	bool maxaddr = rnd(&e->t.rng, 100) < 25;
	int64_t segid = xpmem_make(e->base, maxaddr ? XPMEM_MAXADDR_SIZE : e->npages * PAGE,
				   XPMEM_PERMIT_MODE, (void *)0666);

	if (segid <= 0)
		broken("xpmem_make");
	if (maxaddr)
		count(C_maxaddr_makes);
	return segid;
}

static void publish_state(struct exporter *e, int st)
{
	struct slot *sl = &ctl->slot[e->slot];

	if (st == SS_REMOVED) {
		atomic_store(&sl->ended_ms[e->seq % RING], now_ms());
		atomic_store(&sl->ring[e->seq % RING], e->seq << 8 | SS_REMOVED);
	}
	atomic_store(&sl->state, e->seq << 8 | (unsigned)st);
}

static void remove_segment(struct exporter *e)
{
	publish_state(e, SS_REMOVING);
	if (xpmem_remove(e->segid))
		fail(C_f_api, "xpmem_remove(own live segment) failed: %s", strerror(errno));
	publish_state(e, SS_REMOVED);
}

static void probe(struct tctx *t, struct exporter *self);

static void exporter_main(int slot) __attribute__((noreturn));
static void exporter_main(int slot)
{
	struct exporter *e = calloc(1, sizeof(*e));
	struct slot *sl = &ctl->slot[slot];
	size_t len;
	char *raw;

	if (!e)
		broken("calloc");
	e->slot = slot;
	pthread_rwlock_init(&e->va_lock, NULL);
	e->epoch = atomic_load(&sl->epoch);
	e->npages = cfg.npages;
	len = e->npages * PAGE;
	rng_seed(&e->t.rng, cfg.seed, 1000 + slot * 65536ULL + e->epoch);
	e->t.wid = -1;
	e->gen = calloc(e->npages, sizeof(*e->gen));
	e->destroyed = calloc(e->npages, sizeof(*e->destroyed));
	raw = mmap(NULL, len + CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!e->gen || !e->destroyed || raw == MAP_FAILED)
		broken("exporter memory");
	e->base = (char *)(((uintptr_t)raw + CHUNK - 1) & ~(CHUNK - 1));
	e->shm = rnd(&e->t.rng, 3) == 0;
	if (e->shm) {
		e->memfd = (int)syscall(SYS_memfd_create, "xpmem-stress", 0U);
		if (e->memfd < 0 || ftruncate(e->memfd, (off_t)len))
			broken("memfd");
		count(C_shm_exporters);
	}
	if (exp_map(e, e->base, len, 0, MAP_FIXED) != e->base)
		broken("exporter mmap");
	madvise(e->base, len, MADV_HUGEPAGE);
	for (size_t p = 0; p < e->npages; p++) {
		e->gen[p] = 1;
		e->destroyed[p] = 1;
		*epage(e, p) = stamp(slot, e->epoch, p, 1);
		atomic_store(pubp(slot, p), pub_make(e->epoch, 1, PS_STABLE));
	}
	e->seq = (atomic_load(&sl->state) >> 8) + 1;
	e->segid = make_segment(e);
	atomic_store(&sl->segid, e->segid);
	publish_state(e, SS_LIVE);
	count(C_exp_started);

	/*
	 * Every mapping the main thread needs is made before the first mutator can
	 * punch a hole in the region (a kernel-chosen address could be that hole), and
	 * thread stacks are allocated under the exclusive lock.
	 */
	for (unsigned i = 0; i < cfg.nmut; i++) {
		struct mutator *m = &e->mut[i];

		m->e = e;
		m->idx = (int)i;
		m->t.wid = -1;
		rng_seed(&m->t.rng, cfg.seed, 2000 + slot * 65536ULL + e->epoch * 16ULL + i);
		m->spare = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m->spare == MAP_FAILED)
			broken("mmap (mremap area)");
	}
	pthread_rwlock_wrlock(&e->va_lock);
	for (unsigned i = 0; i < cfg.nmut; i++)
		if (pthread_create(&e->mut[i].th, NULL, mutator_main, &e->mut[i]))
			broken("pthread_create");
	pthread_rwlock_unlock(&e->va_lock);

	for (;;) {
		int64_t end = now_ms() + 2000 + rnd(&e->t.rng, 6000);
		unsigned choice;

		while (!stopping() && now_ms() < end) {
			nap_us(20000 + rnd(&e->t.rng, 60000));
			if (rnd(&e->t.rng, 100) < 40)
				probe(&e->t, e);
		}
		if (stopping()) {
			remove_segment(e);
			atomic_store(&e->stop_mut, 1);
			for (unsigned i = 0; i < cfg.nmut; i++)
				pthread_join(e->mut[i].th, NULL);
			_exit(0);
		}
		choice = rnd(&e->t.rng, 100);
		if (choice < 40) {
			remove_segment(e);
			e->seq++;
			e->segid = make_segment(e);
			atomic_store(&sl->segid, e->segid);
			publish_state(e, SS_LIVE);
			count(C_remake);
		} else if (choice < 70) {
			/* Mutators are mid-change: exit_group tears everything down under them. */
			publish_state(e, SS_EXITING);
			count(C_exp_exit_abrupt);
			_exit(0);
		} else {
			remove_segment(e);
			count(C_exp_exit_removed);
			_exit(0);
		}
	}
}

/* ------------------------------------------------------------------ attachers */

struct aproc {
	int idx;
	pthread_mutex_t lock;
	int64_t apid[MAX_SLOTS][2]; /* cached permit per slot, [rdonly] */
	uint64_t apseq[MAX_SLOTS][2];
	atomic_int end;
};

struct athread {
	struct aproc *ap;
	struct tctx t;
	pthread_t th;
	struct att left[4];
	int nleft;
};

static void release_checked(int64_t apid)
{
	if (xpmem_release(apid))
		fail(C_f_api, "xpmem_release(%#" PRIx64 ") of an own permit failed: %s", (uint64_t)apid,
		     strerror(errno));
	else
		count(C_release);
}

/* A permit for the segment (cached per process, sometimes renewed). -1: none. */
static int64_t get_permit(struct athread *th, int s, const struct snap *sn, bool ro)
{
	struct aproc *ap = th->ap;
	int64_t apid, old = 0;
	uint64_t ss1;

	pthread_mutex_lock(&ap->lock);
	apid = ap->apid[s][ro];
	if (apid > 0 && ap->apseq[s][ro] == sn->seq && rnd(&th->t.rng, 100) >= 3) {
		pthread_mutex_unlock(&ap->lock);
		return apid;
	}
	pthread_mutex_unlock(&ap->lock);

	ss1 = atomic_load(&ctl->slot[s].state);
	/* Callers pass a mode too; the library must accept and ignore it. */
	apid = xpmem_get(sn->segid, ro ? XPMEM_RDONLY : XPMEM_RDWR, XPMEM_PERMIT_MODE,
			 rnd(&th->t.rng, 2) ? (void *)0666 : NULL);
	if (apid < 0) {
		int err = errno;

		if (err == ENOENT && !(ss1 == (sn->seq << 8 | SS_LIVE) && slot_live(s, sn->seq)))
			count(C_get_enoent);
		else
			fail(C_f_api, "xpmem_get(live segment %#" PRIx64 " of slot %d) failed: %s",
			     (uint64_t)sn->segid, s, strerror(err));
		return -1;
	}
	count(C_get);
	pthread_mutex_lock(&ap->lock);
	/* Out of the cache first, released second: see attach_window(). */
	if (ap->apid[s][ro] > 0)
		old = ap->apid[s][ro];
	ap->apid[s][ro] = apid;
	ap->apseq[s][ro] = sn->seq;
	pthread_mutex_unlock(&ap->lock);
	if (old)
		release_checked(old);
	return apid;
}

/* Drop the cached permit (if it is still apid) while attachments made with it live on. */
static void drop_permit(struct athread *th, int s, bool ro, int64_t apid)
{
	struct aproc *ap = th->ap;
	bool mine = false;

	pthread_mutex_lock(&ap->lock);
	if (ap->apid[s][ro] == apid) {
		ap->apid[s][ro] = 0;
		mine = true;
	}
	pthread_mutex_unlock(&ap->lock);
	if (mine) {
		release_checked(apid);
		count(C_release_attached);
	}
}

static bool permit_cached(struct athread *th, int s, bool ro, int64_t apid)
{
	bool r;

	pthread_mutex_lock(&th->ap->lock);
	r = th->ap->apid[s][ro] == apid;
	pthread_mutex_unlock(&th->ap->lock);
	return r;
}

/* An address range of len bytes, congruent to page `first` modulo 2 MiB, free right now. */
static void *free_spot(size_t len, size_t first)
{
	char *p = mmap(NULL, len + 2 * CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, len + 2 * CHUNK);
	a = (((uintptr_t)p + CHUNK - 1) & ~(CHUNK - 1)) + (first * PAGE) % CHUNK;
	return (void *)a;
}

static bool attach_window(struct athread *th, int s, const struct snap *sn, int64_t apid, bool ro,
			  size_t first, size_t n, struct att *a)
{
	struct rng *r = &th->t.rng;
	unsigned how = rnd(r, 100);
	void *want = how < 10 ? free_spot(n * PAGE, first) : NULL;
	struct xpmem_addr xa = { .apid = apid, .offset = (off_t)(first * PAGE) };
	uint64_t ss1 = atomic_load(&ctl->slot[s].state);
	void *addr;

	if (how >= 10 && how < 22)
		addr = xpmem_attach_ext(xa, n * PAGE, want, XPMEM_ATTACH_PREFAULT);
	else
		addr = xpmem_attach(xa, n * PAGE, want);
	if (addr == (void *)-1) {
		int err = errno;
		bool alive = ss1 == (sn->seq << 8 | SS_LIVE) && slot_live(s, sn->seq);

		if (err == EEXIST && want)
			count(C_attach_eexist);
		else if (err == ENOENT && !(alive && permit_cached(th, s, ro, apid)))
			count(C_attach_enoent);
		else
			fail(C_f_api, "xpmem_attach(slot %d, pages %zu+%zu, %p%s) failed: %s", s, first, n,
			     want, how >= 10 && how < 22 ? ", prefault" : "", strerror(err));
		return false;
	}
	if (want && addr != want) {
		fail(C_f_api, "xpmem_attach at %p returned %p", want, addr);
		xpmem_detach(addr);
		return false;
	}
	count(C_attach);
	if (want)
		count(C_attach_fixed);
	if (how >= 10 && how < 22)
		count(C_attach_prefault);
	*a = (struct att){ .slot = s, .epoch = sn->epoch, .seq = sn->seq, .apid = apid,
			   .addr = addr, .first = first, .n = n, .writable = !ro, .rdonly_permit = ro };
	return true;
}

static void detach_checked(void *addr)
{
	if (xpmem_detach(addr))
		fail(C_f_api, "xpmem_detach(%p) of an own attachment failed: %s", addr, strerror(errno));
	else
		count(C_detach);
}

static void do_accesses(struct athread *th, const struct att *a, unsigned nacc)
{
	struct rng *r = &th->t.rng;
	unsigned after_end = 0;

	for (unsigned i = 0; i < nacc && !stopping(); i++) {
		unsigned k = rnd(r, 100);

		/* A few accesses once the segment is gone are enough. */
		if (!slot_live(a->slot, a->seq) && ++after_end > 4)
			break;

		if (k < 15)
			scan_pages(&th->t, a);
		else if (a->writable && th->t.wid >= 0 && k < 55)
			access_page(&th->t, a, rnd(r, (uint32_t)a->n), K_WRITE);
		else if (!a->writable && k < 17)
			access_page(&th->t, a, rnd(r, (uint32_t)a->n), K_WRITE);
		else
			access_page(&th->t, a, rnd(r, (uint32_t)a->n), K_READ);
	}
}

static void probe_child_segv(int sig)
{
	(void)sig;
	_exit(EXIT_PROBE_SEGV);
}

/* Finish with an attachment: detach, sometimes after changing it ourselves. */
static void finish_attachment(struct athread *th, struct att *a)
{
	struct rng *r = &th->t.rng;
	unsigned how = rnd(r, 100);

	if (how < 5 && a->n >= 3) {
		/* Split it ourselves; detach must still remove every piece. */
		if (munmap(a->addr + PAGE, PAGE))
			fail(C_f_api, "munmap of one page of an attachment: %s", strerror(errno));
		detach_checked(a->addr + 2 * PAGE);
		count(C_detach_split);
		return;
	}
	if (how < 10) {
		void *spot = mmap(NULL, a->n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		void *moved;

		if (spot == MAP_FAILED)
			broken("mmap");
		moved = mremap(a->addr, a->n * PAGE, a->n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
		if (moved != spot) {
			fail(C_f_api, "mremap of an attachment failed: %s", strerror(errno));
			munmap(spot, a->n * PAGE);
			detach_checked(a->addr);
			return;
		}
		a->addr = moved;
		count(C_att_mremap);
		do_accesses(th, a, 4 + rnd(r, 12));
		detach_checked(a->addr + rnd(r, (uint32_t)a->n) * PAGE);
		return;
	}
	if (how < 14 && a->writable) {
		size_t w = rnd(r, (uint32_t)a->n);
		int sig;

		if (mprotect(a->addr + w * PAGE, PAGE, PROT_READ)) {
			fail(C_f_api, "mprotect(PROT_READ) of an attachment page: %s", strerror(errno));
		} else {
			sig = guarded_poke((volatile uint64_t *)(a->addr + w * PAGE) + WSLOT0, 0xbad);
			if (sig != SIGSEGV)
				fail(sig ? C_f_signal : C_f_ro_write,
				     "write to an attachment page made read-only by the attacher: %s",
				     signame(sig));
			else
				count(C_sigsegv);
			count(C_att_mprotect);
		}
		detach_checked(a->addr);
		return;
	}
	if (how < 17 && th->nleft < 4) {
		th->left[th->nleft++] = *a;
		count(C_left_attached);
		return;
	}
	if (how < 19) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			struct sigaction sa;

			/* Exit code, not death by signal: an orphan is reaped by the orchestrator. */
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = probe_child_segv;
			sigaction(SIGSEGV, &sa, NULL);
			signal(SIGBUS, SIG_DFL);
			(void)*(volatile char *)a->addr;
			_exit(3);
		}
		if (pid > 0) {
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_PROBE_SEGV)
				fail(C_f_revoked, "a forked child touched an attachment: status %#x (want SIGSEGV: not inherited)",
				     status);
			count(C_fork_probe);
		}
	}
	detach_checked(a->addr + rnd(r, (uint32_t)a->n) * PAGE);
}

/* Quick get/attach/touch/detach/release cycles: objects released from both ends. */
static void burst(struct athread *th, int s, const struct snap *sn)
{
	struct rng *r = &th->t.rng;

	for (int i = 0; i < 6 && !stopping(); i++) {
		uint64_t ss1 = atomic_load(&ctl->slot[s].state);
		int64_t apid = xpmem_get(sn->segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		struct att a;
		void *addr;
		size_t first = rnd(r, cfg.npages);

		if (apid < 0) {
			if (errno == ENOENT && !(ss1 == (sn->seq << 8 | SS_LIVE) && slot_live(s, sn->seq)))
				count(C_get_enoent);
			else
				fail(C_f_api, "xpmem_get in a burst: %s", strerror(errno));
			return;
		}
		count(C_get);
		addr = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = (off_t)(first * PAGE) }, PAGE,
				    NULL);
		if (addr == (void *)-1) {
			if (errno == ENOENT && !slot_live(s, sn->seq))
				count(C_attach_enoent);
			else
				fail(C_f_api, "xpmem_attach in a burst: %s", strerror(errno));
		} else {
			count(C_attach);
			a = (struct att){ .slot = s, .epoch = sn->epoch, .seq = sn->seq, .apid = apid,
					  .addr = addr, .first = first, .n = 1, .writable = true };
			access_page(&th->t, &a, 0, rnd(r, 2) ? K_WRITE : K_READ);
			/* Release first half of the time: the attachment outlives its permit. */
			if (rnd(r, 2)) {
				release_checked(apid);
				detach_checked(addr);
				continue;
			}
			detach_checked(addr);
		}
		release_checked(apid);
	}
	count(C_burst);
}

static void *attacher_thread(void *arg)
{
	struct athread *th = arg;
	struct rng *r = &th->t.rng;

	install_fault_handler();
	while (!stopping() && !atomic_load(&th->ap->end)) {
		int s = (int)rnd(r, cfg.nexp);
		bool ro = rnd(r, 100) < 15;
		struct snap sn;
		struct att a;
		size_t first, n;
		unsigned w = rnd(r, 100);
		int64_t apid;

		if (!slot_snapshot(s, &sn)) {
			nap_us(1000);
			continue;
		}
		if (rnd(r, 100) < 4) {
			burst(th, s, &sn);
			continue;
		}
		apid = get_permit(th, s, &sn, ro);
		if (apid < 0)
			continue;
		if (w < 35) {
			n = 1 + rnd(r, 16);
			first = rnd(r, (uint32_t)(cfg.npages - n + 1));
		} else if (w < 60) {
			n = 17 + rnd(r, 240);
			first = rnd(r, (uint32_t)(cfg.npages - n + 1));
		} else if (w < 80) {
			n = cfg.npages;
			first = 0;
		} else {
			n = CHUNK_PAGES;
			first = rnd(r, cfg.nchunks) * CHUNK_PAGES;
		}
		if (!attach_window(th, s, &sn, apid, ro, first, n, &a))
			continue;
		if (rnd(r, 100) < 8)
			drop_permit(th, s, ro, apid);
		do_accesses(th, &a, 10 + rnd(r, 100));
		finish_attachment(th, &a);
		if (th->nleft && rnd(r, 100) < 10) {
			detach_checked(th->left[--th->nleft].addr);
		}
	}
	/* Orderly end: leftovers are detached here, the rest by the process exit. */
	while (th->nleft)
		detach_checked(th->left[--th->nleft].addr);
	return NULL;
}

static void attacher_main(int idx) __attribute__((noreturn));
static void attacher_main(int idx)
{
	struct aproc ap = { .idx = idx };
	struct athread th[MAX_THREADS];
	struct rng r;
	int64_t end;

	rng_seed(&r, cfg.seed, 3000 + (uint64_t)idx * 65536 + (uint64_t)getpid());
	pthread_mutex_init(&ap.lock, NULL);
	count(C_att_started);
	for (unsigned i = 0; i < cfg.nthr; i++) {
		memset(&th[i], 0, sizeof(th[i]));
		th[i].ap = &ap;
		th[i].t.wid = (int)(idx * cfg.nthr + i);
		rng_seed(&th[i].t.rng, r.s, i);
		if (pthread_create(&th[i].th, NULL, attacher_thread, &th[i]))
			broken("pthread_create");
	}
	end = now_ms() + 3000 + rnd(&r, 8000);
	while (!stopping() && now_ms() < end)
		nap_us(20000);
	if (!stopping() && rnd(&r, 2)) {
		/* Threads are mid-access, with attachments and permits alive. */
		count(C_att_exit_abrupt);
		_exit(0);
	}
	atomic_store(&ap.end, 1);
	for (unsigned i = 0; i < cfg.nthr; i++)
		pthread_join(th[i].th, NULL);
	for (int s = 0; s < MAX_SLOTS; s++)
		for (int ro = 0; ro < 2; ro++)
			if (ap.apid[s][ro] > 0)
				release_checked(ap.apid[s][ro]);
	count(C_att_exit_clean);
	_exit(0);
}

/* Exporter main threads read other exporters' segments and their own (self-attach). */
static void probe(struct tctx *t, struct exporter *self)
{
	int s = (int)rnd(&t->rng, cfg.nexp);
	struct snap sn;
	struct att a;
	int64_t apid;
	void *addr;
	size_t n = 1 + rnd(&t->rng, 8), first = rnd(&t->rng, (uint32_t)(cfg.npages - n + 1));

	if (s == self->slot)
		sn = (struct snap){ .seq = self->seq, .segid = self->segid, .epoch = self->epoch };
	else if (!slot_snapshot(s, &sn))
		return;
	apid = xpmem_get(sn.segid, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	if (apid < 0) {
		if (errno == ENOENT && s != self->slot)
			count(C_get_enoent);
		else
			fail(C_f_api, "xpmem_get by an exporter (slot %d): %s", s, strerror(errno));
		return;
	}
	count(C_get);
	pthread_rwlock_wrlock(&self->va_lock);
	addr = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = (off_t)(first * PAGE) }, n * PAGE,
			    NULL);
	pthread_rwlock_unlock(&self->va_lock);
	if (addr == (void *)-1) {
		if (errno == ENOENT && s != self->slot)
			count(C_attach_enoent);
		else
			fail(C_f_api, "xpmem_attach by an exporter (slot %d): %s", s, strerror(errno));
	} else {
		count(C_attach);
		a = (struct att){ .slot = s, .epoch = sn.epoch, .seq = sn.seq, .apid = apid,
				  .addr = addr, .first = first, .n = n, .writable = false };
		for (size_t w = 0; w < n; w++)
			access_page(t, &a, w, K_READ);
		detach_checked(addr);
	}
	release_checked(apid);
	count(C_probe);
}

/* ------------------------------------------------------------------ orchestrator */

enum role { R_NONE, R_EXPORTER, R_ATTACHER };

struct child {
	pid_t pid;
	enum role role;
	int idx;
};

static struct child kids[MAX_SLOTS + 64];
static unsigned nkids;

static pid_t spawn(enum role role, int idx)
{
	pid_t pid;

	if (role == R_EXPORTER) {
		struct slot *sl = &ctl->slot[idx];

		atomic_store(&sl->epoch, atomic_load(&sl->epoch) + 1);
	}
	pid = fork();
	if (pid < 0) {
		perror("xpmem-stress: fork");
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		if (role == R_EXPORTER)
			exporter_main(idx);
		attacher_main(idx);
	}
	if (role == R_EXPORTER)
		atomic_store(&ctl->slot[idx].pid, pid);
	for (unsigned i = 0; i < nkids; i++) {
		if (kids[i].role == R_NONE) {
			kids[i] = (struct child){ pid, role, idx };
			return pid;
		}
	}
	kids[nkids++] = (struct child){ pid, role, idx };
	return pid;
}

static const char *describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d%s", WEXITSTATUS(status),
			 WEXITSTATUS(status) == EXIT_CRASH ? " (unexpected SIGBUS/SIGSEGV)" :
			 WEXITSTATUS(status) == EXIT_BROKEN ? " (test could not go on)" : "");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

/* A reaped exporter: its last segment ended by exit unless it was removed. */
static void exporter_gone(int slot)
{
	struct slot *sl = &ctl->slot[slot];
	uint64_t st = atomic_load(&sl->state), seq = st >> 8;

	if ((st & 0xff) == SS_REMOVED || (st & 0xff) == SS_EXITED || (st & 0xff) == SS_EMPTY)
		return;
	atomic_store(&sl->ended_ms[seq % RING], now_ms());
	atomic_store(&sl->ring[seq % RING], seq << 8 | SS_EXITED);
	atomic_store(&sl->state, seq << 8 | SS_EXITED);
}

/* Reap what has exited; respawn when asked. Returns the number reaped. */
static unsigned reap(bool respawn, bool block)
{
	unsigned reaped = 0;
	int status;
	pid_t pid;
	char buf[96];

	while ((pid = waitpid(-1, &status, block && !reaped ? 0 : WNOHANG)) > 0) {
		struct child c = { pid, R_NONE, -1 };

		reaped++;
		for (unsigned i = 0; i < nkids; i++) {
			if (kids[i].pid == pid && kids[i].role != R_NONE) {
				c = kids[i];
				kids[i].role = R_NONE;
				break;
			}
		}
		if (c.role == R_EXPORTER)
			exporter_gone(c.idx);
		if (!WIFEXITED(status) ||
		    (WEXITSTATUS(status) != 0 && !(c.role == R_NONE && WEXITSTATUS(status) == EXIT_PROBE_SEGV))) {
			fail(C_f_child, "%s %d (pid %d) ended: %s",
			     c.role == R_EXPORTER ? "exporter" : c.role == R_ATTACHER ? "attacher" : "orphaned child",
			     c.idx, pid, describe(status, buf, sizeof(buf)));
		}
		if (respawn && c.role != R_NONE)
			spawn(c.role, c.idx);
	}
	return reaped;
}

static unsigned live_kids(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nkids; i++)
		n += kids[i].role != R_NONE;
	return n;
}

static void dump_stacks(void)
{
	for (unsigned i = 0; i < nkids; i++) {
		char path[64], buf[4096];
		DIR *d;
		struct dirent *de;

		if (kids[i].role == R_NONE)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task", kids[i].pid);
		d = opendir(path);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			int fd;
			ssize_t len;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stack", kids[i].pid, de->d_name);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				continue;
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			buf[len > 0 ? len : 0] = '\0';
			printf("xpmem-stress: kernel stack of %s %d, task %s:\n%s",
			       kids[i].role == R_EXPORTER ? "exporter" : "attacher", kids[i].idx, de->d_name, buf);
		}
		closedir(d);
	}
	fflush(stdout);
}

/* The module's counters: the three *_live ones first. */
static const char *const mstat_names[] = { "segments_live", "accesses_live", "attachments_live", "faults",
					   "huge_faults", "fault_retries", "recalls" };
#define NMSTATS 7

static int read_mstats(long long v[NMSTATS])
{
	FILE *f = fopen("/proc/xpmem/stats", "re");
	char name[64];
	long long x;
	int seen = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &x) == 2)
		for (int i = 0; i < NMSTATS; i++)
			if (!strcmp(name, mstat_names[i])) {
				v[i] = x;
				seen |= 1 << i;
			}
	fclose(f);
	return (seen & 7) == 7 ? 0 : -1; /* older modules may lack some event counters */
}

static void find_nodes(void)
{
	char buf[256];
	char *p = buf;
	int fd = open("/sys/devices/system/node/online", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	cfg.nnodes = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (*p && cfg.nnodes < 8) {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			break;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			p = end;
		}
		for (long i = a; i <= b && cfg.nnodes < 8; i++)
			cfg.nodes[cfg.nnodes++] = (int)i;
		if (*p == ',')
			p++;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xpmem-stress [options]\n"
		"  -d, --duration S    seconds of stress (default 40)\n"
		"  -e, --exporters N   exporter processes at any time (1..%d, default 3)\n"
		"  -a, --attachers N   attacher processes at any time (default 4)\n"
		"  -t, --threads N     threads per attacher (1..%d, default 3)\n"
		"  -m, --mutators N    mutator threads per exporter (1..%d, default 2)\n"
		"  -c, --chunks N      2 MiB chunks per exporter (mutators..%d, default 4)\n"
		"  -s, --seed N        seed of the random choices (default: time)\n"
		"  -p, --max-print N   failure messages printed (default 40)\n"
		"  -v, --verbose       progress line every 10 s\n",
		MAX_SLOTS, MAX_THREADS, MAX_MUT, MAX_CHUNKS);
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "xpmem-stress: %s must be %u..%u\n", what, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

static void print_summary(int64_t elapsed_ms)
{
	uint64_t fails = 0;

	printf("xpmem-stress: seed %#" PRIx64 ", %.1f s, %u exporters x %u mutators (%u MiB each), "
	       "%u attachers x %u threads, %d NUMA node(s)\n",
	       cfg.seed, (double)elapsed_ms / 1000.0, cfg.nexp, cfg.nmut, cfg.nchunks * 2, cfg.natt,
	       cfg.nthr, cfg.nnodes);
	for (int i = 0; i < C_COUNT; i++) {
		uint64_t v = atomic_load(&ctl->c[i]);

		if (i >= C_FIRST_FAIL) {
			fails += v;
			if (!v && i != C_f_stale)
				continue;
		}
		printf("  %-18s %12" PRIu64 "  %s\n", cnt_name[i], v, cnt_desc[i]);
	}
#define V(n) atomic_load(&ctl->c[C_##n])
	printf("xpmem-stress: exporters: remap %" PRIu64 ", munmap hole %" PRIu64 ", DONTNEED %" PRIu64
	       ", mprotect none/ro %" PRIu64 "/%" PRIu64 ", mremap %" PRIu64 ", fork %" PRIu64
	       ", collapse %" PRIu64 " (+%" PRIu64 " refused), split %" PRIu64 ", move_pages %" PRIu64
	       " (%" PRIu64 " pages), remake %" PRIu64 ", exits %" PRIu64 "\n",
	       V(op_remap), V(op_remap_hole), V(op_dontneed), V(op_mprot_none), V(op_mprot_ro), V(op_mremap),
	       V(op_fork), V(op_collapse_ok), V(op_collapse_fail), V(op_split), V(op_migrate), V(pages_migrated),
	       V(remake), V(exp_exit_abrupt) + V(exp_exit_removed));
	printf("xpmem-stress: attachers: get %" PRIu64 ", attach %" PRIu64 " (prefault %" PRIu64 ", fixed %" PRIu64
	       "), detach %" PRIu64 ", release %" PRIu64 " (%" PRIu64 " while attached), reads %" PRIu64
	       ", writes %" PRIu64 ", scanned pages %" PRIu64 ", process exits %" PRIu64 " (%" PRIu64
	       " abrupt)\n",
	       V(get), V(attach), V(attach_prefault), V(attach_fixed), V(detach), V(release), V(release_attached),
	       V(read), V(write), V(scan_page), V(att_exit_abrupt) + V(att_exit_clean), V(att_exit_abrupt));
#undef V
	printf("xpmem-stress: checks %" PRIu64 " strict + %" PRIu64 " loose, %" PRIu64
	       " confirmed writes re-checked %" PRIu64 " times, stale reads %" PRIu64
	       ", SIGBUS %" PRIu64 " (+%" PRIu64 " after remove/exit), failures %" PRIu64 ": %s\n",
	       atomic_load(&ctl->c[C_strict_checks]), atomic_load(&ctl->c[C_loose_checks]),
	       atomic_load(&ctl->c[C_confirmed]), atomic_load(&ctl->c[C_token_checks]),
	       atomic_load(&ctl->c[C_f_stale]), atomic_load(&ctl->c[C_sigbus]),
	       atomic_load(&ctl->c[C_sigbus_gone]), fails, fails ? "FAIL" : "PASS");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' }, { "exporters", required_argument, NULL, 'e' },
		{ "attachers", required_argument, NULL, 'a' }, { "threads", required_argument, NULL, 't' },
		{ "mutators", required_argument, NULL, 'm' }, { "chunks", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },     { "max-print", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },	      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	size_t ctl_len, pub_len, rec_len;
	long long base_live[NMSTATS] = { 0 }, live[NMSTATS] = { 0 };
	bool have_stats;
	int64_t start, next_status, last_progress_ms;
	uint64_t last_progress = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "d:e:a:t:m:c:s:p:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': cfg.duration = parse_uint(optarg, 1, 1000000, "--duration"); break;
		case 'e': cfg.nexp = parse_uint(optarg, 1, MAX_SLOTS, "--exporters"); break;
		case 'a': cfg.natt = parse_uint(optarg, 1, 64, "--attachers"); break;
		case 't': cfg.nthr = parse_uint(optarg, 1, MAX_THREADS, "--threads"); break;
		case 'm': cfg.nmut = parse_uint(optarg, 1, MAX_MUT, "--mutators"); break;
		case 'c': cfg.nchunks = parse_uint(optarg, 1, MAX_CHUNKS, "--chunks"); break;
		case 's':
			cfg.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'p': cfg.max_print = parse_uint(optarg, 0, 1000000, "--max-print"); break;
		case 'v': cfg.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || cfg.nchunks < cfg.nmut) {
		usage(stderr);
		return 2;
	}
	cfg.npages = cfg.nchunks * CHUNK_PAGES;
	cfg.nwriters = cfg.natt * cfg.nthr;
	if (cfg.nwriters > MAX_WRITERS) {
		fprintf(stderr, "xpmem-stress: attachers x threads must be <= %d\n", MAX_WRITERS);
		return 2;
	}
	if (sysconf(_SC_PAGESIZE) != (long)PAGE) {
		fprintf(stderr, "xpmem-stress: needs 4 KiB pages\n");
		return 2;
	}
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		cfg.seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
	}
	find_nodes();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (xpmem_version() < 0) {
		fprintf(stderr, "xpmem-stress: /dev/xpmem: %s\n", strerror(errno));
		return 2;
	}

	ctl_len = (sizeof(struct ctl) + PAGE - 1) & ~(PAGE - 1);
	pub_len = (size_t)MAX_SLOTS * cfg.npages * sizeof(uint64_t);
	rec_len = (size_t)MAX_SLOTS * cfg.nwriters * cfg.npages * sizeof(uint64_t);
	ctl = mmap(NULL, ctl_len + pub_len + rec_len, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		perror("xpmem-stress: mmap of the control area");
		return 2;
	}
	pubs = (_Atomic uint64_t *)((char *)ctl + ctl_len);
	recs = (_Atomic uint64_t *)((char *)ctl + ctl_len + pub_len);
	t0_ms = now_ms();
	install_fault_handler();
	/* Exporters' forked children outlive their parent sometimes: reap them here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	have_stats = read_mstats(base_live) == 0;

	printf("xpmem-stress: seed %#" PRIx64 " (reproduce the choices with --seed), %u s, %u exporters x %u "
	       "mutators x %u MiB, %u attachers x %u threads, NUMA nodes %d\n",
	       cfg.seed, cfg.duration, cfg.nexp, cfg.nmut, cfg.nchunks * 2, cfg.natt, cfg.nthr, cfg.nnodes);
	for (unsigned i = 0; i < cfg.nexp; i++)
		spawn(R_EXPORTER, (int)i);
	for (int64_t deadline = now_ms() + 60000; now_ms() < deadline;) {
		unsigned live_n = 0;

		for (unsigned i = 0; i < cfg.nexp; i++)
			live_n += (atomic_load(&ctl->slot[i].state) & 0xff) == SS_LIVE;
		if (live_n == cfg.nexp)
			break;
		reap(true, false);
		nap_us(10000);
	}
	for (unsigned i = 0; i < cfg.natt; i++)
		spawn(R_ATTACHER, (int)i);

	start = now_ms();
	next_status = start + 10000;
	last_progress_ms = start;
	while (now_ms() - start < (int64_t)cfg.duration * 1000) {
		uint64_t pr = atomic_load(&ctl->progress);

		reap(true, false);
		nap_us(20000);
		if (pr != last_progress) {
			last_progress = pr;
			last_progress_ms = now_ms();
		} else if (now_ms() - last_progress_ms > 60000) {
			fail(C_f_hang, "no access or change completed for 60 s");
			dump_stacks();
			break;
		}
		if (cfg.verbose && now_ms() >= next_status) {
			uint64_t f = 0;

			for (int i = C_FIRST_FAIL; i < C_COUNT; i++)
				f += atomic_load(&ctl->c[i]);
			printf("xpmem-stress: %3" PRId64 " s: %" PRIu64 " reads, %" PRIu64 " writes, %" PRIu64
			       " strict checks, %" PRIu64 " SIGBUS, %" PRIu64 " changes, %" PRIu64 " failures\n",
			       (now_ms() - start) / 1000, atomic_load(&ctl->c[C_read]),
			       atomic_load(&ctl->c[C_write]), atomic_load(&ctl->c[C_strict_checks]),
			       atomic_load(&ctl->c[C_sigbus]) + atomic_load(&ctl->c[C_sigbus_gone]),
			       atomic_load(&ctl->c[C_op_remap]) + atomic_load(&ctl->c[C_op_dontneed]) +
				       atomic_load(&ctl->c[C_op_migrate]) + atomic_load(&ctl->c[C_op_mprot_none]) +
				       atomic_load(&ctl->c[C_op_mprot_ro]),
			       f);
			next_status += 10000;
		}
	}

	/* Everyone winds down on its own; the stragglers are reported and killed. */
	atomic_store(&ctl->stop, 1);
	for (int64_t deadline = now_ms() + 180000, killed = 0; live_kids();) {
		if (now_ms() > deadline) {
			if (killed) {
				/* Unkillable (D state in the kernel): reported, left behind. */
				fail(C_f_hang, "%u processes did not die from SIGKILL either", live_kids());
				break;
			}
			fail(C_f_hang, "%u processes still running 180 s after the stop", live_kids());
			dump_stacks();
			for (unsigned i = 0; i < nkids; i++)
				if (kids[i].role != R_NONE)
					kill(kids[i].pid, SIGKILL);
			killed = 1;
			deadline = now_ms() + 10000;
		}
		if (!reap(false, false))
			nap_us(20000);
	}
	/* Forked children of the exporters (reparented here) are done within 0.1 s. */
	nap_us(200000);
	reap(false, false);

	if (have_stats) {
		int64_t deadline = now_ms() + 10000;

		while (read_mstats(live) == 0 &&
		       (live[0] != base_live[0] || live[1] != base_live[1] || live[2] != base_live[2]) &&
		       now_ms() < deadline)
			nap_us(50000);
		if (live[0] != base_live[0] || live[1] != base_live[1] || live[2] != base_live[2])
			fail(C_f_leak, "live objects after the run: segments %lld accesses %lld attachments %lld "
				       "(before: %lld %lld %lld)",
			     live[0], live[1], live[2], base_live[0], base_live[1], base_live[2]);
		printf("xpmem-stress: module: faults %lld (huge %lld), fault retries after a collision %lld, "
		       "recalls %lld\n",
		       live[3] - base_live[3], live[4] - base_live[4], live[5] - base_live[5], live[6] - base_live[6]);
	}
	print_summary(now_ms() - start);
	for (int i = C_FIRST_FAIL; i < C_COUNT; i++)
		if (atomic_load(&ctl->c[i]))
			return 1;
	return 0;
}
