/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR LGPL-2.1-or-later */
/*
 * The /dev/xpmem ioctl interface, shared by the kernel module and libxpmem.
 *
 * Commands 0..8 and their argument layouts are those of the existing XPMEM module
 * (x86_64 offsets), so binaries linked against the existing library keep working.
 */
#ifndef XPMEM_IOCTL_H
#define XPMEM_IOCTL_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define XPMEM_DEVICE_PATH "/dev/xpmem"

/* Interface version answered by XPMEM_CMD_VERSION; the existing module starts at 0x00026005. */
#define XPMEM_INTERFACE_VERSION 0x00030000

#define XPMEM_CMD_VERSION _IO('x', 0)
#define XPMEM_CMD_MAKE _IO('x', 1)
#define XPMEM_CMD_REMOVE _IO('x', 2)
#define XPMEM_CMD_GET _IO('x', 3)
#define XPMEM_CMD_RELEASE _IO('x', 4)
#define XPMEM_CMD_ATTACH _IO('x', 5)
#define XPMEM_CMD_DETACH _IO('x', 6)
#define XPMEM_CMD_FORK_BEGIN _IO('x', 7)
#define XPMEM_CMD_FORK_END _IO('x', 8)

/* Permit types and access flags (same values as the user API). */
#define XPMEM_IOCTL_PERMIT_MODE 0x1
#define XPMEM_IOCTL_RDONLY 0x1
#define XPMEM_IOCTL_RDWR 0x2

/* Size of the whole-address-space export: (size_t)-1. */
#define XPMEM_IOCTL_MAXADDR_SIZE (~(__u64)0)

struct xpmem_cmd_make {
	__u64 vaddr;
	__u64 size;
	__s32 permit_type;
	__u32 pad;
	__u64 permit_value;
	__s64 segid; /* out */
};

struct xpmem_cmd_remove {
	__s64 segid;
};

struct xpmem_cmd_get {
	__s64 segid;
	__s32 flags;
	__s32 permit_type;
	__u64 permit_value; /* must be 0 */
	__s64 apid; /* out */
};

struct xpmem_cmd_release {
	__s64 apid;
};

struct xpmem_cmd_attach {
	__s64 apid;
	__s64 offset;
	__u64 size;
	__u64 vaddr; /* in: 0 or fixed address; out: where it was placed */
	__s32 fd; /* unused, kept for layout */
	__s32 flags; /* must be 0 */
};

struct xpmem_cmd_detach {
	__u64 vaddr;
};

/*
 * Extensions: size-versioned commands. argsz is sizeof the struct the caller was
 * built with; later versions only append fields.
 */
#define XPMEM_IOCTL_ATTACH_PREFAULT 0x1 /* map what the exporter has now, at attach time */
#define XPMEM_IOCTL_ATTACH_FLAGS_ALL XPMEM_IOCTL_ATTACH_PREFAULT

struct xpmem_cmd_attach_ext {
	__u32 argsz;
	__u32 flags;
	__s64 apid;
	__s64 offset;
	__u64 size;
	__u64 vaddr; /* in: 0 or fixed address; out: where it was placed */
};

#define XPMEM_CMD_ATTACH_EXT _IOWR('x', 16, struct xpmem_cmd_attach_ext)

/*
 * Introspection for tools (xpmemctl). One call fills buf with up to
 * buf_size / record_size records of the kind asked for, newest layout first:
 * record_size tells the caller how long each record is (records only grow, by
 * appending fields), total how many were visible (retry with a larger buffer
 * when total > count). Callers without CAP_SYS_ADMIN see only objects of
 * their own uid; everyone sees only their own IPC namespace.
 */
enum xpmem_query_kind {
	XPMEM_QUERY_SEGMENTS = 1,
	XPMEM_QUERY_ACCESSES = 2,
	XPMEM_QUERY_ATTACHMENTS = 3,
	XPMEM_QUERY_STATS = 4,
	XPMEM_QUERY_NODES = 5, /* fabric nodes: this one, then its peers */
};

struct xpmem_cmd_query {
	__u32 argsz;
	__u32 kind; /* enum xpmem_query_kind */
	__u64 buf; /* user pointer to the record array */
	__u32 buf_size; /* bytes at buf */
	__u32 record_size; /* out */
	__u32 count; /* out: records written */
	__u32 total; /* out: records visible */
	__s32 pid; /* filter: owning/attaching process, 0 = any */
	__u32 pad;
	__s64 segid; /* filter: segment, 0 = any */
};

#define XPMEM_QUERY_COMM_LEN 16

struct xpmem_segment_info {
	__s64 segid;
	__u64 start; /* exporter virtual address */
	__u64 size;
	__s32 owner_pid; /* in the caller's pid namespace; 0 once the exporter is gone */
	__u32 owner_uid;
	__u32 owner_gid;
	__u32 mode; /* permit mode bits */
	__u32 removed; /* 1: removed or exporter gone, kept alive by permits/attachments */
	__u32 accesses; /* live permits */
	__u32 attachments; /* live attachments */
	__u32 pad;
	__u64 faults;
	__u64 recalls;
	char owner_comm[XPMEM_QUERY_COMM_LEN];
	__u64 huge_faults; /* faults served with a 2 MiB or 1 GiB mapping */
	__u64 mapped_4k; /* attacher 4 KiB entries mapping it now, all attachments */
	__u64 mapped_2m; /* attacher 2 MiB entries mapping it now */
	__u32 remote_permits; /* permits other fabric nodes hold on it */
	__u32 remote_nodes; /* how many nodes hold them */
	__u64 remote_pages; /* its pages pinned for other nodes (granted, or awaiting a recall) */
	__u64 mapped_1g; /* attacher 1 GiB entries mapping it now */
};

struct xpmem_access_info {
	__s64 apid;
	__s64 segid;
	__s32 pid; /* process that did the get */
	__u32 uid;
	__u32 flags; /* XPMEM_IOCTL_RDONLY or XPMEM_IOCTL_RDWR */
	__u32 pad;
};

struct xpmem_attachment_info {
	__s64 segid;
	__s32 pid; /* attacher */
	__u32 uid;
	__u64 vaddr; /* where it was attached */
	__u64 size;
	__u64 offset; /* into the segment */
	__u32 flags; /* XPMEM_IOCTL_RDONLY or XPMEM_IOCTL_RDWR */
	__u32 vmas; /* mappings it is split into */
	__u64 faults;
	__u64 recalls; /* recalls that revoked PTEs of this attachment */
	__u64 huge_faults; /* faults served with a 2 MiB or 1 GiB mapping */
	__u64 mapped_4k; /* 4 KiB entries mapping it now */
	__u64 mapped_2m; /* 2 MiB entries mapping it now */
	__u32 remote_node; /* fabric node exporting the segment; 0: this node */
	__u32 pad2;
	__u64 mapped_1g; /* 1 GiB entries mapping it now */
};

/* XPMEM_QUERY_STATS: one record of global counters (the /proc/xpmem/stats values). */
struct xpmem_stats_info {
	__u64 segments_live;
	__u64 accesses_live;
	__u64 attachments_live;
	__u64 makes;
	__u64 removes;
	__u64 gets;
	__u64 releases;
	__u64 attaches;
	__u64 detaches;
	__u64 faults;
	__u64 fault_retries;
	__u64 recalls;
	__u64 pinned_pages; /* granted to other fabric nodes now (local attachments pin nothing) */
	__u64 huge_faults; /* faults served with a 2 MiB or 1 GiB mapping */
};

/* A fabric node's state, as this node's daemon (xpmemd) sees it. */
enum xpmem_fabric_node_state {
	XPMEM_NODE_UNKNOWN = 0, /* never heard of, or the daemon is gone */
	XPMEM_NODE_UP = 1, /* heartbeats arrive */
	XPMEM_NODE_SUSPECT = 2, /* heartbeats late */
	XPMEM_NODE_DEAD = 3, /* declared dead (fenced if it can be): its requests fail */
};

#define XPMEM_NODE_INFO_SELF 0x1 /* this node */
#define XPMEM_NODE_INFO_WINDOW 0x2 /* a proven window reaches its memory */
#define XPMEM_NODE_INFO_FENCED 0x4 /* dead and cut off (or it left): its grants are freed */

struct xpmem_node_info {
	__u32 node; /* 1..2047 */
	__u32 state; /* enum xpmem_fabric_node_state */
	__u64 epoch; /* incarnation: the daemon's start time in ns */
	__u64 heartbeat_age_ns; /* since its last heartbeat arrived */
	__u64 rtt_ns; /* daemon-to-daemon heartbeat round trip, 0 unknown */
	__u64 rejected; /* its messages that failed authentication or were stale */
	__u32 flags; /* XPMEM_NODE_INFO_* */
	__u32 pad;
	__u64 window_phys; /* local physical range reaching its RAM */
	__u64 window_size;
	__u64 requests; /* requests sent to it by this kernel */
	__u64 request_failures; /* of those: failed, timed out or unanswered */
	__u64 served; /* its requests answered by this kernel */
};

#define XPMEM_CMD_QUERY _IOWR('x', 17, struct xpmem_cmd_query)

/*
 * Round trip to another fabric node's kernel through both daemons (CAP_SYS_ADMIN):
 * size random bytes (at most 4096) go out and must come back unchanged.
 */
struct xpmem_cmd_ping {
	__u32 node;
	__u32 size;
	__u64 rtt_ns; /* out */
};

#define XPMEM_CMD_PING _IOWR('x', 18, struct xpmem_cmd_ping)

#endif /* XPMEM_IOCTL_H */
