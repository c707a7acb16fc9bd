// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemd --selftest-transport: the daemon's libfabric and wire code between two
 * endpoints of one process on 127.0.0.1 (ports chosen by the system), without
 * /dev/xpmem-fabric. Node 1 and node 2 exchange heartbeats (both get a round
 * trip), node 1 sends a REQUEST with a full payload, then a replay of it, a copy
 * with one bit flipped, one sealed with another key and one for another node:
 * the receiver must accept the first three messages and refuse the rest, each
 * for the right reason. Exit 0 when all of that holds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "transport.h"
#include "wire.h"
#include "xpmemd.h"

#define STEP_TIMEOUT_NS 10000000000ULL

struct side {
	const char *name;
	struct xt *xt;
	struct sockaddr_in addr;
	int peer_index; /* the other side, in xt */
	struct wire_sender tx;
	struct wire_key *key;
	struct wire_replay rx; /* what it accepted from the other side */
	uint64_t last_hb_send, last_hb_at; /* for the echo */
	/* The last message received. */
	int received;
	enum wire_verdict verdict;
	struct wire_hdr hdr;
	struct wire_heartbeat hb;
	struct xpmem_fabric_msg msg;
	uint64_t rtt_ns;
	int send_errors;
};

static void st_recv(void *ctx, const uint8_t *buf, size_t len)
{
	struct side *s = ctx;
	uint64_t now = xpmemd_now_ns();

	s->received++;
	s->verdict = wire_parse(buf, len, &s->hdr);
	if (s->verdict != WIRE_OK)
		return;
	s->verdict = wire_check(s->key, buf, len, &s->hdr, s->tx.node, s->tx.epoch, &s->rx);
	if (s->verdict != WIRE_OK && s->verdict != WIRE_OK_NEW_EPOCH)
		return;
	if (s->hdr.kind == WIRE_HEARTBEAT) {
		wire_decode_heartbeat(wire_body(buf), s->hdr.body_len, &s->hb);
		s->rtt_ns = wire_rtt_ns(&s->hdr, &s->hb, s->tx.epoch, now);
		s->last_hb_send = s->hb.send_time_ns;
		s->last_hb_at = now;
	} else if (wire_decode_msg(wire_body(buf), s->hdr.body_len, &s->msg)) {
		s->verdict = WIRE_BAD_FORMAT;
	}
}

static void st_sent(void *ctx, const struct xt_msg *m, int err)
{
	struct side *s = ctx;

	(void)m;
	if (err) {
		s->send_errors++;
		printf("selftest: %s: send failed: %s\n", s->name, xt_strerror(err));
	}
}

/* Drives both endpoints until to has received `want` messages in all. */
static int pump(struct side *a, struct side *b, struct side *to, int want, uint64_t *took_ns)
{
	uint64_t start = xpmemd_now_ns();

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = xt_wait_fd(a->xt), .events = POLLIN },
			{ .fd = xt_wait_fd(b->xt), .events = POLLIN },
		};
		int timeout = 100;

		if (xt_progress(a->xt) || xt_progress(b->xt))
			return -EIO;
		if (to->received >= want) {
			if (took_ns)
				*took_ns = xpmemd_now_ns() - start;
			return 0;
		}
		if (xpmemd_now_ns() - start > STEP_TIMEOUT_NS)
			return -ETIMEDOUT;
		if (xt_pending(a->xt) || xt_pending(b->xt))
			timeout = 5;
		if (pfd[0].fd < 0 || pfd[1].fd < 0)
			timeout = 5;
		else if (!xt_trywait(a->xt) || !xt_trywait(b->xt))
			timeout = 0;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			return -errno;
	}
}

static int submit(struct side *from, const uint8_t *data, size_t len, unsigned kind)
{
	struct xt_msg *m = xt_msg_new(from->xt);
	int r;

	if (!m || !len)
		return -ENOMEM;
	memcpy(m->data, data, len);
	m->len = len;
	m->dst = from->peer_index;
	m->kind = kind;
	r = xt_submit(from->xt, m);
	if (r)
		xt_msg_free(from->xt, m);
	return r;
}

static size_t seal_hb(struct side *from, struct side *to, uint8_t *out)
{
	uint64_t now = xpmemd_now_ns();
	struct wire_heartbeat hb = {
		.beacon_phys = 0x1000 * from->tx.node,
		.beacon_nonce = 0xabcdef00ULL + from->tx.node,
		.send_time_ns = now,
	};

	if (from->last_hb_at) {
		hb.echo_time_ns = from->last_hb_send;
		hb.echo_age_ns = now - from->last_hb_at;
	}
	return wire_seal_heartbeat(from->key, &from->tx, to->tx.node, from->rx.epoch, &hb, out,
				   WIRE_MAX);
}

static int expect(struct side *to, int n, enum wire_verdict want, const char *what)
{
	bool ok = to->received == n && to->verdict == want;

	printf("selftest: %-44s %s: %s%s\n", what, to->name, wire_verdict_str(to->verdict),
	       ok ? "" : "   <-- UNEXPECTED");
	return ok ? 0 : -1;
}

int xpmemd_selftest_transport(void)
{
	static uint8_t buf[WIRE_MAX];
	struct side n1 = { .name = "node 1" }, n2 = { .name = "node 2" };
	struct side *s1 = &n1, *s2 = &n2;
	uint8_t key[32], other_key[32];
	struct wire_key *wrong = NULL;
	struct wire_sender fake;
	struct xpmem_fabric_msg *req = NULL;
	char err[512];
	uint64_t took;
	size_t len;
	int fails = 0, r, n;

	if (getrandom(key, sizeof(key), 0) != sizeof(key) ||
	    getrandom(other_key, sizeof(other_key), 0) != sizeof(other_key)) {
		printf("selftest: getrandom: %s\n", strerror(errno));
		return XPMEMD_EXIT_RUNTIME;
	}
	s1->key = wire_key_new(key, sizeof(key));
	s2->key = wire_key_new(key, sizeof(key));
	wrong = wire_key_new(other_key, sizeof(other_key));
	req = calloc(1, sizeof(*req));
	if (!s1->key || !s2->key || !wrong || !req) {
		printf("selftest: cannot set up HMAC keys\n");
		fails++;
		goto out;
	}
	s1->tx = (struct wire_sender){ .node = 1, .epoch = 1000, .next_seq = 1 };
	s2->tx = (struct wire_sender){ .node = 2, .epoch = 2000, .next_seq = 1 };

	for (int i = 0; i < 2; i++) {
		struct side *s = i ? s2 : s1;
		struct xt_callbacks cb = { .recv = st_recv, .sent = st_sent, .ctx = s };
		struct sockaddr_in lo = { .sin_family = AF_INET };

		lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->xt = xt_open(&lo, 1, &cb, err, sizeof(err));
		if (!s->xt) {
			printf("selftest: %s: %s\n", s->name, err);
			fails++;
			goto out;
		}
		r = xt_local_addr(s->xt, &s->addr);
		if (r || s->addr.sin_port == 0) {
			printf("selftest: %s: no bound address (%s)\n", s->name,
			       r ? xt_strerror(r) : "port 0");
			fails++;
			goto out;
		}
		printf("selftest: %s: %s endpoint on 127.0.0.1:%u, wait fd %d\n", s->name,
		       XT_PROVIDER, ntohs(s->addr.sin_port), xt_wait_fd(s->xt));
	}
	s1->peer_index = xt_add_peer(s1->xt, &s2->addr, err, sizeof(err));
	s2->peer_index = xt_add_peer(s2->xt, &s1->addr, err, sizeof(err));
	if (s1->peer_index < 0 || s2->peer_index < 0) {
		printf("selftest: %s\n", err);
		fails++;
		goto out;
	}

	/* 1: first contact, rxm connects on demand. */
	len = seal_hb(s1, s2, buf);
	if (submit(s1, buf, len, WIRE_HEARTBEAT) || pump(s1, s2, s2, 1, &took)) {
		printf("selftest: heartbeat node 1 -> node 2 not delivered\n");
		fails++;
		goto out;
	}
	fails += expect(s2, 1, WIRE_OK_NEW_EPOCH, "heartbeat 1->2 (first contact)") != 0;
	printf("selftest:   delivered in %.3f ms (connection set up on demand)\n", took / 1e6);

	/* 2, 3: heartbeats both ways give each side a round trip. */
	len = seal_hb(s2, s1, buf);
	if (submit(s2, buf, len, WIRE_HEARTBEAT) || pump(s1, s2, s1, 1, &took)) {
		printf("selftest: heartbeat node 2 -> node 1 not delivered\n");
		fails++;
		goto out;
	}
	fails += expect(s1, 1, WIRE_OK_NEW_EPOCH, "heartbeat 2->1 (echoes 1's)") != 0;
	printf("selftest:   node 1 measures rtt %.3f ms\n", s1->rtt_ns / 1e6);
	fails += s1->rtt_ns == 0;
	len = seal_hb(s1, s2, buf);
	if (submit(s1, buf, len, WIRE_HEARTBEAT) || pump(s1, s2, s2, 2, &took)) {
		printf("selftest: second heartbeat node 1 -> node 2 not delivered\n");
		fails++;
		goto out;
	}
	fails += expect(s2, 2, WIRE_OK, "heartbeat 1->2 (echoes 2's)") != 0;
	printf("selftest:   node 2 measures rtt %.3f ms, one-way delivery %.3f ms\n",
	       s2->rtt_ns / 1e6, took / 1e6);
	fails += s2->rtt_ns == 0;

	/* 4: a request with a full payload. */
	req->id = 42;
	req->node = 2;
	req->type = XPMEM_FMSG_PING;
	req->epoch = s2->tx.epoch;
	req->len = XPMEM_FABRIC_PAYLOAD_MAX;
	for (unsigned i = 0; i < req->len; i++)
		req->payload[i] = (uint8_t)(i * 7 + 1);
	len = wire_seal_msg(s1->key, &s1->tx, WIRE_REQUEST, 2, s1->rx.epoch, req, buf, sizeof(buf));
	if (submit(s1, buf, len, WIRE_REQUEST) || pump(s1, s2, s2, 3, &took)) {
		printf("selftest: request not delivered\n");
		fails++;
		goto out;
	}
	fails += expect(s2, 3, WIRE_OK, "request 1->2, 4096-byte payload") != 0;
	if (s2->msg.id != 42 || s2->msg.len != req->len ||
	    memcmp(s2->msg.payload, req->payload, req->len)) {
		printf("selftest:   payload differs   <-- UNEXPECTED\n");
		fails++;
	}

	/* 5: the same bytes again. */
	if (submit(s1, buf, len, WIRE_REQUEST) || pump(s1, s2, s2, 4, NULL)) {
		fails++;
		goto out;
	}
	fails += expect(s2, 4, WIRE_REPLAY, "the same request again (replay)") != 0;

	/* 6: a fresh message with one bit of the payload flipped on the way. */
	n = 5;
	len = wire_seal_msg(s1->key, &s1->tx, WIRE_REQUEST, 2, s1->rx.epoch, req, buf, sizeof(buf));
	buf[WIRE_HDR_LEN + WIRE_MSG_HDR_LEN + 100] ^= 0x10;
	if (submit(s1, buf, len, WIRE_REQUEST) || pump(s1, s2, s2, n, NULL)) {
		fails++;
		goto out;
	}
	fails += expect(s2, n++, WIRE_BAD_MAC, "request with a flipped bit") != 0;

	/* 7: sealed with another key. */
	fake = s1->tx;
	len = wire_seal_msg(wrong, &fake, WIRE_REQUEST, 2, s1->rx.epoch, req, buf, sizeof(buf));
	if (submit(s1, buf, len, WIRE_REQUEST) || pump(s1, s2, s2, n, NULL)) {
		fails++;
		goto out;
	}
	fails += expect(s2, n++, WIRE_BAD_MAC, "request sealed with another key") != 0;

	/* 8: addressed to node 3. */
	len = wire_seal_msg(s1->key, &s1->tx, WIRE_REQUEST, 3, 0, req, buf, sizeof(buf));
	if (submit(s1, buf, len, WIRE_REQUEST) || pump(s1, s2, s2, n, NULL)) {
		fails++;
		goto out;
	}
	fails += expect(s2, n++, WIRE_WRONG_DST, "request for node 3") != 0;

	/* 9: and the channel still works after all that. */
	len = seal_hb(s1, s2, buf);
	if (submit(s1, buf, len, WIRE_HEARTBEAT) || pump(s1, s2, s2, n, NULL)) {
		fails++;
		goto out;
	}
	fails += expect(s2, n++, WIRE_OK, "heartbeat 1->2 afterwards") != 0;
	fails += s1->send_errors + s2->send_errors;
	for (int i = 0; i < 2; i++) {
		struct side *s = i ? s2 : s1;
		struct xt_stats st;

		xt_get_stats(s->xt, &st);
		printf("selftest: %s: %" PRIu64 " sent (%" PRIu64 " deferred by -FI_EAGAIN first), %"
		       PRIu64 " received, %" PRIu64 " send and %" PRIu64 " receive errors\n",
		       s->name, st.sent, st.deferred, st.received, st.send_errors, st.recv_errors);
	}
out:
	xt_close(s1->xt);
	xt_close(s2->xt);
	wire_key_free(s1->key);
	wire_key_free(s2->key);
	wire_key_free(wrong);
	free(req);
	printf("selftest: %s\n", fails ? "FAILED" : "passed");
	return fails ? XPMEMD_EXIT_RUNTIME : XPMEMD_EXIT_OK;
}
