// SPDX-License-Identifier: LGPL-2.1-or-later
/* xpmemd: the membership state machine (see member.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "member.h"

#define MS(ns) ((uint64_t)((ns) / 1000000u))
#define FENCE_LOG_INTERVAL_NS 5000000000ULL

const char *member_state_str(uint32_t state)
{
	switch (state) {
	case XPMEM_NODE_UNKNOWN:
		return "UNKNOWN";
	case XPMEM_NODE_UP:
		return "UP";
	case XPMEM_NODE_SUSPECT:
		return "SUSPECT";
	case XPMEM_NODE_DEAD:
		return "DEAD";
	}
	return "?";
}

int member_init(struct member *m, const struct xpmemd_config *cfg, const struct member_ops *ops,
		void *ctx)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i <= XPMEM_FABRIC_MAX_NODE; i++)
		m->index[i] = -1;
	m->peers = calloc(cfg->npeers ? cfg->npeers : 1, sizeof(*m->peers));
	if (!m->peers)
		return -ENOMEM;
	m->npeers = cfg->npeers;
	for (size_t i = 0; i < cfg->npeers; i++) {
		struct xpmemd_peer *p = &m->peers[i];

		p->conf = &cfg->peers[i];
		p->node = cfg->peers[i].node;
		p->state = XPMEM_NODE_UNKNOWN;
		p->xt_index = -1;
		m->index[p->node] = (int16_t)i;
	}
	m->suspect_ns = (uint64_t)cfg->suspect_ms * 1000000ULL;
	m->dead_ns = (uint64_t)cfg->dead_ms * 1000000ULL;
	m->have_fence = cfg->fence_command != NULL;
	m->ops = ops;
	m->ctx = ctx;
	return 0;
}

void member_free(struct member *m)
{
	free(m->peers);
	m->peers = NULL;
	m->npeers = 0;
}

struct xpmemd_peer *member_find(struct member *m, uint32_t node)
{
	if (node == 0 || node > XPMEM_FABRIC_MAX_NODE || m->index[node] < 0)
		return NULL;
	return &m->peers[m->index[node]];
}

static void push(struct member *m, struct xpmemd_peer *p, uint64_t now)
{
	p->last_push_ns = now;
	m->ops->push(m->ctx, p, now);
}

static bool set_state(struct member *m, struct xpmemd_peer *p, uint32_t state, uint64_t now)
{
	if (p->state == state)
		return false;
	if (p->heard)
		xlog("node %u: %s -> %s (epoch %" PRIu64 ", last heartbeat %" PRIu64 " ms ago)",
		     p->node, member_state_str(p->state), member_state_str(state), p->epoch,
		     MS(now - p->last_hb_ns));
	else
		xlog("node %u: %s -> %s", p->node, member_state_str(p->state),
		     member_state_str(state));
	p->state = state;
	if (state != XPMEM_NODE_DEAD)
		p->fenced = false;
	push(m, p, now);
	return true;
}

static void try_window(struct member *m, struct xpmemd_peer *p, uint64_t now)
{
	int r;

	if (p->window_epoch == p->epoch)
		return;
	if (p->window_tried && now - p->window_try_ns < MEMBER_WINDOW_RETRY_NS)
		return;
	p->window_tried = true;
	p->window_try_ns = now;
	r = m->ops->window(m->ctx, p);
	if (r == 0) {
		p->window_epoch = p->epoch;
		xlog("node %u: window [0x%" PRIx64 ", +0x%" PRIx64 ") accepted for epoch %" PRIu64,
		     p->node, p->conf->win_phys, p->conf->win_size, p->epoch);
	} else {
		xlog("node %u: XPMEM_FABRIC_WINDOW [0x%" PRIx64 ", +0x%" PRIx64 ") epoch %" PRIu64
		     " beacon 0x%" PRIx64 ": %s (retrying on a later heartbeat)",
		     p->node, p->conf->win_phys, p->conf->win_size, p->epoch, p->beacon_phys,
		     strerror(-r));
	}
}

unsigned member_heartbeat(struct member *m, struct xpmemd_peer *p, const struct wire_hdr *h,
			  const struct wire_heartbeat *hb, enum wire_verdict v, uint64_t self_epoch,
			  uint64_t now)
{
	unsigned ev = 0;
	uint32_t next;
	uint64_t rtt;
	bool window_ok;

	if (v == WIRE_OK_NEW_EPOCH && h->src_epoch != p->epoch) {
		ev |= MEMBER_EV_NEW_EPOCH;
		if (p->epoch) {
			xlog("node %u: restarted (epoch %" PRIu64 " -> %" PRIu64 ")", p->node,
			     p->epoch, h->src_epoch);
			m->ops->incarnation_end(m->ctx, p);
		} else {
			xlog("node %u: first heartbeat (epoch %" PRIu64 ")", p->node, h->src_epoch);
		}
		p->epoch = h->src_epoch;
		p->window_tried = false;
		p->rtt_ns = 0;
	}
	p->heard = true;
	p->last_hb_ns = now;
	p->last_hb_send_ns = hb->send_time_ns;
	p->beacon_phys = hb->beacon_phys;
	p->beacon_nonce = hb->beacon_nonce;
	rtt = wire_rtt_ns(h, hb, self_epoch, now);
	if (rtt)
		p->rtt_ns = rtt;

	try_window(m, p, now);
	window_ok = p->window_epoch == p->epoch;

	next = p->state;
	if (ev & MEMBER_EV_NEW_EPOCH)
		next = window_ok ? XPMEM_NODE_UP : XPMEM_NODE_UNKNOWN;
	else if (p->state == XPMEM_NODE_DEAD)
		xlog_verbose("node %u: heartbeat of epoch %" PRIu64 ", declared dead: stays DEAD",
			     p->node, p->epoch);
	else if (p->fencing)
		next = XPMEM_NODE_SUSPECT;
	else if (window_ok)
		next = XPMEM_NODE_UP;

	if (set_state(m, p, next, now))
		ev |= MEMBER_EV_STATE;
	else if ((ev & MEMBER_EV_NEW_EPOCH) || now - p->last_push_ns >= MEMBER_PUSH_INTERVAL_NS)
		push(m, p, now); /* a new epoch is news even when the state stays */
	return ev;
}

static void declare_dead(struct member *m, struct xpmemd_peer *p, uint64_t now)
{
	set_state(m, p, XPMEM_NODE_DEAD, now);
	m->ops->incarnation_end(m->ctx, p);
}

void member_leave(struct member *m, struct xpmemd_peer *p, uint64_t now)
{
	if (p->state == XPMEM_NODE_DEAD)
		return;
	xlog("node %u: leaves (epoch %" PRIu64 ")", p->node, p->epoch);
	/* A fence still running finishes unheeded: this epoch is over anyway. */
	p->fencing = false;
	p->fenced = true;
	declare_dead(m, p, now);
}

void member_tick(struct member *m, uint64_t now)
{
	for (size_t i = 0; i < m->npeers; i++) {
		struct xpmemd_peer *p = &m->peers[i];
		uint64_t age;
		int r;

		if (p->fencing) {
			r = m->ops->fence_poll(m->ctx, p);
			if (r > 0)
				continue;
			p->fencing = false;
			if (p->fence_epoch != p->epoch) {
				xlog("node %u: fence of epoch %" PRIu64 " %s, but the node is at epoch %"
				     PRIu64 " now", p->node, p->fence_epoch,
				     r == 0 ? "done" : "failed", p->epoch);
			} else if (r == 0) {
				xlog("node %u: fenced", p->node);
				p->fenced = true;
				declare_dead(m, p, now);
				continue;
			} else {
				/* Stays SUSPECT; the next tick tries again. */
				continue;
			}
		}
		if (p->state != XPMEM_NODE_UP && p->state != XPMEM_NODE_SUSPECT)
			continue;
		age = now - p->last_hb_ns;
		if (age >= m->dead_ns) {
			set_state(m, p, XPMEM_NODE_SUSPECT, now);
			if (!m->have_fence) {
				declare_dead(m, p, now);
				continue;
			}
			r = m->ops->fence_start(m->ctx, p);
			if (r == 0) {
				p->fencing = true;
				p->fence_epoch = p->epoch;
				xlog("node %u: no heartbeat for %" PRIu64 " ms: fencing it", p->node,
				     MS(age));
			} else if (!p->fence_log_ns || now - p->fence_log_ns >= FENCE_LOG_INTERVAL_NS) {
				p->fence_log_ns = now;
				xlog("node %u: cannot start the fence-command: %s (retrying)", p->node,
				     strerror(-r));
			}
		} else if (age >= m->suspect_ns) {
			set_state(m, p, XPMEM_NODE_SUSPECT, now);
		} else if (p->state == XPMEM_NODE_SUSPECT && p->window_epoch == p->epoch) {
			/* Heartbeats came back while a fence ran and failed. */
			set_state(m, p, XPMEM_NODE_UP, now);
		}
	}
}
