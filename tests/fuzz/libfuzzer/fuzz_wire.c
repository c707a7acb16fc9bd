// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: what xpmemd reads from the network (tools/xpmemd/wire.c).
 *
 * Input byte 0 picks the mode:
 *   even  the rest is a datagram as it arrives: wire_parse(), then wire_check()
 *         against a fixed key, node and replay state; anything accepted must be a
 *         well-formed message of that key (it cannot be, short of forging a MAC)
 *   odd   the rest describes a message (kind, nodes, epochs, sequence, replay
 *         state, body) that is sealed with the right key first, so that the checks
 *         after the MAC (destination, epochs, replay, bodies) are reached
 * Invariants: verdicts are in range; an accepted message moved the replay state
 * forward and only then; accepted bodies decode, and decoded messages re-encode
 * to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../tools/xpmemd/wire.h"

#define CHECK(x)                                                                   \
	do {                                                                       \
		if (!(x)) {                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #x, __FILE__, \
				__LINE__);                                         \
			abort();                                                   \
		}                                                                  \
	} while (0)

#define SELF 7
#define SELF_EPOCH 1000

static struct wire_key *key;
static uint8_t buf[WIRE_MAX + 64];

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && *n; i++, (*p)++, (*n)--)
		v |= (uint64_t)**p << (8 * i);
	return v;
}

static void check_accepted(const uint8_t *msg, size_t len, const struct wire_hdr *h)
{
	const uint8_t *body = wire_body(msg);
	struct xpmem_fabric_msg m;
	struct wire_heartbeat hb;
	uint8_t again[WIRE_BODY_MAX];

	CHECK(h->dst_node == SELF);
	CHECK(len == WIRE_HDR_LEN + h->body_len);
	if (h->kind == WIRE_HEARTBEAT) {
		CHECK(wire_decode_heartbeat(body, h->body_len, &hb) == 0);
		(void)wire_rtt_ns(h, &hb, SELF_EPOCH, 1ULL << 40);
	} else {
		CHECK(h->kind == WIRE_REQUEST || h->kind == WIRE_REPLY);
		if (wire_decode_msg(body, h->body_len, &m) == 0) {
			CHECK(m.len <= XPMEM_FABRIC_PAYLOAD_MAX);
			CHECK(wire_encode_msg(&m, again, sizeof(again)) == h->body_len);
			CHECK(!memcmp(again, body, h->body_len));
		}
	}
}

static void check(const uint8_t *msg, size_t len, struct wire_replay *r)
{
	struct wire_replay before = *r;
	enum wire_verdict v;
	struct wire_hdr h;

	v = wire_parse(msg, len, &h);
	CHECK(v == WIRE_OK || v == WIRE_BAD_FORMAT);
	if (v != WIRE_OK)
		return;
	v = wire_check(key, msg, len, &h, SELF, SELF_EPOCH, r);
	CHECK(v <= WIRE_UNSEEN_EPOCH && v != WIRE_BAD_FORMAT && v != WIRE_UNKNOWN_SRC);
	(void)wire_verdict_str(v);
	if (v == WIRE_OK || v == WIRE_OK_NEW_EPOCH) {
		CHECK(r->epoch == h.src_epoch && r->last_seq == h.seq);
		CHECK(r->epoch > before.epoch ||
		      (r->epoch == before.epoch && r->last_seq > before.last_seq));
		check_accepted(msg, len, &h);
	} else {
		CHECK(!memcmp(r, &before, sizeof(before)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_replay r = { 0 };
	struct wire_sender s;
	uint32_t kind, dst;
	uint64_t dst_epoch;
	size_t len;

	if (!key) {
		static const uint8_t secret[32] = "the fuzzer's shared fabric key.";

		key = wire_key_new(secret, sizeof(secret));
		CHECK(key);
	}
	if (!size)
		return 0;
	if (!(data[0] & 1)) {
		r.epoch = data[0] >> 1;
		r.last_seq = data[0] >> 4;
		check(data + 1, size - 1, &r);
		return 0;
	}
	data++;
	size--;
	kind = (uint32_t)take(&data, &size, 1) % 4;
	s.node = (uint32_t)take(&data, &size, 2);
	s.epoch = take(&data, &size, 2);
	s.next_seq = take(&data, &size, 2);
	dst = take(&data, &size, 1) & 1 ? SELF : (uint32_t)take(&data, &size, 2);
	dst_epoch = take(&data, &size, 1) & 1 ? SELF_EPOCH : take(&data, &size, 2);
	r.epoch = take(&data, &size, 2);
	r.last_seq = take(&data, &size, 2);
	len = wire_seal(key, &s, (enum wire_kind)kind, dst, dst_epoch, data, size, buf,
			sizeof(buf));
	if (!len)
		return 0;
	/* Sealed with the right key: a second delivery must be refused as a replay. */
	check(buf, len, &r);
	if (r.epoch == s.epoch && r.last_seq == s.next_seq - 1) {
		struct wire_replay once = r;

		check(buf, len, &r);
		CHECK(!memcmp(&r, &once, sizeof(r)));
	}
	return 0;
}
