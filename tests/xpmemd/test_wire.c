// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of xpmemd's logic (tools/xpmemd/): the configuration file, the wire
 * format and what a receiver believes (HMAC, destination, epochs, replays), the
 * table of outstanding requests and the membership state machine. No device,
 * no libfabric: window-pci devices come from a fake sysfs tree in a temporary
 * directory, the kernel and the fence from recording stubs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "member.h"
#include "reqtab.h"
#include "wire.h"

#define MS_NS 1000000ULL

static char tmpdir[256];
static char key_path[512], short_key_path[512], fence_path[512], noexec_path[512];
static char pci_root[512];
static const uint8_t key_bytes[] = "0123456789abcdef-the-shared-fabric-key";

/* ---- fixtures ---- */

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup_files(void **state)
{
	char dir[600], res[700];
	/* BAR 0 and 1 unused, BAR 2: 512 MiB, 64-bit prefetchable memory. */
	const char *resource = "0x00000000fe800000 0x00000000fe800fff 0x0000000000040200\n"
			       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
			       "0x0000000800000000 0x000000081fffffff 0x000000000014220c\n"
			       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
	const char *io_bar = "0x0 0x0 0x0\n0x0 0x0 0x0\n0x000000000000c000 0x000000000000c0ff "
			     "0x0000000000040101\n";

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xpmemd-unit.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(key_path, sizeof(key_path), "%s/fabric.key", tmpdir);
	write_file(key_path, key_bytes, sizeof(key_bytes) - 1, 0600);
	snprintf(short_key_path, sizeof(short_key_path), "%s/short.key", tmpdir);
	write_file(short_key_path, "too short", 9, 0600);
	snprintf(fence_path, sizeof(fence_path), "%s/fence", tmpdir);
	write_file(fence_path, "#!/bin/sh\nexit 0\n", 17, 0755);
	snprintf(noexec_path, sizeof(noexec_path), "%s/noexec", tmpdir);
	write_file(noexec_path, "#!/bin/sh\nexit 0\n", 17, 0644);
	snprintf(pci_root, sizeof(pci_root), "%s/pci", tmpdir);
	mkdir(pci_root, 0755);
	snprintf(dir, sizeof(dir), "%s/0000:00:11.0", pci_root);
	mkdir(dir, 0755);
	snprintf(res, sizeof(res), "%s/resource", dir);
	write_file(res, resource, strlen(resource), 0444);
	snprintf(dir, sizeof(dir), "%s/0000:00:12.0", pci_root);
	mkdir(dir, 0755);
	snprintf(res, sizeof(res), "%s/resource", dir);
	write_file(res, io_bar, strlen(io_bar), 0444);
	return 0;
}

static int teardown_files(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Parses text (with %K for the key path, %F for the fence, %N for noexec, %S short key). */
static int parse_text(const char *tmpl, struct xpmemd_config *cfg, char *err, size_t errlen)
{
	char text[4096];
	size_t o = 0;
	FILE *f;
	int r;

	for (const char *s = tmpl; *s && o < sizeof(text) - 600; s++) {
		const char *sub = NULL;

		if (s[0] == '%' && s[1]) {
			switch (s[1]) {
			case 'K':
				sub = key_path;
				break;
			case 'F':
				sub = fence_path;
				break;
			case 'N':
				sub = noexec_path;
				break;
			case 'S':
				sub = short_key_path;
				break;
			}
		}
		if (sub) {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", sub);
			s++;
		} else {
			text[o++] = *s;
		}
	}
	text[o] = 0;
	f = fmemopen(text, o, "r");
	assert_non_null(f);
	r = xpmemd_config_parse(f, "cfg", pci_root, cfg, err, errlen);
	fclose(f);
	return r;
}

/* ---- config ---- */

static void test_config_good(void **state)
{
	struct xpmemd_config cfg;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse_text("# xpmemd test\n"
				    "node 1                      # this node\n"
				    "listen 169.254.0.1 7400\n"
				    "key-file %K\n"
				    "\n"
				    "peer 2 169.254.0.2 7400 window-pci 0000:00:11.0 below-4g 402653184\n"
				    "peer 3 169.254.0.3 7401 window-phys 0x800000000 0x20000000 below-4g 0\n"
				    "\tpeer 4 169.254.0.4 7400 window-phys 0x1000000000 4096\n"
				    "heartbeat-ms 100\n"
				    "fence-command %F\n"
				    "idmap 2 uid 1000 2000 10\n"
				    "idmap 3 gid 0 0 1\n"
				    "idmap 2 uid 0 0x10 1\n",
				    &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.node, 1);
	assert_int_equal(ntohs(cfg.listen.sin_port), 7400);
	assert_int_equal(ntohl(cfg.listen.sin_addr.s_addr), 0xa9fe0001);
	assert_int_equal(cfg.key_len, sizeof(key_bytes) - 1);
	assert_memory_equal(cfg.key, key_bytes, cfg.key_len);
	assert_string_equal(cfg.key_file, key_path);
	assert_int_equal(cfg.npeers, 3);
	assert_int_equal(cfg.peers[0].node, 2);
	assert_int_equal(cfg.peers[0].win_phys, 0x800000000ULL);
	assert_int_equal(cfg.peers[0].win_size, 0x20000000ULL);
	assert_int_equal(cfg.peers[0].below_4g, 402653184ULL);
	assert_string_equal(cfg.peers[0].bdf, "0000:00:11.0");
	assert_int_equal(cfg.peers[0].line, 6);
	assert_int_equal(cfg.peers[1].node, 3);
	assert_int_equal(ntohs(cfg.peers[1].addr.sin_port), 7401);
	assert_int_equal(cfg.peers[1].win_phys, 0x800000000ULL);
	assert_int_equal(cfg.peers[1].win_size, 0x20000000ULL);
	assert_int_equal(cfg.peers[1].below_4g, 0);
	assert_string_equal(cfg.peers[1].bdf, "");
	assert_int_equal(cfg.peers[2].win_size, 4096);
	assert_int_equal(cfg.heartbeat_ms, 100);
	assert_int_equal(cfg.suspect_ms, 500); /* 5 x heartbeat */
	assert_int_equal(cfg.dead_ms, 1500); /* 15 x heartbeat */
	assert_string_equal(cfg.fence_command, fence_path);
	{
		struct xpmem_fabric_idmap m;

		xpmemd_config_idmap(&cfg, 2, XPMEM_IDMAP_UID, &m);
		assert_int_equal(m.node, 2);
		assert_int_equal(m.kind, XPMEM_IDMAP_UID);
		assert_int_equal(m.nr_extents, 2);
		assert_int_equal(m.extents[0].remote_first, 1000);
		assert_int_equal(m.extents[0].local_first, 2000);
		assert_int_equal(m.extents[0].count, 10);
		assert_int_equal(m.extents[1].remote_first, 0);
		assert_int_equal(m.extents[1].local_first, 16);
		assert_int_equal(m.extents[2].count, 0);
		xpmemd_config_idmap(&cfg, 2, XPMEM_IDMAP_GID, &m);
		assert_int_equal(m.nr_extents, 0);
		xpmemd_config_idmap(&cfg, 3, XPMEM_IDMAP_GID, &m);
		assert_int_equal(m.nr_extents, 1);
		assert_int_equal(m.extents[0].count, 1);
	}
	xpmemd_config_free(&cfg);

	/* Defaults, explicit timeouts, no peers. */
	assert_int_equal(parse_text("node 2047\nlisten 10.0.0.1 1\nkey-file %K\n", &cfg, err,
				    sizeof(err)),
			 0);
	assert_int_equal(cfg.heartbeat_ms, 200);
	assert_int_equal(cfg.suspect_ms, 1000);
	assert_int_equal(cfg.dead_ms, 3000);
	assert_null(cfg.fence_command);
	assert_int_equal(cfg.npeers, 0);
	xpmemd_config_free(&cfg);
	assert_int_equal(parse_text("node 5\nlisten 10.0.0.1 65535\nkey-file %K\nsuspect-ms 700\n"
				    "dead-ms 0x1000\n",
				    &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.suspect_ms, 700);
	assert_int_equal(cfg.dead_ms, 4096);
	xpmemd_config_free(&cfg);
}

#define HEAD "node 1\nlisten 169.254.0.1 7400\nkey-file %K\n"

static void test_config_errors(void **state)
{
	static const struct {
		const char *text;
		const char *want; /* prefix of the message */
	} cases[] = {
		{ "node 1\nbogus 3\n", "cfg:2: unknown directive 'bogus'" },
		{ "node 0\n", "cfg:1: node '0': must be a node number 1..2047" },
		{ "node 2048\n", "cfg:1: node '2048'" },
		{ "node -1\n", "cfg:1: node '-1'" },
		{ "node 1x\n", "cfg:1: node '1x'" },
		{ "node\n", "cfg:1: usage: node NODE" },
		{ "node 1 2\n", "cfg:1: usage: node NODE" },
		{ "node 1\n\n# c\nnode 2\n", "cfg:4: node already given on line 1" },
		{ "node 1\nlisten 169.254.0.300 7400\n", "cfg:2: '169.254.0.300' is not an IPv4" },
		{ "node 1\nlisten fe80::1 7400\n", "cfg:2: 'fe80::1' is not an IPv4" },
		{ "node 1\nlisten 169.254.0.1 0\n", "cfg:2: port '0': must be 1..65535" },
		{ "node 1\nlisten 169.254.0.1 65536\n", "cfg:2: port '65536'" },
		{ "node 1\nkey-file /nonexistent/key\n", "cfg:2: key-file /nonexistent/key: No such" },
		{ "node 1\n\nkey-file %S\n", "cfg:3: key-file " },
		{ HEAD "peer 2 169.254.0.2 7400\n", "cfg:4: usage: peer NODE" },
		{ HEAD "peer 2 169.254.0.2 7400 window-pci 0000:00:19.0\n",
		  "cfg:4: window-pci 0000:00:19.0: cannot read " },
		{ HEAD "peer 2 169.254.0.2 7400 window-pci 0000:00:12.0\n",
		  "cfg:4: window-pci 0000:00:12.0: " },
		{ HEAD "peer 2 169.254.0.2 7400 window-pci ../../etc\n",
		  "cfg:4: window-pci '../../etc': not a PCI address" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000\n",
		  "cfg:4: window-phys needs PHYS and SIZE" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0\n",
		  "cfg:4: window-phys size '0'" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0xffffffffffff0000 0x20000\n",
		  "cfg:4: window-phys 0xffffffffffff0000 + 0x20000 wraps" },
		{ HEAD "peer 2 169.254.0.2 7400 window-mmio 0x1000 0x1000\n",
		  "cfg:4: peer 2: expected window-pci or window-phys" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000 below-4g\n",
		  "cfg:4: peer 2: expected 'below-4g BYTES'" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000 below-4g x\n",
		  "cfg:4: below-4g 'x' is not a number" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000 below-4g 0 extra\n",
		  "cfg:4: peer 2: unexpected 'extra'" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000\n"
		       "peer 2 169.254.0.3 7400 window-phys 0x1000 0x1000\n",
		  "cfg:5: peer 2 already given on line 4" },
		{ HEAD "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000\n"
		       "peer 3 169.254.0.2 7400 window-phys 0x1000 0x1000\n",
		  "cfg:5: peer 3: address 169.254.0.2 7400 is peer 2's (line 4)" },
		{ HEAD "peer 1 169.254.0.2 7400 window-phys 0x1000 0x1000\n",
		  "cfg:4: peer 1 is this node (line 1)" },
		{ HEAD "peer 2 169.254.0.1 7400 window-phys 0x1000 0x1000\n",
		  "cfg:4: peer 2 has this node's listen address (line 2)" },
		{ HEAD "heartbeat-ms 0\n", "cfg:4: heartbeat-ms '0': must be milliseconds" },
		{ HEAD "heartbeat-ms 200\nsuspect-ms 200\n",
		  "cfg:5: suspect-ms (200) must be larger than heartbeat-ms (200)" },
		{ HEAD "suspect-ms 1000\ndead-ms 900\n",
		  "cfg:5: dead-ms (900) must be larger than suspect-ms (1000)" },
		{ HEAD "suspect-ms 4000\n", "cfg:4: dead-ms (3000) must be larger than suspect-ms" },
		{ HEAD "fence-command fence.sh\n", "cfg:4: fence-command 'fence.sh': must be an absolute" },
		{ HEAD "fence-command %N\n", "cfg:4: fence-command " },
		{ HEAD "fence-command %F\nfence-command %F\n", "cfg:5: fence-command already given" },
#define PEER2 "peer 2 169.254.0.2 7400 window-phys 0x1000 0x1000\n"
		{ HEAD PEER2 "idmap 2 uid 0 0\n", "cfg:5: usage: idmap NODE uid|gid" },
		{ HEAD PEER2 "idmap 2 pid 0 0 1\n", "cfg:5: idmap: expected uid or gid, not 'pid'" },
		{ HEAD PEER2 "idmap 2 uid -1 0 1\n", "cfg:5: idmap REMOTE '-1': must be an id" },
		{ HEAD PEER2 "idmap 2 uid 0 4294967295 1\n", "cfg:5: idmap LOCAL '4294967295'" },
		{ HEAD PEER2 "idmap 2 gid 0 0 0\n", "cfg:5: idmap: COUNT 0 is 0 or runs past" },
		{ HEAD PEER2 "idmap 2 gid 4294967290 0 5\n", "cfg:5: idmap: COUNT 5 is 0 or runs" },
		{ HEAD PEER2 "idmap 2 uid 100 0 10\nidmap 2 uid 105 50 1\n",
		  "cfg:6: idmap: node 2's uid 105..105 already mapped on line 5" },
		{ HEAD PEER2 "idmap 3 uid 0 0 1\n", "cfg:5: idmap: node 3 is not a peer" },
		{ HEAD PEER2 "idmap 2 uid 0 0 1\nidmap 2 uid 1 0 1\nidmap 2 uid 2 0 1\n"
			     "idmap 2 uid 3 0 1\nidmap 2 uid 4 0 1\nidmap 2 uid 5 0 1\n"
			     "idmap 2 uid 6 0 1\nidmap 2 uid 7 0 1\nidmap 2 uid 8 0 1\n",
		  "cfg:13: idmap: node 2 has 8 uid ranges already" },
#undef PEER2
		{ "listen 169.254.0.1 7400\nkey-file %K\n", "cfg: missing 'node N'" },
		{ "node 1\nkey-file %K\n", "cfg: missing 'listen IPV4 PORT'" },
		{ "node 1\nlisten 169.254.0.1 7400\n", "cfg: missing 'key-file PATH'" },
		{ "node 1 a b c d e f g h i j k l m n o p q\n", "cfg:1: too many words" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xpmemd_config cfg;
		char err[512] = "";
		int r = parse_text(cases[i].text, &cfg, err, sizeof(err));

		if (r != -1 || strncmp(err, cases[i].want, strlen(cases[i].want)))
			fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, cases[i].want);
		/* Nothing is left allocated after an error. */
		assert_null(cfg.key);
		assert_null(cfg.peers);
		assert_int_equal(cfg.npeers, 0);
	}
}

static void test_config_load_missing(void **state)
{
	struct xpmemd_config cfg;
	char err[512];

	(void)state;
	assert_int_equal(xpmemd_config_load("/nonexistent/xpmemd.conf", pci_root, &cfg, err,
					    sizeof(err)),
			 -1);
	assert_string_equal(err, "/nonexistent/xpmemd.conf: No such file or directory");
}

static void test_pci_resource(void **state)
{
	uint64_t phys = 0, size = 0;

	(void)state;
	assert_int_equal(xpmemd_parse_pci_resource("0x0 0x0 0x0\n0x0 0x0 0x0\n"
						   "0x0000000800000000 0x000000080fffffff 0x14220c\n",
						   &phys, &size),
			 0);
	assert_int_equal(phys, 0x800000000ULL);
	assert_int_equal(size, 0x10000000ULL);
	/* No third line, an unset BAR, an I/O BAR, junk. */
	assert_int_equal(xpmemd_parse_pci_resource("0x0 0x0 0x0\n", &phys, &size), -EINVAL);
	assert_int_equal(xpmemd_parse_pci_resource("a\nb\n0x0 0x0 0x0\n", &phys, &size), -EINVAL);
	assert_int_equal(xpmemd_parse_pci_resource("a\nb\n0xc000 0xc0ff 0x40101\n", &phys, &size),
			 -EINVAL);
	assert_int_equal(xpmemd_parse_pci_resource("a\nb\n0x1000 0x1fff\n", &phys, &size), -EINVAL);
	assert_int_equal(xpmemd_parse_pci_resource("a\nb\n0x1000 0x1fff 0x200 x\n", &phys, &size),
			 -EINVAL);
}

/* ---- wire ---- */

struct wire_fx {
	struct wire_key *key, *other;
	struct wire_sender a; /* node 1 */
	uint8_t buf[WIRE_MAX];
};

static int setup_wire(void **state)
{
	struct wire_fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->key = wire_key_new(key_bytes, sizeof(key_bytes) - 1);
	fx->other = wire_key_new((const uint8_t *)"another key, as long as needed", 30);
	if (!fx->key || !fx->other)
		return -1;
	fx->a = (struct wire_sender){ .node = 1, .epoch = 1000, .next_seq = 1 };
	*state = fx;
	return 0;
}

static int teardown_wire(void **state)
{
	struct wire_fx *fx = *state;

	wire_key_free(fx->key);
	wire_key_free(fx->other);
	free(fx);
	return 0;
}

static const struct wire_heartbeat hb0 = {
	.beacon_phys = 0x12345000,
	.beacon_nonce = 0xfeedfacecafebeefULL,
	.send_time_ns = 5000000000ULL,
	.echo_time_ns = 4000000000ULL,
	.echo_age_ns = 300000000ULL,
};

/* Node 2 (epoch 2000) receiving: parse and check. */
static enum wire_verdict receive(struct wire_fx *fx, const uint8_t *buf, size_t len,
				 struct wire_replay *r, struct wire_hdr *h)
{
	enum wire_verdict v = wire_parse(buf, len, h);

	if (v != WIRE_OK)
		return v;
	return wire_check(fx->key, buf, len, h, 2, 2000, r);
}

static void test_wire_key(void **state)
{
	(void)state;
	assert_null(wire_key_new((const uint8_t *)"fifteen bytes..", 15));
	assert_non_null(state);
}

static void test_wire_roundtrip_heartbeat(void **state)
{
	struct wire_fx *fx = *state;
	struct wire_replay r = { 0 };
	struct wire_heartbeat hb;
	struct wire_hdr h;
	size_t len;

	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(len, WIRE_HDR_LEN + WIRE_HB_LEN);
	assert_int_equal(fx->a.next_seq, 2);
	/* Little-endian magic: the bytes "XPMD". */
	assert_memory_equal(fx->buf, "XPMD", 4);
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);
	assert_int_equal(h.magic, WIRE_MAGIC);
	assert_int_equal(h.version, WIRE_VERSION);
	assert_int_equal(h.kind, WIRE_HEARTBEAT);
	assert_int_equal(h.src_node, 1);
	assert_int_equal(h.dst_node, 2);
	assert_int_equal(h.src_epoch, 1000);
	assert_int_equal(h.dst_epoch, 0);
	assert_int_equal(h.seq, 1);
	assert_int_equal(h.body_len, WIRE_HB_LEN);
	assert_int_equal(r.epoch, 1000);
	assert_int_equal(r.last_seq, 1);
	assert_int_equal(wire_decode_heartbeat(wire_body(fx->buf), h.body_len, &hb), 0);
	assert_memory_equal(&hb, &hb0, sizeof(hb));
	assert_int_equal(wire_decode_heartbeat(wire_body(fx->buf), WIRE_HB_LEN - 1, &hb), -EINVAL);
}

static void test_wire_roundtrip_msg(void **state)
{
	struct wire_fx *fx = *state;
	struct xpmem_fabric_msg *m = calloc(2, sizeof(*m)), *out = m + 1;
	struct wire_replay r = { 0 };
	struct wire_hdr h;
	size_t len;

	assert_non_null(m);
	/* Heartbeat first: requests of an epoch no heartbeat announced are refused. */
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);

	for (unsigned plen = 0; plen <= XPMEM_FABRIC_PAYLOAD_MAX; plen += XPMEM_FABRIC_PAYLOAD_MAX / 2) {
		memset(m, 0, sizeof(*m));
		m->id = 0x1122334455667788ULL + plen;
		m->node = 2;
		m->type = XPMEM_FMSG_PING;
		m->epoch = 2000;
		m->status = -EHOSTUNREACH;
		m->len = plen;
		for (unsigned i = 0; i < plen; i++)
			m->payload[i] = (uint8_t)(i ^ 0x5a);
		len = wire_seal_msg(fx->key, &fx->a, plen ? WIRE_REQUEST : WIRE_REPLY, 2, 2000, m,
				    fx->buf, sizeof(fx->buf));
		assert_int_equal(len, WIRE_HDR_LEN + WIRE_MSG_HDR_LEN + plen);
		assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK);
		assert_int_equal(h.kind, plen ? WIRE_REQUEST : WIRE_REPLY);
		memset(out, 0xee, sizeof(*out));
		assert_int_equal(wire_decode_msg(wire_body(fx->buf), h.body_len, out), 0);
		assert_memory_equal(out, m, XPMEM_FABRIC_MSG_HDR_LEN + plen);
	}
	/* Too large a payload cannot be sealed; a lying len cannot be decoded. */
	m->len = XPMEM_FABRIC_PAYLOAD_MAX + 1;
	assert_int_equal(wire_seal_msg(fx->key, &fx->a, WIRE_REQUEST, 2, 2000, m, fx->buf,
				       sizeof(fx->buf)),
			 0);
	assert_int_equal(wire_seal_msg(fx->key, &fx->a, WIRE_HEARTBEAT, 2, 2000, out, fx->buf,
				       sizeof(fx->buf)),
			 0);
	m->len = 8;
	len = wire_encode_msg(m, fx->buf, sizeof(fx->buf));
	assert_int_equal(len, WIRE_MSG_HDR_LEN + 8);
	assert_int_equal(wire_decode_msg(fx->buf, len - 1, out), -EINVAL);
	assert_int_equal(wire_decode_msg(fx->buf, WIRE_MSG_HDR_LEN - 1, out), -EINVAL);
	free(m);
}

static void test_wire_malformed(void **state)
{
	struct wire_fx *fx = *state;
	uint8_t copy[WIRE_MAX];
	struct wire_hdr h;
	size_t len;

	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(wire_parse(fx->buf, len, &h), WIRE_OK);
	/* Truncated, too long, and each header field that the format pins down. */
	assert_int_equal(wire_parse(fx->buf, WIRE_HDR_LEN - 1, &h), WIRE_BAD_FORMAT);
	assert_int_equal(wire_parse(fx->buf, len - 1, &h), WIRE_BAD_FORMAT);
	memcpy(copy, fx->buf, len);
	copy[len] = 0;
	assert_int_equal(wire_parse(copy, len + 1, &h), WIRE_BAD_FORMAT);
	static const struct {
		size_t off;
		uint8_t val;
	} pokes[] = {
		{ 0, 'x' }, /* magic */
		{ 4, 2 }, /* version */
		{ 6, 0 }, /* kind 0 */
		{ 6, WIRE_LEAVE }, /* a body for a leave */
		{ 6, 5 }, /* kind 5 */
		{ 6, WIRE_REQUEST }, /* heartbeat-sized body for a request */
		{ 40, WIRE_HB_LEN + 1 }, /* body_len */
		{ 44, 1 }, /* reserved */
	};
	for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
		memcpy(copy, fx->buf, len);
		copy[pokes[i].off] = pokes[i].val;
		if (wire_parse(copy, len, &h) != WIRE_BAD_FORMAT)
			fail_msg("poke %zu at offset %zu not refused", i, pokes[i].off);
	}
	/* Zero epoch and zero seq. */
	memcpy(copy, fx->buf, len);
	memset(copy + 16, 0, 8);
	assert_int_equal(wire_parse(copy, len, &h), WIRE_BAD_FORMAT);
	memcpy(copy, fx->buf, len);
	memset(copy + 32, 0, 8);
	assert_int_equal(wire_parse(copy, len, &h), WIRE_BAD_FORMAT);
	assert_false(wire_verdict_counts(WIRE_OK));
	assert_false(wire_verdict_counts(WIRE_OK_NEW_EPOCH));
	assert_true(wire_verdict_counts(WIRE_BAD_MAC));
	assert_true(wire_verdict_counts(WIRE_REPLAY));
}

static void test_wire_leave(void **state)
{
	struct wire_fx *fx = *state;
	struct wire_hdr h;
	size_t len;

	len = wire_seal(fx->key, &fx->a, WIRE_LEAVE, 2, 77, NULL, 0, fx->buf, sizeof(fx->buf));
	assert_int_equal(len, WIRE_HDR_LEN);
	assert_int_equal(wire_parse(fx->buf, len, &h), WIRE_OK);
	assert_int_equal(h.kind, WIRE_LEAVE);
	assert_int_equal(h.dst_epoch, 77);
	assert_string_equal(wire_kind_str(WIRE_LEAVE), "leave");
	/* With a body it is malformed. */
	len = wire_seal(fx->key, &fx->a, WIRE_LEAVE, 2, 77, (const uint8_t *)"x", 1, fx->buf,
			sizeof(fx->buf));
	assert_int_equal(wire_parse(fx->buf, len, &h), WIRE_BAD_FORMAT);
}

static void test_wire_hmac(void **state)
{
	struct wire_fx *fx = *state;
	struct xpmem_fabric_msg *m = calloc(1, sizeof(*m));
	uint8_t copy[WIRE_MAX];
	struct wire_replay r = { 0 };
	struct wire_sender forger;
	struct wire_hdr h;
	size_t len;

	assert_non_null(m);
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	/*
	 * Every single-bit flip that still parses must fail the HMAC; none may be
	 * accepted. (Flips in magic, version, kind, lengths fail the parse first.)
	 */
	for (size_t bit = 0; bit < len * 8; bit++) {
		struct wire_replay fresh = { 0 };
		enum wire_verdict v;

		memcpy(copy, fx->buf, len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		v = receive(fx, copy, len, &fresh, &h);
		if (v != WIRE_BAD_MAC && v != WIRE_BAD_FORMAT)
			fail_msg("bit %zu flipped: %s", bit, wire_verdict_str(v));
		assert_int_equal(fresh.epoch, 0);
	}
	/* The unmodified message still passes. */
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);

	/* A well-formed message under another key. */
	forger = fx->a;
	m->len = 16;
	len = wire_seal_msg(fx->other, &forger, WIRE_REQUEST, 2, 2000, m, fx->buf, sizeof(fx->buf));
	assert_int_equal(wire_parse(fx->buf, len, &h), WIRE_OK);
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_BAD_MAC);
	len = wire_seal_heartbeat(fx->other, &forger, 2, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_BAD_MAC);
	/* Nothing of the forgeries was taken into the replay state. */
	assert_int_equal(r.epoch, 1000);
	assert_int_equal(r.last_seq, 1);
	free(m);
}

static void test_wire_replay(void **state)
{
	struct wire_fx *fx = *state;
	uint8_t first[WIRE_MAX];
	struct wire_replay r = { 0 };
	struct wire_hdr h;
	size_t len, first_len;

	first_len = wire_seal_heartbeat(fx->key, &fx->a, 2, 0, &hb0, first, sizeof(first));
	assert_int_equal(receive(fx, first, first_len, &r, &h), WIRE_OK_NEW_EPOCH);
	/* The same message again. */
	assert_int_equal(receive(fx, first, first_len, &r, &h), WIRE_REPLAY);
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK);
	assert_int_equal(r.last_seq, 2);
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_REPLAY);
	/* An older one arriving late. */
	assert_int_equal(receive(fx, first, first_len, &r, &h), WIRE_REPLAY);
	/* Gaps are fine (the sender's seq counts messages to every peer). */
	fx->a.next_seq += 10;
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK);
	assert_int_equal(r.last_seq, 13);
	assert_int_equal(r.epoch, 1000);
}

static void test_wire_epochs(void **state)
{
	struct wire_fx *fx = *state;
	struct xpmem_fabric_msg *m = calloc(1, sizeof(*m));
	struct wire_sender old = fx->a, reborn = { .node = 1, .epoch = 5000, .next_seq = 1 };
	struct wire_replay r = { 0 };
	struct wire_hdr h;
	size_t len;

	assert_non_null(m);
	/* Epoch 1000 runs up to seq 100. */
	old.next_seq = 100;
	len = wire_seal_heartbeat(fx->key, &old, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);
	assert_int_equal(r.last_seq, 100);

	/* A request of a newer epoch before its heartbeat: refused, state kept. */
	m->len = 4;
	len = wire_seal_msg(fx->key, &reborn, WIRE_REQUEST, 2, 2000, m, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_UNSEEN_EPOCH);
	assert_false(wire_verdict_counts(WIRE_UNSEEN_EPOCH));
	assert_int_equal(r.epoch, 1000);
	assert_int_equal(r.last_seq, 100);

	/* The restarted sender's heartbeat: accepted, and its seq starts over. */
	len = wire_seal_heartbeat(fx->key, &reborn, 2, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);
	assert_int_equal(r.epoch, 5000);
	assert_int_equal(r.last_seq, 2);
	len = wire_seal_msg(fx->key, &reborn, WIRE_REQUEST, 2, 2000, m, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK);
	assert_int_equal(r.last_seq, 3);

	/* The old incarnation again (even with a higher seq): stale. */
	len = wire_seal_heartbeat(fx->key, &old, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_STALE_EPOCH);
	assert_int_equal(r.epoch, 5000);
	assert_int_equal(r.last_seq, 3);
	free(m);
}

static void test_wire_destination(void **state)
{
	struct wire_fx *fx = *state;
	struct wire_replay r = { 0 };
	struct wire_hdr h;
	size_t len;

	/* For node 3, for an old epoch of node 2: refused before any state changes. */
	len = wire_seal_heartbeat(fx->key, &fx->a, 3, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_WRONG_DST);
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 1999, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_WRONG_DST_EPOCH);
	assert_int_equal(r.epoch, 0);
	/* dst_epoch 0 (not known yet) and the right one are both fine. */
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 0, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK_NEW_EPOCH);
	len = wire_seal_heartbeat(fx->key, &fx->a, 2, 2000, &hb0, fx->buf, sizeof(fx->buf));
	assert_int_equal(receive(fx, fx->buf, len, &r, &h), WIRE_OK);
}

static void test_wire_rtt(void **state)
{
	struct wire_hdr h = { .dst_epoch = 2000 };
	struct wire_heartbeat hb = { .echo_time_ns = 1000 * MS_NS, .echo_age_ns = 30 * MS_NS };

	(void)state;
	/* We sent at 1000 ms, it held our heartbeat 30 ms, this arrives at 1050 ms. */
	assert_int_equal(wire_rtt_ns(&h, &hb, 2000, 1050 * MS_NS), 20 * MS_NS);
	/* Not about our current epoch, nothing echoed, or impossible figures. */
	assert_int_equal(wire_rtt_ns(&h, &hb, 2001, 1050 * MS_NS), 0);
	h.dst_epoch = 0;
	assert_int_equal(wire_rtt_ns(&h, &hb, 2000, 1050 * MS_NS), 0);
	h.dst_epoch = 2000;
	assert_int_equal(wire_rtt_ns(&h, &hb, 2000, 1010 * MS_NS), 0);
	hb.echo_age_ns = UINT64_MAX;
	assert_int_equal(wire_rtt_ns(&h, &hb, 2000, 1050 * MS_NS), 0);
	hb.echo_time_ns = 0;
	hb.echo_age_ns = 0;
	assert_int_equal(wire_rtt_ns(&h, &hb, 2000, 1050 * MS_NS), 0);
}

/* ---- reqtab ---- */

struct seen {
	size_t n;
	uint64_t ids[16];
};

static void record(void *ctx, const struct reqtab_entry *e)
{
	struct seen *s = ctx;

	if (s->n < 16)
		s->ids[s->n] = e->id;
	s->n++;
}

static void test_reqtab(void **state)
{
	struct reqtab t;
	struct reqtab_entry e;
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(reqtab_init(&t, 5), 0);
	assert_int_equal(t.nbuckets, 8);
	for (uint64_t id = 1; id <= 20; id++)
		assert_int_equal(reqtab_add(&t, id, id % 2 ? 2 : 3, 1, 100, id * MS_NS), 0);
	assert_int_equal(reqtab_add(&t, 7, 2, 1, 100, 0), -EEXIST);
	assert_int_equal(t.count, 20);
	/* A reply from the wrong node or epoch does not take the entry. */
	assert_int_equal(reqtab_take(&t, 7, 3, 100, &e), -ENOENT);
	assert_int_equal(reqtab_take(&t, 7, 2, 101, &e), -ENOENT);
	assert_int_equal(reqtab_take(&t, 7, 2, 100, &e), 0);
	assert_int_equal(e.id, 7);
	assert_int_equal(e.node, 2);
	assert_int_equal(reqtab_take(&t, 7, 2, 100, &e), -ENOENT);
	assert_int_equal(reqtab_take(&t, 99, 2, 100, &e), -ENOENT);
	/* Node 3 goes away: its 10 requests are answered. */
	assert_int_equal(reqtab_drain(&t, 3, record, &s), 10);
	assert_int_equal(s.n, 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(s.ids[i] % 2, 0);
	assert_int_equal(t.count, 9);
	/* Older than 10 ms at 15 ms: ids 1, 3 (since 1 and 3 ms). */
	s.n = 0;
	assert_int_equal(reqtab_expire(&t, 15 * MS_NS, 10 * MS_NS, record, &s), 2);
	assert_int_equal(t.count, 7);
	reqtab_free(&t);
}

/* ---- membership ---- */

struct mock {
	int window_result; /* what XPMEM_FABRIC_WINDOW answers */
	int windows, pushes, fence_starts, fence_polls, ends;
	int fence_start_result;
	int fence_poll_result; /* 1 running, 0 ok, -1 failed */
	uint32_t last_push_state;
	bool last_push_fenced;
	uint64_t last_push_epoch, last_window_epoch;
};

static int m_window(void *ctx, struct xpmemd_peer *p)
{
	struct mock *m = ctx;

	m->windows++;
	m->last_window_epoch = p->epoch;
	return m->window_result;
}

static void m_push(void *ctx, struct xpmemd_peer *p, uint64_t now)
{
	struct mock *m = ctx;

	(void)now;
	m->pushes++;
	m->last_push_state = p->state;
	m->last_push_fenced = p->fenced;
	m->last_push_epoch = p->epoch;
}

static int m_fence_start(void *ctx, struct xpmemd_peer *p)
{
	struct mock *m = ctx;

	(void)p;
	m->fence_starts++;
	return m->fence_start_result;
}

static int m_fence_poll(void *ctx, struct xpmemd_peer *p)
{
	struct mock *m = ctx;

	(void)p;
	m->fence_polls++;
	return m->fence_poll_result;
}

static void m_end(void *ctx, struct xpmemd_peer *p)
{
	struct mock *m = ctx;

	(void)p;
	m->ends++;
}

static const struct member_ops mock_ops = {
	.window = m_window,
	.push = m_push,
	.fence_start = m_fence_start,
	.fence_poll = m_fence_poll,
	.incarnation_end = m_end,
};

struct memb_fx {
	struct xpmemd_config cfg;
	struct xpmemd_peer_conf peers[2];
	struct member m;
	struct mock mock;
};

static struct memb_fx *memb_setup(bool fence)
{
	struct memb_fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->cfg.node = 1;
	fx->cfg.heartbeat_ms = 200;
	fx->cfg.suspect_ms = 1000;
	fx->cfg.dead_ms = 3000;
	fx->cfg.fence_command = fence ? fence_path : NULL;
	fx->peers[0] = (struct xpmemd_peer_conf){ .node = 2, .win_phys = 0x800000000ULL,
						 .win_size = 0x20000000 };
	fx->peers[1] = (struct xpmemd_peer_conf){ .node = 7, .win_phys = 0x900000000ULL,
						 .win_size = 0x20000000 };
	fx->cfg.peers = fx->peers;
	fx->cfg.npeers = 2;
	assert_int_equal(member_init(&fx->m, &fx->cfg, &mock_ops, &fx->mock), 0);
	return fx;
}

static void memb_teardown(struct memb_fx *fx)
{
	member_free(&fx->m);
	free(fx);
}

/* A heartbeat of node 2's epoch at now (ms), through the wire check as the daemon does. */
static unsigned beat(struct memb_fx *fx, uint64_t epoch, uint64_t now_ms)
{
	struct xpmemd_peer *p = member_find(&fx->m, 2);
	struct wire_hdr h = { .kind = WIRE_HEARTBEAT, .src_node = 2, .dst_node = 1,
			      .src_epoch = epoch, .dst_epoch = 1111 };
	struct wire_heartbeat hb = { .beacon_phys = 0x5000, .beacon_nonce = epoch * 3,
				     .send_time_ns = now_ms * MS_NS };
	enum wire_verdict v;

	h.seq = p->rx.epoch == epoch ? p->rx.last_seq + 1 : 1;
	/* What wire_check decides for these epochs. */
	if (epoch < p->rx.epoch)
		return 0xdead;
	if (epoch > p->rx.epoch) {
		p->rx.epoch = epoch;
		p->rx.last_seq = h.seq;
		v = WIRE_OK_NEW_EPOCH;
	} else {
		p->rx.last_seq = h.seq;
		v = WIRE_OK;
	}
	return member_heartbeat(&fx->m, p, &h, &hb, v, 1111, now_ms * MS_NS);
}

static void test_member_lifecycle(void **state)
{
	struct memb_fx *fx = memb_setup(false);
	struct xpmemd_peer *p = member_find(&fx->m, 2);
	unsigned ev;

	(void)state;
	assert_non_null(p);
	assert_null(member_find(&fx->m, 3));
	assert_null(member_find(&fx->m, 0));
	assert_null(member_find(&fx->m, 5000));
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	/* Nothing heard: timeouts do not apply. */
	member_tick(&fx->m, 100000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	assert_int_equal(fx->mock.pushes, 0);

	/* First heartbeat, window accepted: UP. */
	ev = beat(fx, 1000, 100000);
	assert_int_equal(ev, MEMBER_EV_NEW_EPOCH | MEMBER_EV_STATE);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_int_equal(p->epoch, 1000);
	assert_int_equal(fx->mock.windows, 1);
	assert_int_equal(fx->mock.last_window_epoch, 1000);
	assert_int_equal(p->beacon_nonce, 3000);
	assert_int_equal(fx->mock.pushes, 1);
	assert_int_equal(fx->mock.last_push_state, XPMEM_NODE_UP);
	assert_int_equal(fx->mock.ends, 0); /* no earlier incarnation */

	/* Steady heartbeats: no new window, figures pushed at most every 500 ms. */
	for (uint64_t t = 100200; t <= 101000; t += 200)
		assert_int_equal(beat(fx, 1000, t), 0);
	assert_int_equal(fx->mock.windows, 1);
	assert_int_equal(fx->mock.pushes, 2); /* at 100600 */
	member_tick(&fx->m, 101100 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UP);

	/* Silence: SUSPECT after 1 s, DEAD after 3 s, requests failed then. */
	member_tick(&fx->m, 101900 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	member_tick(&fx->m, 102000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	assert_int_equal(fx->mock.last_push_state, XPMEM_NODE_SUSPECT);
	/* A heartbeat brings a SUSPECT node back. */
	beat(fx, 1000, 102100);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	member_tick(&fx->m, 105000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	assert_int_equal(fx->mock.ends, 0);
	member_tick(&fx->m, 105100 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_DEAD);
	assert_int_equal(fx->mock.last_push_state, XPMEM_NODE_DEAD);
	assert_int_equal(fx->mock.ends, 1);

	/* Same epoch again: it was declared dead, it stays so. */
	assert_int_equal(beat(fx, 1000, 106000), 0);
	assert_int_equal(p->state, XPMEM_NODE_DEAD);
	member_tick(&fx->m, 200000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_DEAD);
	assert_int_equal(fx->mock.ends, 1);

	/* Restarted: a newer epoch rejoins, with a new window. */
	ev = beat(fx, 2000, 200100);
	assert_int_equal(ev, MEMBER_EV_NEW_EPOCH | MEMBER_EV_STATE);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_int_equal(p->epoch, 2000);
	assert_int_equal(fx->mock.windows, 2);
	assert_int_equal(fx->mock.last_window_epoch, 2000);
	assert_int_equal(fx->mock.ends, 2); /* epoch 1000 is over */
	assert_int_equal(fx->mock.last_push_epoch, 2000);

	/* A restart while UP ends the old incarnation too. */
	ev = beat(fx, 3000, 200300);
	assert_int_equal(ev, MEMBER_EV_NEW_EPOCH);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_int_equal(fx->mock.ends, 3);
	assert_int_equal(fx->mock.windows, 3);
	assert_int_equal(fx->mock.last_push_epoch, 3000); /* pushed although still UP */
	/* The other peer was never heard of all along. */
	assert_int_equal(member_find(&fx->m, 7)->state, XPMEM_NODE_UNKNOWN);
	memb_teardown(fx);
}

static void test_member_window_retry(void **state)
{
	struct memb_fx *fx = memb_setup(false);
	struct xpmemd_peer *p = member_find(&fx->m, 2);

	(void)state;
	fx->mock.window_result = -EHOSTUNREACH;
	beat(fx, 1000, 1000);
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	assert_int_equal(fx->mock.windows, 1);
	/* Retried on later heartbeats, at most once a second. */
	beat(fx, 1000, 1200);
	beat(fx, 1000, 1999);
	assert_int_equal(fx->mock.windows, 1);
	beat(fx, 1000, 2000);
	assert_int_equal(fx->mock.windows, 2);
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	/* Without a window, silence does not make it SUSPECT or DEAD. */
	member_tick(&fx->m, 60000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	fx->mock.window_result = 0;
	beat(fx, 1000, 61000);
	assert_int_equal(fx->mock.windows, 3);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	/* A restart whose window fails: UNKNOWN until the window works. */
	fx->mock.window_result = -EHOSTUNREACH;
	beat(fx, 1001, 61200);
	assert_int_equal(p->state, XPMEM_NODE_UNKNOWN);
	assert_int_equal(fx->mock.ends, 1);
	assert_int_equal(fx->mock.windows, 4); /* a new epoch is tried at once */
	memb_teardown(fx);
}

static void test_member_fence(void **state)
{
	struct memb_fx *fx = memb_setup(true);
	struct xpmemd_peer *p = member_find(&fx->m, 2);

	(void)state;
	beat(fx, 1000, 1000);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	/* dead-ms passed: SUSPECT, fence started, not DEAD yet. */
	fx->mock.fence_poll_result = 1;
	member_tick(&fx->m, 4000 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	assert_int_equal(fx->mock.fence_starts, 1);
	assert_true(p->fencing);
	member_tick(&fx->m, 4200 * MS_NS);
	assert_int_equal(fx->mock.fence_polls, 1);
	assert_int_equal(fx->mock.fence_starts, 1);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	/* A heartbeat while fencing does not make it UP. */
	beat(fx, 1000, 4300);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	/* The fence fails: stays SUSPECT; next tick starts it again (still silent). */
	fx->mock.fence_poll_result = -1;
	member_tick(&fx->m, 7400 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	assert_false(p->fencing);
	assert_int_equal(fx->mock.fence_starts, 1);
	member_tick(&fx->m, 7600 * MS_NS);
	assert_int_equal(fx->mock.fence_starts, 2);
	assert_true(p->fencing);
	/* Starting the fence can fail too: retried each tick, stays SUSPECT. */
	fx->mock.fence_poll_result = -1;
	fx->mock.fence_start_result = -ENOENT;
	member_tick(&fx->m, 7800 * MS_NS);
	member_tick(&fx->m, 8000 * MS_NS);
	assert_int_equal(fx->mock.fence_starts, 3);
	member_tick(&fx->m, 8200 * MS_NS);
	assert_int_equal(fx->mock.fence_starts, 4);
	assert_false(p->fencing);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	/* It works: DEAD once the fence-command exits 0. */
	fx->mock.fence_start_result = 0;
	fx->mock.fence_poll_result = 0;
	member_tick(&fx->m, 8400 * MS_NS);
	assert_true(p->fencing);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	assert_int_equal(fx->mock.ends, 0);
	member_tick(&fx->m, 8600 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_DEAD);
	assert_int_equal(fx->mock.ends, 1);
	assert_false(p->fencing);
	memb_teardown(fx);
}

static void test_member_fence_recovers(void **state)
{
	struct memb_fx *fx = memb_setup(true);
	struct xpmemd_peer *p = member_find(&fx->m, 2);

	(void)state;
	beat(fx, 1000, 1000);
	fx->mock.fence_poll_result = 1;
	member_tick(&fx->m, 4000 * MS_NS);
	assert_true(p->fencing);
	/* Heartbeats resume while the fence runs, then the fence fails: back UP. */
	beat(fx, 1000, 4100);
	fx->mock.fence_poll_result = -1;
	member_tick(&fx->m, 4200 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_SUSPECT);
	member_tick(&fx->m, 4400 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_int_equal(fx->mock.ends, 0);

	/* A restart during a fence: the fence's outcome is for the old epoch only. */
	fx->mock.fence_poll_result = 1;
	member_tick(&fx->m, 7500 * MS_NS);
	assert_true(p->fencing);
	beat(fx, 2000, 7600);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	fx->mock.fence_poll_result = 0;
	member_tick(&fx->m, 7800 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_false(p->fencing);
	memb_teardown(fx);
}

static void test_member_leave(void **state)
{
	struct memb_fx *fx = memb_setup(true);
	struct xpmemd_peer *p = member_find(&fx->m, 2);

	(void)state;
	beat(fx, 1000, 1000);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	/* Dead and fenced at once: no timeout, no fence-command. */
	member_leave(&fx->m, p, 1100 * MS_NS);
	assert_int_equal(p->state, XPMEM_NODE_DEAD);
	assert_int_equal(fx->mock.last_push_state, XPMEM_NODE_DEAD);
	assert_true(fx->mock.last_push_fenced);
	assert_int_equal(fx->mock.ends, 1);
	assert_int_equal(fx->mock.fence_starts, 0);
	member_leave(&fx->m, p, 1200 * MS_NS);
	assert_int_equal(fx->mock.ends, 1);
	member_tick(&fx->m, 9000 * MS_NS);
	assert_int_equal(fx->mock.fence_starts, 0);
	/* Its restart (a new epoch) brings it back, unfenced. */
	beat(fx, 2000, 9100);
	assert_int_equal(p->state, XPMEM_NODE_UP);
	assert_false(p->fenced);
	assert_int_equal(fx->mock.last_push_epoch, 2000);
	memb_teardown(fx);
}

int main(void)
{
	const struct CMUnitTest config_tests[] = {
		cmocka_unit_test(test_config_good),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_load_missing),
		cmocka_unit_test(test_pci_resource),
	};
	const struct CMUnitTest wire_tests[] = {
		cmocka_unit_test_setup_teardown(test_wire_key, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_roundtrip_heartbeat, setup_wire,
						teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_roundtrip_msg, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_malformed, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_leave, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_hmac, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_replay, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_epochs, setup_wire, teardown_wire),
		cmocka_unit_test_setup_teardown(test_wire_destination, setup_wire, teardown_wire),
		cmocka_unit_test(test_wire_rtt),
		cmocka_unit_test(test_reqtab),
	};
	const struct CMUnitTest member_tests[] = {
		cmocka_unit_test(test_member_lifecycle),
		cmocka_unit_test(test_member_window_retry),
		cmocka_unit_test(test_member_fence),
		cmocka_unit_test(test_member_fence_recovers),
		cmocka_unit_test(test_member_leave),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("xpmemd config", config_tests, setup_files,
					     teardown_files);
	fails += cmocka_run_group_tests_name("xpmemd wire", wire_tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("xpmemd membership", member_tests, setup_files,
					     teardown_files);
	return fails ? 1 : 0;
}
