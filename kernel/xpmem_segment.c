// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: processes, segments and access permits, and their id tables.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/ipc_namespace.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "xpmem_private.h"

static const struct rhashtable_params xpmem_proc_params = {
	.key_len = sizeof(struct mm_struct *),
	.key_offset = offsetof(struct xpmem_proc, mm),
	.head_offset = offsetof(struct xpmem_proc, hash_node),
	.automatic_shrinking = true,
};

static const struct rhashtable_params xpmem_segment_params = {
	.key_len = sizeof(s64),
	.key_offset = offsetof(struct xpmem_segment, segid),
	.head_offset = offsetof(struct xpmem_segment, hash_node),
	.automatic_shrinking = true,
};

static const struct rhashtable_params xpmem_access_params = {
	.key_len = sizeof(s64),
	.key_offset = offsetof(struct xpmem_access, apid),
	.head_offset = offsetof(struct xpmem_access, hash_node),
	.automatic_shrinking = true,
};

LIST_HEAD(xpmem_all_segments);
LIST_HEAD(xpmem_all_accesses);
/* Protects the two lists above (live segments and permits, for queries); outside seg->lock. */
DEFINE_MUTEX(xpmem_all_lock);

static struct rhashtable xpmem_procs;
static struct rhashtable xpmem_segments;
static struct rhashtable xpmem_accesses;
/* Serialises the first registration of a process; later lookups are lock-free. */
static DEFINE_MUTEX(xpmem_proc_register_lock);

static s64 xpmem_random_id(void)
{
	s64 id;

	do {
		id = get_random_u64() & XPMEM_ID_RANDOM_MASK;
	} while (!id);
	return id;
}

/* The IPC namespace reference is dropped through its ns operations (put_ipc_ns is not exported). */
static void xpmem_put_ipc_ns(struct ipc_namespace *ns)
{
	ns->ns.ops->put(&ns->ns);
}

/* ---- processes ---- */

static void xpmem_proc_teardown(struct xpmem_proc *proc);

static struct mmu_notifier *xpmem_proc_alloc(struct mm_struct *mm)
{
	struct xpmem_proc *proc = kzalloc(sizeof(*proc), GFP_KERNEL);

	if (!proc)
		return ERR_PTR(-ENOMEM);
	proc->mm = mm;
	refcount_set(&proc->refs, 1);
	mutex_init(&proc->lock);
	INIT_LIST_HEAD(&proc->segments);
	INIT_LIST_HEAD(&proc->accesses);
	/* The notifier's callbacks live in this module: keep it loaded until they are gone. */
	__module_get(THIS_MODULE);
	return &proc->notifier;
}

static void xpmem_proc_free_notifier(struct mmu_notifier *mn)
{
	struct xpmem_proc *proc = container_of(mn, struct xpmem_proc, notifier);

	xpmem_proc_put(proc);
	/* Safe: module exit waits for this SRCU callback in mmu_notifier_synchronize(). */
	module_put(THIS_MODULE);
}

/* The process's address space is going away (exit or exec): drop everything it owns. */
static void xpmem_proc_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct xpmem_proc *proc = container_of(mn, struct xpmem_proc, notifier);

	rhashtable_remove_fast(&xpmem_procs, &proc->hash_node,
			       xpmem_proc_params);
	xpmem_proc_teardown(proc);
	mmu_notifier_put(&proc->notifier);
}

static const struct mmu_notifier_ops xpmem_proc_notifier_ops = {
	.release = xpmem_proc_release,
	.alloc_notifier = xpmem_proc_alloc,
	.free_notifier = xpmem_proc_free_notifier,
};

void xpmem_proc_put(struct xpmem_proc *proc)
{
	if (refcount_dec_and_test(&proc->refs))
		kfree_rcu(proc, rcu);
}

static struct xpmem_proc *xpmem_proc_lookup(struct mm_struct *mm)
{
	struct xpmem_proc *proc;

	rcu_read_lock();
	proc = rhashtable_lookup(&xpmem_procs, &mm, xpmem_proc_params);
	if (proc && !refcount_inc_not_zero(&proc->refs))
		proc = NULL;
	rcu_read_unlock();
	return proc;
}

/* The calling process's state, registered on first use. */
struct xpmem_proc *xpmem_proc_current(void)
{
	struct mm_struct *mm = current->mm;
	struct mmu_notifier *mn;
	struct xpmem_proc *proc;
	int ret;

	if (!mm)
		return ERR_PTR(-EINVAL);
	proc = xpmem_proc_lookup(mm);
	if (proc)
		return proc;

	mutex_lock(&xpmem_proc_register_lock);
	proc = xpmem_proc_lookup(mm);
	if (proc)
		goto out;
	/*
	 * Make the mm ready for interval notifiers now, before it can hold any
	 * attachment: registering takes mm_take_all_locks(), which would order
	 * attachment i_mmap locks before anon_vma locks, the reverse of recalls
	 * during rmap walks (migration, reclaim).
	 */
	ret = mmu_notifier_register(NULL, mm);
	if (ret) {
		proc = ERR_PTR(ret);
		goto out;
	}
	mn = mmu_notifier_get(&xpmem_proc_notifier_ops, mm);
	if (IS_ERR(mn)) {
		proc = ERR_CAST(mn);
		goto out;
	}
	proc = container_of(mn, struct xpmem_proc, notifier);
	ret = rhashtable_insert_fast(&xpmem_procs, &proc->hash_node,
				     xpmem_proc_params);
	if (ret) {
		mmu_notifier_put(mn);
		proc = ERR_PTR(ret);
		goto out;
	}
	refcount_inc(&proc->refs);
out:
	mutex_unlock(&xpmem_proc_register_lock);
	return proc;
}

/* ---- segments ---- */

void xpmem_segment_get(struct xpmem_segment *seg)
{
	refcount_inc(&seg->refs);
}

void xpmem_segment_put(struct xpmem_segment *seg)
{
	if (!refcount_dec_and_test(&seg->refs))
		return;
	if (!list_empty(&seg->all_node)) {
		mutex_lock(&xpmem_all_lock);
		list_del(&seg->all_node);
		mutex_unlock(&xpmem_all_lock);
	}
	if (seg->remote)
		xpmem_remote_put(seg);
	iput(seg->inode);
	put_pid(seg->owner_pid);
	xpmem_put_ipc_ns(seg->ipc_ns);
	if (seg->mm)
		mmdrop(seg->mm);
	xpmem_stat_dec(segments_live);
	kfree_rcu(seg, rcu);
}

/* A referenced segment of the caller's IPC namespace, or NULL. */
struct xpmem_segment *xpmem_segment_lookup(s64 segid)
{
	struct xpmem_segment *seg;

	rcu_read_lock();
	seg = rhashtable_lookup(&xpmem_segments, &segid, xpmem_segment_params);
	if (seg && (seg->ipc_ns != current->nsproxy->ipc_ns ||
		    !refcount_inc_not_zero(&seg->refs)))
		seg = NULL;
	rcu_read_unlock();
	return seg;
}

/*
 * A segment of [start, start + size) owned by the caller (one reference), not
 * yet in any table: what made and stand-in segments have in common.
 */
static struct xpmem_segment *xpmem_segment_alloc(unsigned long start, u64 size)
{
	const struct cred *cred = current_cred();
	struct xpmem_segment *seg;
	struct inode *inode;

	seg = kzalloc(sizeof(*seg), GFP_KERNEL);
	if (!seg)
		return ERR_PTR(-ENOMEM);
	inode = xpmem_segment_inode();
	if (IS_ERR(inode)) {
		kfree(seg);
		return ERR_CAST(inode);
	}
	seg->inode = inode;
	refcount_set(&seg->refs, 1);
	mutex_init(&seg->lock);
	seg->attachments = RB_ROOT_CACHED;
	seg->grants = RB_ROOT_CACHED;
	seg->start = start;
	seg->end = start + size;
	seg->uid = cred->euid;
	seg->gid = cred->egid;
	get_task_comm(seg->owner_comm, current);
	INIT_LIST_HEAD(&seg->all_node);
	seg->owner_pid = get_task_pid(current, PIDTYPE_TGID);
	seg->ipc_ns = get_ipc_ns(current->nsproxy->ipc_ns);
	xpmem_stat_inc(segments_live);
	return seg;
}

/*
 * The local stand-in for [start, start + size) of another node's segment
 * (xpmem_remote.c), owned by the caller's one reference; not in the id tables.
 */
struct xpmem_segment *xpmem_segment_shadow(s64 remote_segid,
					   unsigned long start, u64 size,
					   struct xpmem_remote *remote)
{
	struct xpmem_segment *seg = xpmem_segment_alloc(start, size);

	if (IS_ERR(seg))
		return seg;
	seg->segid = remote_segid;
	/* Set last: a failure above must not release the remote permit. */
	seg->remote = remote;
	/* Listed for attachment queries (segment queries skip stand-ins). */
	mutex_lock(&xpmem_all_lock);
	list_add_tail(&seg->all_node, &xpmem_all_segments);
	mutex_unlock(&xpmem_all_lock);
	return seg;
}

int xpmem_make(struct xpmem_proc *proc, unsigned long vaddr, u64 size,
	       umode_t mode, s64 *segid)
{
	struct xpmem_segment *seg = xpmem_segment_alloc(vaddr, size);
	int ret;

	if (IS_ERR(seg))
		return PTR_ERR(seg);
	seg->mode = mode;
	mmgrab(proc->mm);
	seg->mm = proc->mm;

	ret = mmu_interval_notifier_insert(&seg->notifier, proc->mm, vaddr,
					   size, &xpmem_segment_notifier_ops);
	if (ret)
		goto err_put;

	mutex_lock(&proc->lock);
	if (proc->dead) {
		ret = -ESRCH;
		goto err_unlock;
	}
	do {
		seg->segid = xpmem_random_id() |
			     (s64)xpmem_fabric_self() << XPMEM_SEGID_NODE_SHIFT;
		ret = rhashtable_lookup_insert_fast(&xpmem_segments,
						    &seg->hash_node,
						    xpmem_segment_params);
	} while (ret == -EEXIST);
	if (ret)
		goto err_unlock;
	list_add_tail(&seg->proc_node, &proc->segments);
	mutex_unlock(&proc->lock);
	mutex_lock(&xpmem_all_lock);
	list_add_tail(&seg->all_node, &xpmem_all_segments);
	mutex_unlock(&xpmem_all_lock);

	xpmem_stat_inc(makes);
	*segid = seg->segid;
	return 0;

err_unlock:
	mutex_unlock(&proc->lock);
	mmu_interval_notifier_remove(&seg->notifier);
err_put:
	xpmem_segment_put(seg);
	return ret;
}

/* Unpublish a segment and revoke every attachment; caller holds the owner's lock. */
static void xpmem_segment_destroy(struct xpmem_segment *seg)
{
	mutex_lock(&seg->lock);
	seg->removed = true;
	mutex_unlock(&seg->lock);
	rhashtable_remove_fast(&xpmem_segments, &seg->hash_node,
			       xpmem_segment_params);
	/*
	 * Revoke the PTEs while the notifier still reports the exporter's changes:
	 * removing it first would let the exporter free a page that attachers can
	 * still reach until the recall. No fault installs a PTE once removed is set.
	 */
	xpmem_recall_segment(seg);
	xpmem_remote_segment_gone(seg);
	mmu_interval_notifier_remove(&seg->notifier);
	list_del(&seg->proc_node);
	xpmem_stat_inc(removes);
	xpmem_segment_put(seg);
}

int xpmem_remove(struct xpmem_proc *proc, s64 segid)
{
	struct xpmem_segment *seg = xpmem_segment_lookup(segid);
	int ret = -ENOENT;

	if (!seg)
		return -ENOENT;
	mutex_lock(&proc->lock);
	if (seg->mm != proc->mm) {
		ret = -EACCES;
	} else if (!seg->removed) {
		xpmem_segment_destroy(seg);
		ret = 0;
	}
	mutex_unlock(&proc->lock);
	xpmem_segment_put(seg);
	return ret;
}

/* SysV-IPC-like check against the owner's credentials recorded at make time. */
static int xpmem_check_permission(struct xpmem_segment *seg, int flags)
{
	const struct cred *cred = current_cred();
	int need = flags == XPMEM_IOCTL_RDWR ? 06 : 04;
	int granted;

	if (uid_eq(cred->euid, seg->uid))
		granted = seg->mode >> 6;
	else if (in_egroup_p(seg->gid))
		granted = seg->mode >> 3;
	else
		granted = seg->mode;
	if ((granted & need) == need)
		return 0;
	if (ns_capable(seg->ipc_ns->user_ns, CAP_IPC_OWNER))
		return 0;
	return -EACCES;
}

/* ---- access permits ---- */

void xpmem_access_put(struct xpmem_access *ap)
{
	if (!refcount_dec_and_test(&ap->refs))
		return;
	if (!list_empty(&ap->all_node)) {
		mutex_lock(&xpmem_all_lock);
		list_del(&ap->all_node);
		mutex_unlock(&xpmem_all_lock);
	}
	atomic_dec(&ap->seg->nr_accesses);
	if (ap->file)
		fput(ap->file);
	put_pid(ap->pid);
	xpmem_segment_put(ap->seg);
	xpmem_stat_dec(accesses_live);
	kfree_rcu(ap, rcu);
}

int xpmem_get(struct xpmem_proc *proc, s64 segid, int flags, s64 *apid)
{
	u32 node = XPMEM_SEGID_NODE(segid);
	struct xpmem_segment *seg;
	int ret;

	if (node && node != xpmem_fabric_self())
		return xpmem_remote_get(proc, segid, flags, apid);
	seg = xpmem_segment_lookup(segid);
	if (!seg)
		return -ENOENT;
	ret = READ_ONCE(seg->removed) ? -ENOENT :
					xpmem_check_permission(seg, flags);
	if (ret) {
		xpmem_segment_put(seg);
		return ret;
	}
	return xpmem_access_new(proc, seg, flags, apid);
}

/* A permit of proc for seg, which takes over the caller's segment reference. */
int xpmem_access_new(struct xpmem_proc *proc, struct xpmem_segment *seg,
		     int flags, s64 *apid)
{
	struct xpmem_access *ap;
	int ret;

	ap = kzalloc(sizeof(*ap), GFP_KERNEL);
	if (!ap) {
		ret = -ENOMEM;
		goto err_seg;
	}
	refcount_set(&ap->refs, 1); /* the table's */
	ap->seg = seg; /* takes over the lookup's reference */
	ap->owner = proc;
	ap->pid = get_task_pid(current, PIDTYPE_TGID);
	ap->uid = current_euid();
	ap->writable = flags == XPMEM_IOCTL_RDWR;
	mutex_init(&ap->file_lock);
	INIT_LIST_HEAD(&ap->all_node);
	atomic_inc(&seg->nr_accesses);
	xpmem_stat_inc(accesses_live);

	mutex_lock(&proc->lock);
	if (proc->dead) {
		ret = -ESRCH;
		goto err_unlock;
	}
	do {
		ap->apid = xpmem_random_id();
		ret = rhashtable_lookup_insert_fast(&xpmem_accesses,
						    &ap->hash_node,
						    xpmem_access_params);
	} while (ret == -EEXIST);
	if (ret)
		goto err_unlock;
	list_add_tail(&ap->proc_node, &proc->accesses);
	mutex_unlock(&proc->lock);
	mutex_lock(&xpmem_all_lock);
	list_add_tail(&ap->all_node, &xpmem_all_accesses);
	mutex_unlock(&xpmem_all_lock);

	xpmem_stat_inc(gets);
	*apid = ap->apid;
	return 0;

err_unlock:
	mutex_unlock(&proc->lock);
	xpmem_access_put(ap);
	return ret;
err_seg:
	xpmem_segment_put(seg);
	return ret;
}

/* The caller's permit apid, or ERR_PTR(-ENOENT / -EACCES). */
struct xpmem_access *xpmem_access_lookup(struct xpmem_proc *proc, s64 apid)
{
	struct xpmem_access *ap;

	rcu_read_lock();
	ap = rhashtable_lookup(&xpmem_accesses, &apid, xpmem_access_params);
	if (ap && !refcount_inc_not_zero(&ap->refs))
		ap = NULL;
	rcu_read_unlock();
	if (!ap)
		return ERR_PTR(-ENOENT);
	if (ap->owner != proc) {
		xpmem_access_put(ap);
		return ERR_PTR(-EACCES);
	}
	return ap;
}

/* Caller holds the owner's lock. */
static void xpmem_access_destroy(struct xpmem_access *ap)
{
	ap->released = true;
	rhashtable_remove_fast(&xpmem_accesses, &ap->hash_node,
			       xpmem_access_params);
	mutex_lock(&xpmem_all_lock);
	list_del_init(&ap->all_node);
	mutex_unlock(&xpmem_all_lock);
	list_del(&ap->proc_node);
	xpmem_stat_inc(releases);
	xpmem_access_put(ap);
}

int xpmem_release(struct xpmem_proc *proc, s64 apid)
{
	struct xpmem_access *ap = xpmem_access_lookup(proc, apid);
	int ret = -ENOENT;

	if (IS_ERR(ap))
		return PTR_ERR(ap);
	mutex_lock(&proc->lock);
	if (!ap->released) {
		xpmem_access_destroy(ap);
		ret = 0;
	}
	mutex_unlock(&proc->lock);
	xpmem_access_put(ap);
	return ret;
}

static void xpmem_proc_teardown(struct xpmem_proc *proc)
{
	struct xpmem_segment *seg, *next_seg;
	struct xpmem_access *ap, *next_ap;

	mutex_lock(&proc->lock);
	proc->dead = true;
	list_for_each_entry_safe(seg, next_seg, &proc->segments, proc_node)
		xpmem_segment_destroy(seg);
	list_for_each_entry_safe(ap, next_ap, &proc->accesses, proc_node)
		xpmem_access_destroy(ap);
	mutex_unlock(&proc->lock);
}

int xpmem_tables_init(void)
{
	int ret;

	ret = rhashtable_init(&xpmem_procs, &xpmem_proc_params);
	if (ret)
		return ret;
	ret = rhashtable_init(&xpmem_segments, &xpmem_segment_params);
	if (ret)
		goto err_procs;
	ret = rhashtable_init(&xpmem_accesses, &xpmem_access_params);
	if (ret)
		goto err_segments;
	return 0;

err_segments:
	rhashtable_destroy(&xpmem_segments);
err_procs:
	rhashtable_destroy(&xpmem_procs);
	return ret;
}

/* Called once no process state remains (every proc holds a module reference). */
void xpmem_tables_exit(void)
{
	mmu_notifier_synchronize();
	rcu_barrier();
	rhashtable_destroy(&xpmem_accesses);
	rhashtable_destroy(&xpmem_segments);
	rhashtable_destroy(&xpmem_procs);
}
