// SPDX-License-Identifier: LGPL-2.1-or-later
/* xpmemd: the libfabric transport (see transport.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include "log.h"
#include "transport.h"

#define XT_FI_VERSION FI_VERSION(1, 17)
#define XT_RX_LEN (WIRE_MAX + 256) /* room to see (and drop) oversized datagrams */
#define XT_CQ_BATCH 16
#define XT_BUSY_MS 5
#define XT_RECENT_NS 200000000ULL

/* Every operation's context: providers with FI_CONTEXT(2) modes may use ctx. */
struct xt_slot {
	struct fi_context2 ctx;
	struct xt_slot *free_next;
	struct xt_msg msg;
};

struct xt_rx {
	struct fi_context2 ctx;
	bool posted;
	uint8_t data[XT_RX_LEN];
};

struct xt_queue {
	struct xt_msg *head, *tail;
	size_t n;
	uint64_t moved_ns; /* last submit to it or send taken from it */
};

struct xt {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	int wait_fd;
	struct xt_callbacks cb;

	fi_addr_t *addr;
	struct xt_queue *q;
	size_t npeers, max_peers;
	size_t pending; /* queued, all peers */
	size_t inflight;
	uint64_t inflight_ns; /* last send taken or completed */
	struct xt_stats stats;

	struct xt_rx *rx;
	size_t nrx, unposted;

	struct xt_slot **slots; /* every slot ever allocated, for xt_close */
	size_t nslots, slots_cap;
	struct xt_slot *free;
};

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen,
							 const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct xt_slot *slot_of(struct xt_msg *m)
{
	return (struct xt_slot *)((char *)m - offsetof(struct xt_slot, msg));
}

static int post_rx(struct xt *t, struct xt_rx *rx)
{
	ssize_t r = fi_recv(t->ep, rx->data, sizeof(rx->data), NULL, FI_ADDR_UNSPEC, &rx->ctx);

	if (r == 0) {
		rx->posted = true;
		return 0;
	}
	if (r != -FI_EAGAIN)
		xlog("fi_recv: %s", fi_strerror((int)-r));
	return (int)r;
}

static void repost_all(struct xt *t)
{
	if (!t->unposted)
		return;
	for (size_t i = 0; i < t->nrx; i++) {
		if (t->rx[i].posted)
			continue;
		if (post_rx(t, &t->rx[i]))
			return;
		t->unposted--;
	}
}

struct xt *xt_open(const struct sockaddr_in *src, size_t max_peers,
		   const struct xt_callbacks *cb, char *err, size_t errlen)
{
	struct fi_info *hints;
	struct fi_cq_attr cq_attr;
	struct fi_av_attr av_attr;
	char node[INET_ADDRSTRLEN], service[8];
	struct xt *t;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	t->wait_fd = -1;
	t->cb = *cb;
	t->max_peers = max_peers;
	t->addr = calloc(max_peers ? max_peers : 1, sizeof(*t->addr));
	t->q = calloc(max_peers ? max_peers : 1, sizeof(*t->q));
	t->nrx = XT_NRECV;
	t->rx = calloc(t->nrx, sizeof(*t->rx));
	hints = fi_allocinfo();
	if (!t->addr || !t->q || !t->rx || !hints) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}

	hints->caps = FI_MSG;
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->addr_format = FI_SOCKADDR_IN;
	hints->ep_attr->type = FI_EP_RDM;
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	hints->domain_attr->av_type = FI_AV_TABLE;
	hints->fabric_attr->prov_name = strdup(XT_PROVIDER);
	if (!hints->fabric_attr->prov_name) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	inet_ntop(AF_INET, &src->sin_addr, node, sizeof(node));
	snprintf(service, sizeof(service), "%u", ntohs(src->sin_port));
	r = fi_getinfo(XT_FI_VERSION, node, service, FI_SOURCE, hints, &t->info);
	if (r) {
		seterr(err, errlen, "libfabric: no %s endpoint at %s:%s: %s", XT_PROVIDER, node,
		       service, fi_strerror(-r));
		goto fail;
	}
	r = fi_fabric(t->info->fabric_attr, &t->fabric, NULL);
	if (r) {
		seterr(err, errlen, "fi_fabric: %s", fi_strerror(-r));
		goto fail;
	}
	r = fi_domain(t->fabric, t->info, &t->domain, NULL);
	if (r) {
		seterr(err, errlen, "fi_domain: %s", fi_strerror(-r));
		goto fail;
	}
	memset(&cq_attr, 0, sizeof(cq_attr));
	cq_attr.format = FI_CQ_FORMAT_MSG;
	cq_attr.wait_obj = FI_WAIT_FD;
	/* Room for every posted receive and every send the provider may hold. */
	cq_attr.size = XT_NRECV + (t->info->tx_attr->size ? t->info->tx_attr->size : 1024);
	r = fi_cq_open(t->domain, &cq_attr, &t->cq, NULL);
	if (r) {
		seterr(err, errlen, "fi_cq_open: %s", fi_strerror(-r));
		goto fail;
	}
	r = fi_control(&t->cq->fid, FI_GETWAIT, &t->wait_fd);
	if (r) {
		seterr(err, errlen, "fi_control(FI_GETWAIT): %s", fi_strerror(-r));
		goto fail;
	}
	memset(&av_attr, 0, sizeof(av_attr));
	av_attr.type = FI_AV_TABLE;
	av_attr.count = max_peers ? max_peers : 1;
	r = fi_av_open(t->domain, &av_attr, &t->av, NULL);
	if (r) {
		seterr(err, errlen, "fi_av_open: %s", fi_strerror(-r));
		goto fail;
	}
	r = fi_endpoint(t->domain, t->info, &t->ep, NULL);
	if (r) {
		seterr(err, errlen, "fi_endpoint: %s", fi_strerror(-r));
		goto fail;
	}
	r = fi_ep_bind(t->ep, &t->av->fid, 0);
	if (!r)
		r = fi_ep_bind(t->ep, &t->cq->fid, FI_TRANSMIT | FI_RECV);
	if (r) {
		seterr(err, errlen, "fi_ep_bind: %s", fi_strerror(-r));
		goto fail;
	}
	r = fi_enable(t->ep);
	if (r) {
		seterr(err, errlen, "fi_enable on %s:%s: %s", node, service, fi_strerror(-r));
		goto fail;
	}
	for (size_t i = 0; i < t->nrx; i++) {
		r = post_rx(t, &t->rx[i]);
		if (r) {
			seterr(err, errlen, "fi_recv: %s", fi_strerror(-r));
			goto fail;
		}
	}
	fi_freeinfo(hints);
	return t;
fail:
	fi_freeinfo(hints);
	xt_close(t);
	return NULL;
}

void xt_close(struct xt *t)
{
	if (!t)
		return;
	if (t->ep)
		fi_close(&t->ep->fid);
	if (t->av)
		fi_close(&t->av->fid);
	if (t->cq)
		fi_close(&t->cq->fid);
	if (t->domain)
		fi_close(&t->domain->fid);
	if (t->fabric)
		fi_close(&t->fabric->fid);
	if (t->info)
		fi_freeinfo(t->info);
	for (size_t i = 0; i < t->nslots; i++)
		free(t->slots[i]);
	free(t->slots);
	free(t->rx);
	free(t->q);
	free(t->addr);
	free(t);
}

int xt_local_addr(struct xt *t, struct sockaddr_in *out)
{
	size_t len = sizeof(*out);
	int r = fi_getname(&t->ep->fid, out, &len);

	if (r)
		return r;
	return len == sizeof(*out) && out->sin_family == AF_INET ? 0 : -EAFNOSUPPORT;
}

int xt_add_peer(struct xt *t, const struct sockaddr_in *addr, char *err, size_t errlen)
{
	int r;

	if (t->npeers == t->max_peers) {
		seterr(err, errlen, "too many peers");
		return -ENOSPC;
	}
	r = fi_av_insert(t->av, addr, 1, &t->addr[t->npeers], 0, NULL);
	if (r != 1) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof(ip));
		seterr(err, errlen, "fi_av_insert %s:%u: %s", ip, ntohs(addr->sin_port),
		       r < 0 ? fi_strerror(-r) : "not inserted");
		return r < 0 ? r : -EINVAL;
	}
	return (int)t->npeers++;
}

struct xt_msg *xt_msg_new(struct xt *t)
{
	struct xt_slot *s = t->free;

	if (s) {
		t->free = s->free_next;
	} else {
		if (t->nslots == t->slots_cap) {
			size_t cap = t->slots_cap ? 2 * t->slots_cap : 64;
			struct xt_slot **n = realloc(t->slots, cap * sizeof(*n));

			if (!n)
				return NULL;
			t->slots = n;
			t->slots_cap = cap;
		}
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
		t->slots[t->nslots++] = s;
	}
	memset(&s->ctx, 0, sizeof(s->ctx));
	s->free_next = NULL;
	s->msg.next = NULL;
	s->msg.dst = -1;
	s->msg.kind = 0;
	s->msg.req_id = 0;
	s->msg.len = 0;
	return &s->msg;
}

void xt_msg_free(struct xt *t, struct xt_msg *m)
{
	struct xt_slot *s = slot_of(m);

	s->free_next = t->free;
	t->free = s;
}

static void kick(struct xt *t, int dst)
{
	struct xt_queue *q = &t->q[dst];

	while (q->head) {
		struct xt_msg *m = q->head;
		ssize_t r = fi_send(t->ep, m->data, m->len, NULL, t->addr[dst], &slot_of(m)->ctx);

		if (r == -FI_EAGAIN) {
			t->stats.deferred++;
			return;
		}
		q->moved_ns = mono_ns();
		t->inflight_ns = q->moved_ns;
		q->head = m->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		t->pending--;
		m->next = NULL;
		if (r) {
			t->stats.send_errors++;
			t->cb.sent(t->cb.ctx, m, (int)r);
			xt_msg_free(t, m);
			continue;
		}
		t->stats.sent++;
		t->inflight++;
	}
}

int xt_submit(struct xt *t, struct xt_msg *m)
{
	struct xt_queue *q;

	if (m->dst < 0 || (size_t)m->dst >= t->npeers)
		return -EINVAL;
	q = &t->q[m->dst];
	if (q->n >= XT_QUEUE_MAX)
		return -ENOBUFS;
	m->next = NULL;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->n++;
	t->pending++;
	q->moved_ns = mono_ns();
	kick(t, m->dst);
	return 0;
}

struct xt_msg *xt_queued_tail(struct xt *t, int dst)
{
	if (dst < 0 || (size_t)dst >= t->npeers)
		return NULL;
	return t->q[dst].tail;
}

size_t xt_purge(struct xt *t, int dst)
{
	struct xt_queue *q;
	size_t n = 0;

	if (dst < 0 || (size_t)dst >= t->npeers)
		return 0;
	q = &t->q[dst];
	while (q->head) {
		struct xt_msg *m = q->head;

		q->head = m->next;
		xt_msg_free(t, m);
		n++;
	}
	q->tail = NULL;
	t->pending -= q->n;
	q->n = 0;
	return n;
}

size_t xt_pending(struct xt *t)
{
	return t->pending + t->inflight;
}

int xt_timeout_ms(struct xt *t)
{
	uint64_t now;

	if (t->unposted)
		return XT_BUSY_MS;
	if (!t->inflight && !t->pending)
		return -1;
	/* Only what moved lately: a peer that is down must not keep us busy. */
	now = mono_ns();
	if (t->inflight && now - t->inflight_ns < XT_RECENT_NS)
		return XT_BUSY_MS;
	for (size_t i = 0; t->pending && i < t->npeers; i++)
		if (t->q[i].n && now - t->q[i].moved_ns < XT_RECENT_NS)
			return XT_BUSY_MS;
	return -1;
}

static struct xt_rx *rx_of(struct xt *t, void *ctx)
{
	char *p = ctx, *base = (char *)t->rx;

	if (p < base || p >= base + t->nrx * sizeof(*t->rx))
		return NULL;
	if ((size_t)(p - base) % sizeof(*t->rx))
		return NULL;
	return (struct xt_rx *)p;
}

static void completed(struct xt *t, void *ctx, size_t len, int err)
{
	struct xt_rx *rx;
	struct xt_slot *s;

	if (!ctx)
		return;
	rx = rx_of(t, ctx);
	if (rx) {
		rx->posted = false;
		if (err || len > XT_RX_LEN) {
			t->stats.recv_errors++;
			xlog_verbose("receive failed: %s", err ? fi_strerror(-err) : "too long");
		} else {
			t->stats.received++;
			t->cb.recv(t->cb.ctx, rx->data, len);
		}
		if (post_rx(t, rx))
			t->unposted++;
		return;
	}
	s = (struct xt_slot *)ctx;
	t->inflight--;
	t->inflight_ns = mono_ns();
	if (err)
		t->stats.send_errors++;
	t->cb.sent(t->cb.ctx, &s->msg, err);
	xt_msg_free(t, &s->msg);
}

int xt_progress(struct xt *t)
{
	struct fi_cq_msg_entry e[XT_CQ_BATCH];

	for (;;) {
		ssize_t n = fi_cq_read(t->cq, e, XT_CQ_BATCH);

		if (n == -FI_EAGAIN)
			break;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee;

			memset(&ee, 0, sizeof(ee));
			n = fi_cq_readerr(t->cq, &ee, 0);
			if (n == -FI_EAGAIN)
				continue;
			if (n < 0) {
				xlog("fi_cq_readerr: %s", fi_strerror((int)-n));
				return (int)n;
			}
			completed(t, ee.op_context, ee.len, -(ee.err ? ee.err : EIO));
			continue;
		}
		if (n < 0) {
			xlog("fi_cq_read: %s", fi_strerror((int)-n));
			return (int)n;
		}
		for (ssize_t i = 0; i < n; i++)
			completed(t, e[i].op_context, e[i].len, 0);
	}
	repost_all(t);
	for (size_t i = 0; i < t->npeers; i++)
		kick(t, (int)i);
	return 0;
}

int xt_wait_fd(struct xt *t)
{
	return t->wait_fd;
}

bool xt_trywait(struct xt *t)
{
	struct fid *fids[1] = { &t->cq->fid };

	return fi_trywait(t->fabric, fids, 1) == FI_SUCCESS;
}

const char *xt_strerror(int err)
{
	return fi_strerror(err < 0 ? -err : err);
}

void xt_get_stats(struct xt *t, struct xt_stats *out)
{
	*out = t->stats;
}
