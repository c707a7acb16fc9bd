// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: XPMEM_CMD_QUERY, the record interface behind xpmemctl.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ipc_namespace.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "xpmem_fabric.h"
#include "xpmem_private.h"

/* Upper bound of one reply; callers page with filters beyond that. */
#define XPMEM_QUERY_MAX_BYTES (16U << 20)

struct xpmem_query_ctx {
	struct xpmem_cmd_query q;
	struct ipc_namespace *ns;
	kuid_t euid;
	bool see_all;
	void *records;
	u32 max; /* records that fit */
};

static bool xpmem_query_visible(struct xpmem_query_ctx *c, kuid_t owner,
				pid_t pid, s64 segid)
{
	return (c->see_all || uid_eq(owner, c->euid)) &&
	       (!c->q.pid || c->q.pid == pid) &&
	       (!c->q.segid || c->q.segid == segid);
}

/* The next record slot, or NULL when the buffer is full (the record is still counted). */
static void *xpmem_query_slot(struct xpmem_query_ctx *c)
{
	void *slot = NULL;

	if (c->q.count < c->max)
		slot = c->records + (size_t)c->q.count++ * c->q.record_size;
	c->q.total++;
	return slot;
}

static void *xpmem_query_node_slot(void *ctx)
{
	return xpmem_query_slot(ctx);
}

static u32 xpmem_query_uid(kuid_t uid)
{
	return from_kuid_munged(current_user_ns(), uid);
}

static void xpmem_query_segments(struct xpmem_query_ctx *c)
{
	struct xpmem_segment_info *info;
	struct xpmem_segment *seg;

	list_for_each_entry(seg, &xpmem_all_segments, all_node) {
		pid_t owner;

		/* Segments made here: not stand-ins for other nodes'. */
		if (seg->remote)
			continue;
		/* The exporter's pid means nothing once its address space is gone. */
		owner = atomic_read(&seg->mm->mm_users) ? pid_vnr(seg->owner_pid) : 0;
		if (seg->ipc_ns != c->ns ||
		    !xpmem_query_visible(c, seg->uid, owner, seg->segid))
			continue;
		info = xpmem_query_slot(c);
		if (!info)
			continue;
		info->segid = seg->segid;
		info->start = seg->start;
		info->size = seg->end - seg->start;
		info->owner_pid = owner;
		info->owner_uid = xpmem_query_uid(seg->uid);
		info->owner_gid = from_kgid_munged(current_user_ns(), seg->gid);
		info->mode = seg->mode;
		info->removed = READ_ONCE(seg->removed);
		info->accesses = atomic_read(&seg->nr_accesses);
		info->attachments = atomic_read(&seg->nr_attachments);
		info->faults = atomic64_read(&seg->faults);
		info->huge_faults = atomic64_read(&seg->huge_faults);
		info->recalls = atomic64_read(&seg->recalls);
		strscpy(info->owner_comm, seg->owner_comm,
			sizeof(info->owner_comm));
		xpmem_count_mapped(seg, &info->mapped_4k, &info->mapped_2m,
				   &info->mapped_1g);
		xpmem_remote_export_counts(seg, &info->remote_permits,
					   &info->remote_nodes,
					   &info->remote_pages);
	}
}

static void xpmem_query_accesses(struct xpmem_query_ctx *c)
{
	struct xpmem_access_info *info;
	struct xpmem_access *ap;

	list_for_each_entry(ap, &xpmem_all_accesses, all_node) {
		pid_t pid = pid_vnr(ap->pid);

		if (ap->seg->ipc_ns != c->ns ||
		    !xpmem_query_visible(c, ap->uid, pid, ap->seg->segid))
			continue;
		info = xpmem_query_slot(c);
		if (!info)
			continue;
		info->apid = ap->apid;
		info->segid = ap->seg->segid;
		info->pid = pid;
		info->uid = xpmem_query_uid(ap->uid);
		info->flags = ap->writable ? XPMEM_IOCTL_RDWR : XPMEM_IOCTL_RDONLY;
	}
}

/*
 * Attachment records, with the entries each maps now: counted between two passes
 * under seg->lock (the count takes the i_mmap lock, which must not nest inside
 * seg->lock: the invalidate callback takes them the other way round, and may run
 * in reclaim).
 */
static void xpmem_query_attachments(struct xpmem_query_ctx *c)
{
	struct xpmem_attachment_info *info;
	struct interval_tree_node *node;
	struct xpmem_attachment *att;
	struct xpmem_segment *seg;
	u64 n4k = 0, n2m = 0, n1g = 0;
	pid_t pid;

	list_for_each_entry(seg, &xpmem_all_segments, all_node) {
		if (seg->ipc_ns != c->ns)
			continue;
		mutex_lock(&seg->lock);
		for (node = interval_tree_iter_first(&seg->attachments, 0,
						     ULONG_MAX);
		     node; node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
			att = container_of(node, struct xpmem_attachment, range);
			att->query_4k = 0;
			att->query_2m = 0;
			att->query_1g = 0;
		}
		mutex_unlock(&seg->lock);
		xpmem_count_mapped(seg, &n4k, &n2m, &n1g);
		mutex_lock(&seg->lock);
		for (node = interval_tree_iter_first(&seg->attachments, 0,
						     ULONG_MAX);
		     node; node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
			att = container_of(node, struct xpmem_attachment, range);
			pid = pid_vnr(att->pid);
			if (!xpmem_query_visible(c, att->uid, pid, seg->segid))
				continue;
			info = xpmem_query_slot(c);
			if (!info)
				continue;
			info->segid = seg->segid;
			info->pid = pid;
			info->uid = xpmem_query_uid(att->uid);
			info->vaddr = READ_ONCE(att->vaddr);
			info->offset = (att->range.start << PAGE_SHIFT) -
				       seg->start;
			info->size = (att->range.last - att->range.start + 1)
				     << PAGE_SHIFT;
			info->flags = att->writable ? XPMEM_IOCTL_RDWR :
						      XPMEM_IOCTL_RDONLY;
			info->vmas = atomic_read(&att->nr_vmas);
			info->faults = atomic64_read(&att->faults);
			info->huge_faults = atomic64_read(&att->huge_faults);
			info->recalls = atomic64_read(&att->recalls);
			info->mapped_4k = att->query_4k;
			info->mapped_2m = att->query_2m;
			info->mapped_1g = att->query_1g;
			info->remote_node = seg->remote ?
				XPMEM_SEGID_NODE(seg->segid) : 0;
		}
		mutex_unlock(&seg->lock);
	}
}

static void xpmem_query_stats(struct xpmem_query_ctx *c)
{
	struct xpmem_stats_info *info = xpmem_query_slot(c);

	if (!info)
		return;
	info->segments_live = atomic64_read(&xpmem_stats.segments_live);
	info->accesses_live = atomic64_read(&xpmem_stats.accesses_live);
	info->attachments_live = atomic64_read(&xpmem_stats.attachments_live);
	info->makes = atomic64_read(&xpmem_stats.makes);
	info->removes = atomic64_read(&xpmem_stats.removes);
	info->gets = atomic64_read(&xpmem_stats.gets);
	info->releases = atomic64_read(&xpmem_stats.releases);
	info->attaches = atomic64_read(&xpmem_stats.attaches);
	info->detaches = atomic64_read(&xpmem_stats.detaches);
	info->faults = atomic64_read(&xpmem_stats.faults);
	info->fault_retries = atomic64_read(&xpmem_stats.fault_retries);
	info->recalls = atomic64_read(&xpmem_stats.recalls);
	info->pinned_pages = atomic64_read(&xpmem_stats.pinned);
	info->huge_faults = atomic64_read(&xpmem_stats.huge_faults);
}

long xpmem_query(void __user *uarg)
{
	struct xpmem_cmd_query __user *uq = uarg;
	struct xpmem_query_ctx c = {};
	u32 argsz;
	int ret;

	if (get_user(argsz, &uq->argsz))
		return -EFAULT;
	if (argsz < sizeof(c.q))
		return -EINVAL;
	ret = copy_struct_from_user(&c.q, sizeof(c.q), uarg, argsz);
	if (ret)
		return ret == -E2BIG ? -EINVAL : ret;
	if (c.q.pad || c.q.pid < 0 || c.q.segid < 0 ||
	    c.q.buf_size > XPMEM_QUERY_MAX_BYTES)
		return -EINVAL;
	switch (c.q.kind) {
	case XPMEM_QUERY_SEGMENTS:
		c.q.record_size = sizeof(struct xpmem_segment_info);
		break;
	case XPMEM_QUERY_ACCESSES:
		c.q.record_size = sizeof(struct xpmem_access_info);
		break;
	case XPMEM_QUERY_ATTACHMENTS:
		c.q.record_size = sizeof(struct xpmem_attachment_info);
		break;
	case XPMEM_QUERY_STATS:
		c.q.record_size = sizeof(struct xpmem_stats_info);
		break;
	case XPMEM_QUERY_NODES:
		c.q.record_size = sizeof(struct xpmem_node_info);
		break;
	default:
		return -EINVAL;
	}
	c.max = c.q.buf_size / c.q.record_size;
	/* Build records in kernel memory: copy_to_user under our locks may fault. */
	if (c.max) {
		/* The caller sizes this buffer: failing is its ENOMEM, not a kernel warning. */
		c.records = kvcalloc(c.max, c.q.record_size,
				     GFP_KERNEL | __GFP_NOWARN);
		if (!c.records)
			return -ENOMEM;
	}
	c.ns = current->nsproxy->ipc_ns;
	c.euid = current_euid();
	c.see_all = capable(CAP_SYS_ADMIN);
	c.q.count = 0;
	c.q.total = 0;

	mutex_lock(&xpmem_all_lock);
	switch (c.q.kind) {
	case XPMEM_QUERY_SEGMENTS:
		xpmem_query_segments(&c);
		break;
	case XPMEM_QUERY_ACCESSES:
		xpmem_query_accesses(&c);
		break;
	case XPMEM_QUERY_ATTACHMENTS:
		xpmem_query_attachments(&c);
		break;
	case XPMEM_QUERY_STATS:
		xpmem_query_stats(&c);
		break;
	case XPMEM_QUERY_NODES:
		/* Nodes are not per-user objects: everyone sees the fabric. */
		xpmem_fabric_query_nodes(xpmem_query_node_slot, &c, c.see_all);
		break;
	}
	mutex_unlock(&xpmem_all_lock);

	ret = 0;
	if (c.q.count &&
	    copy_to_user(u64_to_user_ptr(c.q.buf), c.records,
			 (size_t)c.q.count * c.q.record_size))
		ret = -EFAULT;
	else if (put_user(c.q.record_size, &uq->record_size) ||
		 put_user(c.q.count, &uq->count) ||
		 put_user(c.q.total, &uq->total))
		ret = -EFAULT;
	kvfree(c.records);
	return ret;
}
