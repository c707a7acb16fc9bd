// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fabric-inject: sends one bad heartbeat to a peer's xpmemd, as this node, from a
 * libfabric endpoint of its own, to check that the peer refuses and counts it
 * (tests/fabric/fabric_nodes.py reads the peer's "rejected" afterwards).
 *
 *   fabric-inject --config XPMEMD_CONF --to NODE --kind forged|replay|stale
 *
 *   forged  right header, MAC made with another key
 *   replay  right key and epoch, sequence number 1 (long since used)
 *   stale   right key, this node's epoch minus one
 *
 * This node's epoch comes from the kernel (XPMEM_QUERY_NODES). Exit 0 once the
 * provider reports the message sent, 1 on failure, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "xpmem_ioctl.h"
#include "../../tools/xpmemd/config.h"
#include "../../tools/xpmemd/transport.h"
#include "../../tools/xpmemd/wire.h"

static int sent_status = 1; /* 1: not yet */

static void on_recv(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
}

static void on_sent(void *ctx, const struct xt_msg *m, int err)
{
	(void)ctx;
	(void)m;
	sent_status = err;
}

static uint64_t own_epoch(uint32_t node)
{
	struct xpmem_node_info nodes[64];
	struct xpmem_cmd_query q = {
		.argsz = sizeof(q),
		.kind = XPMEM_QUERY_NODES,
		.buf = (uintptr_t)nodes,
		.buf_size = sizeof(nodes),
	};
	int fd = open("/dev/xpmem", O_RDONLY | O_CLOEXEC);
	uint32_t i;

	if (fd < 0 || ioctl(fd, XPMEM_CMD_QUERY, &q) < 0) {
		perror("fabric-inject: XPMEM_QUERY_NODES");
		exit(1);
	}
	close(fd);
	for (i = 0; i < q.count && i < 64; i++)
		if (nodes[i].node == node && (nodes[i].flags & XPMEM_NODE_INFO_SELF))
			return nodes[i].epoch;
	fprintf(stderr, "fabric-inject: node %u has not joined (no xpmemd?)\n", node);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "to", required_argument, NULL, 't' },
		{ "kind", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL, *kind = NULL;
	struct xt_callbacks cb = { .recv = on_recv, .sent = on_sent };
	struct wire_heartbeat hb = { 0 };
	struct xpmemd_config cfg;
	struct wire_sender s;
	struct wire_key *key;
	struct sockaddr_in src;
	struct xt_msg *m;
	unsigned long to = 0;
	char err[256];
	struct xt *t;
	size_t i;
	double end;
	int c, peer = -1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			conf_path = optarg;
		else if (c == 't')
			to = strtoul(optarg, NULL, 10);
		else if (c == 'k')
			kind = optarg;
		else
			return 2;
	}
	if (!conf_path || !to || !kind ||
	    (strcmp(kind, "forged") && strcmp(kind, "replay") && strcmp(kind, "stale"))) {
		fputs("usage: fabric-inject --config FILE --to NODE --kind forged|replay|stale\n",
		      stderr);
		return 2;
	}
	if (xpmemd_config_load(conf_path, NULL, &cfg, err, sizeof(err))) {
		fprintf(stderr, "fabric-inject: %s\n", err);
		return 2;
	}
	s.node = cfg.node;
	s.epoch = own_epoch(cfg.node);
	s.next_seq = UINT64_MAX / 2; /* far ahead of the daemon's own */
	if (!strcmp(kind, "replay"))
		s.next_seq = 1;
	else if (!strcmp(kind, "stale"))
		s.epoch--;
	/* A forged message: the same secret with its first byte changed. */
	if (!strcmp(kind, "forged"))
		cfg.key[0] ^= 0x5a;
	key = wire_key_new(cfg.key, cfg.key_len);
	if (!key) {
		fputs("fabric-inject: key setup failed\n", stderr);
		return 1;
	}

	src = cfg.listen;
	src.sin_port = 0;
	t = xt_open(&src, 1, &cb, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "fabric-inject: %s\n", err);
		return 1;
	}
	for (i = 0; i < cfg.npeers; i++)
		if (cfg.peers[i].node == to)
			peer = xt_add_peer(t, &cfg.peers[i].addr, err, sizeof(err));
	if (peer < 0) {
		fprintf(stderr, "fabric-inject: node %lu: not a peer in %s %s\n", to, conf_path,
			peer == -1 ? "" : err);
		return 1;
	}
	m = xt_msg_new(t);
	if (!m)
		return 1;
	hb.send_time_ns = 1;
	m->len = wire_seal_heartbeat(key, &s, (uint32_t)to, 0, &hb, m->data, sizeof(m->data));
	m->dst = peer;
	m->kind = WIRE_HEARTBEAT;
	if (!m->len || xt_submit(t, m)) {
		fputs("fabric-inject: cannot send\n", stderr);
		return 1;
	}
	for (end = now() + 20; sent_status == 1 && now() < end;) {
		if (xt_progress(t) < 0)
			break;
		usleep(1000);
	}
	/* Let the receiver take it before the connection goes away. */
	for (end = now() + 1; now() < end; usleep(1000))
		xt_progress(t);
	xt_close(t);
	wire_key_free(key);
	xpmemd_config_free(&cfg);
	if (sent_status) {
		fprintf(stderr, "fabric-inject: %s message to node %lu not sent (%d)\n", kind, to,
			sent_status);
		return 1;
	}
	printf("fabric-inject: %s message sent to node %lu\n", kind, to);
	return 0;
}
