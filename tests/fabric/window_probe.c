// SPDX-License-Identifier: GPL-2.0-only
/*
 * window_probe: proves, in every guest of tests/lab/run-fabric.sh at once, the facts
 * the cross-host fabric will rely on:
 *
 *  1. Handshake / window identity. Each node writes random nonces into pages of its
 *     own (locked) memory, finds their guest-physical addresses in /proc/self/pagemap,
 *     and publishes (physaddr, nonce) to its peers over TCP on the link-local links.
 *     Each peer reads the nonces back through the ivshmem BAR 2 mapping of the owner's
 *     RAM (/sys/bus/pci/devices/<bdf>/resource2) at the RAM-file offset of that
 *     address: P if P < below_4g, else P - 4 GiB + below_4g, and checks that no other
 *     window holds them: the window named for node j in fabric.conf maps node j.
 *     With a RAM split (run-fabric.sh --low), pages on both sides of 4 GiB are used.
 *  2. Coherent stores. Each peer writes an answer into the owner's page through its
 *     window; the owner finds every answer in its own memory.
 *  3. Cross-node atomics. Every node owns a counter; every node increments every
 *     counter (its own locally, the others through the windows) with
 *     __atomic_fetch_add, ITERS times each, all at once; every final value must be
 *     exactly ROUNDS * NODES * ITERS. It counts how often another node's increment came
 *     between two of its own, and repeats the round (up to 10) until there were 1000
 *     such interleavings (proof that they really raced); for information, it reports
 *     how many plain (non-atomic) increments a second counter loses meanwhile.
 *  4. With --fence (fabric-manager requests through XPMEM_FM_DIR, see
 *     tests/lab/fabric/README.md): node 1 watches a heartbeat that node 0 keeps
 *     writing, has the manager stop node 0 (the heartbeat must freeze, and a store into
 *     the frozen node must still land: the window is no fence), resume it (the
 *     heartbeat must move again), then has its own window onto node 0 unplugged with
 *     device_del: afterwards the device must be gone from sysfs, and the old mapping
 *     must either fault or no longer reach node 0's memory (reads and stores).
 *
 * Run (root, in a run-fabric.sh guest): fabric-window-probe [--iters N] [--samples N]
 *     [--max-mb N] [--port P] [--timeout S] [--fence] [--conf FILE]
 * Exit 0: every check passed; 1: a check failed; 2: usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE 4096UL
#define FOUR_GIB (1ULL << 32)
#define MAX_NODES 8
#define MAX_SAMPLES 64
#define CHUNK_PAGES 1024UL
#define MIN_INTERLEAVINGS 1000
#define MAX_ROUNDS 10	/* own memory is allocated 4 MiB at a time */

#define PAGE_MAGIC 0x4e49574d454d5058ULL	/* "XPMEMWIN" */
#define ANSWER_MIX 0x9e3779b97f4a7c15ULL
#define POKE_MIX 0xc2b2ae3d27d4eb4fULL
#define POKE2_MIX 0x165667b19e3779f9ULL

/* A sample page: header, then one 16-byte answer slot per reader. */
struct sample_page {
	uint64_t magic, node, nonce, phys;
	uint64_t pad[4];
	uint64_t answer[MAX_NODES][2];
};

/* The control page (page 0 of the first chunk): one word per cache line. */
struct ctrl_page {
	uint64_t counter;	/* the atomic counter this node owns */
	uint64_t pad0[7];
	uint64_t plain;		/* the non-atomic control counter */
	uint64_t pad1[7];
	uint64_t heartbeat;	/* --fence: written by node 0 all the time */
	uint64_t pad2[7];
	uint64_t poke;		/* --fence: written by node 1 while node 0 is stopped */
	uint64_t pad3[7];
	uint64_t poke2;		/* --fence: written by node 1 after its window is unplugged */
};

struct peer {
	bool present;
	char bdf[32], ip[32], netdev[32];
	uint64_t bar2, ram, below4g;
	volatile unsigned char *win;
	int fd;
	char rbuf[8192];
	size_t rlen;
	/* what the peer published */
	uint64_t ctrl_phys;
	int nsamples;
	uint64_t phys[MAX_SAMPLES], nonce[MAX_SAMPLES];
};

static int self = -1, nodes;
static char self_ip[32];
static uint64_t self_ram, self_below4g;
static struct peer peers[MAX_NODES];
static int port = 7100, timeout_s = 600, nsamples = 8, max_mb = 128;
static long iters = 100000;
static bool fence;
static double t_start;
static volatile struct ctrl_page *ctrl;
static uint64_t ctrl_phys;
static struct sample_page *own[MAX_SAMPLES];
static uint64_t own_phys[MAX_SAMPLES];
static int own_n;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("window_probe: node %d: ", self);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void __attribute__((noreturn)) fail(int code, const char *fmt, ...)
{
	va_list ap;

	printf("window_probe: node %d: FAIL: ", self);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(code);
}

static int remaining_ms(void)
{
	double left = t_start + timeout_s - now();

	return left > 0 ? (int)(left * 1000) + 1 : 0;
}

/* Guest-physical address -> offset in the owner's RAM file (= BAR 2 offset). */
static bool phys_to_off(uint64_t phys, uint64_t below4g, uint64_t ram, uint64_t *off)
{
	if (phys < below4g) {
		*off = phys;
		return true;
	}
	if (phys >= FOUR_GIB && phys - FOUR_GIB < ram - below4g) {
		*off = phys - FOUR_GIB + below4g;
		return true;
	}
	return false;
}

static void read_conf(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		fail(2, "cannot open %s: %s (not in a run-fabric.sh guest?)", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		int n;
		struct peer p = { .present = true };

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "self %d %31s %" SCNu64 " %" SCNu64, &self, self_ip,
			   &self_ram, &self_below4g) == 4)
			continue;
		if (sscanf(line, "peer %d %31s %" SCNu64 " %31s %" SCNu64 " %" SCNu64 " %31s",
			   &n, p.bdf, &p.bar2, p.ip, &p.ram, &p.below4g, p.netdev) == 7 &&
		    n >= 0 && n < MAX_NODES) {
			peers[n] = p;
			continue;
		}
		fail(2, "%s: cannot parse: %s", path, line);
	}
	fclose(f);
	if (self < 0 || self >= MAX_NODES)
		fail(2, "%s: no self line", path);
	nodes = self + 1;
	for (int j = 0; j < MAX_NODES; j++)
		if (peers[j].present && j + 1 > nodes)
			nodes = j + 1;
	for (int j = 0; j < nodes; j++)
		if (j != self && !peers[j].present)
			fail(2, "%s: no peer line for node %d", path, j);
	if (getenv("XPMEM_NODE") && atoi(getenv("XPMEM_NODE")) != self)
		fail(2, "XPMEM_NODE=%s but %s says node %d", getenv("XPMEM_NODE"), path, self);
	if (getenv("XPMEM_NODES") && atoi(getenv("XPMEM_NODES")) != nodes)
		fail(2, "XPMEM_NODES=%s but %s has %d nodes", getenv("XPMEM_NODES"), path, nodes);
}

static void map_windows(void)
{
	for (int j = 0; j < nodes; j++) {
		struct peer *p = &peers[j];
		char path[128];
		struct stat st;
		void *m;
		int fd;

		if (j == self)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", p->bdf);
		fd = open(path, O_RDWR | O_SYNC);
		if (fd < 0)
			fail(2, "open %s: %s", path, strerror(errno));
		if (fstat(fd, &st) || (uint64_t)st.st_size != p->bar2)
			fail(1, "%s: size %lld, fabric.conf says %" PRIu64, path,
			     (long long)st.st_size, p->bar2);
		if (p->bar2 < p->ram || (p->bar2 & (p->bar2 - 1)))
			fail(1, "window %s: BAR 2 of %" PRIu64 " bytes cannot map %" PRIu64
			     " bytes of RAM (or is not a power of two)", p->bdf, p->bar2, p->ram);
		m = mmap(NULL, p->bar2, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			fail(2, "mmap %s: %s", path, strerror(errno));
		close(fd);
		p->win = m;
	}
}

static uint64_t random64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		fail(2, "getrandom: %s", strerror(errno));
	return v;
}

/*
 * Own memory: locked anonymous chunks, until the sample pages can be taken on both
 * sides of 4 GiB (when this node's RAM is split) or max_mb is reached. The allocator
 * prefers the highest zone, so low pages come only once most high memory is in use.
 */
static void setup_own_memory(void)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	size_t total = 0, nchunks = 0, max_chunks = (size_t)max_mb * 256 / CHUNK_PAGES;
	unsigned char *chunks[4096];
	uint64_t *pfns[4096];
	size_t nlow = 0, nhigh = 0;
	bool split = self_ram > self_below4g;
	int fd;

	if (pm < 0)
		fail(2, "open /proc/self/pagemap: %s", strerror(errno));
	/* Keep compaction away from locked pages: their addresses were published. */
	fd = open("/proc/sys/vm/compact_unevictable_allowed", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "0", 1) != 1)
			say("note: cannot set vm.compact_unevictable_allowed=0");
		close(fd);
	}
	if (max_chunks < 1)
		max_chunks = 1;
	if (max_chunks > 4096)
		max_chunks = 4096;
	do {
		size_t len = CHUNK_PAGES * PAGE_SIZE;
		unsigned char *c = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t *e = malloc(CHUNK_PAGES * sizeof(*e));

		if (c == MAP_FAILED || !e)
			fail(2, "cannot allocate %zu bytes: %s", len, strerror(errno));
		madvise(c, len, MADV_NOHUGEPAGE);
		if (mlock(c, len))
			fail(2, "mlock: %s", strerror(errno));
		memset(c, 0, len);
		if (pread(pm, e, CHUNK_PAGES * sizeof(*e),
			  (off_t)((uintptr_t)c / PAGE_SIZE * sizeof(*e))) !=
		    (ssize_t)(CHUNK_PAGES * sizeof(*e)))
			fail(2, "read /proc/self/pagemap: %s", strerror(errno));
		for (size_t i = 0; i < CHUNK_PAGES; i++) {
			uint64_t pfn = e[i] & ((1ULL << 55) - 1);

			if (!(e[i] >> 63) || !pfn)
				fail(2, "pagemap shows no frame for a locked page (not root?)");
			e[i] = pfn * PAGE_SIZE;
			if (i == 0 && nchunks == 0)
				continue;	/* the control page */
			if (e[i] < FOUR_GIB)
				nlow++;
			else
				nhigh++;
		}
		chunks[nchunks] = c;
		pfns[nchunks++] = e;
		total += CHUNK_PAGES;
	} while (split && (!nlow || !nhigh) && nchunks < max_chunks);

	ctrl = (volatile struct ctrl_page *)chunks[0];
	ctrl_phys = pfns[0][0];
	/* Samples: half low, half high if there are both, spread over the chunks. */
	int want_low = nhigh ? nsamples / 2 : nsamples, want_high = nsamples - want_low;

	if (!nlow)
		want_low = 0, want_high = nsamples;
	for (int pass = 0; pass < 2; pass++) {
		size_t have = pass ? nhigh : nlow, step, seen = 0;
		int want = pass ? want_high : want_low, got = 0;

		if (!want || !have)
			continue;
		step = have / want ? have / want : 1;
		for (size_t k = 0; k < nchunks && got < want; k++)
			for (size_t i = 0; i < CHUNK_PAGES && got < want; i++) {
				uint64_t phys = pfns[k][i];

				if ((k == 0 && i == 0) || (phys >= FOUR_GIB) != (pass == 1))
					continue;
				if (seen++ % step)
					continue;
				own[own_n] = (struct sample_page *)(chunks[k] + i * PAGE_SIZE);
				own_phys[own_n++] = phys;
				got++;
			}
	}
	for (int s = 0; s < own_n; s++) {
		uint64_t off;

		if (!phys_to_off(own_phys[s], self_below4g, self_ram, &off))
			fail(1, "own page at phys %#" PRIx64 " is outside the RAM layout of "
			     "fabric.conf (RAM %" PRIu64 ", below 4G %" PRIu64 ")",
			     own_phys[s], self_ram, self_below4g);
		own[s]->node = (uint64_t)self;
		own[s]->nonce = random64();
		own[s]->phys = own_phys[s];
		__atomic_store_n(&own[s]->magic, PAGE_MAGIC, __ATOMIC_RELEASE);
	}
	close(pm);
	size_t lo = 0, hi = 0;

	for (int s = 0; s < own_n; s++)
		own_phys[s] < FOUR_GIB ? lo++ : hi++;
	say("%zu MiB of own memory locked; %d sample pages (%zu below 4G, %zu above; "
	    "RAM %" PRIu64 " MiB, below 4G %" PRIu64 " MiB)", total * PAGE_SIZE >> 20, own_n,
	    lo, hi, self_ram >> 20, self_below4g >> 20);
	if (split && (!lo || !hi))
		say("note: the RAM is split but the samples are on one side of 4 GiB only "
		    "(raise --max-mb)");
}

/* ---- control plane: one TCP connection per peer, text lines ---- */

static void send_line(int j, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n, off = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	while (off < n) {
		ssize_t w = write(peers[j].fd, buf + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail(1, "send to node %d: %s", j, strerror(errno));
		off += w;
	}
}

/* One line from peer p (node j, or -1 while it has not said who it is). */
static void recv_from(struct peer *p, int j, char *out, size_t size)
{
	for (;;) {
		char *nl = memchr(p->rbuf, '\n', p->rlen);

		if (nl) {
			size_t len = nl - p->rbuf;

			if (len >= size)
				fail(1, "line from node %d too long", j);
			memcpy(out, p->rbuf, len);
			out[len] = 0;
			p->rlen -= len + 1;
			memmove(p->rbuf, nl + 1, p->rlen);
			return;
		}
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		int r = poll(&pfd, 1, remaining_ms());

		if (r == 0)
			fail(1, "timeout waiting for node %d", j);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(1, "poll: %s", strerror(errno));
		}
		ssize_t n = read(p->fd, p->rbuf + p->rlen, sizeof(p->rbuf) - p->rlen);

		if (n == 0)
			fail(1, "node %d closed the connection", j);
		if (n < 0 && errno != EINTR)
			fail(1, "read from node %d: %s", j, strerror(errno));
		if (n > 0)
			p->rlen += n;
	}
}

static void recv_line(int j, char *out, size_t size)
{
	recv_from(&peers[j], j, out, size);
}

static void barrier(const char *name)
{
	char line[128];

	for (int j = 0; j < nodes; j++)
		if (j != self)
			send_line(j, "SYNC %s", name);
	for (int j = 0; j < nodes; j++) {
		if (j == self)
			continue;
		recv_line(j, line, sizeof(line));
		if (strncmp(line, "SYNC ", 5) || strcmp(line + 5, name))
			fail(1, "node %d sent '%s' at barrier %s", j, line, name);
	}
}

static void connect_peers(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), waiting = 0;
	double t0 = now();

	if (ls < 0 || inet_pton(AF_INET, self_ip, &a.sin_addr) != 1)
		fail(2, "bad address %s", self_ip);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, MAX_NODES))
		fail(2, "listen on %s:%d: %s", self_ip, port, strerror(errno));
	/* The lower nodes listen, the higher ones connect (and retry until it works). */
	for (int j = 0; j < self; j++) {
		struct sockaddr_in pa = { .sin_family = AF_INET, .sin_port = htons(port) };

		inet_pton(AF_INET, peers[j].ip, &pa.sin_addr);
		for (;;) {
			int s = socket(AF_INET, SOCK_STREAM, 0);

			if (connect(s, (struct sockaddr *)&pa, sizeof(pa)) == 0) {
				peers[j].fd = s;
				break;
			}
			close(s);
			if (!remaining_ms())
				fail(1, "cannot connect to node %d at %s: %s", j, peers[j].ip,
				     strerror(errno));
			usleep(200000);
		}
		setsockopt(peers[j].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		send_line(j, "HELLO %d", self);
	}
	for (int j = self + 1; j < nodes; j++)
		peers[j].fd = -1, waiting++;
	while (waiting) {
		struct pollfd pfd = { .fd = ls, .events = POLLIN };
		char line[64];
		int s, n;

		if (poll(&pfd, 1, remaining_ms()) <= 0)
			fail(1, "timeout waiting for the higher nodes to connect");
		s = accept(ls, NULL, NULL);
		if (s < 0)
			continue;
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* Read the HELLO in a scratch slot, then move what came after it in place. */
		static struct peer tmp;

		tmp.fd = s;
		tmp.rlen = 0;
		recv_from(&tmp, -1, line, sizeof(line));
		if (sscanf(line, "HELLO %d", &n) != 1 || n <= self || n >= nodes ||
		    peers[n].fd != -1)
			fail(1, "unexpected greeting '%s'", line);
		peers[n].fd = s;
		memcpy(peers[n].rbuf, tmp.rbuf, tmp.rlen);
		peers[n].rlen = tmp.rlen;
		waiting--;
	}
	close(ls);
	say("control connections to %d peers up in %.1f s", nodes - 1, now() - t0);
}

static void exchange(void)
{
	char line[256];

	for (int j = 0; j < nodes; j++) {
		if (j == self)
			continue;
		send_line(j, "INFO %d %" PRIu64 " %" PRIu64 " %#" PRIx64 " %d", self, self_ram,
			  self_below4g, ctrl_phys, own_n);
		for (int s = 0; s < own_n; s++)
			send_line(j, "PAGE %#" PRIx64 " %#" PRIx64, own_phys[s], own[s]->nonce);
	}
	for (int j = 0; j < nodes; j++) {
		struct peer *p = &peers[j];
		uint64_t ram, below4g;
		int n;

		if (j == self)
			continue;
		recv_line(j, line, sizeof(line));
		if (sscanf(line, "INFO %d %" SCNu64 " %" SCNu64 " %" SCNx64 " %d", &n, &ram,
			   &below4g, &p->ctrl_phys, &p->nsamples) != 5 || n != j ||
		    p->nsamples < 1 || p->nsamples > MAX_SAMPLES)
			fail(1, "bad INFO from node %d: %s", j, line);
		/* The split fact of fabric.conf must be what the peer itself reports. */
		if (ram != p->ram || below4g != p->below4g)
			fail(1, "node %d reports RAM %" PRIu64 " / below 4G %" PRIu64
			     ", fabric.conf says %" PRIu64 " / %" PRIu64, j, ram, below4g,
			     p->ram, p->below4g);
		for (int s = 0; s < p->nsamples; s++) {
			recv_line(j, line, sizeof(line));
			if (sscanf(line, "PAGE %" SCNx64 " %" SCNx64, &p->phys[s], &p->nonce[s]) != 2)
				fail(1, "bad PAGE from node %d: %s", j, line);
		}
	}
}

static volatile uint64_t *remote_word(int j, uint64_t phys, size_t byte_off)
{
	struct peer *p = &peers[j];
	uint64_t off;

	if (!phys_to_off(phys, p->below4g, p->ram, &off) || off + PAGE_SIZE > p->bar2)
		fail(1, "node %d's phys %#" PRIx64 " is outside its window %s", j, phys, p->bdf);
	return (volatile uint64_t *)(p->win + off + byte_off);
}

/* Steps 1 and 2 as the reader: find the peers' nonces, answer through the windows. */
static void check_windows(void)
{
	for (int j = 0; j < nodes; j++) {
		struct peer *p = &peers[j];
		int lo = 0, hi = 0;

		if (j == self)
			continue;
		for (int s = 0; s < p->nsamples; s++) {
			volatile uint64_t *w = remote_word(j, p->phys[s], 0);
			uint64_t magic = w[0], node = w[1], nonce = w[2];
			uint64_t off = (uint64_t)((volatile unsigned char *)w - p->win);

			if (magic != PAGE_MAGIC || node != (uint64_t)j || nonce != p->nonce[s])
				fail(1, "window %s (node %d) at offset %#" PRIx64 " for phys %#"
				     PRIx64 ": magic %#" PRIx64 " node %" PRIu64 " nonce %#" PRIx64
				     ", expected nonce %#" PRIx64, p->bdf, j, off, p->phys[s], magic,
				     node, nonce, p->nonce[s]);
			/* Identity: no other window shows this page. */
			for (int m = 0; m < nodes; m++) {
				uint64_t o;

				if (m == self || m == j ||
				    !phys_to_off(p->phys[s], peers[m].below4g, peers[m].ram, &o))
					continue;
				if (((volatile uint64_t *)(peers[m].win + o))[2] == p->nonce[s])
					fail(1, "window %s (node %d) also shows node %d's nonce",
					     peers[m].bdf, m, j);
			}
			p->phys[s] < FOUR_GIB ? lo++ : hi++;
			/* The answer: a coherent store into the owner's memory. */
			w[8 + 2 * self + 1] = (uint64_t)self;
			__atomic_store_n((uint64_t *)&w[8 + 2 * self], p->nonce[s] ^ ANSWER_MIX ^
					 (uint64_t)self, __ATOMIC_RELEASE);
		}
		char ex[2][96] = { "", "" };

		for (int side = 0; side < 2; side++)
			for (int s = 0; s < p->nsamples; s++) {
				uint64_t o = 0;

				if ((p->phys[s] >= FOUR_GIB) != side)
					continue;
				phys_to_off(p->phys[s], p->below4g, p->ram, &o);
				snprintf(ex[side], sizeof(ex[side]), "; e.g. nonce %016" PRIx64
					 " at phys %#" PRIx64 " = offset %#" PRIx64, p->nonce[s],
					 p->phys[s], o);
				break;
			}
		say("node %d -> node %d via %s ok: %d nonces found (%d below 4G, %d above%s%s), "
		    "in no other window; answers written", self, j, p->bdf, p->nsamples, lo, hi,
		    ex[0], ex[1]);
	}
}

/* Step 2 as the owner: every peer's answer must be in our own memory. */
static void check_answers(void)
{
	for (int s = 0; s < own_n; s++)
		for (int j = 0; j < nodes; j++) {
			uint64_t a, r;

			if (j == self)
				continue;
			a = __atomic_load_n(&own[s]->answer[j][0], __ATOMIC_ACQUIRE);
			r = own[s]->answer[j][1];
			if (a != (own[s]->nonce ^ ANSWER_MIX ^ (uint64_t)j) || r != (uint64_t)j)
				fail(1, "answer of node %d in own page at phys %#" PRIx64
				     " is %#" PRIx64 "/%" PRIu64, j, own_phys[s], a, r);
		}
	say("answers of all %d peers found in own memory (%d pages): stores through the "
	    "windows are coherent", nodes - 1, own_n);
}

/* Step 3. */
static void atomics(void)
{
	volatile uint64_t *word[MAX_NODES], *plain[MAX_NODES];
	uint64_t last[MAX_NODES] = { 0 }, interleaved = 0, expect = (uint64_t)nodes * iters;
	double t0, t_atomic, t_plain;
	int bad = 0;

	for (int o = 0; o < nodes; o++) {
		word[o] = o == self ? &ctrl->counter : remote_word(o, peers[o].ctrl_phys, 0);
		plain[o] = o == self ? &ctrl->plain :
			   remote_word(o, peers[o].ctrl_phys, offsetof(struct ctrl_page, plain));
	}
	/*
	 * Rounds of ITERS increments per node and word, until the nodes have really raced
	 * (MIN_INTERLEAVINGS seen in all) or MAX_ROUNDS: on a loaded host the guests' vCPUs
	 * may take turns rather than run at once. All nodes decide alike on the sums.
	 */
	uint64_t total_interleaved = 0;
	int rounds = 0;
	char msg[64];

	t_atomic = 0;
	do {
		barrier("atomics");
		t0 = now();
		for (long k = 0; k < iters; k++)
			for (int i = 0; i < nodes; i++) {
				int o = (self + i) % nodes;
				uint64_t old = __atomic_fetch_add((uint64_t *)word[o], 1,
								  __ATOMIC_SEQ_CST);

				if (k && old != last[o] + 1)
					interleaved++;
				last[o] = old;
			}
		t_atomic += now() - t0;
		rounds++;
		for (int j = 0; j < nodes; j++)
			if (j != self)
				send_line(j, "RACED %" PRIu64, interleaved);
		total_interleaved = interleaved;
		for (int j = 0; j < nodes; j++) {
			uint64_t n;

			if (j == self)
				continue;
			recv_line(j, msg, sizeof(msg));
			if (sscanf(msg, "RACED %" SCNu64, &n) != 1)
				fail(1, "node %d sent '%s', expected RACED", j, msg);
			total_interleaved += n;
		}
	} while (total_interleaved < MIN_INTERLEAVINGS && rounds < MAX_ROUNDS);
	expect = (uint64_t)rounds * nodes * iters;
	/* The control runs as long as the atomic phase did, so that the nodes overlap. */
	barrier("plain");
	uint64_t nplain = 0, plain_expect = 0;
	char line[64];

	t0 = now();
	do {
		for (int r = 0; r < 256; r++, nplain++)
			for (int i = 0; i < nodes; i++) {
				int o = (self + i) % nodes;

				*plain[o] = *plain[o] + 1;
			}
	} while (nplain < (uint64_t)iters || now() - t0 < t_atomic);
	t_plain = now() - t0;
	for (int j = 0; j < nodes; j++)
		if (j != self)
			send_line(j, "PLAIN %" PRIu64, nplain);
	plain_expect = nplain;
	for (int j = 0; j < nodes; j++) {
		uint64_t n;

		if (j == self)
			continue;
		recv_line(j, line, sizeof(line));
		if (sscanf(line, "PLAIN %" SCNu64, &n) != 1)
			fail(1, "node %d sent '%s', expected PLAIN", j, line);
		plain_expect += n;
	}
	barrier("counted");
	for (int o = 0; o < nodes; o++) {
		uint64_t v = __atomic_load_n((uint64_t *)word[o], __ATOMIC_SEQ_CST);

		if (v != expect) {
			say("counter of node %d is %" PRIu64 ", expected %" PRIu64 " (lost %"
			    PRId64 ")", o, v, expect, (int64_t)(expect - v));
			bad++;
		}
	}
	uint64_t pv = ctrl->plain;

	say("%d x %ld atomic increments each by %d nodes on %d shared words (own one locally, "
	    "the others through the windows): %s (%" PRIu64 "), %" PRIu64 " interleavings seen "
	    "here (%" PRIu64 " by all), %.0f ns per increment; plain ++ control: own word %"
	    PRIu64 " of %" PRIu64 " (%" PRIu64 " lost), %.0f ns per increment", rounds, iters,
	    nodes, nodes, bad ? "WRONG" : "final values exact", expect, interleaved,
	    total_interleaved, t_atomic * 1e9 / ((double)iters * rounds * nodes), pv,
	    plain_expect, plain_expect - pv, t_plain * 1e9 / ((double)nplain * nodes));
	if (bad)
		fail(1, "cross-node atomic increments lost updates");
	if (total_interleaved < MIN_INTERLEAVINGS)
		say("note: only %" PRIu64 " interleavings in %d rounds: the nodes hardly raced",
		    total_interleaved, rounds);
}

/* ---- step 4: fencing through the fabric manager ---- */

static volatile bool hb_stop;

static void *heartbeat(void *arg)
{
	(void)arg;
	for (uint64_t v = 1; !hb_stop; v++) {
		__atomic_store_n((uint64_t *)&ctrl->heartbeat, v, __ATOMIC_RELEASE);
		usleep(1000);
	}
	return NULL;
}

/* Ask the host's fabric manager: args as for tests/lab/fabric-qmp.sh after OUT. */
static int fm_request(const char *name, int n, const char *const *args)
{
	const char *dir = getenv("XPMEM_FM_DIR");
	char tmp[256], req[256], rep[256], line[512];
	FILE *f;
	int status = -1;
	double t0 = now();

	if (!dir)
		fail(2, "--fence needs XPMEM_FM_DIR (run-fabric.sh)");
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(req, sizeof(req), "%s/%s.req", dir, name);
	snprintf(rep, sizeof(rep), "%s/%s.rep", dir, name);
	f = fopen(tmp, "w");
	if (!f)
		fail(2, "cannot write %s: %s", tmp, strerror(errno));
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\n", args[i]);
	if (fclose(f) || rename(tmp, req))
		fail(2, "cannot post %s: %s", req, strerror(errno));
	while (!(f = fopen(rep, "r"))) {
		if (!remaining_ms())
			fail(1, "the fabric manager did not answer %s", req);
		usleep(100000);
	}
	if (fgets(line, sizeof(line), f))
		status = atoi(line);
	say("manager request %s (%s %s): status %d after %.1f s", name, args[0], args[1],
	    status, now() - t0);
	while (fgets(line, sizeof(line), f))
		printf("    %s", line);
	fclose(f);
	return status;
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, sig);
}

static void fence_demo(void)
{
	struct peer *p = &peers[0];
	volatile uint64_t *hb = remote_word(0, p->ctrl_phys, offsetof(struct ctrl_page, heartbeat));
	volatile uint64_t *poke = remote_word(0, p->ctrl_phys, offsetof(struct ctrl_page, poke));
	uint64_t a, b, c;
	char path[128];
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct stat st;
	int sig;

	a = *hb;
	usleep(500000);
	b = *hb;
	if (b <= a)
		fail(1, "node 0's heartbeat does not move (%" PRIu64 " -> %" PRIu64 ")", a, b);
	say("fence: node 0's heartbeat through %s moves (%" PRIu64 " -> %" PRIu64 " in 0.5 s)",
	    p->bdf, a, b);

	if (fm_request("stop0", 2, (const char *const[]){ "0", "{\"execute\":\"stop\"}" }))
		fail(1, "the manager could not stop node 0");
	usleep(200000);
	a = *hb;
	usleep(1000000);
	b = *hb;
	*poke = p->nonce[0] ^ POKE_MIX;
	c = *poke;
	if (a != b)
		fail(1, "node 0 is stopped but its heartbeat moved (%" PRIu64 " -> %" PRIu64 ")",
		     a, b);
	if (c != (p->nonce[0] ^ POKE_MIX))
		fail(1, "a store into stopped node 0 did not stick");
	say("fence: node 0 stopped: heartbeat frozen at %" PRIu64 " for 1 s, yet a store into "
	    "its memory landed (stopping is no fence for the window)", a);

	if (fm_request("cont0", 2, (const char *const[]){ "0", "{\"execute\":\"cont\"}" }))
		fail(1, "the manager could not resume node 0");
	usleep(500000);
	b = *hb;
	if (b <= a)
		fail(1, "node 0 resumed but its heartbeat stays at %" PRIu64, b);
	say("fence: node 0 resumed: heartbeat %" PRIu64 " -> %" PRIu64, a, b);

	const char *id = "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"win0\"}}";
	double t0 = now();
	int r = fm_request("unplug-win0", 6, (const char *const[]){ "1", id, "--wait",
				"DEVICE_DELETED", "--timeout", "120" });

	if (r)
		fail(1, "device_del of node 1's window onto node 0 failed (status %d)", r);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", p->bdf);
	for (int i = 0; i < 100 && stat(path, &st) == 0; i++)
		usleep(100000);
	if (stat(path, &st) == 0)
		fail(1, "%s still exists after DEVICE_DELETED", path);
	/*
	 * The guest kernel keeps user mappings of a removed device's BAR (sysfs resource
	 * files map through the iomem address space, which device removal does not zap),
	 * so a read may not fault: then it must at least no longer reach node 0's memory,
	 * and a store must not land there (node 0 checks poke2 at the end).
	 */
	volatile uint64_t *page0 = remote_word(0, p->phys[0], 0);
	volatile uint64_t *poke2 = remote_word(0, p->ctrl_phys,
					       offsetof(struct ctrl_page, poke2));

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sig = sigsetjmp(bus_jmp, 1);
	if (!sig) {
		a = *hb;
		usleep(200000);
		b = *hb;
		c = page0[2];
		*poke2 = p->nonce[0] ^ POKE2_MIX;
		uint64_t d = *poke2;

		if (c == p->nonce[0] || b != a)
			fail(1, "read through the unplugged window still reaches node 0's memory "
			     "(nonce %#" PRIx64 ", heartbeat %" PRIu64 " -> %" PRIu64 ")", c, a, b);
		say("fence: window %s unplugged by device_del in %.1f s: device gone from sysfs; "
		    "the old mapping stays but reads %#" PRIx64 " where node 0's nonce was, a "
		    "frozen heartbeat (%" PRIu64 "), and reads back %#" PRIx64 " after a store",
		    p->bdf, now() - t0, c, a, d);
	} else {
		say("fence: window %s unplugged by device_del in %.1f s: device gone from sysfs, "
		    "a read of the old mapping raises %s", p->bdf, now() - t0,
		    sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	}
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	p->win = NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: fabric-window-probe [--iters N] [--samples N] [--max-mb N] "
		"[--port P] [--timeout S] [--fence] [--conf FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *conf = getenv("XPMEM_FABRIC_CONF");
	pthread_t hb_thread;
	bool hb_running = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	t_start = now();
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--fence")) {
			fence = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(argv[i - 1], "--iters"))
			iters = atol(v);
		else if (!strcmp(argv[i - 1], "--samples"))
			nsamples = atoi(v);
		else if (!strcmp(argv[i - 1], "--max-mb"))
			max_mb = atoi(v);
		else if (!strcmp(argv[i - 1], "--port"))
			port = atoi(v);
		else if (!strcmp(argv[i - 1], "--timeout"))
			timeout_s = atoi(v);
		else if (!strcmp(argv[i - 1], "--conf"))
			conf = v;
		else
			usage();
	}
	if (iters < 1 || nsamples < 1 || nsamples > MAX_SAMPLES || max_mb < 4 || port < 1 ||
	    port > 65535 || timeout_s < 1)
		usage();
	read_conf(conf ? conf : "/xpmem-out/fabric.conf");
	if (nodes < 2)
		fail(2, "a fabric needs at least 2 nodes");
	map_windows();
	setup_own_memory();
	connect_peers();
	exchange();
	check_windows();
	barrier("answered");
	check_answers();
	atomics();
	if (fence && self == 0) {
		if (pthread_create(&hb_thread, NULL, heartbeat, NULL))
			fail(2, "pthread_create failed");
		hb_running = true;
	}
	barrier("fence");
	if (fence && self == 1)
		fence_demo();
	barrier("bye");
	if (hb_running) {
		hb_stop = true;
		pthread_join(hb_thread, NULL);
	}
	if (fence && self == 0) {
		if (ctrl->poke != (own[0]->nonce ^ POKE_MIX))
			fail(1, "the store node 1 made while this node was stopped is missing");
		if (ctrl->poke2 == (own[0]->nonce ^ POKE2_MIX))
			fail(1, "a store through node 1's unplugged window reached own memory");
		say("fence: the store node 1 made while this node was stopped is in own memory; "
		    "the one through its unplugged window is not");
	}
	say("PASS (%.1f s)", now() - t_start);
	return 0;
}
