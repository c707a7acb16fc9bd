// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * xpmemd: building and checking the messages between daemons (see wire.h for
 * the layout). The MAC is HMAC-SHA256 through OpenSSL's EVP_MAC; comparisons of
 * MACs are constant-time.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "wire.h"

/* The module's message header, as the wire carries it (see wire.h). */
_Static_assert(offsetof(struct xpmem_fabric_msg, payload) == XPMEM_FABRIC_MSG_HDR_LEN,
	       "struct xpmem_fabric_msg header is not XPMEM_FABRIC_MSG_HDR_LEN bytes");
_Static_assert(offsetof(struct xpmem_fabric_msg, len) == 28, "xpmem_fabric_msg.len moved");

struct wire_key {
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed; /* initialised with the key; duplicated per message */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct wire_key *wire_key_new(const uint8_t *key, size_t len)
{
	struct wire_key *k;
	char digest[] = "SHA256";
	OSSL_PARAM params[2];

	if (len < WIRE_KEY_MIN || len > WIRE_KEY_MAX)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!k->mac)
		goto fail;
	k->keyed = EVP_MAC_CTX_new(k->mac);
	if (!k->keyed)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(k->keyed, key, len, params))
		goto fail;
	return k;
fail:
	wire_key_free(k);
	return NULL;
}

void wire_key_free(struct wire_key *k)
{
	if (!k)
		return;
	EVP_MAC_CTX_free(k->keyed);
	EVP_MAC_free(k->mac);
	free(k);
}

/* HMAC over the header with the MAC field zeroed, then the body. */
static int wire_mac(const struct wire_key *k, const uint8_t *msg, size_t len,
		    uint8_t out[WIRE_MAC_LEN])
{
	uint8_t hdr[WIRE_HDR_LEN];
	size_t outl = 0;
	EVP_MAC_CTX *c;
	int ok;

	if (len < WIRE_HDR_LEN)
		return -EINVAL;
	memcpy(hdr, msg, WIRE_HDR_LEN);
	memset(hdr + WIRE_MAC_OFF, 0, WIRE_MAC_LEN);
	c = EVP_MAC_CTX_dup(k->keyed);
	if (!c)
		return -ENOMEM;
	ok = EVP_MAC_update(c, hdr, sizeof(hdr)) &&
	     EVP_MAC_update(c, msg + WIRE_HDR_LEN, len - WIRE_HDR_LEN) &&
	     EVP_MAC_final(c, out, &outl, WIRE_MAC_LEN) && outl == WIRE_MAC_LEN;
	EVP_MAC_CTX_free(c);
	return ok ? 0 : -EIO;
}

const char *wire_verdict_str(enum wire_verdict v)
{
	switch (v) {
	case WIRE_OK:
		return "accepted";
	case WIRE_OK_NEW_EPOCH:
		return "accepted (new epoch)";
	case WIRE_BAD_FORMAT:
		return "malformed (magic, version, kind or length)";
	case WIRE_UNKNOWN_SRC:
		return "from an unknown node";
	case WIRE_BAD_MAC:
		return "bad HMAC";
	case WIRE_WRONG_DST:
		return "for another node";
	case WIRE_WRONG_DST_EPOCH:
		return "for another epoch of this node";
	case WIRE_STALE_EPOCH:
		return "from an older epoch of its sender";
	case WIRE_REPLAY:
		return "replayed or reordered (sequence number not newer)";
	case WIRE_UNSEEN_EPOCH:
		return "from an epoch not yet announced by a heartbeat";
	}
	return "?";
}

const char *wire_kind_str(unsigned kind)
{
	switch (kind) {
	case WIRE_HEARTBEAT:
		return "heartbeat";
	case WIRE_REQUEST:
		return "request";
	case WIRE_REPLY:
		return "reply";
	case WIRE_LEAVE:
		return "leave";
	}
	return "?";
}

bool wire_verdict_counts(enum wire_verdict v)
{
	return v != WIRE_OK && v != WIRE_OK_NEW_EPOCH && v != WIRE_UNSEEN_EPOCH;
}

size_t wire_seal(const struct wire_key *k, struct wire_sender *s, enum wire_kind kind,
		 uint32_t dst_node, uint64_t dst_epoch, const uint8_t *body, size_t body_len,
		 uint8_t *out, size_t cap)
{
	uint8_t mac[WIRE_MAC_LEN];
	size_t len = WIRE_HDR_LEN + body_len;

	if (body_len > WIRE_BODY_MAX || cap < len || s->epoch == 0)
		return 0;
	if (s->next_seq == 0)
		s->next_seq = 1;
	memset(out, 0, WIRE_HDR_LEN);
	put32(out + 0, WIRE_MAGIC);
	put16(out + 4, WIRE_VERSION);
	put16(out + 6, (uint16_t)kind);
	put32(out + 8, s->node);
	put32(out + 12, dst_node);
	put64(out + 16, s->epoch);
	put64(out + 24, dst_epoch);
	put64(out + 32, s->next_seq);
	put32(out + 40, (uint32_t)body_len);
	put32(out + 44, 0);
	if (body_len)
		memmove(out + WIRE_HDR_LEN, body, body_len);
	if (wire_mac(k, out, len, mac))
		return 0;
	memcpy(out + WIRE_MAC_OFF, mac, WIRE_MAC_LEN);
	s->next_seq++;
	return len;
}

size_t wire_encode_heartbeat(const struct wire_heartbeat *hb, uint8_t out[WIRE_HB_LEN])
{
	put64(out + 0, hb->beacon_phys);
	put64(out + 8, hb->beacon_nonce);
	put64(out + 16, hb->send_time_ns);
	put64(out + 24, hb->echo_time_ns);
	put64(out + 32, hb->echo_age_ns);
	return WIRE_HB_LEN;
}

int wire_decode_heartbeat(const uint8_t *body, size_t len, struct wire_heartbeat *hb)
{
	if (len != WIRE_HB_LEN)
		return -EINVAL;
	hb->beacon_phys = get64(body + 0);
	hb->beacon_nonce = get64(body + 8);
	hb->send_time_ns = get64(body + 16);
	hb->echo_time_ns = get64(body + 24);
	hb->echo_age_ns = get64(body + 32);
	return 0;
}

size_t wire_encode_msg(const struct xpmem_fabric_msg *msg, uint8_t *out, size_t cap)
{
	size_t len = WIRE_MSG_HDR_LEN + (size_t)msg->len;

	if (msg->len > XPMEM_FABRIC_PAYLOAD_MAX || cap < len)
		return 0;
	put64(out + 0, msg->id);
	put32(out + 8, msg->node);
	put32(out + 12, msg->type);
	put64(out + 16, msg->epoch);
	put32(out + 24, (uint32_t)msg->status);
	put32(out + 28, msg->len);
	memcpy(out + WIRE_MSG_HDR_LEN, msg->payload, msg->len);
	return len;
}

int wire_decode_msg(const uint8_t *body, size_t len, struct xpmem_fabric_msg *msg)
{
	uint32_t plen;

	if (len < WIRE_MSG_HDR_LEN)
		return -EINVAL;
	plen = get32(body + 28);
	if (plen > XPMEM_FABRIC_PAYLOAD_MAX || len != WIRE_MSG_HDR_LEN + (size_t)plen)
		return -EINVAL;
	msg->id = get64(body + 0);
	msg->node = get32(body + 8);
	msg->type = get32(body + 12);
	msg->epoch = get64(body + 16);
	msg->status = (int32_t)get32(body + 24);
	msg->len = plen;
	memcpy(msg->payload, body + WIRE_MSG_HDR_LEN, plen);
	return 0;
}

size_t wire_seal_heartbeat(const struct wire_key *k, struct wire_sender *s, uint32_t dst_node,
			   uint64_t dst_epoch, const struct wire_heartbeat *hb, uint8_t *out,
			   size_t cap)
{
	uint8_t body[WIRE_HB_LEN];

	wire_encode_heartbeat(hb, body);
	return wire_seal(k, s, WIRE_HEARTBEAT, dst_node, dst_epoch, body, sizeof(body), out, cap);
}

size_t wire_seal_msg(const struct wire_key *k, struct wire_sender *s, enum wire_kind kind,
		     uint32_t dst_node, uint64_t dst_epoch, const struct xpmem_fabric_msg *msg,
		     uint8_t *out, size_t cap)
{
	size_t blen;

	if ((kind != WIRE_REQUEST && kind != WIRE_REPLY) || cap < WIRE_HDR_LEN)
		return 0;
	/* Encode the body in place right after the header, then seal around it. */
	blen = wire_encode_msg(msg, out + WIRE_HDR_LEN, cap - WIRE_HDR_LEN);
	if (!blen)
		return 0;
	return wire_seal(k, s, kind, dst_node, dst_epoch, out + WIRE_HDR_LEN, blen, out, cap);
}

enum wire_verdict wire_parse(const uint8_t *buf, size_t len, struct wire_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (len < WIRE_HDR_LEN)
		return WIRE_BAD_FORMAT;
	h->magic = get32(buf + 0);
	h->version = get16(buf + 4);
	h->kind = get16(buf + 6);
	h->src_node = get32(buf + 8);
	h->dst_node = get32(buf + 12);
	h->src_epoch = get64(buf + 16);
	h->dst_epoch = get64(buf + 24);
	h->seq = get64(buf + 32);
	h->body_len = get32(buf + 40);
	h->reserved = get32(buf + 44);
	memcpy(h->mac, buf + WIRE_MAC_OFF, WIRE_MAC_LEN);

	if (h->magic != WIRE_MAGIC || h->version != WIRE_VERSION || h->reserved != 0)
		return WIRE_BAD_FORMAT;
	if (h->body_len > WIRE_BODY_MAX || len != WIRE_HDR_LEN + (size_t)h->body_len)
		return WIRE_BAD_FORMAT;
	if (h->src_epoch == 0 || h->seq == 0)
		return WIRE_BAD_FORMAT;
	switch (h->kind) {
	case WIRE_HEARTBEAT:
		if (h->body_len != WIRE_HB_LEN)
			return WIRE_BAD_FORMAT;
		break;
	case WIRE_LEAVE:
		if (h->body_len != 0)
			return WIRE_BAD_FORMAT;
		break;
	case WIRE_REQUEST:
	case WIRE_REPLY:
		if (h->body_len < WIRE_MSG_HDR_LEN ||
		    h->body_len != WIRE_MSG_HDR_LEN + (size_t)get32(buf + WIRE_HDR_LEN + 28))
			return WIRE_BAD_FORMAT;
		break;
	default:
		return WIRE_BAD_FORMAT;
	}
	return WIRE_OK;
}

enum wire_verdict wire_check(const struct wire_key *k, const uint8_t *buf, size_t len,
			     const struct wire_hdr *h, uint32_t self_node, uint64_t self_epoch,
			     struct wire_replay *r)
{
	uint8_t mac[WIRE_MAC_LEN];

	if (wire_mac(k, buf, len, mac) || CRYPTO_memcmp(mac, h->mac, WIRE_MAC_LEN) != 0)
		return WIRE_BAD_MAC;
	if (h->dst_node != self_node)
		return WIRE_WRONG_DST;
	if (h->dst_epoch != 0 && h->dst_epoch != self_epoch)
		return WIRE_WRONG_DST_EPOCH;
	if (h->src_epoch < r->epoch)
		return WIRE_STALE_EPOCH;
	if (h->src_epoch > r->epoch) {
		if (h->kind != WIRE_HEARTBEAT)
			return WIRE_UNSEEN_EPOCH;
		r->epoch = h->src_epoch;
		r->last_seq = h->seq;
		return WIRE_OK_NEW_EPOCH;
	}
	if (h->seq <= r->last_seq)
		return WIRE_REPLAY;
	r->last_seq = h->seq;
	return WIRE_OK;
}

uint64_t wire_rtt_ns(const struct wire_hdr *h, const struct wire_heartbeat *hb,
		     uint64_t self_epoch, uint64_t now_ns)
{
	uint64_t sent;

	if (hb->echo_time_ns == 0 || h->dst_epoch != self_epoch)
		return 0;
	/* Overflow-safe: sent = echo_time + echo_age must not pass now. */
	if (hb->echo_age_ns > now_ns || hb->echo_time_ns > now_ns - hb->echo_age_ns)
		return 0;
	sent = hb->echo_time_ns + hb->echo_age_ns;
	return now_ns > sent ? now_ns - sent : 1; /* 0 would read as "unknown" */
}
