/* SPDX-License-Identifier: GPL-2.0 OR LGPL-2.1 */
/*
 * The interface between the xpmem kernel module and xpmemd, the per-node fabric
 * daemon, on /dev/xpmem-fabric (root only, one opener at a time: the daemon).
 *
 * The kernel owns the meaning of every cross-node operation; the daemon owns
 * membership (node ids, epochs, heartbeats), authentication and transport. The
 * kernel hands the daemon requests for other nodes through read(); the daemon
 * delivers them to the destination's daemon, which passes them to its kernel
 * with XPMEM_FABRIC_SERVE. That ioctl only takes the request: the kernel works
 * on it in the background (it may wait for memory locks, which must never stall
 * the daemon) and its answer comes out of read() later, with the
 * XPMEM_FMSG_ANSWER bit set in type; the daemon sends it back to the origin,
 * whose daemon completes the request with XPMEM_FABRIC_REPLY. Payloads are
 * opaque to the daemon. When the daemon closes the device, every pending
 * request fails with -ENOTCONN and every peer is marked down.
 *
 * Fabric node ids are 1..XPMEM_FABRIC_MAX_NODE. Segment ids made on a node of a
 * fabric carry its id in bits 62..52; 0 there means "made outside a fabric".
 */
#ifndef XPMEM_FABRIC_H
#define XPMEM_FABRIC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#include "xpmem_ioctl.h" /* enum xpmem_fabric_node_state */

#define XPMEM_FABRIC_DEVICE "/dev/xpmem-fabric"
#define XPMEM_FABRIC_MAX_NODE 2047
#define XPMEM_SEGID_NODE_SHIFT 52
#define XPMEM_SEGID_NODE(segid) ((__u32)(((__u64)(segid) >> XPMEM_SEGID_NODE_SHIFT) & 0x7ff))

/* What a node's beacon page holds: proves which node a window reaches. */
#define XPMEM_BEACON_MAGIC 0x4e43424d454d5058ULL /* "XPMEMBCN" */
struct xpmem_fabric_beacon {
	__u64 magic;
	__u64 nonce;
	__u64 epoch;
	__u32 node;
	__u32 pad;
};

/*
 * XPMEM_FABRIC_JOIN: the daemon names this node and its incarnation. The node id
 * is fixed for the module's lifetime once set (-EBUSY for another id); the epoch
 * must be nonzero and larger than any earlier one (-ESTALE). The kernel answers
 * with the physical address of a fresh beacon that peers read through their
 * windows before they trust them.
 */
struct xpmem_fabric_join {
	__u32 node; /* in: 1..XPMEM_FABRIC_MAX_NODE */
	__u32 pad;
	__u64 epoch; /* in */
	__u64 beacon_phys; /* out: physical address of this node's beacon */
	__u64 beacon_nonce; /* out: the nonce stored there */
};

/*
 * XPMEM_FABRIC_WINDOW: a local physical range [phys, phys + size) through which
 * this node reaches peer node's RAM (the testbed: ivshmem BAR 2 onto the peer's
 * RAM file), inside one memory BAR of a PCI device or one of the module's
 * static_windows ranges (-EINVAL otherwise; pci_windows=0 allows only the
 * latter). A peer physical address P is at window offset P when P < below_4g
 * or below_4g is 0, else at P - 4 GiB + below_4g. The kernel reads the beacon the
 * peer reported through the window and accepts the window only when it holds
 * that node, epoch and nonce (-EHOSTUNREACH otherwise); the range must not be
 * system RAM (-EINVAL). The same epoch may be proven again (a restarted local
 * daemon does); a window for a newer epoch replaces the old one and ends
 * everything of the peer's earlier incarnation; an older epoch gets -ESTALE.
 */
struct xpmem_fabric_window {
	__u32 node; /* peer */
	__u32 pad;
	__u64 phys;
	__u64 size;
	__u64 below_4g;
	__u64 epoch; /* peer's epoch */
	__u64 beacon_phys; /* as the peer reported it */
	__u64 beacon_nonce;
};

/* XPMEM_FABRIC_NODE: what the daemon knows of a peer, for the kernel and queries. */
struct xpmem_fabric_node {
	__u32 node;
	__u32 state; /* enum xpmem_fabric_node_state (xpmem_ioctl.h) */
	__u64 epoch;
	__u64 heartbeat_age_ns; /* since the peer's last heartbeat arrived */
	__u64 rtt_ns; /* last heartbeat round trip, 0 unknown */
	__u64 rejected; /* messages from it that failed authentication or were stale */
	/*
	 * DEAD only: 1 once the fabric manager cut it off (fence-command). Only
	 * then may this node reuse the pages that node was given; a node dead
	 * without a fence keeps them pinned until it comes back with a new epoch.
	 */
	__u32 fenced;
	__u32 pad;
};

/*
 * XPMEM_FABRIC_IDMAP: how peer node's user (kind XPMEM_IDMAP_UID) or group
 * (XPMEM_IDMAP_GID) ids translate into this node's, for the permission checks
 * of that node's requests. It replaces node's map of that kind; with no
 * extents (the default) ids are taken as they are. An id that no extent covers
 * is nobody here: only a segment's "other" bits apply to it. Extents must not
 * overlap on the remote side nor wrap; -EINVAL otherwise.
 */
#define XPMEM_IDMAP_UID 0
#define XPMEM_IDMAP_GID 1
#define XPMEM_FABRIC_IDMAP_MAX 8
struct xpmem_fabric_idmap_extent {
	__u32 remote_first;
	__u32 local_first;
	__u32 count;
	__u32 pad;
};

struct xpmem_fabric_idmap {
	__u32 node;
	__u32 kind;
	__u32 nr_extents;
	__u32 pad;
	struct xpmem_fabric_idmap_extent extents[XPMEM_FABRIC_IDMAP_MAX];
};

/*
 * One message between kernel and daemon. read() on the device returns one
 * message (header and len payload bytes) to send to node: a request, or (type
 * has XPMEM_FMSG_ANSWER) the answer to a request node sent us, with that
 * request's id, and epoch the asker's epoch it was for. XPMEM_FABRIC_SERVE takes
 * a request that arrived from node (epoch: the sender's, as authenticated);
 * -EBUSY when too many are in progress. XPMEM_FABRIC_REPLY hands an answer back
 * to the kernel that asked (id names the request; node must be the node that
 * answered, which the daemon sets from the authenticated sender; -ENOENT if the
 * request was given up). A daemon that cannot deliver a request replies with
 * status -EHOSTUNREACH and node set to the request's destination.
 */
#define XPMEM_FABRIC_PAYLOAD_MAX 4096
enum xpmem_fabric_msg_type {
	XPMEM_FMSG_PING = 1, /* payload echoed: kernel-to-kernel round trip */
	XPMEM_FMSG_GET = 2, /* a permit for a segment of the receiver */
	XPMEM_FMSG_RELEASE = 3, /* that permit is no longer used */
	XPMEM_FMSG_FAULT = 4, /* pages of it, pinned until recalled */
	XPMEM_FMSG_RECALL = 5, /* unmap those pages and acknowledge */
	XPMEM_FMSG_GONE = 6, /* the segment was removed */
};

#define XPMEM_FMSG_ANSWER 0x80000000u

struct xpmem_fabric_msg {
	__u64 id; /* the asking kernel's request id */
	__u32 node; /* read: destination; SERVE and REPLY: the sender */
	__u32 type; /* enum xpmem_fabric_msg_type, | XPMEM_FMSG_ANSWER for answers */
	__u64 epoch; /* read: the destination's epoch it is for; SERVE: the sender's */
	__s32 status; /* answers: 0 or -errno */
	__u32 len; /* payload bytes */
	__u8 payload[XPMEM_FABRIC_PAYLOAD_MAX];
};

#define XPMEM_FABRIC_MSG_HDR_LEN 32

#define XPMEM_FABRIC_JOIN _IOWR('X', 1, struct xpmem_fabric_join)
#define XPMEM_FABRIC_WINDOW _IOW('X', 2, struct xpmem_fabric_window)
#define XPMEM_FABRIC_NODE _IOW('X', 3, struct xpmem_fabric_node)
#define XPMEM_FABRIC_SERVE _IOWR('X', 4, struct xpmem_fabric_msg)
#define XPMEM_FABRIC_REPLY _IOW('X', 5, struct xpmem_fabric_msg)
#define XPMEM_FABRIC_IDMAP _IOW('X', 6, struct xpmem_fabric_idmap)

#endif /* XPMEM_FABRIC_H */
