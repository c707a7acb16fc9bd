/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: membership, the state of each configured peer as this node sees it.
 *
 *   UNKNOWN  nothing heard yet, or a new epoch whose window the kernel did not
 *            accept (yet: XPMEM_FABRIC_WINDOW is retried on its heartbeats, at
 *            most once a second)
 *   UP       heartbeats arrive and the window of this epoch is accepted
 *   SUSPECT  no heartbeat for suspect-ms (or a fence is running)
 *   DEAD     no heartbeat for dead-ms, and the fence-command (if any) exited 0;
 *            or it said it leaves (then it counts as fenced: its kernel let go
 *            of everything); only a heartbeat of a newer epoch brings it back
 *
 * No I/O here: what touches the kernel or runs programs goes through
 * struct member_ops, so that the unit tests can drive the state machine.
 */
#ifndef XPMEMD_MEMBER_H
#define XPMEMD_MEMBER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"
#include "xpmem_fabric.h"

#define MEMBER_PUSH_INTERVAL_NS 500000000ULL
#define MEMBER_WINDOW_RETRY_NS 1000000000ULL

struct xpmemd_peer {
	const struct xpmemd_peer_conf *conf;
	uint32_t node;
	uint32_t state; /* enum xpmem_fabric_node_state */
	uint64_t epoch; /* the incarnation known (0: none yet) */
	struct wire_replay rx; /* what wire_check keeps */
	uint64_t beacon_phys, beacon_nonce; /* from its last heartbeat */
	bool heard;
	uint64_t last_hb_ns; /* when its last heartbeat was accepted (our clock) */
	uint64_t last_hb_send_ns; /* that heartbeat's send_time_ns (its clock) */
	uint64_t rtt_ns;
	uint64_t rejected;
	uint64_t window_epoch; /* the epoch whose window the kernel accepted */
	bool window_tried;
	uint64_t window_try_ns;
	uint64_t last_push_ns;
	bool fencing;
	bool fenced; /* DEAD after a fence-command that succeeded */
	uint64_t fence_epoch;
	uint64_t fence_log_ns;
	/* For the daemon. */
	int xt_index;
	int push_errno;
};

struct member_ops {
	/* XPMEM_FABRIC_WINDOW for p's epoch and beacon: 0 or -errno. */
	int (*window)(void *ctx, struct xpmemd_peer *p);
	/* XPMEM_FABRIC_NODE with p's figures. */
	void (*push)(void *ctx, struct xpmemd_peer *p, uint64_t now_ns);
	/* Starts the fence-command for p: 0 or -errno. */
	int (*fence_start)(void *ctx, struct xpmemd_peer *p);
	/* The running fence of p: 1 still running, 0 exited 0, -1 failed. */
	int (*fence_poll)(void *ctx, struct xpmemd_peer *p);
	/* p's incarnation (p->epoch) is over: answer its requests, drop its queue. */
	void (*incarnation_end)(void *ctx, struct xpmemd_peer *p);
};

struct member {
	struct xpmemd_peer *peers;
	size_t npeers;
	int16_t index[XPMEM_FABRIC_MAX_NODE + 1]; /* node -> peers[] index, -1 none */
	uint64_t suspect_ns, dead_ns;
	bool have_fence;
	const struct member_ops *ops;
	void *ctx;
};

/* Events member_heartbeat() reports. */
#define MEMBER_EV_NEW_EPOCH 1u
#define MEMBER_EV_STATE 2u

int member_init(struct member *m, const struct xpmemd_config *cfg, const struct member_ops *ops,
		void *ctx);
void member_free(struct member *m);
struct xpmemd_peer *member_find(struct member *m, uint32_t node);
const char *member_state_str(uint32_t state);

/*
 * An accepted heartbeat (v: WIRE_OK or WIRE_OK_NEW_EPOCH from wire_check) from p
 * at now_ns. Returns MEMBER_EV_* bits.
 */
unsigned member_heartbeat(struct member *m, struct xpmemd_peer *p, const struct wire_hdr *h,
			  const struct wire_heartbeat *hb, enum wire_verdict v, uint64_t self_epoch,
			  uint64_t now_ns);

/* An accepted LEAVE from p's current epoch at now_ns. */
void member_leave(struct member *m, struct xpmemd_peer *p, uint64_t now_ns);

/* Timeouts and fences; called every heartbeat interval. */
void member_tick(struct member *m, uint64_t now_ns);

#endif /* XPMEMD_MEMBER_H */
