/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: the messages daemons exchange, and how a receiver decides whether to
 * believe one. No I/O here: the daemon, its transport self-test and the unit
 * tests (tests/xpmemd/test_wire.c) all build and check messages with this.
 *
 * Every message is one datagram: an 80-byte header then body_len bytes of body,
 * all integers little-endian.
 *
 *   off size field
 *     0    4 magic      WIRE_MAGIC
 *     4    2 version    WIRE_VERSION
 *     6    2 kind       enum wire_kind
 *     8    4 src_node   sender's node id (1..XPMEM_FABRIC_MAX_NODE)
 *    12    4 dst_node   receiver's node id
 *    16    8 src_epoch  sender's epoch (nonzero)
 *    24    8 dst_epoch  receiver's epoch as the sender knows it, 0 = not known yet
 *    32    8 seq        sender's sequence number: starts at 1, grows by one per
 *                       message sent (to any peer) within one epoch
 *    40    4 body_len
 *    44    4 reserved   0
 *    48   32 mac        HMAC-SHA256 with the shared key over the header with
 *                       this field zeroed, then the body
 *
 * Bodies:
 *   HEARTBEAT (40 bytes): beacon_phys, beacon_nonce (from XPMEM_FABRIC_JOIN),
 *     send_time_ns (sender's CLOCK_MONOTONIC when built), echo_time_ns (the
 *     send_time_ns of the last heartbeat the sender accepted from the receiver's
 *     current epoch, 0 if none), echo_age_ns (sender's time between accepting
 *     that heartbeat and building this one). The receiver, with R its own
 *     CLOCK_MONOTONIC on arrival, gets the round trip as R - echo_time - echo_age:
 *     R and echo_time are both on the receiver's clock, echo_age is a duration,
 *     so no clock has to agree with another. Only used when dst_epoch names the
 *     receiver's current epoch (so echo_time is of this incarnation's clock).
 *   REQUEST, REPLY (32 + len bytes): a struct xpmem_fabric_msg header (id u64,
 *     node u32, type u32, epoch u64, status s32, len u32) then len payload
 *     bytes, len <= XPMEM_FABRIC_PAYLOAD_MAX: a request as the asking kernel's
 *     read() gave it, an answer as the serving kernel's read() gave it (type
 *     with XPMEM_FMSG_ANSWER), or a daemon's refusal (status -errno, len 0).
 *     The receiver trusts none of node and epoch: it sets them from the
 *     authenticated header before it hands the message to its kernel.
 *   LEAVE (no body): the sender's daemon stops cleanly; its kernel has already
 *     dropped every mapping of other nodes' pages, so the receiver may count it
 *     dead and fenced (what it was given is freed) until a newer epoch comes.
 */
#ifndef XPMEMD_WIRE_H
#define XPMEMD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xpmem_fabric.h"

#define WIRE_MAGIC 0x444d5058u /* the bytes "XPMD" on the wire */
#define WIRE_VERSION 1
#define WIRE_HDR_LEN 80
#define WIRE_MAC_OFF 48
#define WIRE_MAC_LEN 32
#define WIRE_HB_LEN 40
#define WIRE_MSG_HDR_LEN XPMEM_FABRIC_MSG_HDR_LEN
#define WIRE_BODY_MAX (WIRE_MSG_HDR_LEN + XPMEM_FABRIC_PAYLOAD_MAX)
#define WIRE_MAX (WIRE_HDR_LEN + WIRE_BODY_MAX)
#define WIRE_KEY_MIN 16
#define WIRE_KEY_MAX 4096

enum wire_kind {
	WIRE_HEARTBEAT = 1,
	WIRE_REQUEST = 2,
	WIRE_REPLY = 3,
	WIRE_LEAVE = 4,
};

struct wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;
	uint32_t src_node;
	uint32_t dst_node;
	uint64_t src_epoch;
	uint64_t dst_epoch;
	uint64_t seq;
	uint32_t body_len;
	uint32_t reserved;
	uint8_t mac[WIRE_MAC_LEN];
};

struct wire_heartbeat {
	uint64_t beacon_phys;
	uint64_t beacon_nonce;
	uint64_t send_time_ns;
	uint64_t echo_time_ns;
	uint64_t echo_age_ns;
};

/* The sending side of one incarnation: who we are and the next seq to use. */
struct wire_sender {
	uint32_t node;
	uint64_t epoch;
	uint64_t next_seq; /* starts at 1 */
};

/* What a receiver remembers of one peer to refuse stale and replayed messages. */
struct wire_replay {
	uint64_t epoch; /* 0: nothing accepted yet */
	uint64_t last_seq;
};

/* Outcome of checking a received message, in the order the checks are made. */
enum wire_verdict {
	WIRE_OK = 0, /* same epoch as known, newer seq */
	WIRE_OK_NEW_EPOCH, /* heartbeat of a newer (or first) epoch: seq reset */
	WIRE_BAD_FORMAT, /* magic, version, kind, lengths, zero epoch/seq */
	WIRE_UNKNOWN_SRC, /* (decided by the caller: not a configured peer) */
	WIRE_BAD_MAC,
	WIRE_WRONG_DST, /* dst_node is not us */
	WIRE_WRONG_DST_EPOCH, /* dst_epoch nonzero and not ours */
	WIRE_STALE_EPOCH, /* src_epoch older than the one known */
	WIRE_REPLAY, /* seq not newer than the last accepted of that epoch */
	WIRE_UNSEEN_EPOCH, /* request/reply of an epoch no heartbeat announced yet */
};

struct wire_key; /* opaque: an HMAC-SHA256 context keyed with the shared secret */

/* Key setup: NULL on error (key too short/long, OpenSSL failure). */
struct wire_key *wire_key_new(const uint8_t *key, size_t len);
void wire_key_free(struct wire_key *k);

const char *wire_verdict_str(enum wire_verdict v);
const char *wire_kind_str(unsigned kind);
/* Whether the verdict counts against the peer ("rejected"). */
bool wire_verdict_counts(enum wire_verdict v);

/*
 * Builds a complete message into out (cap bytes, at least WIRE_MAX is always
 * enough): header from the sender (seq taken and advanced), dst and dst_epoch,
 * then the body, then the MAC. Returns the message length, 0 on error.
 */
size_t wire_seal(const struct wire_key *k, struct wire_sender *s, enum wire_kind kind,
		 uint32_t dst_node, uint64_t dst_epoch, const uint8_t *body, size_t body_len,
		 uint8_t *out, size_t cap);

/* Bodies. encode_* return the body length; decode_* return 0 or -EINVAL. */
size_t wire_encode_heartbeat(const struct wire_heartbeat *hb, uint8_t out[WIRE_HB_LEN]);
int wire_decode_heartbeat(const uint8_t *body, size_t len, struct wire_heartbeat *hb);
/* msg->len payload bytes are copied; 0 when msg->len is too large. */
size_t wire_encode_msg(const struct xpmem_fabric_msg *msg, uint8_t *out, size_t cap);
int wire_decode_msg(const uint8_t *body, size_t len, struct xpmem_fabric_msg *msg);

/* Convenience: seal a heartbeat or a REQUEST/REPLY in one call. */
size_t wire_seal_heartbeat(const struct wire_key *k, struct wire_sender *s, uint32_t dst_node,
			   uint64_t dst_epoch, const struct wire_heartbeat *hb, uint8_t *out,
			   size_t cap);
size_t wire_seal_msg(const struct wire_key *k, struct wire_sender *s, enum wire_kind kind,
		     uint32_t dst_node, uint64_t dst_epoch, const struct xpmem_fabric_msg *msg,
		     uint8_t *out, size_t cap);

/*
 * First step of receiving: the header alone (magic, version, kind, reserved,
 * lengths against len and the kind, nonzero src_epoch and seq). WIRE_OK or
 * WIRE_BAD_FORMAT; *h is filled either way as far as len allows.
 */
enum wire_verdict wire_parse(const uint8_t *buf, size_t len, struct wire_hdr *h);

/*
 * Second step, once the caller found the peer named by h->src_node (else it is
 * WIRE_UNKNOWN_SRC): MAC, destination, epochs and sequence, in that order. Only
 * WIRE_OK and WIRE_OK_NEW_EPOCH change *r (the message is then accepted).
 */
enum wire_verdict wire_check(const struct wire_key *k, const uint8_t *buf, size_t len,
			     const struct wire_hdr *h, uint32_t self_node, uint64_t self_epoch,
			     struct wire_replay *r);

/* Body of an accepted message (points into buf). */
static inline const uint8_t *wire_body(const uint8_t *buf)
{
	return buf + WIRE_HDR_LEN;
}

/* The round trip from a heartbeat accepted at now_ns (0 when unknown). */
uint64_t wire_rtt_ns(const struct wire_hdr *h, const struct wire_heartbeat *hb,
		     uint64_t self_epoch, uint64_t now_ns);

#endif /* XPMEMD_WIRE_H */
