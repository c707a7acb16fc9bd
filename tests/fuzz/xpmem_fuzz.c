// SPDX-License-Identifier: GPL-2.0-only
/*
 * xpmem-fuzz: random sequences of /dev/xpmem requests from several processes (some
 * running as a second uid, one in its own user + IPC namespace), two threads each,
 * with hostile arguments: every command 0..8, the attach extension and the query
 * command (XPMEM_CMD_QUERY), unknown and re-encoded command numbers, bad argument
 * pointers (NULL, unmapped, PROT_NONE,
 * read-only so the write-back fails, straddling the end of a mapping, kernel and
 * non-canonical addresses, pointers into attachments), boundary field values, ids of
 * other processes and removed ids, fixed addresses over existing mappings, detach of
 * non-attachments, and hostile memory-management calls on attachments (madvise,
 * mprotect, mremap, munmap, mlock, process_vm_readv, /proc/self/mem, map_files, fork).
 * Workers exit abruptly, exec, and fork children that use the inherited descriptor.
 *
 * Fault injection (debug kernels): failslab and fail_page_alloc with task-filter, so
 * only the workers' tasks (make-it-fail) see allocation failures, and for root
 * workers /proc/thread-self/fail-nth (fail exactly the Nth allocation of the next
 * call). Settings are restored at the end.
 *
 * Writes through attachments (touches, arguments placed in them) stay within the
 * exporter's export area (W.exp): segments may reach past it (up to the end of the
 * address space), where the exporter has its TLS, libc data and the shared state.
 *
 * Checks: an oracle on the results the interface defines (argument validation,
 * ENOENT/EACCES on unknown/foreign ids, success on own live objects, ENOTTY for
 * unknown commands, returned ids and addresses in range, read-only attachments
 * refusing writes, no inheritance across fork, no GUP/ptrace access to attachments);
 * workers must not die; after all exit, the live counters of /proc/xpmem/stats must
 * be back where they were and makes/removes, gets/releases must balance.
 *
 * Fault injection artifacts kept out of the results: everything the kernel writes
 * into (argument scratch, query buffers, signal stacks, wait statuses) is MAP_SHARED
 * and populated (a COW fault after fork could fail: spurious EFAULT or SIGSEGV),
 * the program is mlock()ed (a page-in from the root file system could fail: SIGBUS),
 * glibc's rseq is off (the kernel's update of it could fail: SIGSEGV), and
 * mappings created at kernel-chosen addresses never race with our own MAP_FIXED
 * (a failed MAP_FIXED leaves a hole).
 *
 * Usage: xpmem-fuzz [--duration S] [--seed N] [--workers N] [--uid U]
 *        [--fault-prob P] [--no-faults] [--fail-verbose N] [--max-print N] [--futex]
 * Exit status: 0 clean, 1 failures, 2 usage or environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <alloca.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem_ioctl.h"

#define PAGE 4096UL
#define POOL 256
#define NLIST 24
#define EXP_PAGES 128
#define RO_PAGES 8
#define ALTSTACK_SIZE (64 * 1024)
#define QBUF_SIZE (64 * 1024)
#define MAX_WORKERS 16
#define ID_LIMIT (1LL << 52)
#define EXIT_CRASH 70
#define EXIT_BROKEN 71
#define EXIT_PROBE_SEGV 42
#define RW (PROT_READ | PROT_WRITE)
#define KERNEL_ADDR 0xffff888000000000ULL
#define NONCANON_ADDR 0x8000000000000000ULL

/* ------------------------------------------------------------------ outcomes */

enum cls {
	K_VERSION, K_MAKE, K_REMOVE, K_GET, K_RELEASE, K_ATTACH, K_DETACH, K_FORK_BEGIN, K_FORK_END,
	K_ATTACH_EXT, K_X_UNKNOWN, K_FOREIGN, K_TOUCH, K_MADVISE, K_MPROTECT, K_MREMAP, K_MUNMAP,
	K_MLOCK, K_MSYNC, K_MINCORE, K_VM_READV, K_PROC_MEM, K_MAP_FILES, K_DEV_MMAP, K_DEV_RW,
	K_FORK_PROBE, K_EXP_MM, K_QUERY, K_FUTEX, K_PING, K_COUNT
};
static const char *const cls_name[K_COUNT] = {
	"VERSION", "MAKE", "REMOVE", "GET", "RELEASE", "ATTACH", "DETACH", "FORK_BEGIN", "FORK_END",
	"ATTACH_EXT", "unknown 'x' cmd", "foreign cmd", "touch attachment", "madvise(att)",
	"mprotect(att)", "mremap(att)", "munmap(att part)", "mlock(att)", "msync(att)",
	"mincore(att)", "process_vm_readv(att)", "/proc/self/mem(att)", "map_files(att)",
	"mmap(/dev/xpmem)", "read/write(/dev/xpmem)", "fork probe(att)", "exporter mm ops", "QUERY",
	"futex op(att)", "PING",
};
#define NOUT 140
#define OUT_OTHER 134
#define OUT_SIGBUS 135
#define OUT_SIGSEGV 136

#define COUNTERS(X)                                                     \
	X(calls, "requests and calls issued")                          \
	X(workers, "worker processes started")                         \
	X(workers_exec, "workers that ended by exec")                  \
	X(workers_abrupt, "workers that exited with objects alive")    \
	X(fork_children, "forked children using the inherited fd")     \
	X(fail_nth, "calls run with fail-nth armed")                   \
	X(f_oracle, "FAIL results the interface does not allow")       \
	X(f_crash, "FAIL processes that crashed or exited badly")      \
	X(f_hang, "FAIL processes that hung")                          \
	X(f_state, "FAIL /proc/xpmem/stats inconsistent afterwards")   \
	X(f_internal, "FAIL fuzzer could not go on")

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
#define C_FIRST_FAIL C_f_oracle

/*
 * A pooled id, published with a per-slot sequence count (odd while a writer fills
 * it): two writers can land on one slot (the index wraps), and a reader must never
 * combine the id of one entry with the owner or size of another.
 */
struct pent {
	_Atomic uint32_t seq;
	_Atomic uint32_t rw; /* apids: a read-write permit */
	_Atomic int64_t id;
	_Atomic uint64_t size; /* segment size (segids and apids) */
	_Atomic uint64_t safe; /* bytes from the segment start that are the exporter's W.exp */
	_Atomic uint64_t owner; /* address-space token (mm_token) of the process holding it */
};

struct shared {
	_Atomic int stop;
	_Atomic int printed;
	_Atomic uint64_t c[C_COUNT];
	_Atomic uint64_t out[K_COUNT][NOUT];
	_Atomic uint32_t nsegs, naps;
	_Atomic uint64_t next_token;
	struct pent segs[POOL], aps[POOL];
	/* The last unexpected fault of a worker (its stderr may fail under injection). */
	_Atomic int32_t crash_pid, crash_sig, crash_code, crash_region;
	_Atomic uint64_t crash_addr;
};

static struct shared *S;

static struct {
	unsigned duration, nworkers, fault_prob, fail_verbose, max_print;
	uid_t uid;
	uint64_t seed;
	bool faults; /* fault injection configured */
	bool want_faults;
	bool futex; /* futex ops on attachments (off: they can deadlock the module, see --help) */
} cfg = { .duration = 25, .nworkers = 4, .fault_prob = 3, .fail_verbose = 1, .max_print = 30,
	  .uid = 65534, .want_faults = true };

static uint64_t task_size; /* TASK_SIZE of this machine (4- or 5-level paging) */
static uint64_t mmap_min;

static inline void count(enum cnt c)
{
	atomic_fetch_add_explicit(&S->c[c], 1, memory_order_relaxed);
}

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

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[700];
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

static void failure(enum cnt kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failure(enum cnt kind, const char *fmt, ...)
{
	char buf[600];
	va_list ap;

	count(kind);
	if (atomic_fetch_add(&S->printed, 1) >= (int)cfg.max_print)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("xpmem-fuzz: FAIL %s [pid %d uid %d]: %s", cnt_name[kind], getpid(), (int)geteuid(), buf);
}

static const char *errname(int e)
{
	const char *n = e > 0 ? strerrorname_np(e) : NULL;

	return n ? n : "?";
}

static void record(enum cls k, long ret, int err)
{
	int o = ret >= 0 ? 0 : err > 0 && err < OUT_OTHER ? err : OUT_OTHER;

	atomic_fetch_add_explicit(&S->out[k][o], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&S->c[C_calls], 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------ per-process state */

/*
 * safe: how many bytes from the segment's start lie in its exporter's W.exp. Only
 * those may be written through an attachment: beyond W.exp the exporter has its
 * TLS/TCB (stack guard, errno), libc data and the shared struct shared right above,
 * and a write there corrupts the fuzzer, not the module.
 */
struct fseg {
	int64_t id;
	uint64_t size;
	uint64_t safe;
	unsigned mode;
};

struct fap {
	int64_t id;
	uint64_t segsize; /* 0: unknown */
	uint64_t safe;
	bool rw;
};

struct fatt {
	char *addr;
	size_t len;
	size_t safe; /* the first safe bytes map the exporter's W.exp: writable by us */
	bool writable;
	int prot; /* as last set by us */
	bool frag; /* partly unmapped by us: no touching */
	char *any; /* an address known to be inside */
	char hist[96]; /* how it was made and what was done to it, for failure messages */
};

struct fth {
	struct rng rng;
	int idx;
	int fd_nth; /* /proc/thread-self/fail-nth, or -1 */
	struct fseg seg[NLIST];
	int nseg;
	int64_t segdead[NLIST];
	int nsegdead;
	struct fap ap[NLIST];
	int nap;
	int64_t apdead[NLIST];
	int napdead;
	struct fatt att[NLIST];
	int natt;
	char *scratch; /* a RW page followed by a PROT_NONE page */
	char *rw_alias, *ro_alias; /* one memfd page mapped twice */
	char *altstack;
	int *kbuf; /* wait statuses (shared memory, see worker_main) */
	char *qbuf; /* QUERY records (shared memory) */
	pthread_t th;
};

static struct {
	int idx;
	int fd;
	bool priv; /* CAP_IPC_OWNER over its own segments */
	bool userns;
	char *exp; /* EXP_PAGES exportable RW pages */
	char *rop; /* RO_PAGES read-only pages */
	char *nonep; /* a PROT_NONE page */
	char *hole; /* an address nothing maps */
	int64_t end_ms;
	bool th1;
	atomic_bool th1_done;
	/*
	 * Exclusive while the exported region may have a hole (a failed MAP_FIXED
	 * unmaps the old range first), shared by every call that lets the kernel pick
	 * an address: nothing may be placed in the hole and then replaced by us.
	 */
	pthread_rwlock_t va_lock;
	bool in_child; /* a forked child: single-threaded, the lock state is not ours */
	/*
	 * Which address space this is. The module ties segments and permits to the
	 * caller's mm, not to a pid: threads and CLONE_VM children (vfork, posix_spawn)
	 * share it, fork gives a new one (new token, see new_mm_token), exec too (the
	 * new image never touches the pools). A pid would also be reused.
	 */
	uint64_t mm_token;
	struct fth th[2];
} W;

static _Thread_local sigjmp_buf *t_env;
static _Thread_local volatile sig_atomic_t t_armed;

/* Which of the worker's own regions contains p (for crash reports); async-signal-safe. */
static int region_of(const void *p)
{
	const char *c = p;

#define IN(base, len) ((base) && c >= (const char *)(base) && c < (const char *)(base) + (len))
	if (IN(W.exp, EXP_PAGES * PAGE))
		return 1;
	if (IN(W.rop, RO_PAGES * PAGE))
		return 2;
	if (IN(W.nonep, PAGE))
		return 3;
	for (int i = 0; i < 2; i++) {
		struct fth *t = &W.th[i];

		if (IN(t->scratch, 2 * PAGE))
			return 10 + i;
		if (IN(t->altstack, ALTSTACK_SIZE + PAGE))
			return 20 + i;
		if (IN(t->qbuf, QBUF_SIZE + PAGE))
			return 30 + i;
		if (IN(t->rw_alias, PAGE) || IN(t->ro_alias, PAGE))
			return 40 + i;
		for (int j = 0; j < t->natt; j++)
			if (IN(t->att[j].addr, t->att[j].len))
				return 50 + i;
	}
#undef IN
	return 0;
}

/* Async-signal-safe "<text><hex>" appender. */
static size_t put_hex(char *buf, size_t n, const char *text, uint64_t v)
{
	while (*text)
		buf[n++] = *text++;
	buf[n++] = '0';
	buf[n++] = 'x';
	for (int sh = 60; sh >= 0; sh -= 4)
		if (v >> sh || !sh)
			buf[n++] = "0123456789abcdef"[(v >> sh) & 15];
	return n;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	char buf[160];
	size_t n = 0;

	(void)uc;
	if (t_armed) {
		t_armed = 0;
		siglongjmp(*t_env, sig);
	}
	atomic_store(&S->crash_sig, sig);
	atomic_store(&S->crash_code, si->si_code);
	atomic_store(&S->crash_addr, (uint64_t)(uintptr_t)si->si_addr);
	atomic_store(&S->crash_region, region_of(si->si_addr));
	atomic_store(&S->crash_pid, getpid());
	n = put_hex(buf, n, "xpmem-fuzz: unexpected fault outside a guarded access: signal ", (uint64_t)sig);
	n = put_hex(buf, n, " code ", (uint64_t)(unsigned)si->si_code);
	n = put_hex(buf, n, " address ", (uint64_t)(uintptr_t)si->si_addr);
	n = put_hex(buf, n, " pid ", (uint64_t)getpid());
	buf[n++] = '\n';
	if (write(2, buf, n) < 0)
		_exit(EXIT_CRASH);
	_exit(EXIT_CRASH);
}

static void install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	/*
	 * On a pre-faulted alternate stack: with allocation failures injected, the kernel
	 * may be unable to fault in a stack page for the signal frame, and then kills
	 * with SIGSEGV (SI_KERNEL) instead of delivering the signal.
	 */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}


/* The calling thread's signal stack, and its normal stack pre-faulted too. */
static void __attribute__((noinline)) prepare_stacks(char *alt, size_t prefault)
{
	stack_t ss = { .ss_sp = alt, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
	char *below = alloca(prefault);

	memset(alt, 0, ALTSTACK_SIZE);
	sigaltstack(&ss, NULL);
	memset(below, 0, prefault);
	__asm__ volatile("" : : "r"(below) : "memory");
}

/* Copy len bytes, guarded: 0 or the signal. */
static int __attribute__((noinline)) guarded_copy(volatile char *dst, const volatile char *src, size_t len)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i];
	t_armed = 0;
	return 0;
}

/* ------------------------------------------------------------------ shared id pools */

/* pthread_atfork child handler: a forked child has an address space of its own. */
static void new_mm_token(void)
{
	W.mm_token = atomic_fetch_add(&S->next_token, 1) + 1;
}

/* Bytes of [vaddr, vaddr + size) from vaddr on that lie in our W.exp. */
static uint64_t exp_safe(uint64_t vaddr, uint64_t size)
{
	uint64_t lo = (uintptr_t)W.exp, hi = lo + EXP_PAGES * PAGE;

	if (!W.exp || vaddr < lo || vaddr >= hi)
		return 0;
	return size < hi - vaddr ? size : hi - vaddr;
}

struct pick {
	int64_t id; /* 0: nothing (empty pool, or the slot was being rewritten) */
	uint64_t size, safe;
	bool own, rw;
};

static void pool_add(struct pent *pool, _Atomic uint32_t *n, int64_t id, uint64_t size, uint64_t safe, bool rw)
{
	/* A slot held by another writer (or by one that died mid-write) is skipped. */
	for (int tries = 0; tries < 4; tries++) {
		struct pent *e = &pool[atomic_fetch_add(n, 1) % POOL];
		uint32_t seq = atomic_load(&e->seq);

		if ((seq & 1) || !atomic_compare_exchange_strong(&e->seq, &seq, seq + 1))
			continue;
		atomic_store_explicit(&e->id, id, memory_order_relaxed);
		atomic_store_explicit(&e->size, size, memory_order_relaxed);
		atomic_store_explicit(&e->safe, safe, memory_order_relaxed);
		atomic_store_explicit(&e->owner, W.mm_token, memory_order_relaxed);
		atomic_store_explicit(&e->rw, rw, memory_order_relaxed);
		atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
		return;
	}
}

/* A pooled id, consistent with its fields; own if it belongs to this address space. */
static struct pick pool_pick(struct rng *r, struct pent *pool, _Atomic uint32_t *n)
{
	uint32_t have = atomic_load(n), seq;
	struct pick k = { 0 };
	struct pent *e;

	if (!have)
		return k;
	e = &pool[rnd(r, have < POOL ? have : POOL)];
	seq = atomic_load_explicit(&e->seq, memory_order_acquire);
	if (seq & 1)
		return k;
	k.id = atomic_load_explicit(&e->id, memory_order_relaxed);
	k.size = atomic_load_explicit(&e->size, memory_order_relaxed);
	k.safe = atomic_load_explicit(&e->safe, memory_order_relaxed);
	k.own = atomic_load_explicit(&e->owner, memory_order_relaxed) == W.mm_token;
	k.rw = atomic_load_explicit(&e->rw, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq)
		return (struct pick){ 0 };
	return k;
}

static int64_t garbage_id(struct rng *r)
{
	static const int64_t fixed[] = { 0, -1, INT64_MIN, INT64_MAX, ID_LIMIT, ID_LIMIT - 1, 1 };

	if (rnd(r, 2))
		return fixed[rnd(r, sizeof(fixed) / sizeof(fixed[0]))];
	return (int64_t)(rnd64(r) & (rnd(r, 2) ? (uint64_t)(ID_LIMIT - 1) : UINT64_MAX));
}

static void va_shared(void)
{
	if (!W.in_child)
		pthread_rwlock_rdlock(&W.va_lock);
}

static void va_unlock(void)
{
	if (!W.in_child)
		pthread_rwlock_unlock(&W.va_lock);
}

/* ------------------------------------------------------------------ argument pointers */

enum apk { AP_OK, AP_MISALIGNED, AP_RO, AP_NULL, AP_ONE, AP_HOLE, AP_NONE, AP_STRADDLE, AP_KERNEL,
	   AP_NONCANON, AP_ATTACH, AP_COUNT };

static bool apk_faults(int k)
{
	return k == AP_NULL || k == AP_ONE || k == AP_HOLE || k == AP_NONE || k == AP_STRADDLE ||
	       k == AP_KERNEL || k == AP_NONCANON;
}

static int pick_apk(struct fth *t)
{
	unsigned x = rnd(&t->rng, 100);

	if (x < 70)
		return AP_OK;
	if (x < 75)
		return AP_MISALIGNED;
	if (x < 83)
		return AP_RO;
	if (x < 85 && t->natt)
		return AP_ATTACH;
	return AP_NULL + (int)rnd(&t->rng, AP_NONCANON - AP_NULL + 1);
}

/* Where the request goes for pointer kind k (src copied there when possible). */
static void *place(struct fth *t, int *k, const void *src, size_t len)
{
	switch (*k) {
	case AP_OK:
		memcpy(t->scratch, src, len);
		return t->scratch;
	case AP_MISALIGNED:
		memcpy(t->scratch + 1, src, len);
		return t->scratch + 1;
	case AP_RO:
		memcpy(t->rw_alias, src, len);
		return t->ro_alias;
	case AP_NULL:
		return NULL;
	case AP_ONE:
		return (void *)1;
	case AP_HOLE:
		return W.hole + rnd(&t->rng, PAGE);
	case AP_NONE:
		return W.nonep;
	case AP_STRADDLE: {
		size_t in = 1 + rnd(&t->rng, (uint32_t)len - 1);
		char *p = t->scratch + PAGE - in;

		memcpy(p, src, in);
		return p;
	}
	case AP_KERNEL:
		return (void *)(uintptr_t)KERNEL_ADDR;
	case AP_NONCANON:
		return (void *)(uintptr_t)NONCANON_ADDR;
	case AP_ATTACH: {
		struct fatt *a = &t->att[rnd(&t->rng, (uint32_t)t->natt)];

		/* Only where the exporter has its W.exp: the kernel writes back there too. */
		if (!a->frag && a->safe >= len && guarded_copy(a->addr, src, len) == 0)
			return a->addr;
		*k = AP_OK;
		memcpy(t->scratch, src, len);
		return t->scratch;
	}
	}
	return t->scratch;
}

/* Read back what the kernel wrote at p (0 if unreadable). */
static void fetch(int k, void *p, void *dst, size_t len)
{
	if (k == AP_OK || k == AP_MISALIGNED) {
		memcpy(dst, p, len);
		return;
	}
	if (k == AP_ATTACH && guarded_copy(dst, p, len) == 0)
		return;
	memset(dst, 0, len);
}

/* ------------------------------------------------------------------ the oracle */

struct want {
	uint64_t ok; /* bit 0: success allowed; bit e: errno e allowed (e < 64) */
	bool any;
};

#define WBIT(e) (1ULL << (e))

static void oracle(struct fth *t, enum cls k, long ret, int err, struct want w, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void oracle(struct fth *t, enum cls k, long ret, int err, struct want w, const char *fmt, ...)
{
	char buf[400], allowed[200];
	va_list ap;
	size_t n = 0;

	if (w.any)
		return;
	if (cfg.faults)
		w.ok |= WBIT(ENOMEM);
	if (ret >= 0 ? (w.ok & 1) : (err > 0 && err < 64 && (w.ok & WBIT(err))))
		return;
	for (int e = 0; e < 64 && n < sizeof(allowed) - 16; e++)
		if (w.ok & WBIT(e))
			n += (size_t)snprintf(allowed + n, sizeof(allowed) - n, "%s%s", n ? "," : "",
					      e ? errname(e) : "success");
	allowed[n] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	failure(C_f_oracle, "thread %d: %s: got %s (ret %ld), allowed %s; %s", t->idx, cls_name[k],
		ret >= 0 ? "success" : errname(err), ret, allowed, buf);
}

static const struct want W_ANY = { 0, true };
#define WANT(bits) ((struct want){ (bits), false })

/* ------------------------------------------------------------------ requests */

/* Arm fail-nth for the next call sometimes (root workers only). */
static void maybe_fail_nth(struct fth *t)
{
	char buf[8];
	int n;

	if (t->fd_nth < 0 || rnd(&t->rng, 100) >= 15)
		return;
	n = snprintf(buf, sizeof(buf), "%u", 1 + rnd(&t->rng, 6));
	if (pwrite(t->fd_nth, buf, (size_t)n, 0) == n)
		count(C_fail_nth);
}

static void disarm_fail_nth(struct fth *t)
{
	if (t->fd_nth >= 0 && pwrite(t->fd_nth, "0", 1, 0) < 0)
		return;
}

static long xioctl(struct fth *t, enum cls k, unsigned long cmd, void *p, int *err)
{
	long ret;

	maybe_fail_nth(t);
	ret = ioctl(W.fd, cmd, p);
	*err = ret < 0 ? errno : 0;
	disarm_fail_nth(t);
	record(k, ret, *err);
	return ret;
}

static uint64_t page_align(uint64_t x)
{
	return (x + PAGE - 1) & ~(PAGE - 1);
}

static uint64_t rnd_addr(struct fth *t)
{
	struct rng *r = &t->rng;

	switch (rnd(r, 10)) {
	case 0: return 0;
	case 1: return (uintptr_t)W.exp + rnd(r, EXP_PAGES) * PAGE;
	case 2: return (uintptr_t)W.exp + 1 + rnd(r, PAGE - 1);
	case 3: return (uintptr_t)W.hole;
	case 4: return KERNEL_ADDR;
	case 5: return task_size - PAGE;
	case 6: return task_size;
	case 7: return NONCANON_ADDR;
	case 8: return rnd64(r) & (task_size - 1) & ~(PAGE - 1);
	default: return rnd64(r);
	}
}

static uint64_t rnd_size(struct fth *t, uint64_t natural)
{
	struct rng *r = &t->rng;

	switch (rnd(r, 12)) {
	case 0: return 0;
	case 1: return natural + 1 + rnd(r, PAGE - 1);
	case 2: return 1ULL << 62;
	case 3: return UINT64_MAX;
	case 4: return UINT64_MAX - PAGE + 1;
	case 5: return task_size;
	case 6: return UINT32_MAX;
	case 7: return rnd64(r);
	default: return natural;
	}
}

static void do_make(struct fth *t)
{
	struct rng *r = &t->rng;
	static const unsigned modes[] = { 0600, 0666, 0640, 0644, 0660, 0, 0400, 0777 };
	struct xpmem_cmd_make c = { 0 };
	bool bad;
	uint64_t sz = 0;
	int k = pick_apk(t), err;
	void *p;
	long ret;

	if (rnd(r, 10) < 6) {
		c.vaddr = (uintptr_t)W.exp + rnd(r, EXP_PAGES) * PAGE;
		c.size = (1 + rnd(r, 16)) * PAGE;
		if (rnd(r, 8) == 0)
			c.size = XPMEM_IOCTL_MAXADDR_SIZE;
	} else {
		c.vaddr = rnd(r, 6) ? rnd_addr(t) : (uintptr_t)W.rop;
		c.size = rnd_size(t, (1 + rnd(r, 8)) * PAGE);
		if (rnd(r, 6) == 0 && t->natt)
			c.vaddr = (uintptr_t)t->att[rnd(r, (uint32_t)t->natt)].any & ~(PAGE - 1);
	}
	c.permit_type = rnd(r, 10) ? XPMEM_IOCTL_PERMIT_MODE : (int32_t)rnd64(r) % 4;
	c.permit_value = rnd(r, 10) ? modes[rnd(r, 8)] : rnd(r, 2) ? 01000 : rnd64(r);
	c.pad = rnd(r, 10) ? 0 : (uint32_t)rnd64(r);
	c.segid = (int64_t)rnd64(r);
	p = place(t, &k, &c, sizeof(c));
	ret = xioctl(t, K_MAKE, XPMEM_CMD_MAKE, p, &err);

	bad = c.permit_type != XPMEM_IOCTL_PERMIT_MODE || (c.permit_value & ~0777ULL) ||
	      (c.vaddr & (PAGE - 1)) || c.vaddr >= task_size;
	if (!bad) {
		sz = c.size == XPMEM_IOCTL_MAXADDR_SIZE ? task_size - c.vaddr : c.size;
		bad = !sz || (sz & (PAGE - 1)) || sz > task_size - c.vaddr;
	}
	if (k == AP_ATTACH)
		oracle(t, K_MAKE, ret, err, W_ANY, "-");
	else if (apk_faults(k))
		oracle(t, K_MAKE, ret, err, WANT(WBIT(EFAULT)), "argument pointer %p (kind %d)", p, k);
	else if (bad)
		oracle(t, K_MAKE, ret, err, WANT(WBIT(EINVAL)),
		       "vaddr %#" PRIx64 " size %#" PRIx64 " type %d mode %#" PRIx64, (uint64_t)c.vaddr,
		       (uint64_t)c.size, c.permit_type, (uint64_t)c.permit_value);
	else if (k == AP_RO)
		oracle(t, K_MAKE, ret, err, WANT(WBIT(EFAULT)), "segid write-back into a read-only page");
	else
		oracle(t, K_MAKE, ret, err, WANT(1), "vaddr %#" PRIx64 " size %#" PRIx64 " mode %#" PRIx64,
		       (uint64_t)c.vaddr, (uint64_t)c.size, (uint64_t)c.permit_value);
	if (ret == 0) {
		struct xpmem_cmd_make back;

		fetch(k, p, &back, sizeof(back));
		if (back.segid <= 0 || back.segid >= ID_LIMIT) {
			failure(C_f_oracle, "MAKE returned segid %#" PRIx64 " (outside 1..2^52-1)",
				(uint64_t)back.segid);
			return;
		}
		pool_add(S->segs, &S->nsegs, back.segid, sz, exp_safe(c.vaddr, sz), false);
		if (t->nseg < NLIST)
			t->seg[t->nseg++] = (struct fseg){ back.segid, sz, exp_safe(c.vaddr, sz), (unsigned)c.permit_value };
		else
			ioctl(W.fd, XPMEM_CMD_REMOVE, &back.segid); /* list full: drop it now */
	}
}

static void do_remove_release(struct fth *t, bool seg)
{
	struct rng *r = &t->rng;
	enum cls k = seg ? K_REMOVE : K_RELEASE;
	unsigned long cmd = seg ? XPMEM_CMD_REMOVE : XPMEM_CMD_RELEASE;
	unsigned how = rnd(r, 100);
	int64_t id;
	struct want w = WANT(WBIT(ENOENT));
	int pk = pick_apk(t), err, *nlive = seg ? &t->nseg : &t->nap, *ndead = seg ? &t->nsegdead : &t->napdead;
	int64_t *dead = seg ? t->segdead : t->apdead;
	bool claimed = false;
	struct fseg cseg = { 0 };
	struct fap cap = { 0 };
	void *p;
	long ret;

	if (how < 45 && *nlive) {
		int i = (int)rnd(r, (uint32_t)*nlive);

		id = seg ? t->seg[i].id : t->ap[i].id;
		/* Claimed: this thread alone holds it now. */
		if (seg) {
			cseg = t->seg[i];
			t->seg[i] = t->seg[--t->nseg];
		} else {
			cap = t->ap[i];
			t->ap[i] = t->ap[--t->nap];
		}
		claimed = true;
		w = WANT(1);
	} else if (how < 55 && *ndead) {
		id = dead[rnd(r, (uint32_t)*ndead)];
	} else if (how < 80) {
		struct pick pp = seg ? pool_pick(r, S->segs, &S->nsegs) : pool_pick(r, S->aps, &S->naps);

		id = pp.id;
		if (pp.own)
			id = garbage_id(r); /* another thread's: leave it alone */
		else if (id)
			w = WANT(WBIT(ENOENT) | WBIT(EACCES));
	} else {
		id = garbage_id(r);
	}
	p = place(t, &pk, &id, sizeof(id));
	ret = xioctl(t, k, cmd, p, &err);
	if (pk == AP_ATTACH)
		w = W_ANY;
	else if (apk_faults(pk))
		w = WANT(WBIT(EFAULT));
	oracle(t, k, ret, err, w, "id %#" PRIx64 "%s", (uint64_t)id, claimed ? " (own, live)" : "");
	if (claimed && ret != 0) {
		/* Not gone (EFAULT, injected failure): keep tracking it. */
		if (seg && t->nseg < NLIST)
			t->seg[t->nseg++] = cseg;
		else if (!seg && t->nap < NLIST)
			t->ap[t->nap++] = cap;
		return;
	}
	if (claimed) {
		if (*ndead < NLIST)
			dead[(*ndead)++] = id;
		else
			dead[rnd(r, NLIST)] = id;
	}
}

static void do_get(struct fth *t)
{
	struct rng *r = &t->rng;
	struct xpmem_cmd_get c = { 0 };
	unsigned how = rnd(r, 100);
	uint64_t size = 0, safe = 0;
	struct want w = WANT(WBIT(ENOENT));
	int k = pick_apk(t), err, own_i = -1;
	void *p;
	long ret;

	if (how < 35 && t->nseg) {
		own_i = (int)rnd(r, (uint32_t)t->nseg);
		c.segid = t->seg[own_i].id;
		size = t->seg[own_i].size;
		safe = t->seg[own_i].safe;
	} else if (how < 70) {
		struct pick pp = pool_pick(r, S->segs, &S->nsegs);

		c.segid = pp.id;
		size = pp.size;
		safe = pp.safe;
		w = WANT(1 | WBIT(ENOENT) | WBIT(EACCES));
	} else if (how < 80 && t->nsegdead) {
		c.segid = t->segdead[rnd(r, (uint32_t)t->nsegdead)];
	} else {
		c.segid = garbage_id(r);
	}
	c.flags = rnd(r, 10) ? (int32_t)(1 + rnd(r, 2)) : (int32_t)rnd64(r) % 5;
	c.permit_type = rnd(r, 12) ? XPMEM_IOCTL_PERMIT_MODE : (int32_t)rnd(r, 3);
	c.permit_value = rnd(r, 12) ? 0 : rnd(r, 2) ? 0666 : rnd64(r);
	c.apid = (int64_t)rnd64(r);
	p = place(t, &k, &c, sizeof(c));
	ret = xioctl(t, K_GET, XPMEM_CMD_GET, p, &err);

	if (own_i >= 0) {
		unsigned need = c.flags == XPMEM_IOCTL_RDWR ? 6 : 4;
		bool allowed = W.priv || (((t->seg[own_i].mode >> 6) & need) == need);

		w = WANT(allowed ? 1 : WBIT(EACCES));
	}
	if (c.segid <= 0)
		w = WANT(WBIT(ENOENT));
	if ((c.flags != XPMEM_IOCTL_RDONLY && c.flags != XPMEM_IOCTL_RDWR) ||
	    c.permit_type != XPMEM_IOCTL_PERMIT_MODE || c.permit_value)
		w = WANT(WBIT(EINVAL));
	if (k == AP_ATTACH)
		w = W_ANY;
	else if (apk_faults(k))
		w = WANT(WBIT(EFAULT));
	else if (k == AP_RO && (w.ok & 1))
		w = WANT(WBIT(EFAULT) | (w.ok & ~1ULL));
	oracle(t, K_GET, ret, err, w, "segid %#" PRIx64 " flags %d type %d value %#" PRIx64 "%s",
	       (uint64_t)c.segid, c.flags, c.permit_type, (uint64_t)c.permit_value, own_i >= 0 ? " (own)" : "");
	if (ret == 0) {
		struct xpmem_cmd_get back;

		fetch(k, p, &back, sizeof(back));
		if (back.apid <= 0 || back.apid >= ID_LIMIT) {
			failure(C_f_oracle, "GET returned apid %#" PRIx64, (uint64_t)back.apid);
			return;
		}
		pool_add(S->aps, &S->naps, back.apid, size, safe, c.flags == XPMEM_IOCTL_RDWR);
		if (t->nap < NLIST)
			t->ap[t->nap++] = (struct fap){ back.apid, size, safe, c.flags == XPMEM_IOCTL_RDWR };
		else
			ioctl(W.fd, XPMEM_CMD_RELEASE, &back.apid);
	}
}

/* A free address range right now (congruent to off modulo 2 MiB), or 0. */
static uint64_t free_spot(size_t len)
{
	char *p = mmap(NULL, len + (4UL << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	munmap(p, len + (4UL << 20));
	return ((uintptr_t)p + (2UL << 20)) & ~((2UL << 20) - 1);
}

/*
 * An extension argument longer than the fuzzer's buffer (argsz up to 4 GiB): the
 * module reads it to the end and wants zeros after its own struct
 * (copy_struct_from_user). What follows the struct is made known: zeros up to the
 * end of its page, sometimes one non-zero byte within argsz.
 */
enum tail { TAIL_NONE, TAIL_ZERO, TAIL_NONZERO, TAIL_FAULT, TAIL_UNKNOWN };

static enum tail long_arg_tail(struct fth *t, int k, const void *p, size_t have, uint64_t argsz)
{
	char *base;
	size_t pos, end;

	if (k == AP_OK || k == AP_MISALIGNED) {
		base = t->scratch; /* followed by its PROT_NONE guard page */
		pos = (size_t)((const char *)p - t->scratch);
	} else if (k == AP_RO) {
		base = t->rw_alias; /* the page p (ro_alias) shows; whatever follows it */
		pos = (size_t)((const char *)p - t->ro_alias);
	} else {
		return TAIL_NONE; /* faulting or attachment pointers: judged by the pointer kind */
	}
	memset(base + pos + have, 0, PAGE - pos - have);
	end = argsz < PAGE - pos ? pos + (size_t)argsz : PAGE;
	if (end > pos + have && rnd(&t->rng, 2)) {
		base[pos + have + rnd(&t->rng, (uint32_t)(end - pos - have))] = (char)(1 + rnd(&t->rng, 255));
		return TAIL_NONZERO;
	}
	if (pos + argsz <= PAGE)
		return TAIL_ZERO;
	return k == AP_RO ? TAIL_UNKNOWN : TAIL_FAULT;
}

static void do_attach(struct fth *t, bool ext)
{
	struct rng *r = &t->rng;
	unsigned how = rnd(r, 100);
	int64_t apid;
	uint64_t segsize = 0, safe = 0, off, size, vaddr;
	int k = pick_apk(t), err, flags = 0, own_i = -1;
	bool fixed = false, occupied = false, sibling = false, rw = true;
	struct want w = WANT(WBIT(ENOENT));
	struct xpmem_cmd_attach c = { 0 };
	struct xpmem_cmd_attach_ext x = { 0 };
	uint32_t argsz = sizeof(x);
	unsigned char big[96];
	bool tail_nonzero = false;
	enum tail long_tail = TAIL_NONE;
	void *p;
	long ret;

	if (how < 55 && t->nap) {
		own_i = (int)rnd(r, (uint32_t)t->nap);
		apid = t->ap[own_i].id;
		segsize = t->ap[own_i].segsize;
		safe = t->ap[own_i].safe;
		rw = t->ap[own_i].rw;
	} else if (how < 80) {
		struct pick pp = pool_pick(r, S->aps, &S->naps);

		apid = pp.id;
		segsize = pp.size;
		safe = pp.safe;
		rw = pp.rw;
		/*
		 * Our address space's (another thread's): ours to attach, but that thread
		 * may release it at any time (ENOENT). Anyone else's: never ours.
		 */
		sibling = pp.own && apid > 0;
		if (!pp.own)
			w = WANT(WBIT(ENOENT) | WBIT(EACCES));
	} else if (how < 85 && t->napdead) {
		apid = t->apdead[rnd(r, (uint32_t)t->napdead)];
	} else {
		apid = garbage_id(r);
	}
	/* Offsets and sizes: mostly inside the segment, else anything. */
	if (segsize && rnd(r, 3)) {
		uint64_t pages = segsize / PAGE < 64 ? segsize / PAGE : 64;

		off = rnd(r, (uint32_t)pages) * PAGE;
		size = (1 + rnd(r, (uint32_t)(pages - off / PAGE))) * PAGE;
		if (rnd(r, 5) == 0)
			size -= rnd(r, PAGE); /* partial last page */
	} else {
		static const int64_t offs[] = { 0, 1, -PAGE, INT64_MIN, INT64_MAX & ~4095LL, 1LL << 47 };

		off = rnd(r, 2) ? (uint64_t)offs[rnd(r, 6)] : rnd(r, 64) * PAGE;
		size = rnd_size(t, (1 + rnd(r, 8)) * PAGE);
	}
	switch (rnd(r, 12)) {
	case 0:
	case 1:
		vaddr = free_spot(page_align(size) < (64UL << 20) ? page_align(size) : PAGE);
		fixed = vaddr != 0;
		break;
	case 2:
		vaddr = (uintptr_t)(rnd(r, 2) ? W.nonep : W.rop); /* always mapped: EEXIST */
		fixed = occupied = true;
		break;
	case 3:
		vaddr = (uintptr_t)W.exp + 1 + rnd(r, 100);
		break;
	case 4:
		vaddr = rnd(r, 2) ? KERNEL_ADDR : task_size - PAGE;
		fixed = true;
		break;
	case 5:
		vaddr = rnd(r, 2) ? PAGE : 0x10000;
		fixed = true;
		break;
	default:
		vaddr = 0;
	}
	if (rnd(r, 10) == 0)
		flags = (int)rnd64(r);
	if (ext) {
		x.argsz = argsz;
		x.flags = rnd(r, 3) ? (rnd(r, 2) ? XPMEM_IOCTL_ATTACH_PREFAULT : 0) : (uint32_t)rnd64(r);
		x.apid = apid;
		x.offset = (int64_t)off;
		x.size = size;
		x.vaddr = vaddr;
		switch (rnd(r, 8)) {
		case 0: argsz = rnd(r, (uint32_t)sizeof(x)); break;
		case 1: argsz = sizeof(x) + 8 * (1 + rnd(r, 6)); break;
		case 2:
			argsz = sizeof(x) + 8 * (1 + rnd(r, 6));
			tail_nonzero = true;
			break;
		case 3: argsz = rnd(r, 2) ? UINT32_MAX : PAGE; break;
		default: break;
		}
		x.argsz = argsz;
		memset(big, 0, sizeof(big));
		memcpy(big, &x, sizeof(x));
		if (tail_nonzero)
			big[sizeof(x) + rnd(r, argsz - (uint32_t)sizeof(x))] = 1;
		if (argsz <= sizeof(big)) {
			p = place(t, &k, big, argsz < 8 ? 8 : argsz);
		} else {
			p = place(t, &k, big, sizeof(x));
			long_tail = long_arg_tail(t, k, p, sizeof(x), argsz);
		}
		ret = xioctl(t, K_ATTACH_EXT, XPMEM_CMD_ATTACH_EXT, p, &err);
	} else {
		c.apid = apid;
		c.offset = (int64_t)off;
		c.size = size;
		c.vaddr = vaddr;
		c.fd = (int32_t)rnd64(r);
		c.flags = flags;
		p = place(t, &k, &c, sizeof(c));
		ret = xioctl(t, K_ATTACH, XPMEM_CMD_ATTACH, p, &err);
	}

	/*
	 * What the interface allows, in the module's order: the argument (EFAULT; for
	 * the extension argsz, the tail, flags: EINVAL), apid <= 0 (ENOENT), the permit
	 * (ENOENT, or EACCES if another address space's), the window (EINVAL), the
	 * segment (ENOENT once removed), the mapping (EEXIST, ENOMEM, EPERM).
	 */
	if ((own_i >= 0 || sibling) && segsize) {
		uint64_t al = page_align(size);
		bool bad = (!ext && flags) || (int64_t)off < 0 || (off & (PAGE - 1)) || (vaddr & (PAGE - 1)) ||
			   !size || size > segsize || off > segsize - page_align(size) || vaddr > task_size - al;

		if (bad)
			w = WANT(WBIT(EINVAL) | (sibling ? WBIT(ENOENT) : 0));
		else
			/* Its segment may be gone (ENOENT); a big window may not fit (ENOMEM). */
			w = WANT(1 | WBIT(ENOENT) | WBIT(ENOMEM) | (fixed ? WBIT(EEXIST) : 0) |
				 (vaddr && vaddr < mmap_min ? WBIT(EPERM) | WBIT(EACCES) : 0));
		if (occupied && !bad)
			w = WANT(WBIT(EEXIST) | WBIT(ENOENT));
	} else if (own_i >= 0 || sibling) {
		w = WANT(1 | WBIT(EINVAL) | WBIT(ENOENT) | WBIT(EEXIST) | WBIT(ENOMEM) | WBIT(EPERM) | WBIT(EACCES));
	}
	if (apid <= 0)
		w = WANT(WBIT(ENOENT));
	if (ext) {
		if (x.flags & ~XPMEM_IOCTL_ATTACH_FLAGS_ALL)
			w = WANT(WBIT(EINVAL));
		if (long_tail == TAIL_FAULT)
			w = WANT(WBIT(EFAULT)); /* zeros up to the guard page */
		else if (long_tail == TAIL_UNKNOWN)
			w = WANT(WBIT(EFAULT) | WBIT(EINVAL)); /* into whatever follows the page */
		if (argsz < sizeof(x) || tail_nonzero || long_tail == TAIL_NONZERO)
			w = WANT(WBIT(EINVAL));
	}
	if (k == AP_ATTACH)
		w = W_ANY;
	else if (apk_faults(k))
		/* The extension may find a short argsz or a non-zero tail before the bad byte. */
		w = WANT(WBIT(EFAULT) | (ext ? WBIT(EINVAL) : 0));
	else if (k == AP_RO && (w.ok & 1))
		w = WANT(WBIT(EFAULT) | (w.ok & ~1ULL));
	oracle(t, ext ? K_ATTACH_EXT : K_ATTACH, ret, err, w,
	       "apid %#" PRIx64 "%s segsize %#" PRIx64 " off %#" PRIx64 " size %#" PRIx64 " vaddr %#" PRIx64
	       " flags %#x argsz %u",
	       (uint64_t)apid, own_i >= 0 ? " (own)" : sibling ? " (other thread's)" : "", segsize, off, size, vaddr,
	       ext ? x.flags : (unsigned)flags, ext ? argsz : 0);
	if (ret == 0) {
		uint64_t got;

		if (ext) {
			struct xpmem_cmd_attach_ext back;

			fetch(k, p, &back, sizeof(back));
			got = back.vaddr;
		} else {
			struct xpmem_cmd_attach back;

			fetch(k, p, &back, sizeof(back));
			got = back.vaddr;
		}
		if (k != AP_ATTACH && ((got & (PAGE - 1)) || !got || got >= task_size || (fixed && got != vaddr))) {
			failure(C_f_oracle, "ATTACH%s placed at %#" PRIx64 " (asked %#" PRIx64 ")", ext ? "_EXT" : "",
				got, vaddr);
			return;
		}
		if (k == AP_ATTACH || !got)
			return; /* address unknown: the process exit cleans it up */
		if (t->natt < NLIST) {
			struct fatt *na = &t->att[t->natt++];

			*na = (struct fatt){ .addr = (char *)(uintptr_t)got, .len = page_align(size), .writable = rw,
					     .prot = rw ? RW : PROT_READ, .any = (char *)(uintptr_t)got };
			if (safe > off)
				na->safe = na->len < safe - off ? na->len : safe - off;
			snprintf(na->hist, sizeof(na->hist), "%s%s%s apk%d len %#zx", ext ? "ext" : "attach",
				 ext && (x.flags & XPMEM_IOCTL_ATTACH_PREFAULT) ? "+prefault" : "", fixed ? "+fixed" : "",
				 k, na->len);
		} else {
			struct xpmem_cmd_detach d = { got };

			ioctl(W.fd, XPMEM_CMD_DETACH, &d);
		}
	}
}

static void do_detach(struct fth *t)
{
	struct rng *r = &t->rng;
	struct xpmem_cmd_detach c;
	unsigned how = rnd(r, 100);
	struct want w = WANT(WBIT(EINVAL));
	int k = pick_apk(t), err, claimed = -1;
	struct fatt a = { 0 };
	void *p;
	long ret;

	if (how < 50 && t->natt) {
		claimed = (int)rnd(r, (uint32_t)t->natt);
		a = t->att[claimed];
		t->att[claimed] = t->att[--t->natt];
		c.vaddr = (uintptr_t)(a.frag ? a.any : a.addr + rnd(r, (uint32_t)a.len));
		w = WANT(1);
	} else {
		/* Never an attachment (root may attach at 0x1000: not in this list). */
		static const uint64_t others[] = { 0, 1, PAGE - 1, KERNEL_ADDR, NONCANON_ADDR, UINT64_MAX };

		switch (rnd(r, 4)) {
		case 0: c.vaddr = (uintptr_t)W.exp + rnd(r, EXP_PAGES * PAGE); break;
		case 1: c.vaddr = (uintptr_t)W.rop + rnd(r, RO_PAGES * PAGE); break;
		case 2: c.vaddr = (uintptr_t)W.nonep + rnd(r, PAGE); break;
		default: c.vaddr = others[rnd(r, 6)]; break;
		}
	}
	p = place(t, &k, &c, sizeof(c));
	ret = xioctl(t, K_DETACH, XPMEM_CMD_DETACH, p, &err);
	if (k == AP_ATTACH)
		w = W_ANY;
	else if (apk_faults(k))
		w = WANT(WBIT(EFAULT));
	oracle(t, K_DETACH, ret, err, w, "vaddr %#" PRIx64 "%s%s at %p: %s", (uint64_t)c.vaddr,
	       claimed >= 0 ? " (own attachment" : "", claimed >= 0 ? ")" : "", (void *)a.addr,
	       claimed >= 0 ? a.hist : "-");
	/*
	 * EFAULT: the request was not even read, the attachment is intact. Other
	 * failures (an injected ENOMEM from the second munmap of a split attachment)
	 * may have removed part of it: forget it, or a later detach through it could
	 * hit a new attachment placed in the freed part. The process exit cleans up.
	 */
	if (claimed >= 0 && ret != 0 && err == EFAULT && t->natt < NLIST)
		t->att[t->natt++] = a;
}

static void do_simple(struct fth *t)
{
	struct rng *r = &t->rng;
	int k = pick_apk(t), err;
	uint64_t junk[8] = { rnd64(r), rnd64(r) };
	void *p = place(t, &k, junk, sizeof(junk));
	unsigned which = rnd(r, 3);
	long ret;

	if (which == 0) {
		/* High bits of the request number do not reach the driver (unsigned int cmd). */
		unsigned long cmd = XPMEM_CMD_VERSION | (rnd(r, 2) ? 0 : (unsigned long)rnd64(r) << 32);

		ret = xioctl(t, K_VERSION, cmd, p, &err);
		if (ret != XPMEM_INTERFACE_VERSION)
			failure(C_f_oracle, "VERSION (cmd %#lx) returned %ld (%s), want %#x", cmd, ret,
				ret < 0 ? errname(err) : "-", XPMEM_INTERFACE_VERSION);
		return;
	}
	ret = xioctl(t, which == 1 ? K_FORK_BEGIN : K_FORK_END,
		     which == 1 ? XPMEM_CMD_FORK_BEGIN : XPMEM_CMD_FORK_END, p, &err);
	oracle(t, which == 1 ? K_FORK_BEGIN : K_FORK_END, ret, err, WANT(1), "arg %p", p);
}

static bool known_cmd(unsigned int cmd)
{
	return cmd == XPMEM_CMD_VERSION || cmd == XPMEM_CMD_MAKE || cmd == XPMEM_CMD_REMOVE ||
	       cmd == XPMEM_CMD_GET || cmd == XPMEM_CMD_RELEASE || cmd == XPMEM_CMD_ATTACH ||
	       cmd == XPMEM_CMD_DETACH || cmd == XPMEM_CMD_FORK_BEGIN || cmd == XPMEM_CMD_FORK_END ||
	       cmd == XPMEM_CMD_ATTACH_EXT || cmd == XPMEM_CMD_QUERY || cmd == XPMEM_CMD_PING;
}

static void do_unknown(struct fth *t)
{
	struct rng *r = &t->rng;
	int k = pick_apk(t), err;
	uint64_t junk[16] = { 0 };
	void *p = place(t, &k, junk, sizeof(junk));
	unsigned int cmd, dir = rnd(r, 4), nr, size = rnd(r, 2) ? rnd(r, 64) : rnd(r, 1u << 14);
	long ret;

	if (rnd(r, 4)) {
		/* Type 'x': unused numbers, and the known numbers with a direction or size. */
		nr = rnd(r, 3) ? rnd(r, 24) : rnd(r, 256);
		cmd = _IOC(dir, 'x', nr, size);
		if (known_cmd(cmd))
			cmd ^= _IOC(0, 0, 0, 1); /* same number, another size: unknown */
		if (known_cmd(cmd))
			return;
		ret = xioctl(t, K_X_UNKNOWN, cmd, p, &err);
		oracle(t, K_X_UNKNOWN, ret, err, WANT(WBIT(ENOTTY)), "cmd %#x", cmd);
		return;
	}
	/* Other types; those the VFS handles itself ('T' FIONBIO..., 'f', 'X', 0x94, 0) skipped. */
	do {
		cmd = (unsigned int)rnd64(r);
	} while (_IOC_TYPE(cmd) == 'x' || _IOC_TYPE(cmd) == 'T' || _IOC_TYPE(cmd) == 'f' ||
		 _IOC_TYPE(cmd) == 'X' || _IOC_TYPE(cmd) == 0x94 || _IOC_TYPE(cmd) == 0 ||
		 _IOC_TYPE(cmd) == 0x15);
	ret = xioctl(t, K_FOREIGN, cmd, p, &err);
	oracle(t, K_FOREIGN, ret, err, WANT(WBIT(ENOTTY)), "cmd %#x", cmd);
}

/* ------------------------------------------------------------------ memory */

static int __attribute__((noinline)) guarded_touch(volatile char *a, bool write)
{
	sigjmp_buf env;
	int sig;

	t_env = &env;
	sig = sigsetjmp(env, 0);
	if (sig)
		return sig;
	t_armed = 1;
	if (write)
		*a = 0x5a;
	else
		(void)*a;
	t_armed = 0;
	return 0;
}

static void do_touch(struct fth *t)
{
	struct rng *r = &t->rng;
	struct fatt *a;
	bool write = rnd(r, 2);
	size_t at;
	int sig, o;

	if (!t->natt)
		return;
	a = &t->att[rnd(r, (uint32_t)t->natt)];
	if (a->frag)
		return;
	/* Writes only where the exporter has its W.exp (see struct fseg). */
	at = write && a->safe ? rnd(r, (uint32_t)a->safe) : rnd(r, (uint32_t)a->len);
	if (at >= a->safe)
		write = false;
	sig = guarded_touch(a->addr + at, write);
	o = sig == SIGBUS ? OUT_SIGBUS : sig == SIGSEGV ? OUT_SIGSEGV : 0;
	atomic_fetch_add(&S->out[K_TOUCH][o], 1);
	count(C_calls);
	if (sig == SIGSEGV && !write && (a->prot & PROT_READ))
		failure(C_f_oracle, "SIGSEGV reading a readable attachment at %p", (void *)a->addr);
	if (!sig && write && (!a->writable || !(a->prot & PROT_WRITE)))
		failure(C_f_oracle, "write succeeded through a %s attachment at %p",
			a->writable ? "PROT_READ" : "read-only", (void *)a->addr);
	if (!sig && !write && !(a->prot & PROT_READ))
		failure(C_f_oracle, "read succeeded through a PROT_NONE attachment at %p", (void *)a->addr);
}

static void probe_child_segv(int sig)
{
	(void)sig;
	_exit(EXIT_PROBE_SEGV);
}

/* Hostile memory-management calls on one of our attachments. */
static void hist_add(struct fatt *a, const char *what, long ret)
{
	size_t n = strlen(a->hist);

	if (n < sizeof(a->hist) - 12)
		snprintf(a->hist + n, sizeof(a->hist) - n, " %s%s", what, ret == 0 ? "" : "!");
}

static void do_att_mm(struct fth *t)
{
	struct rng *r = &t->rng;
	struct fatt *a;
	char *spot;
	size_t alen;
	long ret = 0;
	int err, op = 0;
	static const char *const opname[] = { "madv", "mprot", "grow", "move", "unmap1", "mlock", "msync",
					      "mincore", "vmreadv", "procmem", "mapfiles", "fork" };

	if (!t->natt)
		return;
	a = &t->att[rnd(r, (uint32_t)t->natt)];
	if (a->frag)
		return;
	/* Attribute calls on at most 64 pages (attachments of unknown segments can be GiBs). */
	alen = a->len < 64 * PAGE ? a->len : 64 * PAGE;
	op = (int)rnd(r, 12);
	switch (op) {
	case 0: {
		int adv = (int)rnd(r, 26); /* never MADV_HWPOISON/SOFT_OFFLINE (100, 101) */

		ret = madvise(a->addr, alen, adv);
		err = errno;
		record(K_MADVISE, ret, err);
		break;
	}
	case 1: {
		static const int prots[] = { PROT_NONE, PROT_READ, RW, PROT_WRITE, PROT_READ | PROT_EXEC };
		int prot = prots[rnd(r, 5)];

		ret = mprotect(a->addr, a->len, prot);
		err = errno;
		record(K_MPROTECT, ret, err);
		if (ret == 0)
			a->prot = prot == PROT_WRITE ? RW : prot & RW;
		/* (whole attachment: touches assume one protection for all of it) */
		if (ret == 0 && !a->writable && (prot & PROT_WRITE))
			failure(C_f_oracle, "mprotect(PROT_WRITE) allowed on a read-only attachment");
		break;
	}
	case 2:
		/* VM_DONTEXPAND: growing must fail. */
		ret = (long)(intptr_t)mremap(a->addr, a->len, a->len + PAGE, MREMAP_MAYMOVE);
		err = errno;
		record(K_MREMAP, ret == (long)(intptr_t)MAP_FAILED ? -1 : 0, err);
		if ((void *)(intptr_t)ret != MAP_FAILED) {
			failure(C_f_oracle, "mremap grew an attachment (%zu -> %zu bytes)", a->len, a->len + PAGE);
			a->addr = (void *)(intptr_t)ret;
			a->any = a->addr;
			a->frag = true;
		}
		break;
	case 3:
		spot = mmap(NULL, a->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (spot == MAP_FAILED)
			break;
		if (rnd(r, 4) == 0) {
			ret = (long)(intptr_t)mremap(a->addr, a->len, a->len,
						     MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, spot);
		} else {
			ret = (long)(intptr_t)mremap(a->addr, a->len, a->len, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
		}
		err = errno;
		record(K_MREMAP, (void *)(intptr_t)ret == MAP_FAILED ? -1 : 0, err);
		if ((void *)(intptr_t)ret == MAP_FAILED) {
			munmap(spot, a->len);
		} else {
			/* With DONTUNMAP the old range stays too: detach takes both. */
			a->frag = a->frag || rnd(r, 2);
			a->addr = spot;
			a->any = spot;
		}
		break;
	case 4:
		if (a->len > PAGE) {
			size_t off = rnd(r, (uint32_t)(a->len / PAGE)) * PAGE;

			ret = munmap(a->addr + off, PAGE);
			err = errno;
			record(K_MUNMAP, ret, err);
			if (ret == 0) {
				a->frag = true;
				a->any = off ? a->addr : a->addr + PAGE;
			}
		}
		break;
	case 5:
		ret = rnd(r, 2) ? mlock(a->addr, alen) : munlock(a->addr, alen);
		err = errno;
		record(K_MLOCK, ret, err);
		break;
	case 6:
		ret = msync(a->addr, alen, rnd(r, 2) ? MS_SYNC : MS_ASYNC | MS_INVALIDATE);
		err = errno;
		record(K_MSYNC, ret, err);
		break;
	case 7: {
		unsigned char vec[64];
		size_t len = a->len < 64 * PAGE ? a->len : 64 * PAGE;

		ret = mincore(a->addr, len, vec);
		err = errno;
		record(K_MINCORE, ret, err);
		break;
	}
	case 8: {
		/* No GUP into attachments: the pages are reached only through the fault path. */
		char buf[64];
		struct iovec l = { buf, sizeof(buf) }, rem = { a->addr, sizeof(buf) };

		ret = syscall(SYS_process_vm_readv, getpid(), &l, 1UL, &rem, 1UL, 0UL);
		err = errno;
		record(K_VM_READV, ret, err);
		if (ret > 0)
			failure(C_f_oracle, "process_vm_readv read %ld bytes of an attachment", ret);
		break;
	}
	case 9: {
		char buf[64];
		int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		ret = pread(fd, buf, sizeof(buf), (off_t)(uintptr_t)a->addr);
		err = errno;
		close(fd);
		record(K_PROC_MEM, ret, err);
		if (ret > 0)
			failure(C_f_oracle, "/proc/self/mem read %ld bytes of an attachment", ret);
		break;
	}
	case 10: {
		char path[96];
		int fd;

		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)(uintptr_t)a->addr,
			 (unsigned long)(uintptr_t)(a->addr + a->len));
		fd = open(path, O_RDWR | O_CLOEXEC);
		err = errno;
		record(K_MAP_FILES, fd, err);
		if (fd >= 0) {
			void *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);

			failure(C_f_oracle, "opened an attachment through %s (mmap of it: %s)", path,
				m == MAP_FAILED ? strerror(errno) : "succeeded");
			if (m != MAP_FAILED)
				munmap(m, PAGE);
			close(fd);
		}
		break;
	}
	default: {
		/* Attachments are not inherited. */
		pid_t pid = fork();
		int status;
		bool probe_ok;

		if (pid == 0) {
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = probe_child_segv;
			sigaction(SIGSEGV, &sa, NULL);
			signal(SIGBUS, SIG_DFL);
			(void)*(volatile char *)a->addr;
			_exit(3);
		}
		if (pid < 0)
			break;
		while (waitpid(pid, t->kbuf, 0) < 0 && errno == EINTR)
			;
		status = *t->kbuf;
		/* Killed by SIGSEGV itself: its signal frame could not be written (injected failure). */
		probe_ok = (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_PROBE_SEGV) ||
			   (cfg.faults && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
		record(K_FORK_PROBE, probe_ok ? 0 : -1, EPERM);
		if (!probe_ok)
			failure(C_f_oracle, "forked child touching an attachment: status %#x (want SIGSEGV)", status);
		break;
	}
	}
	/* mremap returns an address: only MAP_FAILED is a failure. */
	if ((op == 2 || op == 3) && (void *)(intptr_t)ret != MAP_FAILED)
		ret = 0;
	hist_add(a, opname[op], ret);
}

/* The exporting side changes its memory under whoever attached it. */
static void do_exp_mm(struct fth *t)
{
	struct rng *r = &t->rng;
	size_t first = rnd(r, EXP_PAGES), n = 1 + rnd(r, (uint32_t)(EXP_PAGES - first));
	char *addr = W.exp + first * PAGE;
	size_t len = n * PAGE;
	long ret = 0;

	switch (rnd(r, 5)) {
	case 0:
		if (!W.in_child)
			pthread_rwlock_wrlock(&W.va_lock);
		ret = mmap(addr, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == addr ? 0 : -1;
		/* A failed MAP_FIXED may have unmapped the range already: fill it again. */
		for (int i = 0; i < 1000 && ret; i++)
			if (mmap(addr, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == addr)
				break;
		if (!W.in_child)
			pthread_rwlock_unlock(&W.va_lock);
		break;
	case 1:
		ret = mprotect(addr, len, rnd(r, 2) ? PROT_READ : PROT_NONE);
		nap_us(rnd(r, 2000));
		if (mprotect(addr, len, RW))
			ret = -1;
		break;
	case 2:
		ret = madvise(addr, len, MADV_DONTNEED);
		break;
	case 3:
		/* Guarded: the other thread may have these pages PROT_NONE right now. */
		for (size_t i = 0; i < n; i++)
			guarded_touch(addr + i * PAGE, true);
		break;
	default: {
		pid_t pid = fork(); /* COW */

		if (pid == 0)
			_exit(0);
		if (pid > 0)
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		for (size_t i = 0; i < n; i++)
			guarded_touch(addr + i * PAGE, true);
		break;
	}
	}
	record(K_EXP_MM, ret, errno);
}

/*
 * Futex operations with an attachment address: FUTEX_WAKE_OP writes uaddr2, and on
 * a fault the kernel faults it in through fixup_user_fault() (no fault retry).
 */
static void do_futex(struct fth *t)
{
	struct rng *r = &t->rng;
	struct fatt *a;
	int local = 0;
	long ret;

	if (!t->natt)
		return;
	a = &t->att[rnd(r, (uint32_t)t->natt)];
	if (a->frag)
		return;
	if (a->safe >= 4 && rnd(r, 2))
		/* It writes uaddr2 (adds 0): only where the exporter has its W.exp. */
		ret = syscall(SYS_futex, &local, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1,
			      (uint32_t *)(a->addr + (rnd(r, (uint32_t)a->safe) & ~3U)),
			      FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0));
	else
		ret = syscall(SYS_futex, (uint32_t *)(a->addr + (rnd(r, (uint32_t)a->len) & ~3U)),
			      FUTEX_WAKE | (rnd(r, 2) ? FUTEX_PRIVATE_FLAG : 0), 1, NULL, NULL, 0);
	record(K_FUTEX, ret, errno);
}

static void do_devfile(struct fth *t)
{
	char buf[16] = { 0 };
	void *m;
	long ret;

	if (rnd(&t->rng, 2)) {
		m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, W.fd, 0);
		record(K_DEV_MMAP, m == MAP_FAILED ? -1 : 0, errno);
		if (m != MAP_FAILED) {
			failure(C_f_oracle, "mmap of /dev/xpmem succeeded");
			munmap(m, PAGE);
		}
		return;
	}
	ret = rnd(&t->rng, 2) ? read(W.fd, buf, sizeof(buf)) : write(W.fd, buf, sizeof(buf));
	record(K_DEV_RW, ret, errno);
	if (ret >= 0)
		failure(C_f_oracle, "read/write on /dev/xpmem returned %ld", ret);
}

/*
 * XPMEM_CMD_QUERY: hostile headers and buffers; records must be well formed, and a
 * caller without CAP_SYS_ADMIN must only see objects of its own uid.
 */
static void do_query(struct fth *t)
{
	static const uint32_t rsize[6] = { 0, sizeof(struct xpmem_segment_info), sizeof(struct xpmem_access_info),
					   sizeof(struct xpmem_attachment_info), sizeof(struct xpmem_stats_info),
					   sizeof(struct xpmem_node_info) };
	struct rng *r = &t->rng;
	struct xpmem_cmd_query q = { 0 }, back;
	unsigned char big[96] = { 0 };
	uint32_t argsz = sizeof(q);
	int k = pick_apk(t), err, bufk = 0;
	bool tail_nonzero = false, bad;
	uint64_t size;
	struct want w;
	void *p;
	long ret;

	q.kind = rnd(r, 8) ? 1 + rnd(r, 5) : (uint32_t)rnd64(r) % 8;
	switch (rnd(r, 10)) {
	case 0: q.buf = 0; break;
	case 1: q.buf = (uintptr_t)W.hole; bufk = 1; break;
	case 2: q.buf = (uintptr_t)t->ro_alias; bufk = 1; break;
	case 3: q.buf = KERNEL_ADDR; bufk = 1; break;
	case 4: q.buf = (uintptr_t)(t->qbuf + QBUF_SIZE - 8); bufk = 2; break; /* runs into PROT_NONE */
	default: q.buf = (uintptr_t)t->qbuf; break;
	}
	switch (rnd(r, 8)) {
	case 0: q.buf_size = 0; break;
	case 1: q.buf_size = 1 + rnd(r, 100); break;
	case 2: q.buf_size = (16U << 20) + rnd(r, 2); break;
	case 3: q.buf_size = (uint32_t)rnd64(r); break;
	default: q.buf_size = 1 + rnd(r, QBUF_SIZE); break;
	}
	if (q.buf == (uintptr_t)t->qbuf && q.buf_size > QBUF_SIZE)
		bufk = 2; /* records may run past the buffer into the guard page */
	q.pid = rnd(r, 4) ? 0 : rnd(r, 2) ? (int32_t)getpid() : (int32_t)rnd64(r);
	q.segid = rnd(r, 4) ? 0 : rnd(r, 2) && t->nseg ? t->seg[rnd(r, (uint32_t)t->nseg)].id : (int64_t)rnd64(r);
	q.pad = rnd(r, 12) ? 0 : (uint32_t)rnd64(r);
	q.record_size = (uint32_t)rnd64(r); /* outputs: garbage in */
	q.count = (uint32_t)rnd64(r);
	q.total = (uint32_t)rnd64(r);
	switch (rnd(r, 8)) {
	case 0: argsz = rnd(r, (uint32_t)sizeof(q)); break;
	case 1: argsz = sizeof(q) + 8 * (1 + rnd(r, 5)); break;
	case 2:
		argsz = sizeof(q) + 8 * (1 + rnd(r, 5));
		tail_nonzero = true;
		break;
	default: break;
	}
	q.argsz = argsz;
	memcpy(big, &q, sizeof(q));
	if (tail_nonzero)
		big[sizeof(q) + rnd(r, argsz - (uint32_t)sizeof(q))] = 1;
	p = place(t, &k, big, argsz < 8 ? 8 : argsz);
	ret = xioctl(t, K_QUERY, XPMEM_CMD_QUERY, p, &err);

	bad = argsz < sizeof(q) || tail_nonzero || q.pad || q.pid < 0 || q.segid < 0 || q.buf_size > (16U << 20) ||
	      q.kind < 1 || q.kind > XPMEM_QUERY_NODES;
	if (bad)
		w = WANT(WBIT(EINVAL));
	else if (bufk && q.buf_size >= rsize[q.kind])
		w = WANT(1 | WBIT(EFAULT)); /* EFAULT if a record is written there */
	else if (bufk == 0 && q.buf == 0 && q.buf_size >= rsize[q.kind])
		w = WANT(1 | WBIT(EFAULT));
	else
		w = WANT(1);
	if (k == AP_ATTACH)
		w = W_ANY;
	else if (apk_faults(k))
		w = WANT(WBIT(EFAULT) | WBIT(EINVAL));
	else if (k == AP_RO && !bad)
		w = WANT(WBIT(EFAULT));
	oracle(t, K_QUERY, ret, err, w, "kind %u buf %#" PRIx64 " size %u pid %d segid %#" PRIx64 " pad %u argsz %u",
	       q.kind, (uint64_t)q.buf, q.buf_size, q.pid, (uint64_t)q.segid, q.pad, argsz);
	if (ret != 0 || k == AP_ATTACH || bad)
		return;
	fetch(k, p, &back, sizeof(back));
	size = rsize[q.kind];
	if (back.record_size != size || back.count > q.buf_size / size || back.total < back.count) {
		failure(C_f_oracle, "QUERY kind %u: record_size %u (want %" PRIu64 "), count %u, total %u, buf_size %u",
			q.kind, back.record_size, size, back.count, back.total, q.buf_size);
		return;
	}
	if (q.kind == XPMEM_QUERY_STATS && back.total != 1)
		failure(C_f_oracle, "QUERY stats: total %u, want 1", back.total);
	/* The suite's guest joins no fabric: no node records. */
	if (q.kind == XPMEM_QUERY_NODES && back.total != 0)
		failure(C_f_oracle, "QUERY nodes: total %u outside a fabric, want 0", back.total);
	if (q.buf != (uintptr_t)t->qbuf || W.priv)
		return;
	/* Unprivileged: only records of its own uid (and the pid filter honoured). */
	for (uint32_t i = 0; i < back.count && (i + 1) * size <= QBUF_SIZE; i++) {
		const char *rec = t->qbuf + i * size;
		uint32_t uid = 0;
		int32_t pid = 0;

		if (q.kind == XPMEM_QUERY_SEGMENTS) {
			uid = ((const struct xpmem_segment_info *)rec)->owner_uid;
			pid = ((const struct xpmem_segment_info *)rec)->owner_pid;
		} else if (q.kind == XPMEM_QUERY_ACCESSES) {
			uid = ((const struct xpmem_access_info *)rec)->uid;
			pid = ((const struct xpmem_access_info *)rec)->pid;
		} else if (q.kind == XPMEM_QUERY_ATTACHMENTS) {
			uid = ((const struct xpmem_attachment_info *)rec)->uid;
			pid = ((const struct xpmem_attachment_info *)rec)->pid;
		} else {
			break;
		}
		if (uid != geteuid())
			failure(C_f_oracle, "QUERY kind %u as uid %u returned a record of uid %u", q.kind,
				(unsigned)geteuid(), uid);
		if (q.pid && pid != q.pid)
			failure(C_f_oracle, "QUERY kind %u with pid filter %d returned pid %d", q.kind, q.pid, pid);
	}
}

/* XPMEM_CMD_PING outside a fabric: EPERM without CAP_SYS_ADMIN, else EINVAL or ENOTCONN. */
static void do_ping(struct fth *t)
{
	struct rng *r = &t->rng;
	struct xpmem_cmd_ping c = { 0 };
	int k = pick_apk(t), err;
	bool bad;
	struct want w;
	void *p;
	long ret;

	c.node = rnd(r, 4) ? 1 + rnd(r, 2047) : (uint32_t)rnd64(r);
	c.size = rnd(r, 4) ? rnd(r, 4097) : (uint32_t)rnd64(r);
	c.rtt_ns = rnd64(r);
	p = place(t, &k, &c, sizeof(c));
	ret = xioctl(t, K_PING, XPMEM_CMD_PING, p, &err);
	bad = c.node < 1 || c.node > 2047 || c.size > 4096;
	/* ENOTCONN (no daemon) is beyond the oracle's errno bits: checked here. */
	if (geteuid() == 0 && !bad && !apk_faults(k) && k != AP_ATTACH) {
		if (ret != -1 || (err != ENOTCONN && !(cfg.faults && err == ENOMEM)))
			failure(C_f_oracle, "thread %d: PING node %u size %u: got %s, want ENOTCONN",
				t->idx, c.node, c.size, ret >= 0 ? "success" : errname(err));
		return;
	}
	if (geteuid() != 0)
		w = WANT(WBIT(EPERM));
	else if (k == AP_ATTACH || apk_faults(k))
		w = W_ANY; /* EFAULT, or ENOTCONN for a copy that happened to work */
	else
		w = WANT(WBIT(EINVAL));
	oracle(t, K_PING, ret, err, w, "node %u size %u", c.node, c.size);
}

/* ------------------------------------------------------------------ workers */

static void one_action(struct fth *t);

/* A child sharing the parent's descriptor issues a few requests, then vanishes. */
static void do_fork_child(struct fth *t)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		/*
		 * Its own process and address space (new mm_token, from the atfork
		 * handler): nothing of the parent's lists is its own any more.
		 */
		W.in_child = true;
		t->nseg = t->nap = t->natt = 0;
		t->nsegdead = t->napdead = 0;
		for (int i = 0; i < 1 + (int)rnd(&t->rng, 20); i++)
			one_action(t);
		_exit(0);
	}
	if (pid < 0)
		return;
	count(C_fork_children);
	while (waitpid(pid, t->kbuf, 0) < 0 && errno == EINTR)
		;
	status = *t->kbuf;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		failure(C_f_crash, "forked child of a worker ended with status %#x", status);
}

static void one_action(struct fth *t)
{
	unsigned x = rnd(&t->rng, 1000);

	if (x < 130)
		do_make(t);
	else if (x < 210)
		do_remove_release(t, true);
	else if (x < 350)
		do_get(t);
	else if (x < 430)
		do_remove_release(t, false);
	else if (x < 590) {
		va_shared();
		do_attach(t, false);
		va_unlock();
	} else if (x < 660) {
		va_shared();
		do_attach(t, true);
		va_unlock();
	}
	else if (x < 760)
		do_detach(t);
	else if (x < 790)
		do_simple(t);
	else if (x < 830)
		do_unknown(t);
	else if (x < 900)
		do_touch(t);
	else if (x < 950) {
		/*
		 * Exclusive: a failed mremap(MREMAP_FIXED) has already unmapped its target,
		 * and the cleanup munmap must not hit what another thread placed there.
		 */
		if (!W.in_child)
			pthread_rwlock_wrlock(&W.va_lock);
		do_att_mm(t);
		va_unlock();
	}
	else if (x < 975)
		do_exp_mm(t);
	else if (x < 985) {
		if (cfg.futex && rnd(&t->rng, 2))
			do_futex(t);
		else if (rnd(&t->rng, 4))
			do_query(t);
		else
			do_ping(t);
	}
	else if (x < 993) {
		va_shared();
		do_devfile(t);
		va_unlock();
	}
	else
		do_fork_child(t);
}

static void *worker_thread(void *arg)
{
	struct fth *t = arg;

	if (t->idx % 2)
		prepare_stacks(t->altstack, 48 * 1024);
	while (!atomic_load(&S->stop) && now_ms() < W.end_ms)
		one_action(t);
	atomic_store(&W.th1_done, true);
	return NULL;
}

static void *map_or_die(void *addr, size_t len, int prot, int flags, int fd)
{
	void *p = mmap(addr, len, prot, flags, fd, 0);

	if (p == MAP_FAILED) {
		failure(C_f_internal, "worker mmap: %s", strerror(errno));
		_exit(EXIT_BROKEN);
	}
	return p;
}

static bool write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

static void worker_main(int idx, int gen) __attribute__((noreturn));
static void worker_main(int idx, int gen)
{
	bool drop = idx % 4 == 2, userns = idx % 4 == 3;
	struct rng r;

	rng_seed(&r, cfg.seed, (uint64_t)idx << 32 | (uint64_t)gen);
	W.idx = idx;
	W.priv = true;
	pthread_rwlock_init(&W.va_lock, NULL);
	W.fd = open(XPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (W.fd < 0) {
		failure(C_f_internal, "worker open %s: %s", XPMEM_DEVICE_PATH, strerror(errno));
		_exit(EXIT_BROKEN);
	}
	W.exp = map_or_die(NULL, EXP_PAGES * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	memset(W.exp, 0x11, EXP_PAGES * PAGE);
	W.rop = map_or_die(NULL, RO_PAGES * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	memset(W.rop, 0x22, RO_PAGES * PAGE);
	mprotect(W.rop, RO_PAGES * PAGE, PROT_READ);
	W.nonep = map_or_die(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	/*
	 * Never mapped: between the program and the top-down mmap area, and nothing here
	 * maps with a hint. (A page unmapped by us could be reused by the next mmap.)
	 */
	W.hole = (char *)(1UL << 44);
	for (int i = 0; i < 2; i++) {
		struct fth *t = &W.th[i];
		int mfd = (int)syscall(SYS_memfd_create, "xpmem-fuzz", 0U);

		memset(t, 0, sizeof(*t));
		t->idx = idx * 2 + i;
		t->fd_nth = -1;
		rng_seed(&t->rng, r.s, (uint64_t)i + 1);
		/*
		 * Everything the kernel writes into is MAP_SHARED: after a fork, private pages
		 * are COW-shared and a kernel write to them needs an allocation, which fault
		 * injection may fail (a spurious EFAULT, or a SIGSEGV for a signal frame).
		 */
		t->scratch = map_or_die(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1);
		memset(t->scratch, 0, PAGE);
		mprotect(t->scratch + PAGE, PAGE, PROT_NONE); /* guard: arguments straddle into it */
		if (mfd < 0 || ftruncate(mfd, PAGE)) {
			failure(C_f_internal, "memfd: %s", strerror(errno));
			_exit(EXIT_BROKEN);
		}
		t->rw_alias = map_or_die(NULL, PAGE, RW, MAP_SHARED, mfd);
		t->ro_alias = map_or_die(NULL, PAGE, PROT_READ, MAP_SHARED, mfd);
		close(mfd);
		t->altstack = map_or_die(NULL, ALTSTACK_SIZE + PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1);
		memset(t->altstack, 0, ALTSTACK_SIZE + PAGE);
		t->kbuf = (int *)(t->altstack + ALTSTACK_SIZE);
		t->qbuf = map_or_die(NULL, QBUF_SIZE + PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1);
		memset(t->qbuf, 0, QBUF_SIZE); /* populated: kernel writes need no allocation */
		mprotect(t->qbuf + QBUF_SIZE, PAGE, PROT_NONE); /* records may run into it */
	}
	install_fault_handler();
	prepare_stacks(W.th[0].altstack, 256 * 1024);
	/*
	 * Everything resident before failures are injected: a page-in of the program
	 * or a library from the (9p) root file system could fail and raise SIGBUS.
	 * The exported regions stay unlocked (MADV_DONTNEED refuses locked pages).
	 */
	if (cfg.faults && mlockall(MCL_CURRENT) == 0) {
		munlock(W.exp, EXP_PAGES * PAGE);
		munlock(W.rop, RO_PAGES * PAGE);
	}
	/*
	 * Allocation failures for this task and its threads from now on (inherited).
	 * make-it-fail needs CAP_SYS_RESOURCE (init namespace) and fail-nth an fd opened
	 * before dropping privileges, so both are set up first.
	 */
	if (cfg.faults && !drop)
		W.th[0].fd_nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (userns) {
		/*
		 * Root of its own user namespace with its own IPC namespace: others' ids are
		 * ENOENT. No make-it-fail here (only fail-nth around its requests): injected
		 * failures inside unshare() make the sysctl registration dump a stack.
		 */
		if (unshare(CLONE_NEWUSER | CLONE_NEWIPC) == 0)
			W.userns = true;
		else if (unshare(CLONE_NEWIPC) != 0)
			userns = false;
	} else if (cfg.faults) {
		write_str("/proc/thread-self/make-it-fail", "1");
	}
	if (drop) {
		/* Injected failures may hit the credential change itself: retry. */
		for (int i = 0; i < 1000 && (setgroups(0, NULL) || setgid(cfg.uid) || setuid(cfg.uid)); i++)
			;
		if (getuid() != cfg.uid) {
			failure(C_f_internal, "cannot switch to uid %u: %s", (unsigned)cfg.uid, strerror(errno));
			_exit(EXIT_BROKEN);
		}
		W.priv = false;
	}
	count(C_workers);
	W.end_ms = now_ms() + 1000 + rnd(&r, 4000);
	W.th1 = pthread_create(&W.th[1].th, NULL, worker_thread, &W.th[1]) == 0;
	worker_thread(&W.th[0]);
	switch (rnd(&r, 10)) {
	case 0:
	case 1:
		if (drop || userns)
			break;
		/* exec tears the old address space (and everything it owns) down. */
		/*
		 * Let the new image load: with failures still armed the loader's mmaps
		 * fail. Opening the switch may itself meet an injected failure: retry,
		 * and leave without exec if it never works.
		 */
		for (int i = 0; i < 100; i++) {
			if (write_str("/proc/thread-self/make-it-fail", "0")) {
				count(C_workers_exec);
				execl("/proc/self/exe", "xpmem-fuzz", "--exec-child", (char *)NULL);
				break;
			}
		}
		_exit(0);
	case 2:
	case 3:
	case 4:
		/*
		 * Orderly: wait for the other thread to finish its request. Not pthread_join:
		 * the kernel's clear of the thread id may fail under fault injection.
		 */
		for (int i = 0; i < 1000 && W.th1 && !atomic_load(&W.th1_done); i++)
			nap_us(10000);
		_exit(0);
	default:
		break;
	}
	count(C_workers_abrupt);
	_exit(0); /* the other thread may be mid-request */
}

/* ------------------------------------------------------------------ fault injection */

static const char *const fi_dirs[] = { "/sys/kernel/debug/failslab", "/sys/kernel/debug/fail_page_alloc" };
#define FI_SAVE 10
static struct {
	char path[128];
	char val[64];
} fi_saved[2 * FI_SAVE + 8];
static int fi_nsaved;

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static void fi_set(const char *dir, const char *file, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (fi_nsaved < (int)(sizeof(fi_saved) / sizeof(fi_saved[0])) &&
	    read_str(path, fi_saved[fi_nsaved].val, sizeof(fi_saved[0].val)) == 0) {
		snprintf(fi_saved[fi_nsaved].path, sizeof(fi_saved[0].path), "%s", path);
		fi_nsaved++;
	}
	write_str(path, val);
}

static int mount_debugfs(void)
{
	return mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
}

static bool fi_setup(void)
{
	struct stat st;
	char prob[16], verbose[16];

	if (stat("/sys/kernel/debug/failslab", &st) != 0) {
		/* debugfs may just not be mounted. */
		if (mount_debugfs() != 0 || stat("/sys/kernel/debug/failslab", &st) != 0)
			return false;
	}
	if (stat("/proc/self/make-it-fail", &st) != 0)
		return false;
	snprintf(prob, sizeof(prob), "%u", cfg.fault_prob);
	snprintf(verbose, sizeof(verbose), "%u", cfg.fail_verbose);
	for (int i = 0; i < 2; i++) {
		const char *d = fi_dirs[i];

		if (stat(d, &st) != 0)
			continue;
		fi_set(d, "task-filter", "Y");
		fi_set(d, "probability", prob);
		fi_set(d, "interval", "1");
		fi_set(d, "times", "-1");
		fi_set(d, "space", "0");
		fi_set(d, "verbose", verbose);
		fi_set(d, "ignore-gfp-wait", "N");
		if (i == 1) {
			fi_set(d, "ignore-gfp-highmem", "N");
			fi_set(d, "min-order", "0");
		}
	}
	return true;
}

static void fi_restore(void)
{
	/* Probability first: nothing fails while the rest is put back. */
	for (int i = 0; i < fi_nsaved; i++)
		if (strstr(fi_saved[i].path, "/probability"))
			write_str(fi_saved[i].path, fi_saved[i].val);
	for (int i = 0; i < fi_nsaved; i++)
		write_str(fi_saved[i].path, fi_saved[i].val);
}

/* ------------------------------------------------------------------ orchestrator */

static const char *const stat_names[] = { "segments_live", "accesses_live", "attachments_live", "makes",
					  "removes", "gets", "releases" };
#define NSTATS 7

static int read_stats(long long v[NSTATS])
{
	FILE *f = fopen("/proc/xpmem/stats", "re");
	char name[64];
	long long x;
	int seen = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &x) == 2)
		for (int i = 0; i < NSTATS; i++)
			if (!strcmp(name, stat_names[i])) {
				v[i] = x;
				seen |= 1 << i;
			}
	fclose(f);
	return seen == (1 << NSTATS) - 1 ? 0 : -1;
}

/* What the crash handler of worker pid recorded, if anything. */
static const char *crash_info(pid_t pid)
{
	static char buf[256];

	if (atomic_load(&S->crash_pid) != pid)
		return "";
	snprintf(buf, sizeof(buf), " (unexpected signal %d, si_code %d, address %#" PRIx64
		 " in region %d: 1 exported, 2 read-only, 10+ scratch, 20+ signal stack, 30+ query buffer, "
		 "40+ memfd, 50+ an attachment, 0 other)",
		 atomic_load(&S->crash_sig), atomic_load(&S->crash_code), atomic_load(&S->crash_addr),
		 atomic_load(&S->crash_region));
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xpmem-fuzz [options]\n"
		   "  -d, --duration S      seconds of fuzzing (default 25)\n"
		   "  -s, --seed N          seed (default: time); the choices, not the timing, repeat\n"
		   "  -w, --workers N       worker processes at any time (1..%d, default 4: two root,\n"
		   "                        one as --uid, one in its own user+IPC namespace)\n"
		   "  -u, --uid U           the second uid (default 65534)\n"
		   "  -f, --fault-prob P    failslab/fail_page_alloc probability in %% (default 3)\n"
		   "  -n, --no-faults       no fault injection even where available\n"
		   "  -V, --fail-verbose N  fault injection verbosity (0 silent, 1 one message, 2 +stack; default 1)\n"
		   "  -p, --max-print N     failure messages printed (default 30)\n"
		   "      --futex           also futex ops on attachments (FUTEX_WAKE_OP faults them in\n"
		   "                        through fixup_user_fault, without fault retry: with the module\n"
		   "                        of this writing that can deadlock mutually attached processes,\n"
		   "                        see tests/stress/repro_futex_deadlock.c)\n",
		MAX_WORKERS);
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "xpmem-fuzz: %s must be %u..%u\n", what, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },	  { "seed", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },	  { "uid", required_argument, NULL, 'u' },
		{ "fault-prob", required_argument, NULL, 'f' },	  { "no-faults", no_argument, NULL, 'n' },
		{ "fail-verbose", required_argument, NULL, 'V' }, { "max-print", required_argument, NULL, 'p' },
		{ "exec-child", no_argument, NULL, 'E' },	  { "help", no_argument, NULL, 'h' },
		{ "futex", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	pid_t pids[MAX_WORKERS];
	int gens[MAX_WORKERS];
	long long before[NSTATS], after[NSTATS];
	bool have_stats, seeded = false;
	int64_t start;
	uint64_t fails = 0, distinct = 0;
	char buf[32];
	int opt;

	while ((opt = getopt_long(argc, argv, "d:s:w:u:f:nV:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': cfg.duration = parse_uint(optarg, 1, 1000000, "--duration"); break;
		case 's':
			cfg.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'w': cfg.nworkers = parse_uint(optarg, 1, MAX_WORKERS, "--workers"); break;
		case 'u': cfg.uid = parse_uint(optarg, 1, 1u << 30, "--uid"); break;
		case 'f': cfg.fault_prob = parse_uint(optarg, 0, 100, "--fault-prob"); break;
		case 'n': cfg.want_faults = false; break;
		case 'V': cfg.fail_verbose = parse_uint(optarg, 0, 2, "--fail-verbose"); break;
		case 'p': cfg.max_print = parse_uint(optarg, 0, 1000000, "--max-print"); break;
		case 'E': return 0; /* the image a worker execs into: its old mm is gone, done */
		case 'F': cfg.futex = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		cfg.seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
	}
	/*
	 * With fault injection, glibc's rseq area (COW-shared after a fork) may not be
	 * writable by the kernel on return to user space, which kills with SIGSEGV: run
	 * without rseq. Re-exec once with the tunable (and the seed, so it stays the same).
	 */
	if (cfg.want_faults && access("/proc/self/make-it-fail", F_OK) == 0 && !getenv("XPMEM_FUZZ_REEXEC")) {
		const char *old = getenv("GLIBC_TUNABLES");
		char tun[512], seedarg[32], **nargv = calloc((size_t)argc + 3, sizeof(*nargv));

		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		snprintf(tun, sizeof(tun), "%s%sglibc.pthread.rseq=0", old ? old : "", old ? ":" : "");
		snprintf(seedarg, sizeof(seedarg), "%#" PRIx64, cfg.seed);
		if (nargv && n > 0) {
			self[n] = '\0';
			for (int i = 0; i < argc; i++)
				nargv[i] = argv[i];
			nargv[argc] = (char *)"--seed";
			nargv[argc + 1] = seedarg;
			setenv("GLIBC_TUNABLES", tun, 1);
			setenv("XPMEM_FUZZ_REEXEC", "1", 1);
			execv(self, nargv); /* by name: the process keeps its name in kernel logs */
			free(nargv);
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr, "xpmem-fuzz: must run as root (workers switch uid, fault injection)\n");
		return 2;
	}
	{
		int fd = open(XPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);

		if (fd < 0) {
			fprintf(stderr, "xpmem-fuzz: %s: %s\n", XPMEM_DEVICE_PATH, strerror(errno));
			return 2;
		}
		close(fd);
	}
	/* TASK_SIZE: 5-level paging maps above 2^47 when asked to. */
	{
		void *hi = mmap((void *)(1UL << 47), PAGE, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		task_size = hi == (void *)(1UL << 47) ? (1ULL << 56) - PAGE : (1ULL << 47) - PAGE;
		if (hi != MAP_FAILED)
			munmap(hi, PAGE);
	}
	mmap_min = read_str("/proc/sys/vm/mmap_min_addr", buf, sizeof(buf)) == 0 ? strtoull(buf, NULL, 0) : 65536;

	S = mmap(NULL, sizeof(*S), RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED) {
		perror("xpmem-fuzz: mmap");
		return 2;
	}
	have_stats = read_stats(before) == 0;
	cfg.faults = cfg.want_faults && cfg.fault_prob > 0 && fi_setup();
	printf("xpmem-fuzz: seed %#" PRIx64 " (reproduce the choices with --seed), %u s, %u workers x 2 threads, "
	       "second uid %u, fault injection %s\n",
	       cfg.seed, cfg.duration, cfg.nworkers, (unsigned)cfg.uid,
	       cfg.faults ? "on (failslab + fail_page_alloc, task-filter, fail-nth)" : "unavailable/off");
	if (cfg.faults)
		printf("xpmem-fuzz: fault injection: probability %u%%, verbose %u\n", cfg.fault_prob, cfg.fail_verbose);

	/* Every fork() child (worker, or a worker's child) owns a new address space. */
	pthread_atfork(NULL, NULL, new_mm_token);
	start = now_ms();
	for (unsigned i = 0; i < cfg.nworkers; i++) {
		gens[i] = 0;
		pids[i] = -1;
	}
	while (now_ms() - start < (int64_t)cfg.duration * 1000) {
		int status;
		pid_t pid;

		for (unsigned i = 0; i < cfg.nworkers; i++) {
			if (pids[i] > 0)
				continue;
			pid = fork();
			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				worker_main((int)i, gens[i]);
			}
			pids[i] = pid;
			gens[i]++;
		}
		pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0) {
			nap_us(20000);
			continue;
		}
		for (unsigned i = 0; i < cfg.nworkers; i++)
			if (pids[i] == pid)
				pids[i] = -1;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failure(C_f_crash, "worker pid %d ended with %s %d%s", pid,
				WIFEXITED(status) ? "exit status" : "signal",
				WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), crash_info(pid));
	}
	atomic_store(&S->stop, 1);
	for (int64_t deadline = now_ms() + 60000, killed = 0;;) {
		int status, left = 0;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			for (unsigned i = 0; i < cfg.nworkers; i++)
				if (pids[i] == pid)
					pids[i] = -1;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failure(C_f_crash, "worker pid %d ended with %s %d%s", pid,
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), crash_info(pid));
			continue;
		}
		for (unsigned i = 0; i < cfg.nworkers; i++)
			left += pids[i] > 0;
		if (!left)
			break;
		if (now_ms() > deadline) {
			if (killed) {
				/* Unkillable (D state in the kernel): report, leave them. */
				failure(C_f_hang, "%d workers did not die from SIGKILL either", left);
				break;
			}
			failure(C_f_hang, "%d workers still running 60 s after the stop", left);
			for (unsigned i = 0; i < cfg.nworkers; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
			killed = true;
			deadline = now_ms() + 10000;
		}
		nap_us(20000);
	}
	if (cfg.faults)
		fi_restore();

	if (have_stats) {
		int64_t deadline = now_ms() + 10000;
		bool ok = false;

		while (read_stats(after) == 0) {
			ok = after[0] == before[0] && after[1] == before[1] && after[2] == before[2] &&
			     after[3] - before[3] == after[4] - before[4] && after[5] - before[5] == after[6] - before[6];
			if (ok || now_ms() > deadline)
				break;
			nap_us(50000);
		}
		if (!ok)
			failure(C_f_state,
				"after all workers exited: live segments %lld accesses %lld attachments %lld "
				"(before %lld %lld %lld), makes-removes %lld, gets-releases %lld",
				after[0], after[1], after[2], before[0], before[1], before[2],
				(after[3] - before[3]) - (after[4] - before[4]),
				(after[5] - before[5]) - (after[6] - before[6]));
		printf("xpmem-fuzz: module: %lld makes, %lld removes, %lld gets, %lld releases; live now %lld/%lld/%lld\n",
		       after[3] - before[3], after[4] - before[4], after[5] - before[5], after[6] - before[6],
		       after[0], after[1], after[2]);
	}

	printf("  outcomes (command: result count ...):\n");
	for (int k = 0; k < K_COUNT; k++) {
		char line[1024];
		size_t n = (size_t)snprintf(line, sizeof(line), "  %-24s", cls_name[k]);
		bool any = false;

		for (int o = 0; o < NOUT; o++) {
			uint64_t v = atomic_load(&S->out[k][o]);
			const char *nm;

			if (!v)
				continue;
			any = true;
			distinct++;
			nm = o == 0 ? "ok" : o == OUT_SIGBUS ? "SIGBUS" : o == OUT_SIGSEGV ? "SIGSEGV" :
			     o == OUT_OTHER ? "other" : errname(o);
			if (n < sizeof(line) - 40)
				n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %" PRIu64, nm, v);
		}
		if (any)
			printf("%s\n", line);
	}
	for (int i = 0; i < C_COUNT; i++) {
		uint64_t v = atomic_load(&S->c[i]);

		if (i >= C_FIRST_FAIL)
			fails += v;
		if (v || i < C_FIRST_FAIL)
			printf("  %-16s %10" PRIu64 "  %s\n", cnt_name[i], v, cnt_desc[i]);
	}
	printf("xpmem-fuzz: %" PRIu64 " calls in %.1f s, %" PRIu64 " distinct (command, result) outcomes, "
	       "fault injection %s, failures %" PRIu64 ": %s\n",
	       atomic_load(&S->c[C_calls]), (double)(now_ms() - start) / 1000.0, distinct,
	       cfg.faults ? "on" : "off", fails, fails ? "FAIL" : "PASS");
	return fails ? 1 : 0;
}
