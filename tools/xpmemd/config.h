/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: the configuration file (man/xpmemd.8). Line-based, '#' starts a
 * comment, one directive per line:
 *
 *   node N                    this node, 1..XPMEM_FABRIC_MAX_NODE
 *   listen IPV4 PORT          the libfabric endpoint's address
 *   key-file PATH             shared secret (raw contents, >= 16 bytes)
 *   peer N IPV4 PORT window-pci BDF [below-4g BYTES]
 *   peer N IPV4 PORT window-phys PHYS SIZE [below-4g BYTES]
 *   heartbeat-ms MS           default 200
 *   suspect-ms MS             default 5 x heartbeat-ms
 *   dead-ms MS                default 15 x heartbeat-ms
 *   fence-command PATH        optional, absolute; run as `PATH NODE`
 *   idmap N uid|gid REMOTE LOCAL COUNT
 *                             peer N's ids REMOTE.. are this node's LOCAL..;
 *                             once a peer has a map of a kind, ids it does not
 *                             cover are nobody (up to XPMEM_FABRIC_IDMAP_MAX)
 *
 * Numbers are decimal or 0x-hexadecimal. The key file is read and each
 * window-pci device's BAR 2 looked up (in <pci_root>/<BDF>/resource, third
 * line) while parsing, so that every error carries the line it comes from.
 */
#ifndef XPMEMD_CONFIG_H
#define XPMEMD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <netinet/in.h>

#define XPMEMD_PCI_ROOT "/sys/bus/pci/devices"
#define XPMEMD_DEFAULT_HEARTBEAT_MS 200

struct xpmemd_peer_conf {
	uint32_t node;
	struct sockaddr_in addr;
	uint64_t win_phys;
	uint64_t win_size;
	uint64_t below_4g;
	char bdf[32]; /* window-pci: the device; "" for window-phys */
	int line;
};

struct xpmemd_idmap_conf {
	uint32_t node;
	uint32_t kind; /* XPMEM_IDMAP_UID or XPMEM_IDMAP_GID */
	uint32_t remote_first;
	uint32_t local_first;
	uint32_t count;
	int line;
};

struct xpmemd_config {
	uint32_t node;
	struct sockaddr_in listen;
	char *key_file;
	uint8_t *key;
	size_t key_len;
	struct xpmemd_peer_conf *peers;
	size_t npeers;
	uint32_t heartbeat_ms;
	uint32_t suspect_ms;
	uint32_t dead_ms;
	char *fence_command; /* NULL: none */
	struct xpmemd_idmap_conf *idmaps;
	size_t nidmaps;
};

/* Peer node's map of kind as XPMEM_FABRIC_IDMAP takes it (nr_extents 0: none given). */
struct xpmem_fabric_idmap;
void xpmemd_config_idmap(const struct xpmemd_config *cfg, uint32_t node, uint32_t kind,
			 struct xpmem_fabric_idmap *out);

/*
 * Parses the file at path (or the stream f, named name in messages). pci_root:
 * where window-pci devices are looked up, NULL for XPMEMD_PCI_ROOT. Returns 0,
 * or -1 with a message "NAME:LINE: what" (or "NAME: what") in err; *cfg is then
 * left empty.
 */
int xpmemd_config_load(const char *path, const char *pci_root, struct xpmemd_config *cfg,
		       char *err, size_t errlen);
int xpmemd_config_parse(FILE *f, const char *name, const char *pci_root,
			struct xpmemd_config *cfg, char *err, size_t errlen);
void xpmemd_config_free(struct xpmemd_config *cfg);

/*
 * BAR 2 of a PCI device from the text of its sysfs "resource" file: third line
 * "0xstart 0xend 0xflags", a memory BAR. 0 or -EINVAL.
 */
int xpmemd_parse_pci_resource(const char *text, uint64_t *phys, uint64_t *size);

#endif /* XPMEMD_CONFIG_H */
