/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: datagrams to and from peers over a libfabric reliable-datagram
 * endpoint ("tcp;ofi_rxm", FI_EP_RDM, FI_MSG, in-order sends).
 *
 * Messages to each peer wait in a FIFO until the provider takes them: rxm
 * connects on demand and answers -FI_EAGAIN meanwhile, and a later message must
 * never overtake an earlier one to the same peer (the receiver refuses sequence
 * numbers that go backwards). The completion queue has a wait fd, so the daemon
 * can poll() it next to its other fds (xt_wait_fd, xt_trywait).
 */
#ifndef XPMEMD_TRANSPORT_H
#define XPMEMD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "wire.h"

#define XT_PROVIDER "tcp;ofi_rxm"
#define XT_NRECV 64
#define XT_QUEUE_MAX 256 /* unsent messages per peer */

struct xt;

struct xt_msg {
	struct xt_msg *next;
	int dst; /* peer index from xt_add_peer */
	unsigned kind; /* enum wire_kind */
	uint64_t req_id; /* REQUEST: the kernel's id */
	size_t len;
	uint8_t data[WIRE_MAX];
};

struct xt_callbacks {
	/* A datagram arrived (buf valid during the call only). */
	void (*recv)(void *ctx, const uint8_t *buf, size_t len);
	/* A message was sent (err 0) or failed (-errno); it is freed after the call. */
	void (*sent)(void *ctx, const struct xt_msg *m, int err);
	void *ctx;
};

/* Opens the endpoint at src (port 0: any). NULL with a message in err. */
struct xt *xt_open(const struct sockaddr_in *src, size_t max_peers,
		   const struct xt_callbacks *cb, char *err, size_t errlen);
void xt_close(struct xt *t);
/* The address actually bound (after port 0). */
int xt_local_addr(struct xt *t, struct sockaddr_in *out);
/* Adds a peer's address: its index (>= 0), or -errno with a message in err. */
int xt_add_peer(struct xt *t, const struct sockaddr_in *addr, char *err, size_t errlen);

/* A message to fill (data, len, dst, kind, req_id) and submit; NULL: no memory. */
struct xt_msg *xt_msg_new(struct xt *t);
void xt_msg_free(struct xt *t, struct xt_msg *m);
/* Queues m for m->dst and tries to send: 0, or -ENOBUFS (queue full; m still yours). */
int xt_submit(struct xt *t, struct xt_msg *m);
/* The last queued, not yet sent message to dst, if any (it may be rewritten). */
struct xt_msg *xt_queued_tail(struct xt *t, int dst);
/* Drops every queued, not yet sent message to dst; returns how many. */
size_t xt_purge(struct xt *t, int dst);
/* Messages queued or in flight, all peers. */
size_t xt_pending(struct xt *t);
/*
 * How long the caller may sleep in poll() before calling xt_progress again:
 * 5 ms while sends completed or a queue moved in the last 200 ms (manual
 * progress), else -1 (the wait fd only): a queue stuck on a peer that is down
 * (one coalesced heartbeat) or sends stuck in flight are retried on the
 * caller's next wakeup (its heartbeat timer), not 200 times a second.
 */
int xt_timeout_ms(struct xt *t);

struct xt_stats {
	uint64_t sent; /* taken by the provider */
	uint64_t deferred; /* fi_send answered -FI_EAGAIN (retried later) */
	uint64_t send_errors;
	uint64_t received;
	uint64_t recv_errors;
};
void xt_get_stats(struct xt *t, struct xt_stats *out);

/* Text of a -errno or -FI_E* code from this interface. */
const char *xt_strerror(int err);

/* Reads completions (calling the callbacks) and sends what waits: 0 or -errno. */
int xt_progress(struct xt *t);
/* The fd to poll for POLLIN, or -1 when the provider has none. */
int xt_wait_fd(struct xt *t);
/* Whether it is safe to block on the wait fd now (else: xt_progress first). */
bool xt_trywait(struct xt *t);

#endif /* XPMEMD_TRANSPORT_H */
