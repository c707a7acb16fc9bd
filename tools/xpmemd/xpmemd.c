// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemd: the per-node fabric daemon (man/xpmemd.8, include/xpmem_fabric.h).
 *
 * The kernel owns what cross-node operations mean; the daemon owns membership,
 * authentication and transport. This file is the thin layer that does the I/O:
 * /dev/xpmem-fabric, the libfabric endpoint (transport.c), a timerfd for
 * heartbeats, a signalfd, and the fence-command. The decisions are made in
 * config.c (the file), wire.c (what to believe), member.c (peer states) and
 * reqtab.c (which requests wait for which peer), which the unit tests drive.
 *
 * One poll() loop, one thread:
 *   device readable  -> each request read is sent to its peer as a REQUEST, or
 *                       answered -EHOSTUNREACH at once (unknown peer, not UP,
 *                       other epoch); each answer read (XPMEM_FMSG_ANSWER: the
 *                       kernel served a peer's request in the background) goes
 *                       back to that peer as a REPLY
 *   CQ wait fd       -> datagrams from peers: HEARTBEAT to member.c; REQUEST to
 *                       XPMEM_FABRIC_SERVE (which only takes it; if it refuses,
 *                       the refusal goes back as a REPLY at once); REPLY to
 *                       XPMEM_FABRIC_REPLY
 *   timer            -> heartbeats to every peer, timeouts, fences
 *   SIGTERM/SIGINT   -> clean shutdown
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "member.h"
#include "reqtab.h"
#include "transport.h"
#include "wire.h"
#include "xpmem_fabric.h"
#include "xpmemd.h"

extern char **environ;

#define DEV_READS_PER_WAKEUP 256
#define REQ_TIMEOUT_MIN_NS 30000000000ULL

struct daemon {
	struct xpmemd_config cfg;
	int dev_fd, timer_fd, sig_fd;
	uint64_t epoch, beacon_phys, beacon_nonce;
	struct wire_key *key;
	struct wire_sender tx;
	struct member memb;
	struct reqtab reqs;
	struct xt *xt;
	pid_t *fence_pid; /* per peer, 0: none running */
	bool leaving; /* stopping: what arrives now is not looked at */
	uint64_t req_timeout_ns;
	uint64_t dropped; /* datagrams no peer can be blamed for */
	struct xpmem_fabric_msg io; /* read(), SERVE and REPLY buffer */
	struct xpmem_fabric_msg in; /* a decoded message from a peer */
};

uint64_t xpmemd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct xpmemd_peer *peer_of_index(struct daemon *d, int idx)
{
	if (idx < 0 || (size_t)idx >= d->memb.npeers)
		return NULL;
	return &d->memb.peers[idx];
}

/* ---- kernel ---- */

static void kernel_reply(struct daemon *d, uint64_t id, uint32_t node, uint32_t type,
			 uint64_t epoch, int status)
{
	struct xpmem_fabric_msg *r = &d->io;

	memset(r, 0, XPMEM_FABRIC_MSG_HDR_LEN);
	r->id = id;
	r->node = node; /* the request's destination, as the kernel checks */
	r->type = type | XPMEM_FMSG_ANSWER;
	r->epoch = epoch;
	r->status = status;
	r->len = 0;
	if (d->dev_fd < 0)
		return; /* left the fabric: the kernel failed every request already */
	if (ioctl(d->dev_fd, XPMEM_FABRIC_REPLY, r) && errno != ENOENT)
		xlog("XPMEM_FABRIC_REPLY id %" PRIu64 " (node %u, status %d): %s", id, node, status,
		     strerror(errno));
}

static int op_window(void *ctx, struct xpmemd_peer *p)
{
	struct daemon *d = ctx;
	struct xpmem_fabric_window w;

	memset(&w, 0, sizeof(w));
	w.node = p->node;
	w.phys = p->conf->win_phys;
	w.size = p->conf->win_size;
	w.below_4g = p->conf->below_4g;
	w.epoch = p->epoch;
	w.beacon_phys = p->beacon_phys;
	w.beacon_nonce = p->beacon_nonce;
	return ioctl(d->dev_fd, XPMEM_FABRIC_WINDOW, &w) ? -errno : 0;
}

static void op_push(void *ctx, struct xpmemd_peer *p, uint64_t now)
{
	struct daemon *d = ctx;
	struct xpmem_fabric_node n;

	memset(&n, 0, sizeof(n));
	n.node = p->node;
	n.state = p->state;
	n.epoch = p->epoch;
	n.heartbeat_age_ns = p->heard ? now - p->last_hb_ns : 0;
	n.rtt_ns = p->rtt_ns;
	n.rejected = p->rejected;
	n.fenced = p->state == XPMEM_NODE_DEAD && p->fenced;
	if (ioctl(d->dev_fd, XPMEM_FABRIC_NODE, &n) == 0) {
		p->push_errno = 0;
		return;
	}
	/* Log each new failure once; a repeated one only at --verbose. */
	if (errno != p->push_errno)
		xlog("XPMEM_FABRIC_NODE node %u (%s): %s", p->node, member_state_str(p->state),
		     strerror(errno));
	else
		xlog_verbose("XPMEM_FABRIC_NODE node %u: %s", p->node, strerror(errno));
	p->push_errno = errno;
}

/* ---- fence ---- */

static int op_fence_start(void *ctx, struct xpmemd_peer *p)
{
	struct daemon *d = ctx;
	size_t i = (size_t)(p - d->memb.peers);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	char node[16];
	char *argv[3];
	pid_t pid;
	int r;

	snprintf(node, sizeof(node), "%u", p->node);
	argv[0] = d->cfg.fence_command;
	argv[1] = node;
	argv[2] = NULL;
	/* The child starts with default signal handling: our mask blocks SIGTERM. */
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_init(&fa);
	/* Keep the fabric's sockets out of the fence program. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	r = posix_spawn(&pid, d->cfg.fence_command, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r)
		return -r;
	d->fence_pid[i] = pid;
	return 0;
}

static int op_fence_poll(void *ctx, struct xpmemd_peer *p)
{
	struct daemon *d = ctx;
	size_t i = (size_t)(p - d->memb.peers);
	int st;
	pid_t r;

	if (!d->fence_pid[i])
		return -1;
	r = waitpid(d->fence_pid[i], &st, WNOHANG);
	if (r == 0)
		return 1;
	d->fence_pid[i] = 0;
	if (r < 0) {
		xlog("fence-command for node %u: waitpid: %s", p->node, strerror(errno));
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		xlog("fence-command %s %u exited with status %d: node %u stays SUSPECT, retrying",
		     d->cfg.fence_command, p->node, WEXITSTATUS(st), p->node);
	else
		xlog("fence-command %s %u killed by signal %d: node %u stays SUSPECT, retrying",
		     d->cfg.fence_command, p->node, WTERMSIG(st), p->node);
	return -1;
}

/* ---- requests ---- */

struct drain_ctx {
	struct daemon *d;
	int status;
};

static void answer_entry(void *ctx, const struct reqtab_entry *e)
{
	struct drain_ctx *c = ctx;

	kernel_reply(c->d, e->id, e->node, e->type, e->epoch, c->status);
}

static void op_incarnation_end(void *ctx, struct xpmemd_peer *p)
{
	struct daemon *d = ctx;
	struct drain_ctx c = { d, -EHOSTUNREACH };
	size_t n = reqtab_drain(&d->reqs, p->node, answer_entry, &c);
	size_t q = xt_purge(d->xt, p->xt_index);

	if (n || q)
		xlog("node %u: epoch %" PRIu64 " over: %zu outstanding request(s) failed, %zu "
		     "queued message(s) dropped", p->node, p->epoch, n, q);
}

static const struct member_ops ops = {
	.window = op_window,
	.push = op_push,
	.fence_start = op_fence_start,
	.fence_poll = op_fence_poll,
	.incarnation_end = op_incarnation_end,
};

/* ---- sending ---- */

static void send_heartbeat(struct daemon *d, struct xpmemd_peer *p, uint64_t now)
{
	struct wire_heartbeat hb = {
		.beacon_phys = d->beacon_phys,
		.beacon_nonce = d->beacon_nonce,
		.send_time_ns = now,
	};
	struct xt_msg *m;

	if (p->heard && p->epoch) {
		hb.echo_time_ns = p->last_hb_send_ns;
		hb.echo_age_ns = now - p->last_hb_ns;
	}
	/* A heartbeat still waiting at the tail is brought up to date instead. */
	m = xt_queued_tail(d->xt, p->xt_index);
	if (m && m->kind == WIRE_HEARTBEAT) {
		m->len = wire_seal_heartbeat(d->key, &d->tx, p->node, p->epoch, &hb, m->data,
					     sizeof(m->data));
		return;
	}
	m = xt_msg_new(d->xt);
	if (!m) {
		xlog("out of memory for a heartbeat to node %u", p->node);
		return;
	}
	m->dst = p->xt_index;
	m->kind = WIRE_HEARTBEAT;
	m->len = wire_seal_heartbeat(d->key, &d->tx, p->node, p->epoch, &hb, m->data,
				     sizeof(m->data));
	if (!m->len || xt_submit(d->xt, m)) {
		xlog_verbose("heartbeat to node %u not queued (%s)", p->node,
			     m->len ? "queue full" : "cannot seal");
		xt_msg_free(d->xt, m);
	}
}

/* Sends msg to p as kind; 0 or -errno (then nothing was queued). */
static int send_msg(struct daemon *d, struct xpmemd_peer *p, enum wire_kind kind,
		    const struct xpmem_fabric_msg *msg)
{
	struct xt_msg *m = xt_msg_new(d->xt);
	int r;

	if (!m)
		return -ENOMEM;
	m->dst = p->xt_index;
	m->kind = kind;
	m->req_id = msg->id;
	m->len = wire_seal_msg(d->key, &d->tx, kind, p->node, p->epoch, msg, m->data,
			       sizeof(m->data));
	if (!m->len) {
		xt_msg_free(d->xt, m);
		return -EINVAL;
	}
	r = xt_submit(d->xt, m);
	if (r)
		xt_msg_free(d->xt, m);
	return r;
}

/* A request the kernel wants delivered (n bytes read into d->io). */
static void forward_request(struct daemon *d, size_t n, uint64_t now)
{
	struct xpmem_fabric_msg *msg = &d->io;
	struct xpmemd_peer *p;
	bool up;
	int r;

	if (n < XPMEM_FABRIC_MSG_HDR_LEN || msg->len > XPMEM_FABRIC_PAYLOAD_MAX ||
	    n != XPMEM_FABRIC_MSG_HDR_LEN + (size_t)msg->len) {
		xlog("device returned a malformed request (%zu bytes, len %u)", n,
		     n >= XPMEM_FABRIC_MSG_HDR_LEN ? msg->len : 0);
		if (n >= XPMEM_FABRIC_MSG_HDR_LEN)
			kernel_reply(d, msg->id, msg->node, msg->type, msg->epoch, -EINVAL);
		return;
	}
	p = member_find(&d->memb, msg->node);
	/* A suspect peer may still answer: only the dead and the unknown are refused. */
	up = p && (p->state == XPMEM_NODE_UP || p->state == XPMEM_NODE_SUSPECT);
	if (!up || (msg->epoch && msg->epoch != p->epoch)) {
		xlog_verbose("request %" PRIu64 " for node %u (epoch %" PRIu64 "): %s",
			     (uint64_t)msg->id, msg->node, (uint64_t)msg->epoch,
			     !p ? "not a configured peer" :
			     !up ? member_state_str(p->state) : "other epoch");
		kernel_reply(d, msg->id, msg->node, msg->type, msg->epoch, -EHOSTUNREACH);
		return;
	}
	r = reqtab_add(&d->reqs, msg->id, p->node, msg->type, p->epoch, now);
	if (r) {
		xlog("request %" PRIu64 " for node %u: %s", (uint64_t)msg->id, p->node,
		     r == -EEXIST ? "id already outstanding" : strerror(-r));
		kernel_reply(d, msg->id, msg->node, msg->type, msg->epoch, -EHOSTUNREACH);
		return;
	}
	r = send_msg(d, p, WIRE_REQUEST, msg);
	if (r) {
		struct reqtab_entry e;

		xlog("request %" PRIu64 " for node %u not sent: %s", (uint64_t)msg->id, p->node,
		     r == -ENOBUFS ? "send queue full" : strerror(-r));
		reqtab_take(&d->reqs, msg->id, p->node, p->epoch, &e);
		kernel_reply(d, msg->id, msg->node, msg->type, msg->epoch, -EHOSTUNREACH);
	}
}

/* The kernel's answer (n bytes in d->io) to a request msg->node sent us. */
static void send_answer(struct daemon *d, size_t n)
{
	struct xpmem_fabric_msg *msg = &d->io;
	struct xpmemd_peer *p;
	int r;

	if (msg->len > XPMEM_FABRIC_PAYLOAD_MAX || n != XPMEM_FABRIC_MSG_HDR_LEN + (size_t)msg->len) {
		xlog("device returned a malformed answer (%zu bytes, len %u)", n, msg->len);
		return;
	}
	p = member_find(&d->memb, msg->node);
	if (!p || p->epoch != msg->epoch || p->state == XPMEM_NODE_DEAD) {
		/* The asker is gone or restarted: nobody waits for this any more. */
		xlog_verbose("answer %" PRIu64 " for node %u (epoch %" PRIu64 ") dropped: %s",
			     (uint64_t)msg->id, msg->node, (uint64_t)msg->epoch,
			     !p ? "not a configured peer" :
			     p->state == XPMEM_NODE_DEAD ? "DEAD" : "other epoch");
		return;
	}
	r = send_msg(d, p, WIRE_REPLY, msg);
	if (r)
		xlog("answer %" PRIu64 " to node %u not sent: %s", (uint64_t)msg->id, p->node,
		     r == -ENOBUFS ? "send queue full" : strerror(-r));
}

/* Returns -1 when the device failed for good. */
static int read_device(struct daemon *d)
{
	for (int i = 0; i < DEV_READS_PER_WAKEUP; i++) {
		ssize_t n = read(d->dev_fd, &d->io, sizeof(d->io));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			xlog("read %s: %s", XPMEM_FABRIC_DEVICE, strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if ((size_t)n >= XPMEM_FABRIC_MSG_HDR_LEN && (d->io.type & XPMEM_FMSG_ANSWER))
			send_answer(d, (size_t)n);
		else
			forward_request(d, (size_t)n, xpmemd_now_ns());
	}
	return 0;
}

/* ---- receiving ---- */

/*
 * A request from p (decoded in d->in): handed to the kernel, which only takes
 * it; its answer comes out of read() later (send_answer). A request the kernel
 * cannot take, or that p may not make, is answered here at once.
 */
static void serve_request(struct daemon *d, struct xpmemd_peer *p)
{
	struct xpmem_fabric_msg *m = &d->io;
	int status, r;

	memcpy(m, &d->in, XPMEM_FABRIC_MSG_HDR_LEN + d->in.len);
	m->node = p->node;
	m->epoch = p->epoch;
	if (m->type & XPMEM_FMSG_ANSWER) {
		xlog_verbose("request %" PRIu64 " from node %u has the answer bit: refused",
			     (uint64_t)m->id, p->node);
		status = -EINVAL;
	} else if (p->state != XPMEM_NODE_UP && p->state != XPMEM_NODE_SUSPECT) {
		xlog_verbose("request %" PRIu64 " from node %u refused: %s", (uint64_t)m->id, p->node,
			     member_state_str(p->state));
		status = -EHOSTUNREACH;
	} else if (ioctl(d->dev_fd, XPMEM_FABRIC_SERVE, m) == 0) {
		return;
	} else {
		status = -errno;
		xlog_verbose("XPMEM_FABRIC_SERVE request %" PRIu64 " from node %u: %s",
			     (uint64_t)d->in.id, p->node, strerror(-status));
	}
	/* The answer goes to the asker: its node and epoch, as a kernel answer would. */
	memcpy(m, &d->in, XPMEM_FABRIC_MSG_HDR_LEN);
	m->node = p->node;
	m->epoch = p->epoch;
	m->type |= XPMEM_FMSG_ANSWER;
	m->status = status;
	m->len = 0;
	r = send_msg(d, p, WIRE_REPLY, m);
	if (r)
		xlog("refusal of request %" PRIu64 " to node %u not sent: %s", (uint64_t)d->in.id,
		     p->node, r == -ENOBUFS ? "send queue full" : strerror(-r));
}

static void complete_request(struct daemon *d, struct xpmemd_peer *p)
{
	struct reqtab_entry e;
	struct xpmem_fabric_msg *m = &d->io;

	if (reqtab_take(&d->reqs, d->in.id, p->node, p->epoch, &e)) {
		xlog_verbose("reply %" PRIu64 " from node %u matches no outstanding request",
			     (uint64_t)d->in.id, p->node);
		return;
	}
	memcpy(m, &d->in, XPMEM_FABRIC_MSG_HDR_LEN + d->in.len);
	m->node = p->node;
	m->epoch = p->epoch;
	if (ioctl(d->dev_fd, XPMEM_FABRIC_REPLY, m) && errno != ENOENT)
		xlog("XPMEM_FABRIC_REPLY id %" PRIu64 " from node %u: %s", (uint64_t)m->id, p->node,
		     strerror(errno));
}

static void on_recv(void *ctx, const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;
	uint64_t now = xpmemd_now_ns();
	struct wire_heartbeat hb;
	struct xpmemd_peer *p;
	struct wire_hdr h;
	enum wire_verdict v;

	if (d->leaving)
		return;
	v = wire_parse(buf, len, &h);
	if (v != WIRE_OK) {
		d->dropped++;
		xlog_verbose("dropped %zu bytes: %s", len, wire_verdict_str(v));
		return;
	}
	p = member_find(&d->memb, h.src_node);
	if (!p) {
		d->dropped++;
		xlog_verbose("dropped a %s claiming to be from node %u: %s", wire_kind_str(h.kind),
			     h.src_node, wire_verdict_str(WIRE_UNKNOWN_SRC));
		return;
	}
	v = wire_check(d->key, buf, len, &h, d->cfg.node, d->epoch, &p->rx);
	if (v != WIRE_OK && v != WIRE_OK_NEW_EPOCH) {
		if (wire_verdict_counts(v))
			p->rejected++;
		xlog_verbose("dropped a %s from node %u (epoch %" PRIu64 ", seq %" PRIu64 "): %s",
			     wire_kind_str(h.kind), h.src_node, h.src_epoch, h.seq,
			     wire_verdict_str(v));
		return;
	}
	switch (h.kind) {
	case WIRE_HEARTBEAT:
		wire_decode_heartbeat(wire_body(buf), h.body_len, &hb);
		if (member_heartbeat(&d->memb, p, &h, &hb, v, d->epoch, now) & MEMBER_EV_NEW_EPOCH)
			send_heartbeat(d, p, now); /* let it learn our epoch now */
		break;
	case WIRE_LEAVE:
		member_leave(&d->memb, p, now);
		break;
	case WIRE_REQUEST:
	case WIRE_REPLY:
		if (wire_decode_msg(wire_body(buf), h.body_len, &d->in)) {
			p->rejected++;
			return;
		}
		if (h.kind == WIRE_REQUEST)
			serve_request(d, p);
		else
			complete_request(d, p);
		break;
	}
}

static void on_sent(void *ctx, const struct xt_msg *m, int err)
{
	struct daemon *d = ctx;
	struct xpmemd_peer *p = peer_of_index(d, m->dst);
	struct reqtab_entry e;

	if (!err || !p)
		return;
	xlog_verbose("%s to node %u failed: %s", wire_kind_str(m->kind), p->node,
		     xt_strerror(err));
	if (m->kind == WIRE_REQUEST && !reqtab_take(&d->reqs, m->req_id, p->node, p->epoch, &e))
		kernel_reply(d, e.id, e.node, e.type, e.epoch, -EHOSTUNREACH);
}

/* ---- timer ---- */

static void tick(struct daemon *d)
{
	struct drain_ctx c = { d, -ETIMEDOUT };
	uint64_t now = xpmemd_now_ns();
	size_t n;

	member_tick(&d->memb, now);
	for (size_t i = 0; i < d->memb.npeers; i++)
		send_heartbeat(d, &d->memb.peers[i], now);
	n = reqtab_expire(&d->reqs, now, d->req_timeout_ns, answer_entry, &c);
	if (n)
		xlog("%zu request(s) unanswered for %" PRIu64 " s: failed with ETIMEDOUT", n,
		     d->req_timeout_ns / 1000000000u);
}

/* ---- setup and the loop ---- */

static int open_device(struct daemon *d)
{
	struct xpmem_fabric_join j;

	d->dev_fd = open(XPMEM_FABRIC_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (d->dev_fd < 0) {
		int e = errno;

		xlog("cannot open %s: %s%s", XPMEM_FABRIC_DEVICE, strerror(e),
		     e == ENOENT || e == ENODEV || e == ENXIO ? " (is the xpmem module loaded?)" :
		     e == EBUSY ? " (is another xpmemd running?)" :
		     e == EACCES || e == EPERM ? " (xpmemd must run as root)" : "");
		return -1;
	}
	memset(&j, 0, sizeof(j));
	j.node = d->cfg.node;
	j.epoch = realtime_ns();
	if (ioctl(d->dev_fd, XPMEM_FABRIC_JOIN, &j)) {
		int e = errno;

		xlog("XPMEM_FABRIC_JOIN node %u epoch %" PRIu64 ": %s%s", j.node, (uint64_t)j.epoch,
		     strerror(e),
		     e == EBUSY ? " (the module already belongs to another node id)" :
		     e == ESTALE ? " (not newer than an earlier epoch: was the clock set back?)" :
				   "");
		return -1;
	}
	/* Id maps are set before any request of a peer can be served. */
	for (size_t i = 0; i < d->cfg.npeers; i++) {
		for (uint32_t kind = XPMEM_IDMAP_UID; kind <= XPMEM_IDMAP_GID; kind++) {
			struct xpmem_fabric_idmap m;

			xpmemd_config_idmap(&d->cfg, d->cfg.peers[i].node, kind, &m);
			if (m.nr_extents && ioctl(d->dev_fd, XPMEM_FABRIC_IDMAP, &m)) {
				xlog("XPMEM_FABRIC_IDMAP node %u %s: %s", m.node,
				     kind == XPMEM_IDMAP_UID ? "uid" : "gid", strerror(errno));
				return -1;
			}
		}
	}
	d->epoch = j.epoch;
	d->beacon_phys = j.beacon_phys;
	d->beacon_nonce = j.beacon_nonce;
	d->tx.node = d->cfg.node;
	d->tx.epoch = d->epoch;
	d->tx.next_seq = 1;
	return 0;
}

static int open_fabric(struct daemon *d)
{
	struct xt_callbacks cb = { .recv = on_recv, .sent = on_sent, .ctx = d };
	char err[512];

	d->xt = xt_open(&d->cfg.listen, d->cfg.npeers, &cb, err, sizeof(err));
	if (!d->xt) {
		xlog("%s", err);
		return -1;
	}
	for (size_t i = 0; i < d->memb.npeers; i++) {
		int idx = xt_add_peer(d->xt, &d->cfg.peers[i].addr, err, sizeof(err));

		if (idx < 0) {
			xlog("peer %u: %s", d->cfg.peers[i].node, err);
			return -1;
		}
		/* Peers are added in order: transport index == peer index. */
		d->memb.peers[i].xt_index = idx;
	}
	return 0;
}

static int open_timer_and_signals(struct daemon *d)
{
	struct itimerspec its;
	uint64_t ns = (uint64_t)d->cfg.heartbeat_ms * 1000000ULL;
	sigset_t set;

	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->timer_fd < 0) {
		xlog("timerfd_create: %s", strerror(errno));
		return -1;
	}
	its.it_interval.tv_sec = (time_t)(ns / 1000000000ULL);
	its.it_interval.tv_nsec = (long)(ns % 1000000000ULL);
	its.it_value = its.it_interval;
	if (timerfd_settime(d->timer_fd, 0, &its, NULL)) {
		xlog("timerfd_settime: %s", strerror(errno));
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0) {
		xlog("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int run(struct daemon *d)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = d->sig_fd, .events = POLLIN },
			{ .fd = d->dev_fd, .events = POLLIN },
			{ .fd = d->timer_fd, .events = POLLIN },
			{ .fd = xt_wait_fd(d->xt), .events = POLLIN },
		};
		int timeout;

		if (xt_progress(d->xt))
			return -1;
		/* Manual progress: anything in flight needs the CQ driven soon. */
		timeout = xt_timeout_ms(d->xt);
		if (pfd[3].fd < 0)
			timeout = 5;
		else if (!xt_trywait(d->xt))
			timeout = 0;
		if (poll(pfd, 4, timeout) < 0) {
			if (errno == EINTR)
				continue;
			xlog("poll: %s", strerror(errno));
			return -1;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				xlog("%s: shutting down", strsignal((int)si.ssi_signo));
				return 0;
			}
		}
		if (pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			xlog("%s: error or hangup", XPMEM_FABRIC_DEVICE);
			return -1;
		}
		if ((pfd[1].revents & POLLIN) && read_device(d))
			return -1;
		if (pfd[2].revents & POLLIN) {
			uint64_t expirations;

			if (read(d->timer_fd, &expirations, sizeof(expirations)) > 0)
				tick(d);
		}
	}
}

/* How long a clean stop waits for its LEAVE messages to go out. */
#define LEAVE_FLUSH_NS 2000000000ULL

/*
 * A clean stop: the kernel first drops every mapping this node has of other
 * nodes' pages (closing the device does that before it returns), then every
 * peer is told, so that it lets go of what it gave this node at once instead
 * of after dead-ms and a fence.
 */
static void leave_fabric(struct daemon *d)
{
	uint64_t end = xpmemd_now_ns() + LEAVE_FLUSH_NS;
	size_t told = 0;

	d->leaving = true;
	close(d->dev_fd);
	d->dev_fd = -1;
	for (size_t i = 0; i < d->memb.npeers; i++) {
		struct xpmemd_peer *p = &d->memb.peers[i];
		struct xt_msg *m;

		/* A peer whose epoch is not known could not check a LEAVE against it. */
		if (!p->epoch || p->state == XPMEM_NODE_DEAD)
			continue;
		xt_purge(d->xt, p->xt_index); /* heartbeats and requests are moot now */
		m = xt_msg_new(d->xt);
		if (!m)
			break;
		m->dst = p->xt_index;
		m->kind = WIRE_LEAVE;
		m->len = wire_seal(d->key, &d->tx, WIRE_LEAVE, p->node, p->epoch, NULL, 0,
				   m->data, sizeof(m->data));
		if (!m->len || xt_submit(d->xt, m)) {
			xt_msg_free(d->xt, m);
			continue;
		}
		told++;
	}
	while (xt_pending(d->xt) && xpmemd_now_ns() < end) {
		if (xt_progress(d->xt))
			break;
		poll(NULL, 0, 5);
	}
	xlog("left the fabric: %zu peer(s) told%s", told,
	     xt_pending(d->xt) ? ", some messages not sent in time" : "");
}

static void close_all(struct daemon *d)
{
	if (d->xt) {
		struct xt_stats st;

		xt_get_stats(d->xt, &st);
		xlog("fabric: %" PRIu64 " messages sent (%" PRIu64 " deferred), %" PRIu64
		     " received, %" PRIu64 " dropped unattributable, %" PRIu64 " send and %" PRIu64
		     " receive errors", st.sent, st.deferred, st.received, d->dropped,
		     st.send_errors, st.recv_errors);
	}
	for (size_t i = 0; d->fence_pid && i < d->memb.npeers; i++)
		if (d->fence_pid[i])
			xlog("fence-command for node %u (pid %d) still running: left to finish",
			     d->memb.peers[i].node, (int)d->fence_pid[i]);
	xt_close(d->xt);
	if (d->dev_fd >= 0)
		close(d->dev_fd); /* the kernel fails what is pending with -ENOTCONN */
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	reqtab_free(&d->reqs);
	member_free(&d->memb);
	free(d->fence_pid);
	wire_key_free(d->key);
	xpmemd_config_free(&d->cfg);
}

/*
 * Without --foreground: the parent waits until the child is set up and exits
 * 0, or with the child's exit status when setup failed.
 */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC)) {
		xlog("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		xlog("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		sigset_t set;
		int st;

		/* Let ^C reach the waiting parent; the child keeps them blocked. */
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			exit(XPMEMD_EXIT_OK);
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
			exit(WEXITSTATUS(st));
		exit(XPMEMD_EXIT_RUNTIME);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void daemon_ready(int ready_fd)
{
	int null;

	if (ready_fd < 0)
		return;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	if (chdir("/")) {
		/* Not fatal: nothing is opened by relative path from here on. */
	}
	if (write(ready_fd, "R", 1) != 1)
		xlog("cannot tell the parent that setup is done: %s", strerror(errno));
	close(ready_fd);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xpmemd --config FILE [--foreground] [--verbose]\n"
		"       xpmemd --selftest-transport [--verbose]\n"
		"       xpmemd --version | --help\n"
		"\n"
		"The per-node fabric daemon of xpmem: membership, authentication and\n"
		"transport between the nodes of a fabric, on %s.\n"
		"\n"
		"  -c, --config FILE         configuration file (see xpmemd(8))\n"
		"  -f, --foreground          do not detach; log to stderr\n"
		"  -v, --verbose             also log dropped messages and other details\n"
		"      --selftest-transport  send authenticated messages between two\n"
		"                            endpoints on 127.0.0.1 (no device needed)\n"
		"  -V, --version             print the version\n"
		"  -h, --help                print this help\n"
		"\n"
		"Exit status: 0 clean shutdown, 1 runtime error, 2 usage or config error.\n",
		XPMEM_FABRIC_DEVICE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "selftest-transport", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon *d;
	const char *config = NULL;
	bool foreground = false, selftest = false;
	int ready_fd = -1, c, rc;
	char err[1024];
	struct stat st;
	sigset_t set;

	while ((c = getopt_long(argc, argv, "c:fvVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'v':
			xlog_set_verbose(true);
			break;
		case 'V':
			printf("xpmemd %s\n", XPMEMD_VERSION);
			return XPMEMD_EXIT_OK;
		case 'h':
			usage(stdout);
			return XPMEMD_EXIT_OK;
		case 'T':
			selftest = true;
			break;
		default:
			usage(stderr);
			return XPMEMD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		xlog("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return XPMEMD_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (selftest)
		return xpmemd_selftest_transport();
	if (!config) {
		xlog("--config FILE is required");
		usage(stderr);
		return XPMEMD_EXIT_USAGE;
	}

	d = calloc(1, sizeof(*d));
	if (!d) {
		xlog("out of memory");
		return XPMEMD_EXIT_RUNTIME;
	}
	d->dev_fd = d->timer_fd = d->sig_fd = -1;
	if (xpmemd_config_load(config, NULL, &d->cfg, err, sizeof(err))) {
		xlog("%s", err);
		free(d);
		return XPMEMD_EXIT_USAGE;
	}
	xlog_set_node(d->cfg.node);
	if (!stat(d->cfg.key_file, &st) && (st.st_mode & 077))
		xlog("warning: key-file %s is accessible to group or others (mode %03o)",
		     d->cfg.key_file, (unsigned)(st.st_mode & 0777));
	d->key = wire_key_new(d->cfg.key, d->cfg.key_len);
	if (!d->key) {
		xlog("cannot set up HMAC-SHA256 with the key");
		xpmemd_config_free(&d->cfg);
		free(d);
		return XPMEMD_EXIT_RUNTIME;
	}

	/* SIGTERM and SIGINT are only seen through the signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!foreground && daemonize(&ready_fd)) {
		close_all(d);
		free(d);
		return XPMEMD_EXIT_RUNTIME;
	}

	rc = XPMEMD_EXIT_RUNTIME;
	d->req_timeout_ns = 2ULL * d->cfg.dead_ms * 1000000ULL;
	if (d->req_timeout_ns < REQ_TIMEOUT_MIN_NS)
		d->req_timeout_ns = REQ_TIMEOUT_MIN_NS;
	if (member_init(&d->memb, &d->cfg, &ops, d) || reqtab_init(&d->reqs, 1024)) {
		xlog("out of memory");
		goto out;
	}
	d->fence_pid = calloc(d->cfg.npeers ? d->cfg.npeers : 1, sizeof(*d->fence_pid));
	if (!d->fence_pid) {
		xlog("out of memory");
		goto out;
	}
	if (open_device(d) || open_fabric(d) || open_timer_and_signals(d))
		goto out;
	{
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &d->cfg.listen.sin_addr, ip, sizeof(ip));
		xlog("joined: epoch %" PRIu64 ", beacon 0x%" PRIx64 "; %s on %s:%u, %zu peer(s), "
		     "heartbeat %u ms, suspect %u ms, dead %u ms%s", d->epoch, d->beacon_phys,
		     XT_PROVIDER, ip, ntohs(d->cfg.listen.sin_port), d->cfg.npeers,
		     d->cfg.heartbeat_ms, d->cfg.suspect_ms, d->cfg.dead_ms,
		     d->cfg.fence_command ? ", fence-command set" : "");
	}
	daemon_ready(ready_fd);
	ready_fd = -1;
	for (size_t i = 0; i < d->memb.npeers; i++)
		send_heartbeat(d, &d->memb.peers[i], xpmemd_now_ns());
	rc = run(d) ? XPMEMD_EXIT_RUNTIME : XPMEMD_EXIT_OK;
	if (rc == XPMEMD_EXIT_OK)
		leave_fabric(d);
out:
	close_all(d);
	free(d);
	if (ready_fd >= 0)
		close(ready_fd);
	return rc;
}
