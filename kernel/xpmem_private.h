/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem: internal objects of the kernel module.
 *
 * A process (struct xpmem_proc, one per mm) makes segments of its address space
 * (struct xpmem_segment) and gets access permits (struct xpmem_access) to the
 * segments of others. An attachment (struct xpmem_attachment) maps a window of a
 * segment into the attacher's address space as a VM_PFNMAP mapping of a per-segment
 * pseudo file whose file offset is the exporter's virtual address. Attacher PTEs
 * are only ever installed by the fault path under the collision-retry protocol of
 * the segment's mmu_interval_notifier, and revoked by the notifier's invalidate
 * callback (xpmem_recall.c), which finds them through that pseudo file's i_mmap.
 */
#ifndef XPMEM_PRIVATE_H
#define XPMEM_PRIVATE_H

#include <linux/atomic.h>
#include <linux/interval_tree.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/hmm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/types.h>

#include "xpmem_compat.h"
#include "xpmem_fabric.h" /* and xpmem_ioctl.h */

/*
 * Ids are random in bits 51..0; bits 62..52 of a segment id hold the fabric node
 * that made it (XPMEM_SEGID_NODE_SHIFT, 0 outside a fabric) and bit 63 stays
 * clear so ids are positive.
 */
#define XPMEM_ID_RANDOM_BITS 52
#define XPMEM_ID_RANDOM_MASK ((1ULL << XPMEM_ID_RANDOM_BITS) - 1)

struct xpmem_remote;
struct xpmem_fabric_req;

struct xpmem_proc {
	struct mmu_notifier notifier; /* lifetime via mmu_notifier_get/put */
	struct rhash_head hash_node;
	struct mm_struct *mm; /* hash key; valid while registered */
	refcount_t refs;
	struct mutex lock; /* protects the lists and dead */
	struct list_head segments;
	struct list_head accesses;
	bool dead;
	struct rcu_head rcu;
};

struct xpmem_segment {
	s64 segid;
	struct rhash_head hash_node;
	refcount_t refs;
	struct rcu_head rcu;

	struct mm_struct *mm; /* mmgrab()ed exporter mm */
	unsigned long start; /* exporter virtual range [start, end) */
	unsigned long end;
	umode_t mode;
	kuid_t uid;
	kgid_t gid;
	struct ipc_namespace *ipc_ns;
	struct pid *owner_pid; /* for queries, translated into the caller's pid namespace */
	char owner_comm[TASK_COMM_LEN];
	struct list_head proc_node; /* in the owner's list, under owner->lock */
	struct list_head all_node; /* in xpmem_all_segments, for queries */
	atomic_t nr_accesses;
	atomic_t nr_attachments;
	atomic64_t faults;
	atomic64_t huge_faults;
	atomic64_t recalls;

	struct mmu_interval_notifier notifier;
	/*
	 * Orders PTE installation by the fault path against sequence updates by the
	 * invalidate callback, and protects removed and the attachment tree. Never
	 * held across an allocation: the invalidate callback may run in reclaim.
	 */
	struct mutex lock;
	bool removed;
	struct rb_root_cached attachments; /* source ranges of live attachments */
	struct rb_root_cached grants; /* pages handed to other nodes (xpmem_remote.c) */
	struct inode *inode; /* address space of all attachment mappings */
	/*
	 * Set for the local stand-in of a segment of another node (made by a get of
	 * its segid): mm is NULL then, start/end are the exporter's addresses, and
	 * faults ask that node for its pages (xpmem_remote.c).
	 */
	struct xpmem_remote *remote;
};

struct xpmem_access {
	s64 apid;
	struct rhash_head hash_node;
	refcount_t refs;
	struct rcu_head rcu;
	struct xpmem_segment *seg;
	struct xpmem_proc *owner; /* compared only; the access dies with it */
	struct list_head proc_node;
	struct list_head all_node; /* in xpmem_all_accesses, for queries */
	struct pid *pid;
	kuid_t uid;
	bool writable;
	bool released;
	/*
	 * The pseudo file that every attachment made with this permit maps (one
	 * file per attachment would double the objects an exiting attacher frees).
	 * file_lock also hands the attachment being mapped to ->mmap through
	 * file->private_data.
	 */
	struct mutex file_lock;
	struct file *file;
};

struct xpmem_attachment {
	refcount_t refs; /* one per VMA, plus one while being set up */
	atomic_t nr_vmas;
	/*
	 * Serialises page table allocation in the attachment's VMAs against the
	 * installation of 2 MiB and 1 GiB entries, which need an empty PMD or PUD
	 * slot.
	 */
	struct mutex table_lock;
	struct xpmem_segment *seg;
	struct interval_tree_node range; /* source pages, inclusive */
	bool writable;
	bool pud_mapped; /* a 1 GiB entry was made for it (see xpmem_att_vma_copied) */
	/* For queries: */
	struct pid *pid;
	kuid_t uid;
	unsigned long vaddr;
	atomic64_t faults;
	atomic64_t huge_faults;
	atomic64_t recalls;
	/* Entries counted by the running query (under xpmem_all_lock). */
	u64 query_4k;
	u64 query_2m;
	u64 query_1g;
};

/* Counters shown in /proc/xpmem/stats; the *_live ones go back to zero. */
struct xpmem_stats {
	atomic64_t segments_live;
	atomic64_t accesses_live;
	atomic64_t attachments_live;
	atomic64_t makes;
	atomic64_t removes;
	atomic64_t gets;
	atomic64_t releases;
	atomic64_t attaches;
	atomic64_t detaches;
	atomic64_t faults;
	atomic64_t fault_retries;
	atomic64_t huge_faults;
	atomic64_t recalls;
	atomic64_t pinned; /* pages handed to other nodes, now */
	atomic64_t unpinned; /* of those, given back */
	atomic64_t pinned_total;
};

extern struct xpmem_stats xpmem_stats;

#define xpmem_stat_inc(name) atomic64_inc(&xpmem_stats.name)
#define xpmem_stat_dec(name) atomic64_dec(&xpmem_stats.name)

/* xpmem_segment.c */
int xpmem_tables_init(void);
void xpmem_tables_exit(void);
struct xpmem_proc *xpmem_proc_current(void);
void xpmem_proc_put(struct xpmem_proc *proc);
int xpmem_make(struct xpmem_proc *proc, unsigned long vaddr, u64 size,
	       umode_t mode, s64 *segid);
int xpmem_remove(struct xpmem_proc *proc, s64 segid);
int xpmem_get(struct xpmem_proc *proc, s64 segid, int flags, s64 *apid);
int xpmem_release(struct xpmem_proc *proc, s64 apid);
struct xpmem_access *xpmem_access_lookup(struct xpmem_proc *proc, s64 apid);
int xpmem_access_new(struct xpmem_proc *proc, struct xpmem_segment *seg,
		     int flags, s64 *apid);
struct xpmem_segment *xpmem_segment_lookup(s64 segid);
struct xpmem_segment *xpmem_segment_shadow(s64 remote_segid,
					   unsigned long start, u64 size,
					   struct xpmem_remote *remote);
void xpmem_access_put(struct xpmem_access *ap);
void xpmem_segment_get(struct xpmem_segment *seg);
void xpmem_segment_put(struct xpmem_segment *seg);

/* Every live segment and permit, for queries (xpmem_query.c). */
extern struct list_head xpmem_all_segments;
extern struct list_head xpmem_all_accesses;
extern struct mutex xpmem_all_lock;

/*
 * One run of attacher pages [start, end) inside one PMD, and their source pfns;
 * or, for a huge batch, a whole PMD or PUD and only the target's pfn, in pfns[0].
 */
struct xpmem_batch {
	unsigned long start;
	unsigned long end;
	unsigned long target; /* must be mapped (faulted in the exporter), or 0 */
	bool write;
	bool huge; /* one 2 MiB or 1 GiB entry for the whole batch, if possible */
	unsigned long *pfns;
};

#define XPMEM_FAULT_BATCH 64

/* xpmem_query.c */
long xpmem_query(void __user *uarg);

/* xpmem_attach.c */
int xpmem_fs_init(void);
void xpmem_fs_exit(void);
struct inode *xpmem_segment_inode(void);
int xpmem_attach(struct xpmem_proc *proc, s64 apid, s64 offset, u64 size,
		 u64 *vaddr, int flags, bool prefault);
int xpmem_detach(unsigned long vaddr);
void xpmem_attachment_put(struct xpmem_attachment *att);

/* xpmem_recall.c */
extern const struct mmu_interval_notifier_ops xpmem_segment_notifier_ops;
vm_fault_t xpmem_fault(struct vm_fault *vmf);
vm_fault_t xpmem_pfn_mkwrite(struct vm_fault *vmf);
#ifdef XPMEM_HUGE_PUD_PFNMAP
vm_fault_t xpmem_huge_fault(struct vm_fault *vmf, unsigned int order);
void xpmem_att_vma_copied(struct xpmem_attachment *att,
			  struct vm_area_struct *new);
#endif
int xpmem_prefault(struct xpmem_attachment *att, unsigned long start,
		   unsigned long end);
void xpmem_recall_segment(struct xpmem_segment *seg);
void xpmem_unmap_attachers(struct xpmem_segment *seg, unsigned long start,
			   unsigned long end);
int xpmem_fetch(struct xpmem_segment *seg, unsigned long src,
		struct xpmem_batch *b, struct hmm_range *range);
vm_fault_t xpmem_prealloc_ptes(struct xpmem_attachment *att,
			       struct mm_struct *mm, unsigned long start,
			       unsigned long end);
unsigned int xpmem_fault_window(struct vm_fault *vmf, unsigned long *start,
				unsigned long *end);
void xpmem_count_mapped(struct xpmem_segment *seg, u64 *n4k, u64 *n2m,
			u64 *n1g);
bool xpmem_huge_candidate(struct vm_fault *vmf, unsigned long window);

/* xpmem_remote.c: segments of other nodes, and this node's pages they map */
int xpmem_remote_get(struct xpmem_proc *proc, s64 segid, int flags, s64 *apid);
void xpmem_remote_put(struct xpmem_segment *shadow);
vm_fault_t xpmem_remote_fault(struct vm_fault *vmf);
void xpmem_remote_recall(struct xpmem_segment *seg, unsigned long start,
			 unsigned long end);
void xpmem_remote_segment_gone(struct xpmem_segment *seg);
int xpmem_remote_serve(struct xpmem_fabric_msg *msg);
void xpmem_remote_peer_gone(u32 node, u64 before_epoch, bool fenced);
void xpmem_remote_disconnected(void);
void xpmem_remote_peer_up(void);
void xpmem_remote_exit(void);

/* xpmem_fabric.c */
int xpmem_fabric_init(void);
void xpmem_fabric_exit(void);
u32 xpmem_fabric_self(void);
int xpmem_fabric_call(u32 node, u32 type, const void *payload, u32 len,
		      void *answer, u32 *answer_len, unsigned long timeout);
int xpmem_fabric_ping(u32 node, u32 size, u64 *rtt_ns);
struct xpmem_fabric_req *xpmem_fabric_submit(u32 node, u32 type,
					     const void *payload, u32 len,
					     gfp_t gfp);
int xpmem_fabric_wait(struct xpmem_fabric_req *req, void *answer,
		      u32 *answer_len, unsigned long timeout, bool killable);
void xpmem_fabric_post(u32 node, u32 type, const void *payload, u32 len);
int xpmem_fabric_window_pfn(u32 node, u64 epoch, u64 phys, unsigned long *pfn);
u64 xpmem_fabric_epoch(u32 node);
u32 xpmem_fabric_map_id(u32 node, unsigned int kind, u32 id);
bool xpmem_fabric_window_huge(u32 node, u64 epoch);
void xpmem_remote_export_counts(struct xpmem_segment *seg, u32 *permits,
				u32 *nodes, u64 *pages);
void xpmem_fabric_query_nodes(void *(*slot)(void *ctx), void *ctx,
			      bool see_all);

#endif /* XPMEM_PRIVATE_H */
