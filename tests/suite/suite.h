/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared declarations of the in-guest XPMEM test suite.
 *
 * Model: the cmocka process (the "orchestrator") never touches exported or attached
 * memory itself unless a test says so; it drives forked helper processes ("peers")
 * over socketpairs with small requests (mmap, fill, check, make, get, attach, touch,
 * ...). A peer that is expected to die from SIGBUS/SIGSEGV is a separate process, so
 * the orchestrator can check how it died. Peers never run cmocka code: they reset the
 * signals cmocka catches, report through their replies and end with _exit().
 */
#ifndef XPMEM_SUITE_H
#define XPMEM_SUITE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "xpmem.h"

/* ---- global facts ---- */
extern size_t pg; /* page size */
#define MiB (1024UL * 1024UL)
#define ID_LIMIT (1LL << 52) /* segids and apids are < 2^52 (bits 62..52: node) */

/* ---- data patterns: word i of a buffer filled with (seed, widx) is pat_word(seed, widx + i) ---- */
static inline uint64_t pat_word(uint64_t seed, uint64_t idx)
{
	uint64_t x = (idx + 1) * 0x9e3779b97f4a7c15ULL ^ (seed * 0xd1b54a32d192ed03ULL);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}
void pat_fill(void *addr, size_t len, uint64_t seed, uint64_t widx);
/* 0 if it matches, else 1 + byte offset of the first mismatching word. */
uint64_t pat_check(const void *addr, size_t len, uint64_t seed, uint64_t widx);

/* ---- /proc/xpmem ---- */
enum stat_id {
	ST_SEGMENTS_LIVE,
	ST_ACCESSES_LIVE,
	ST_ATTACHMENTS_LIVE,
	ST_MAKES,
	ST_REMOVES,
	ST_GETS,
	ST_RELEASES,
	ST_ATTACHES,
	ST_DETACHES,
	ST_FAULTS,
	ST_FAULT_RETRIES,
	ST_RECALLS,
	ST_HUGE_FAULTS,
	ST_COUNT
};
extern const char *const stat_names[ST_COUNT];
struct xstats {
	long long v[ST_COUNT];
};
/* Reads /proc/xpmem/stats; on error returns -1 with a message in why (if non-NULL). */
int stats_read(struct xstats *s, char *why, size_t whylen);
/* Fails the test if the stats cannot be read. */
void stats_get(struct xstats *s);
/* Waits (bounded) until the three *_live counters equal base's; 0 or -1 (cur holds the last values). */
int stats_wait_live(const struct xstats *base, struct xstats *cur, int timeout_ms);
/* Parses /proc/xpmem/global_pages; 0 or -1. */
int global_pages_read(long long *pinned, long long *unpinned, char *why, size_t whylen);

/* ---- per-test bookkeeping (everything is cleaned up by test_teardown too) ---- */
int test_setup(void **state);
int test_teardown(void **state);
/* Last step of every test: stops the test's peers, frees what the test registered and
 * asserts that the live counters are back where they were when the test started. */
void test_finish(void);
/* Resources the orchestrator itself created (undone at teardown, errors ignored). */
void track_segid(xpmem_segid_t segid);
void track_apid(xpmem_apid_t apid);
void track_attach(void *addr);
void track_map(void *addr, size_t len);
/* A function called at teardown (e.g. restore a sysfs knob). */
void on_teardown(void (*fn)(void *), void *arg);
/* mmap an anonymous private read-write region of len bytes aligned to align (0: page). */
void *map_anon(size_t len, size_t align);
/* A currently free, page-aligned address range of len bytes (nothing is left mapped). */
void *free_spot(size_t len);

/* XPMEM_SUITE_STRICT=1 turns environment skips into failures. */
void skip_or_fail(const char *why);

/* Attacher entries mapping segment segid now, by size (XPMEM_CMD_QUERY); fails the test on error. */
struct mapped_now {
	uint64_t n4k, n2m, n1g;
};
struct mapped_now segment_mapped(xpmem_segid_t segid);

/* ---- sysfs / proc helpers ---- */
int read_file_str(const char *path, char *buf, size_t len);
int write_file_str(const char *path, const char *val);
long long read_file_ll(const char *path, long long dflt);
/* Numbers of the online NUMA nodes (up to max); count. */
int numa_online_nodes(int *nodes, int max);
/* Whether [addr, addr+len) is entirely mapped in the calling process. */
bool range_mapped(const void *addr, size_t len);
/* Whether no page of [addr, addr+len) is mapped in the calling process. */
bool range_unmapped(const void *addr, size_t len);
/* Bounds of the mapping (from /proc/self/maps) that contains addr; 0 or -1. */
int vma_bounds(const void *addr, uintptr_t *start, uintptr_t *end);

/* ---- child processes ---- */
/* fork(); in the child: default handlers for the signals cmocka catches, no core dumps,
 * SIGKILL when the parent dies. Returns what fork() returns. */
pid_t fork_child(void);
void child_reset(void);
/* waitpid with a timeout (SIGKILL and reap when exceeded): status, or -1 on timeout. */
int wait_pid_timeout(pid_t pid, int timeout_ms);
/* Run fn(arg) in a forked child; its return value is the exit code. Returns the wait status. */
int run_in_child(int (*fn)(void *), void *arg, int timeout_ms);
const char *describe_status(int status, char *buf, size_t len);
/* Fails the test unless status says "killed by sig". */
#define assert_killed_by(status, sig) \
	_assert_killed_by((status), (sig), __FILE__, __LINE__)
void _assert_killed_by(int status, int sig, const char *file, int line);
#define assert_exited_ok(status) _assert_exited_ok((status), __FILE__, __LINE__)
void _assert_exited_ok(int status, const char *file, int line);

/* ---- assertions on XPMEM results ---- */
#define assert_id_valid(id) _assert_id_valid((long long)(id), #id, __FILE__, __LINE__)
void _assert_id_valid(long long id, const char *what, const char *file, int line);
/* expr must return -1 with errno err (captured right after the call). */
#define assert_fails_with(expr, err)                                                 \
	do {                                                                         \
		errno = 0;                                                           \
		long long r_ = (long long)(expr);                                    \
		int e_ = errno;                                                      \
		_assert_fails_with(r_, e_, (err), #expr, __FILE__, __LINE__);        \
	} while (0)
/* Same for xpmem_attach, which fails with (void *)-1. */
#define assert_attach_fails(expr, err)                                               \
	do {                                                                         \
		errno = 0;                                                           \
		void *p_ = (expr);                                                   \
		int e_ = errno;                                                      \
		if (p_ != (void *)-1)                                                \
			track_attach(p_);                                            \
		_assert_fails_with(p_ == (void *)-1 ? -1 : (long long)(uintptr_t)p_, \
				   e_, (err), #expr, __FILE__, __LINE__);            \
	} while (0)
void _assert_fails_with(long long ret, int got_errno, int want, const char *what, const char *file,
			int line);

/* ---- peers ---- */
enum peer_op {
	OP_EXIT = 1,
	OP_GETPID,
	OP_MMAP, /* len, align, prot -> addr (private anonymous) */
	OP_MMAP_FIXED, /* addr, len, prot -> addr (private anonymous, MAP_FIXED) */
	OP_MUNMAP, /* addr, len */
	OP_MPROTECT, /* addr, len, prot */
	OP_MADVISE, /* addr, len, advice */
	OP_MREMAP, /* old, oldlen, newlen, flags, newaddr -> addr */
	OP_FILL, /* addr, len, seed, widx */
	OP_CHECK, /* addr, len, seed, widx -> 0 | 1 + offset */
	OP_MEMSET, /* addr, len, byte */
	OP_CHECK_BYTE, /* addr, len, byte -> 0 | 1 + offset */
	OP_READ64, /* addr -> value */
	OP_WRITE64, /* addr, value */
	OP_TOUCH, /* addr, len, write -> number of pages touched */
	OP_MAPPED, /* addr, len -> 1 | 0 */
	OP_VERSION, /* -> xpmem_version() */
	OP_MAKE, /* addr, size, permit_type, permit_value -> segid */
	OP_REMOVE, /* segid */
	OP_GET, /* segid, flags, permit_type, permit_value -> apid */
	OP_RELEASE, /* apid */
	OP_ATTACH, /* apid, offset, size, vaddr -> addr */
	OP_DETACH, /* addr */
	OP_SETIDS, /* uid, gid, supplementary gid 1, supplementary gid 2 (0: none) */
	OP_UNSHARE, /* flags */
	OP_MOVE_PAGES, /* addr, npages, node -> number of pages on node afterwards */
	OP_NODE_OF, /* addr -> node (or the negative status) */
	OP_FORK_HOLD, /* -> pid of a forked child that keeps a copy of this process's memory */
	OP_HOLD_CHECK, /* addr, len, seed, widx -> the holder checks its copy and exits: 0 | 1 + offset */
	OP_FORK_PROBE, /* addr, write -> wait status of a forked child that touches addr */
	OP_SPIN_READ, /* addr, len -> replies after one pass, then reads forever */
	OP_THREADS, /* addr, len, nthreads, seed -> mismatches; rewrites with seed + 1 */
	OP_ATTACH_STORM, /* apid, seglen, iterations, seed -> failures */
	OP_THP_KB, /* addr -> AnonHugePages (kB) of the mapping at addr */
	OP_KSM_MERGING, /* -> /proc/self/ksm_merging_pages, or -errno */
	OP_RAW_OPEN, /* -> fd of a fresh open of /dev/xpmem */
	OP_RAW_IOCTL, /* fd, cmd; payload in/out -> ioctl result */
	OP_PROBE_PAGE, /* addr, write -> enum probe_result of one read (or read and write) of addr */
	OP_PAGEMAP, /* addr, npages -> pages /proc/self/pagemap shows present (bit 63), or -errno */
	OP_LOCKMIX_INIT, /* buf, ctrl: lay out a lock-test buffer (see lockmix.c) */
	OP_LOCKMIX_RUN, /* buf, ctrl, att, att_ctrl, ms -> mismatches; payload: struct lockmix_result */
	OP_VMSPLICE, /* addr, len -> bytes vmsplice() took into a pipe, or -errno */
	OP_MMAP_HUGETLB, /* len, page size shift, prot -> addr (private anonymous hugetlb) */
};

/* OP_PROBE_PAGE: whether the access found a PTE, in the calling thread's fault counters. */
enum probe_result {
	PROBE_PRESENT = 0, /* no page fault: the PTE was there */
	PROBE_FAULTED = 1, /* a page fault was needed (and succeeded) */
	PROBE_SIGBUS = 2, /* the fault raised SIGBUS (caught) */
	PROBE_SIGSEGV = 3, /* the fault raised SIGSEGV (caught) */
};

/*
 * Lock tests (t_lock.c, peer side in lockmix.c). Each process has a buffer of
 * LOCKMIX_PAGES pages: it replaces pages [0, LOCKMIX_REPL) itself (publishing their
 * state in a one-page ctrl array), its predecessor writes the others through an
 * attachment. OP_LOCKMIX_RUN reports what its threads did.
 */
#define LOCKMIX_PAGES 1024
#define LOCKMIX_REPL 512
struct lockmix_result {
	uint64_t reads; /* pages read and checked through the attachment */
	uint64_t strict; /* ... of which checked against the exporter's published state */
	uint64_t torn; /* ... of which changed under the reader (re-read, not an error) */
	uint64_t writes; /* pages written and read back through the attachment */
	uint64_t replaces; /* own pages replaced (mremap of a fresh page over them) */
	uint64_t discards; /* own pages dropped (MADV_DONTNEED) */
	uint64_t churn; /* mmap/mprotect/munmap rounds on unrelated memory */
	uint64_t mismatches;
};
int64_t lockmix_init(char *buf, uint64_t *ctrl);
int64_t lockmix_run(char *buf, uint64_t *ctrl, char *att, const uint64_t *att_ctrl, unsigned ms,
		    struct lockmix_result *res);


#define PEER_PAYLOAD 64
struct peer {
	pid_t pid;
	int sock;
	char name[24];
	bool reaped;
	int status;
	int last_op;
	unsigned char payload[PEER_PAYLOAD]; /* payload of the last reply */
};

/*
 * The peer API. Every entry point is wrapped by a macro that records the caller's
 * file and line, so a failure inside (peer died, hung, bad result) is reported at the
 * test's line.
 */
int peer_site(const char *file, int line);
#define PEER_SITE() peer_site(__FILE__, __LINE__)

/* Fork a peer; it is killed at teardown if still alive. */
struct peer *peer_start(const char *name);
#define peer_start(name) (PEER_SITE(), (peer_start)(name))
/* Send a request and wait for its reply; fails the test if the peer died or hung. */
int64_t peer_call(struct peer *p, enum peer_op op, const uint64_t args[5]);
#define PC(p, op, ...) (PEER_SITE(), (peer_call)((p), (op), (const uint64_t[5]){ __VA_ARGS__ }))
/* Same with a payload (len bytes) sent along; the reply payload is in p->payload. */
int64_t peer_call_payload(struct peer *p, enum peer_op op, const uint64_t args[5],
			  const void *payload, size_t len);
#define peer_call_payload(p, op, args, payload, len) \
	(PEER_SITE(), (peer_call_payload)((p), (op), (args), (payload), (len)))
/* Asynchronous halves, for several peers working at once. */
void peer_send(struct peer *p, enum peer_op op, const uint64_t args[5]);
#define PSEND(p, op, ...) (PEER_SITE(), (peer_send)((p), (op), (const uint64_t[5]){ __VA_ARGS__ }))
int64_t peer_recv(struct peer *p);
#define peer_recv(p) (PEER_SITE(), (peer_recv)(p))
/* Wait up to timeout_ms for p's reply (or its death) to be ready: 1 ready, 0 not yet. */
int peer_wait_readable(struct peer *p, int timeout_ms);
/* The request must kill the peer with sig (fails the test otherwise). */
void peer_expect_death(struct peer *p, int sig, enum peer_op op, const uint64_t args[5]);
#define PDIE(p, sig, op, ...) \
	(PEER_SITE(), (peer_expect_death)((p), (sig), (op), (const uint64_t[5]){ __VA_ARGS__ }))
/* Wait for an already running peer to die, with sig. */
void peer_wait_death(struct peer *p, int sig, int timeout_ms);
#define peer_wait_death(p, sig, ms) (PEER_SITE(), (peer_wait_death)((p), (sig), (ms)))
/* Orderly exit (status 0 required). */
void peer_stop(struct peer *p);
#define peer_stop(p) (PEER_SITE(), (peer_stop)(p))
/* SIGKILL and reap. */
void peer_kill(struct peer *p);

/* Convenience: a peer that maps len bytes (aligned), fills them with seed and exports
 * them with mode; *addr gets the exporter's address. */
struct peer *exporter_start(const char *name, size_t len, size_t align, uint64_t seed,
			    unsigned mode, uint64_t *addr, xpmem_segid_t *segid);
#define exporter_start(...) (PEER_SITE(), (exporter_start)(__VA_ARGS__))
/* Convenience: get + attach [offset, offset+len) in peer p; returns the address. */
uint64_t peer_get_attach(struct peer *p, xpmem_segid_t segid, int flags, uint64_t offset,
			 size_t len, xpmem_apid_t *apid);
#define peer_get_attach(...) (PEER_SITE(), (peer_get_attach)(__VA_ARGS__))

/* ---- test lists of the topic files ---- */
struct suite_list {
	const struct CMUnitTest *tests;
	size_t count;
};
#define SUITE_T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
#define SUITE_LIST(name, arr) \
	const struct suite_list name = { arr, sizeof(arr) / sizeof((arr)[0]) }
extern const struct suite_list api_tests, perm_tests, data_tests, recall_tests,
	concurrency_tests, lifetime_tests, abi_tests, lock_tests;

/* Suite-wide baseline taken at start (for the final checks). */
extern struct xstats suite_base;
/* Directory of the suite binary (to find legacy_demo). */
extern char suite_dir[4096];

#endif /* XPMEM_SUITE_H */
