// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: segments across fabric nodes.
 *
 * Importer (the node that gets another node's segid): a get asks the exporting
 * node for a permit and makes a local stand-in segment (seg->remote) that
 * attachments map like any other. Its faults ask the exporter for pages and map
 * their physical addresses through this node's window onto the exporter's RAM,
 * under the same collision-retry as local faults: the stand-in's seq moves with
 * every recall, and a fault whose answer crossed a recall asks again.
 *
 * Exporter: each permit held by another node (struct xpmem_rpermit) and each
 * run of pages handed out under it (struct xpmem_grant, in seg->grants) is
 * recorded; the pages stay pinned while granted, so a slow or dead importer can
 * never reach a page that was reused. The segment's invalidate callback sends
 * one RECALL per importing node, all at once, and waits for every
 * acknowledgment before the exporter's change goes on (xpmem_recall.c). Pages
 * of a node that does not acknowledge in time stay pinned until that node is
 * declared dead (and fenced) or restarts.
 */
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/ipc_namespace.h>
#include <linux/hmm.h>
#include <linux/huge_mm.h>
#include <linux/module.h>
#include <linux/pfn_t.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>

#include "xpmem_private.h"

static unsigned int remote_recall_timeout_ms = 5000;
module_param(remote_recall_timeout_ms, uint, 0644);
MODULE_PARM_DESC(remote_recall_timeout_ms,
		 "How long a recall waits for another node's acknowledgment before it leaves that node's pages pinned and goes on");

/* Pages one remote fault asks for: each costs a round trip through both daemons. */
#define XPMEM_REMOTE_BATCH 256
static unsigned int remote_fault_around = XPMEM_REMOTE_BATCH;
module_param(remote_fault_around, uint, 0644);
MODULE_PARM_DESC(remote_fault_around,
		 "Pages a fault on another node's segment maps around the faulting page, if the exporter has them present (1..256)");

/* Requests that ask a node something wait this long for the answer. */
#define XPMEM_REMOTE_TIMEOUT (10 * HZ)

/* ---- messages (both ends run this module) ---- */

struct xpmem_rmsg_get {
	s64 segid;
	u32 uid; /* the caller's, in the initial user namespace */
	u32 gid;
	u32 flags; /* XPMEM_IOCTL_RDONLY or XPMEM_IOCTL_RDWR */
	u32 pad;
};

struct xpmem_rmsg_got {
	u64 rapid;
	u64 start;
	u64 size;
};

struct xpmem_rmsg_release {
	u64 rapid;
};

/*
 * XPMEM_RFAULT_HUGE: the whole 2 MiB at addr (npages PTRS_PER_PMD) if the
 * exporter maps it with one huge page; answered with that page alone
 * (XPMEM_RPAGE_HUGE), or with no pages when it does not.
 */
#define XPMEM_RFAULT_HUGE 0x1

struct xpmem_rmsg_fault {
	u64 rapid;
	u64 addr; /* exporter address of the first page */
	u32 npages; /* 1..XPMEM_REMOTE_BATCH */
	u32 target; /* index of the page that must be there */
	u32 write;
	u32 flags; /* XPMEM_RFAULT_* */
};

#define XPMEM_RPAGE_VALID 0x1ULL
#define XPMEM_RPAGE_WRITE 0x2ULL
#define XPMEM_RPAGE_HUGE 0x4ULL /* the first of PTRS_PER_PMD contiguous pages */

struct xpmem_rmsg_pages {
	u32 npages;
	u32 pad;
	u64 entries[XPMEM_REMOTE_BATCH]; /* physical address | XPMEM_RPAGE_* */
};

struct xpmem_rmsg_range {
	s64 segid;
	u64 start; /* exporter addresses; RECALL only */
	u64 end;
};

/* ---- importer: stand-ins for other nodes' segments ---- */

struct xpmem_remote {
	u32 node;
	u64 epoch; /* the exporter's, when the permit was given */
	s64 segid;
	u64 rapid;
	unsigned long seq; /* moves with each recall, under seg->lock */
	struct list_head list; /* in xpmem_shadows */
	struct xpmem_segment *seg;
};

static LIST_HEAD(xpmem_shadows);
static DEFINE_MUTEX(xpmem_shadows_lock);

int xpmem_remote_get(struct xpmem_proc *proc, s64 segid, int flags, s64 *apid)
{
	u32 node = XPMEM_SEGID_NODE(segid), len = sizeof(struct xpmem_rmsg_got);
	struct xpmem_rmsg_get req = {
		.segid = segid,
		.uid = from_kuid_munged(&init_user_ns, current_euid()),
		.gid = from_kgid_munged(&init_user_ns, current_egid()),
		.flags = flags,
	};
	struct xpmem_rmsg_release rel;
	struct xpmem_rmsg_got got;
	struct xpmem_remote *r;
	struct xpmem_segment *seg;
	u64 epoch;
	int ret;

	ret = xpmem_fabric_call(node, XPMEM_FMSG_GET, &req, sizeof(req), &got,
				&len, XPMEM_REMOTE_TIMEOUT);
	/* The incarnation that answered: a later one has forgotten the permit. */
	epoch = xpmem_fabric_epoch(node);
	/* Not reachable is not there, as far as the caller can tell. */
	if (ret == -EHOSTUNREACH || ret == -EHOSTDOWN || ret == -ENOTCONN)
		return -ENOENT;
	if (ret)
		return ret;
	if (len != sizeof(got) || !got.size || !PAGE_ALIGNED(got.start) ||
	    !PAGE_ALIGNED(got.size) || got.start + got.size < got.start) {
		ret = -EPROTO;
		goto err_release;
	}
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		ret = -ENOMEM;
		goto err_release;
	}
	r->node = node;
	r->epoch = epoch;
	r->segid = segid;
	r->rapid = got.rapid;
	seg = xpmem_segment_shadow(segid, got.start, got.size, r);
	if (IS_ERR(seg)) {
		kfree(r);
		ret = PTR_ERR(seg);
		goto err_release;
	}
	r->seg = seg;
	mutex_lock(&xpmem_shadows_lock);
	list_add_tail(&r->list, &xpmem_shadows);
	mutex_unlock(&xpmem_shadows_lock);
	/* From here, dropping the stand-in releases the remote permit. */
	return xpmem_access_new(proc, seg, flags, apid);

err_release:
	rel.rapid = got.rapid;
	xpmem_fabric_post(node, XPMEM_FMSG_RELEASE, &rel, sizeof(rel));
	return ret;
}

/*
 * Permits of other nodes given up here whose RELEASE has not reached them yet:
 * the exporter keeps their pages pinned until it does, so a node that cannot
 * be reached now is told when it is up again (permit ids are not reused soon,
 * and a restart of this node's daemon ends them there anyway).
 */
struct xpmem_unreleased {
	struct list_head list;
	u32 node;
	u64 rapid;
	struct xpmem_fabric_req *req; /* while the worker sends it */
};

static LIST_HEAD(xpmem_unreleased);
static DEFINE_MUTEX(xpmem_unreleased_lock);

static void xpmem_release_pending(struct work_struct *work)
{
	struct xpmem_unreleased *u, *tmp;
	LIST_HEAD(todo);
	LIST_HEAD(later);
	unsigned long deadline;
	int ret;

	mutex_lock(&xpmem_unreleased_lock);
	list_splice_init(&xpmem_unreleased, &todo);
	mutex_unlock(&xpmem_unreleased_lock);
	/* All in flight at once: a slow node does not hold up the others. */
	list_for_each_entry(u, &todo, list) {
		struct xpmem_rmsg_release rel = { .rapid = u->rapid };

		u->req = xpmem_fabric_submit(u->node, XPMEM_FMSG_RELEASE, &rel,
					     sizeof(rel), GFP_KERNEL);
	}
	deadline = jiffies + XPMEM_REMOTE_TIMEOUT;
	list_for_each_entry_safe(u, tmp, &todo, list) {
		ret = IS_ERR(u->req) ? PTR_ERR(u->req) :
			xpmem_fabric_wait(u->req, NULL, NULL,
					  max_t(long, deadline - jiffies, 1), false);
		/* Released, or that node has forgotten the permit: done. */
		if (!ret || ret == -ENOENT || ret == -EINVAL) {
			list_del(&u->list);
			kfree(u);
		} else {
			list_move_tail(&u->list, &later);
		}
	}
	mutex_lock(&xpmem_unreleased_lock);
	list_splice(&later, &xpmem_unreleased);
	mutex_unlock(&xpmem_unreleased_lock);
}

static DECLARE_WORK(xpmem_release_work, xpmem_release_pending);

/* A node is up (again): send the releases it missed. */
void xpmem_remote_peer_up(void)
{
	/* Unconditionally: the worker may hold the entries on its own list now. */
	queue_work(system_unbound_wq, &xpmem_release_work);
}

/* The stand-in's last reference is gone: no attachment maps it any more. */
void xpmem_remote_put(struct xpmem_segment *shadow)
{
	struct xpmem_remote *r = shadow->remote;
	struct xpmem_rmsg_release rel = { .rapid = r->rapid };
	struct xpmem_unreleased *u;

	mutex_lock(&xpmem_shadows_lock);
	list_del(&r->list);
	mutex_unlock(&xpmem_shadows_lock);
	u = kmalloc(sizeof(*u), GFP_KERNEL);
	if (u) {
		u->node = r->node;
		u->rapid = r->rapid;
		mutex_lock(&xpmem_unreleased_lock);
		list_add_tail(&u->list, &xpmem_unreleased);
		mutex_unlock(&xpmem_unreleased_lock);
		queue_work(system_unbound_wq, &xpmem_release_work);
	} else {
		xpmem_fabric_post(r->node, XPMEM_FMSG_RELEASE, &rel, sizeof(rel));
	}
	kfree(r);
}

static vm_fault_t xpmem_remote_error(int err)
{
	if (err == -EPERM || err == -EACCES)
		return VM_FAULT_SIGSEGV;
	if (err == -ENOMEM)
		return VM_FAULT_OOM;
	return VM_FAULT_SIGBUS;
}

/* An aligned run of remote_fault_around pages around the fault, inside the VMA. */
static u32 xpmem_remote_window(struct vm_fault *vmf, unsigned long *start,
			       unsigned long *end)
{
	unsigned long window = clamp_val(READ_ONCE(remote_fault_around), 1,
					 XPMEM_REMOTE_BATCH);
	unsigned long target = vmf->address & PAGE_MASK;

	window = rounddown_pow_of_two(window) << PAGE_SHIFT;
	*start = max(ALIGN_DOWN(target, window), vmf->vma->vm_start);
	*end = min(ALIGN_DOWN(target, window) + window, vmf->vma->vm_end);
	return (*end - *start) >> PAGE_SHIFT;
}

/*
 * Asks the exporter for req's pages. 0 with pages filled in (and *seq the
 * stand-in's sequence before the question), or the fault's error.
 */
static vm_fault_t xpmem_remote_ask(struct xpmem_segment *seg,
				   struct xpmem_rmsg_fault *req,
				   struct xpmem_rmsg_pages *pages,
				   unsigned long *seq)
{
	struct xpmem_remote *r = seg->remote;
	bool removed;
	u32 len;
	int err;

	for (;;) {
		mutex_lock(&seg->lock);
		*seq = r->seq;
		removed = seg->removed;
		mutex_unlock(&seg->lock);
		if (removed)
			return VM_FAULT_SIGBUS;
		len = sizeof(*pages);
		err = xpmem_fabric_call(r->node, XPMEM_FMSG_FAULT, req,
					sizeof(*req), pages, &len,
					XPMEM_REMOTE_TIMEOUT);
		/* The exporter's mm was busy: its worker does not wait for it for us. */
		if (err == -EAGAIN && !fatal_signal_pending(current)) {
			usleep_range(500, 1000);
			continue;
		}
		if (err)
			return xpmem_remote_error(err);
		if (len != offsetof(struct xpmem_rmsg_pages, entries) +
				   pages->npages * sizeof(u64) ||
		    ((req->flags & XPMEM_RFAULT_HUGE) ? pages->npages > 1 :
							 pages->npages != req->npages))
			return VM_FAULT_SIGBUS;
		return 0;
	}
}

/*
 * Map the 2 MiB around the fault with one entry if the exporter has it in one
 * huge page and the window reaches it contiguously. VM_FAULT_FALLBACK: map
 * 4 KiB pages instead.
 */
static vm_fault_t xpmem_remote_fault_huge(struct vm_fault *vmf,
					  struct xpmem_rmsg_pages *pages)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	struct xpmem_segment *seg = att->seg;
	struct xpmem_remote *r = seg->remote;
	unsigned long haddr = vmf->address & PMD_MASK;
	struct xpmem_rmsg_fault req = {
		.rapid = r->rapid,
		.addr = (vma->vm_pgoff << PAGE_SHIFT) + (haddr - vma->vm_start),
		.npages = PTRS_PER_PMD,
		.target = (vmf->address - haddr) >> PAGE_SHIFT,
		.write = !!(vmf->flags & FAULT_FLAG_WRITE),
		.flags = XPMEM_RFAULT_HUGE,
	};
	unsigned long seq, pfn, last;
	bool writable;
	vm_fault_t ret;
	u64 e, phys;

	for (;;) {
		/*
		 * Whatever went wrong, the 4 KiB path asks again and reports it
		 * (an exporter of an older version refuses huge requests).
		 */
		if (xpmem_remote_ask(seg, &req, pages, &seq))
			return VM_FAULT_FALLBACK;
		e = pages->npages ? pages->entries[0] : 0;
		phys = e & PAGE_MASK;
		if (!(e & XPMEM_RPAGE_VALID) || !(e & XPMEM_RPAGE_HUGE) ||
		    xpmem_fabric_window_pfn(r->node, r->epoch, phys, &pfn) ||
		    xpmem_fabric_window_pfn(r->node, r->epoch,
					    phys + PMD_SIZE - PAGE_SIZE, &last) ||
		    last != pfn + PTRS_PER_PMD - 1 || !IS_ALIGNED(pfn, PTRS_PER_PMD))
			return VM_FAULT_FALLBACK;
		writable = req.write && (e & XPMEM_RPAGE_WRITE);

		mutex_lock(&att->table_lock);
		mutex_lock(&seg->lock);
		if (seg->removed) {
			ret = VM_FAULT_SIGBUS;
		} else if (r->seq != seq) {
			ret = 0; /* a recall crossed the answer */
		} else if (!pmd_none(READ_ONCE(*vmf->pmd))) {
			ret = pmd_trans_huge(READ_ONCE(*vmf->pmd)) ?
				      VM_FAULT_NOPAGE : VM_FAULT_FALLBACK;
		} else {
			ret = vmf_insert_pfn_pmd(vmf, pfn_to_pfn_t(pfn), writable);
			if (ret == VM_FAULT_NOPAGE) {
				xpmem_stat_inc(huge_faults);
				atomic64_inc(&att->huge_faults);
				atomic64_inc(&seg->huge_faults);
			}
		}
		mutex_unlock(&seg->lock);
		mutex_unlock(&att->table_lock);
		if (ret)
			return ret;
		xpmem_stat_inc(fault_retries);
	}
}

/* Fault on a stand-in: ask the exporter for a run of pages, map them through the window. */
vm_fault_t xpmem_remote_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	struct xpmem_segment *seg = att->seg;
	struct xpmem_remote *r = seg->remote;
	pgprot_t ro = vma->vm_page_prot, rw = vm_get_page_prot(vma->vm_flags);
	unsigned long start, end, target = vmf->address & PAGE_MASK;
	unsigned int around = clamp_val(READ_ONCE(remote_fault_around), 1,
					XPMEM_REMOTE_BATCH);
	struct xpmem_rmsg_fault req = { .rapid = r->rapid };
	struct xpmem_rmsg_pages *pages;
	vm_fault_t ret, one;
	unsigned long seq, pfn;
	u32 i;

	pages = kmalloc(sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return VM_FAULT_OOM;
	if (xpmem_huge_candidate(vmf, around) &&
	    xpmem_fabric_window_huge(r->node, r->epoch)) {
		ret = xpmem_remote_fault_huge(vmf, pages);
		if (ret != VM_FAULT_FALLBACK) {
			kfree(pages);
			return ret;
		}
	}
	req.npages = xpmem_remote_window(vmf, &start, &end);
	req.addr = (vma->vm_pgoff << PAGE_SHIFT) + (start - vma->vm_start);
	req.target = (target - start) >> PAGE_SHIFT;
	req.write = !!(vmf->flags & FAULT_FLAG_WRITE);
	ret = xpmem_prealloc_ptes(att, vma->vm_mm, start, end);
	if (ret) {
		kfree(pages);
		return ret;
	}

	for (;;) {
		ret = xpmem_remote_ask(seg, &req, pages, &seq);
		if (ret)
			break;

		mutex_lock(&seg->lock);
		if (seg->removed) {
			mutex_unlock(&seg->lock);
			ret = VM_FAULT_SIGBUS;
			break;
		}
		if (r->seq != seq) {
			/* A recall crossed the answer: those pages may be gone already. */
			mutex_unlock(&seg->lock);
			xpmem_stat_inc(fault_retries);
			continue;
		}
		ret = VM_FAULT_SIGBUS;
		for (i = 0; i < req.npages; i++) {
			u64 e = pages->entries[i];
			bool writable = req.write && (e & XPMEM_RPAGE_WRITE);

			if (!(e & XPMEM_RPAGE_VALID) ||
			    xpmem_fabric_window_pfn(r->node, r->epoch,
						    e & PAGE_MASK, &pfn))
				continue;
			one = vmf_insert_pfn_prot(vma, start + i * PAGE_SIZE,
						  pfn, writable ? rw : ro);
			if (i == req.target)
				ret = one;
		}
		mutex_unlock(&seg->lock);
		break;
	}
	kfree(pages);
	return ret;
}

/*
 * Unmaps [start, end) of every stand-in for node's segid (all of them if gone).
 * -ENOMEM if it could not: the exporter must then keep the pages pinned.
 */
static int xpmem_remote_unmap(u32 node, s64 segid, unsigned long start,
			      unsigned long end, bool gone)
{
	struct xpmem_segment **segs = NULL;
	struct xpmem_remote *r;
	unsigned int n = 0, i;

	mutex_lock(&xpmem_shadows_lock);
	list_for_each_entry(r, &xpmem_shadows, list)
		if (r->node == node && r->segid == segid)
			n++;
	if (n) {
		segs = kmalloc_array(n, sizeof(*segs), GFP_KERNEL);
		if (!segs) {
			mutex_unlock(&xpmem_shadows_lock);
			return -ENOMEM;
		}
	}
	n = 0;
	list_for_each_entry(r, &xpmem_shadows, list) {
		/* One whose last reference is gone is past mapping anything. */
		if (r->node != node || r->segid != segid ||
		    !refcount_inc_not_zero(&r->seg->refs))
			continue;
		segs[n++] = r->seg;
	}
	mutex_unlock(&xpmem_shadows_lock);

	for (i = 0; i < n; i++) {
		struct xpmem_segment *seg = segs[i];

		mutex_lock(&seg->lock);
		seg->remote->seq++;
		if (gone)
			seg->removed = true;
		mutex_unlock(&seg->lock);
		xpmem_unmap_attachers(seg, max(start, seg->start),
				      min(end, seg->end));
		xpmem_segment_put(seg);
	}
	kfree(segs);
	return 0;
}

/*
 * Every stand-in of node (0: of every node) with an exporter epoch before
 * before_epoch: removed and unmapped (later accesses get SIGBUS).
 */
static void xpmem_remote_drop_shadows(u32 node, u64 before_epoch)
{
	struct xpmem_remote *r;
	bool again;

	do {
		struct xpmem_segment *seg = NULL;

		again = false;
		mutex_lock(&xpmem_shadows_lock);
		list_for_each_entry(r, &xpmem_shadows, list) {
			if ((node && r->node != node) || r->epoch >= before_epoch ||
			    READ_ONCE(r->seg->removed) ||
			    !refcount_inc_not_zero(&r->seg->refs))
				continue;
			seg = r->seg;
			break;
		}
		mutex_unlock(&xpmem_shadows_lock);
		if (seg) {
			mutex_lock(&seg->lock);
			seg->remote->seq++;
			seg->removed = true;
			mutex_unlock(&seg->lock);
			xpmem_unmap_attachers(seg, seg->start, seg->end);
			xpmem_segment_put(seg);
			again = true;
		}
	} while (again);
}

void xpmem_remote_disconnected(void)
{
	xpmem_remote_drop_shadows(0, U64_MAX);
}

/* ---- exporter: permits and pages held by other nodes ---- */

struct xpmem_rpermit {
	u32 id;
	u32 node;
	u64 epoch; /* the importer's */
	bool writable;
	struct xpmem_segment *seg; /* a reference */
	struct list_head orphans; /* grants a recall could not take back */
};

struct xpmem_grant {
	struct interval_tree_node range; /* exporter page numbers, inclusive */
	u32 rpermit;
	u32 node;
	struct list_head list; /* on a recall's list or in the permit's orphans */
	unsigned int npages;
	unsigned int pinned; /* of pages[], those not NULL */
	struct page *pages[]; /* NULL where nothing was handed out */
};

static DEFINE_XARRAY_ALLOC1(xpmem_rpermits);
static u32 xpmem_rpermit_next;
/*
 * The upper half of every permit id handed out by this load of the module:
 * the table restarts from 1 when the module is loaded again, and a RELEASE
 * retried across that must not end a new permit with the same index.
 */
static u32 xpmem_rpermit_cookie;
/* Orders permit lookups against their end; never held across a recall. */
static DEFINE_MUTEX(xpmem_rpermits_lock);

static void xpmem_grant_free(struct xpmem_grant *g)
{
	unsigned int i;

	for (i = 0; i < g->npages; i++) {
		if (!g->pages[i])
			continue;
		put_page(g->pages[i]);
		xpmem_stat_dec(pinned);
		xpmem_stat_inc(unpinned);
	}
	kfree(g);
}

/*
 * A recall was not acknowledged: the pages stay pinned with their permit until
 * its node is gone (or releases it); freed now if that already happened.
 */
static void xpmem_grant_orphan(struct xpmem_grant *g)
{
	struct xpmem_rpermit *rp;

	mutex_lock(&xpmem_rpermits_lock);
	rp = xa_load(&xpmem_rpermits, g->rpermit);
	if (rp && rp->node == g->node)
		list_add_tail(&g->list, &rp->orphans);
	mutex_unlock(&xpmem_rpermits_lock);
	if (!rp || rp->node != g->node)
		xpmem_grant_free(g);
}

/*
 * Remote credentials, translated by the node's id map, against the segment's
 * mode bits; remote root gets no override.
 */
static int xpmem_remote_permission(struct xpmem_segment *seg, u32 node,
				   const struct xpmem_rmsg_get *req)
{
	int need = req->flags == XPMEM_IOCTL_RDWR ? 06 : 04, granted;
	kuid_t uid = make_kuid(&init_user_ns,
			       xpmem_fabric_map_id(node, XPMEM_IDMAP_UID, req->uid));
	kgid_t gid = make_kgid(&init_user_ns,
			       xpmem_fabric_map_id(node, XPMEM_IDMAP_GID, req->gid));

	if (uid_valid(uid) && uid_eq(uid, seg->uid))
		granted = seg->mode >> 6;
	else if (gid_valid(gid) && gid_eq(gid, seg->gid))
		granted = seg->mode >> 3;
	else
		granted = seg->mode;
	return (granted & need) == need ? 0 : -EACCES;
}

static int xpmem_serve_get(struct xpmem_fabric_msg *msg)
{
	struct xpmem_rmsg_get req;
	struct xpmem_rmsg_got got;
	struct xpmem_rpermit *rp;
	struct xpmem_segment *seg;
	int ret;

	if (msg->len != sizeof(req))
		return -EINVAL;
	memcpy(&req, msg->payload, sizeof(req));
	if (req.flags != XPMEM_IOCTL_RDONLY && req.flags != XPMEM_IOCTL_RDWR)
		return -EINVAL;
	if (XPMEM_SEGID_NODE(req.segid) != xpmem_fabric_self())
		return -ENOENT;
	/*
	 * Fabric workers are kernel threads, in the initial IPC namespace: only
	 * segments made there are seen from other nodes.
	 */
	seg = xpmem_segment_lookup(req.segid);
	if (!seg)
		return -ENOENT;
	ret = READ_ONCE(seg->removed) ? -ENOENT : xpmem_remote_permission(seg, msg->node, &req);
	if (ret)
		goto err_seg;
	rp = kzalloc(sizeof(*rp), GFP_KERNEL);
	ret = -ENOMEM;
	if (!rp)
		goto err_seg;
	rp->node = msg->node;
	rp->epoch = msg->epoch;
	rp->writable = req.flags == XPMEM_IOCTL_RDWR;
	rp->seg = seg;
	INIT_LIST_HEAD(&rp->orphans);
	/* Ids are not reused soon: a late RELEASE must not end a newer permit. */
	mutex_lock(&xpmem_rpermits_lock);
	if (!xpmem_rpermit_cookie)
		xpmem_rpermit_cookie = get_random_u32() | 1;
	ret = xa_alloc_cyclic(&xpmem_rpermits, &rp->id, rp, xa_limit_32b,
			      &xpmem_rpermit_next, GFP_NOWAIT | __GFP_NOWARN);
	mutex_unlock(&xpmem_rpermits_lock);
	if (ret < 0) {
		kfree(rp);
		goto err_seg;
	}
	/* Unloading would leave another node mapping pages nobody tracks. */
	__module_get(THIS_MODULE);
	got.rapid = (u64)xpmem_rpermit_cookie << 32 | rp->id;
	got.start = seg->start;
	got.size = seg->end - seg->start;
	memcpy(msg->payload, &got, sizeof(got));
	msg->len = sizeof(got);
	return 0;
err_seg:
	xpmem_segment_put(seg);
	return ret;
}

/* The permit rapid names, if it is msg's sender's. Under xpmem_rpermits_lock. */
static struct xpmem_rpermit *xpmem_rpermit_find(struct xpmem_fabric_msg *msg,
						u64 rapid)
{
	struct xpmem_rpermit *rp;

	/* Named by an earlier load of this module: a table index may be reused. */
	if (rapid >> 32 != xpmem_rpermit_cookie)
		return NULL;
	rp = xa_load(&xpmem_rpermits, (u32)rapid);
	return rp && rp->node == msg->node && rp->epoch == msg->epoch ? rp : NULL;
}

/* The permit rapid of msg's sender (with a segment reference), or NULL. */
static struct xpmem_segment *xpmem_rpermit_seg(struct xpmem_fabric_msg *msg,
					       u64 rapid, bool *writable)
{
	struct xpmem_segment *seg = NULL;
	struct xpmem_rpermit *rp;

	mutex_lock(&xpmem_rpermits_lock);
	rp = xpmem_rpermit_find(msg, rapid);
	if (rp) {
		seg = rp->seg;
		xpmem_segment_get(seg);
		*writable = rp->writable;
	}
	mutex_unlock(&xpmem_rpermits_lock);
	return seg;
}

/* Whether permit rapid of msg's sender still exists. Under seg->lock. */
static bool xpmem_rpermit_live(struct xpmem_fabric_msg *msg, u64 rapid)
{
	bool live;

	mutex_lock(&xpmem_rpermits_lock);
	live = xpmem_rpermit_find(msg, rapid);
	mutex_unlock(&xpmem_rpermits_lock);
	return live;
}

/* Whether page (exporter page number pgidx) is pinned for permit id already. Under seg->lock. */
static bool xpmem_granted(struct xpmem_segment *seg, u32 id,
			  unsigned long pgidx, struct page *page)
{
	struct interval_tree_node *it;

	for (it = interval_tree_iter_first(&seg->grants, pgidx, pgidx); it;
	     it = interval_tree_iter_next(it, pgidx, pgidx)) {
		struct xpmem_grant *g = container_of(it, struct xpmem_grant, range);

		if (g->rpermit == id && g->pages[pgidx - it->start] == page)
			return true;
	}
	return false;
}

/* For queries: permits other nodes hold on seg, on how many nodes, pages pinned for them. */
void xpmem_remote_export_counts(struct xpmem_segment *seg, u32 *permits,
				u32 *nodes, u64 *pages)
{
	struct interval_tree_node *it;
	struct xpmem_rpermit *rp;
	struct xpmem_grant *g;
	DECLARE_BITMAP(seen, XPMEM_FABRIC_MAX_NODE + 1);
	unsigned long id;
	u64 pinned = 0;
	u32 held = 0;

	bitmap_zero(seen, XPMEM_FABRIC_MAX_NODE + 1);
	mutex_lock(&seg->lock);
	for (it = interval_tree_iter_first(&seg->grants, 0, ULONG_MAX); it;
	     it = interval_tree_iter_next(it, 0, ULONG_MAX))
		pinned += container_of(it, struct xpmem_grant, range)->pinned;
	mutex_lock(&xpmem_rpermits_lock);
	xa_for_each(&xpmem_rpermits, id, rp) {
		if (rp->seg != seg)
			continue;
		held++;
		__set_bit(rp->node, seen);
		list_for_each_entry(g, &rp->orphans, list)
			pinned += g->pinned;
	}
	mutex_unlock(&xpmem_rpermits_lock);
	mutex_unlock(&seg->lock);
	*permits = held;
	*pages = pinned;
	*nodes = bitmap_weight(seen, XPMEM_FABRIC_MAX_NODE + 1);
}

/* Ends a permit: its pages are no longer mapped by its holder (or it is fenced). */
static void xpmem_rpermit_end(struct xpmem_rpermit *rp)
{
	struct xpmem_segment *seg = rp->seg;
	struct interval_tree_node *it, *next;
	struct xpmem_grant *g, *tmp;
	LIST_HEAD(drop);

	mutex_lock(&seg->lock);
	for (it = interval_tree_iter_first(&seg->grants, 0, ULONG_MAX); it;
	     it = next) {
		next = interval_tree_iter_next(it, 0, ULONG_MAX);
		g = container_of(it, struct xpmem_grant, range);
		if (g->rpermit != rp->id)
			continue;
		interval_tree_remove(it, &seg->grants);
		list_add(&g->list, &drop);
	}
	mutex_unlock(&seg->lock);
	/* Erased from the table already: no recall can add an orphan after this. */
	mutex_lock(&xpmem_rpermits_lock);
	list_splice_init(&rp->orphans, &drop);
	mutex_unlock(&xpmem_rpermits_lock);
	list_for_each_entry_safe(g, tmp, &drop, list)
		xpmem_grant_free(g);
	xpmem_segment_put(seg);
	kfree(rp);
	module_put(THIS_MODULE);
}

static int xpmem_serve_release(struct xpmem_fabric_msg *msg)
{
	struct xpmem_rmsg_release req;
	struct xpmem_rpermit *rp;

	if (msg->len != sizeof(req))
		return -EINVAL;
	memcpy(&req, msg->payload, sizeof(req));
	mutex_lock(&xpmem_rpermits_lock);
	rp = xpmem_rpermit_find(msg, req.rapid);
	if (rp)
		xa_erase(&xpmem_rpermits, rp->id);
	mutex_unlock(&xpmem_rpermits_lock);
	if (!rp)
		return -ENOENT;
	xpmem_rpermit_end(rp);
	msg->len = 0;
	return 0;
}

/*
 * Pins page (page i of grant g) for g's permit unless that permit has it pinned
 * already: refaults must not pile up references. Under seg->lock.
 */
static void xpmem_grant_page(struct xpmem_segment *seg, struct xpmem_grant *g,
			     unsigned int i, struct page *page)
{
	if (xpmem_granted(seg, g->rpermit, g->range.start + i, page))
		return;
	g->pages[i] = page;
	get_page(page);
	g->pinned++;
	xpmem_stat_inc(pinned);
	xpmem_stat_inc(pinned_total);
}

/*
 * A huge fault's answer: the exporter's 2 MiB page at [req.addr, +2 MiB), all
 * of it pinned, or no pages when it is not mapped with one. Under seg->lock.
 */
static void xpmem_serve_huge(struct xpmem_segment *seg, struct xpmem_grant *g,
			     const struct xpmem_rmsg_fault *req,
			     unsigned long hmm_pfn, struct xpmem_rmsg_pages *out)
{
	unsigned long head = (hmm_pfn & ~HMM_PFN_FLAGS) - req->target;
	unsigned int i;

	out->npages = 0;
	if (!(hmm_pfn & HMM_PFN_VALID) ||
	    hmm_pfn_to_map_order(hmm_pfn) != PMD_SHIFT - PAGE_SHIFT ||
	    !IS_ALIGNED(head, PTRS_PER_PMD) || !pfn_valid(head))
		return;
	for (i = 0; i < PTRS_PER_PMD; i++)
		xpmem_grant_page(seg, g, i, pfn_to_page(head + i));
	out->entries[0] = PFN_PHYS(head) | XPMEM_RPAGE_VALID | XPMEM_RPAGE_HUGE;
	if (hmm_pfn & HMM_PFN_WRITE) {
		out->entries[0] |= XPMEM_RPAGE_WRITE;
		if (req->write)
			folio_mark_dirty(page_folio(pfn_to_page(head)));
	}
	out->npages = 1;
}

static int xpmem_serve_fault(struct xpmem_fabric_msg *msg)
{
	struct xpmem_rmsg_pages *out = (struct xpmem_rmsg_pages *)msg->payload;
	struct hmm_range range = {};
	struct xpmem_batch b = {};
	unsigned long *pfns;
	struct xpmem_rmsg_fault req;
	struct xpmem_segment *seg;
	struct xpmem_grant *g;
	bool writable = false, huge;
	unsigned int i;
	int err;

	BUILD_BUG_ON(sizeof(*out) > XPMEM_FABRIC_PAYLOAD_MAX);
	if (msg->len != sizeof(req))
		return -EINVAL;
	memcpy(&req, msg->payload, sizeof(req));
	huge = req.flags & XPMEM_RFAULT_HUGE;
	if ((req.flags & ~XPMEM_RFAULT_HUGE) || !req.npages ||
	    req.npages > (huge ? PTRS_PER_PMD : XPMEM_REMOTE_BATCH) ||
	    req.target >= req.npages || !PAGE_ALIGNED(req.addr) ||
	    (huge && (req.npages != PTRS_PER_PMD ||
		      !IS_ALIGNED(req.addr, PMD_SIZE))))
		return -EINVAL;
	seg = xpmem_rpermit_seg(msg, req.rapid, &writable);
	if (!seg)
		return -ENOENT;
	err = -EPERM;
	if (req.write && !writable)
		goto out_seg;
	err = -EINVAL;
	if (req.addr < seg->start || req.addr >= seg->end ||
	    req.npages > (seg->end - req.addr) >> PAGE_SHIFT)
		goto out_seg;
	err = -ENOENT;
	if (READ_ONCE(seg->removed) || !mmget_not_zero(seg->mm))
		goto out_seg;
	g = kzalloc(struct_size(g, pages, req.npages), GFP_KERNEL);
	/* A huge fetch only looks at the target (xpmem_fetch). */
	pfns = kmalloc_array(huge ? 1 : req.npages, sizeof(*pfns), GFP_KERNEL);
	err = -ENOMEM;
	if (!g || !pfns)
		goto out_mm;
	b.pfns = pfns;
	g->npages = req.npages;
	g->node = msg->node;
	g->rpermit = (u32)req.rapid; /* the table index, xpmem_rpermit_seg checked the rest */
	g->range.start = req.addr >> PAGE_SHIFT;
	g->range.last = g->range.start + req.npages - 1;
	b.start = req.addr;
	b.end = req.addr + ((unsigned long)req.npages << PAGE_SHIFT);
	b.target = req.addr + ((unsigned long)req.target << PAGE_SHIFT);
	b.write = req.write;
	b.huge = huge;

	for (;;) {
		range.notifier_seq = mmu_interval_read_begin(&seg->notifier);
		/* Never wait for the exporter's writer here: it may be waiting for us. */
		if (!mmap_read_trylock(seg->mm)) {
			err = -EAGAIN;
			break;
		}
		err = xpmem_fetch(seg, req.addr, &b, &range);
		mmap_read_unlock(seg->mm);
		if (err == -EBUSY)
			continue;
		if (err)
			break;

		mutex_lock(&seg->lock);
		if (seg->removed) {
			mutex_unlock(&seg->lock);
			err = -ENOENT;
			break;
		}
		if (mmu_interval_read_retry(&seg->notifier, range.notifier_seq)) {
			mutex_unlock(&seg->lock);
			continue;
		}
		/* A permit released meanwhile gets no more pages. */
		if (!xpmem_rpermit_live(msg, req.rapid)) {
			mutex_unlock(&seg->lock);
			err = -ENOENT;
			break;
		}
		/* Under seg->lock with the sequence unchanged, no page can be freed yet. */
		if (huge) {
			xpmem_serve_huge(seg, g, &req, pfns[0], out);
			if (g->pinned) {
				interval_tree_insert(&g->range, &seg->grants);
				g = NULL;
			}
			mutex_unlock(&seg->lock);
			msg->len = offsetof(struct xpmem_rmsg_pages, entries) +
				   out->npages * sizeof(u64);
			out->pad = 0;
			err = 0;
			break;
		}
		for (i = 0; i < req.npages; i++) {
			unsigned long pfn = pfns[i] & ~HMM_PFN_FLAGS;
			struct page *page;

			out->entries[i] = 0;
			if (!(pfns[i] & HMM_PFN_VALID) || !pfn_valid(pfn))
				continue;
			page = pfn_to_page(pfn);
			out->entries[i] = PFN_PHYS(pfn) | XPMEM_RPAGE_VALID;
			if (pfns[i] & HMM_PFN_WRITE) {
				out->entries[i] |= XPMEM_RPAGE_WRITE;
				/* Stored into behind the core mm's back. */
				if (req.write)
					folio_mark_dirty(page_folio(page));
			}
			xpmem_grant_page(seg, g, i, page);
		}
		if (g->pinned) {
			interval_tree_insert(&g->range, &seg->grants);
			g = NULL;
		}
		mutex_unlock(&seg->lock);
		out->npages = req.npages;
		out->pad = 0;
		msg->len = offsetof(struct xpmem_rmsg_pages, entries) +
			   req.npages * sizeof(u64);
		err = out->entries[req.target] ? 0 : -EFAULT;
		break;
	}
out_mm:
	kfree(g);
	kfree(pfns);
	mmput_async(seg->mm);
out_seg:
	xpmem_segment_put(seg);
	return err;
}

/* Importer side of a recall or of a segment's end. */
static int xpmem_serve_unmap(struct xpmem_fabric_msg *msg, bool gone)
{
	struct xpmem_rmsg_range req;

	if (msg->len != sizeof(req))
		return -EINVAL;
	memcpy(&req, msg->payload, sizeof(req));
	if (XPMEM_SEGID_NODE(req.segid) != msg->node)
		return -EINVAL;
	if (gone) {
		req.start = 0;
		req.end = ULONG_MAX;
	} else if (req.start >= req.end) {
		return -EINVAL;
	}
	msg->len = 0;
	return xpmem_remote_unmap(msg->node, req.segid, req.start, req.end, gone);
}

/* A request from another node's kernel (in a fabric worker). */
int xpmem_remote_serve(struct xpmem_fabric_msg *msg)
{
	switch (msg->type) {
	case XPMEM_FMSG_GET:
		return xpmem_serve_get(msg);
	case XPMEM_FMSG_RELEASE:
		return xpmem_serve_release(msg);
	case XPMEM_FMSG_FAULT:
		return xpmem_serve_fault(msg);
	case XPMEM_FMSG_RECALL:
		return xpmem_serve_unmap(msg, false);
	case XPMEM_FMSG_GONE:
		return xpmem_serve_unmap(msg, true);
	}
	return -EOPNOTSUPP;
}

/*
 * Exporter side of a recall of [start, end): take back every grant there from
 * the nodes holding them, one RECALL per node, all in flight at once. Called
 * after the segment's sequence moved (no new grant can start in the range).
 */
void xpmem_remote_recall(struct xpmem_segment *seg, unsigned long start,
			 unsigned long end)
{
	unsigned long first = start >> PAGE_SHIFT, last = (end - 1) >> PAGE_SHIFT;
	struct xpmem_fabric_req *sent[8];
	struct xpmem_rmsg_range reqs[ARRAY_SIZE(sent)];
	u32 nodes[ARRAY_SIZE(sent)];
	struct interval_tree_node *it, *next;
	struct xpmem_grant *g, *tmp;
	unsigned int n = 0, i;
	unsigned long deadline;
	LIST_HEAD(taken);
	LIST_HEAD(done);
	int ret;

	if (RB_EMPTY_ROOT(&seg->grants.rb_root))
		return;
	mutex_lock(&seg->lock);
	for (it = interval_tree_iter_first(&seg->grants, first, last); it;
	     it = next) {
		next = interval_tree_iter_next(it, first, last);
		interval_tree_remove(it, &seg->grants);
		list_add_tail(&container_of(it, struct xpmem_grant, range)->list,
			      &taken);
	}
	mutex_unlock(&seg->lock);
	if (list_empty(&taken))
		return;

	/* The distinct nodes, a batch of them at a time. */
	while (!list_empty(&taken)) {
		/*
		 * Each node gives back whole grants, so it must unmap every page
		 * of them, not only the range that changed: what stays mapped
		 * there must stay pinned here.
		 */
		n = 0;
		list_for_each_entry(g, &taken, list) {
			unsigned long lo = g->range.start << PAGE_SHIFT;
			unsigned long hi = (g->range.last + 1) << PAGE_SHIFT;

			for (i = 0; i < n && nodes[i] != g->node; i++)
				;
			if (i == n && n < ARRAY_SIZE(nodes)) {
				nodes[n++] = g->node;
				reqs[i] = (struct xpmem_rmsg_range){
					.segid = seg->segid, .start = lo, .end = hi
				};
			} else if (i < n) {
				reqs[i].start = min_t(u64, reqs[i].start, lo);
				reqs[i].end = max_t(u64, reqs[i].end, hi);
			}
		}
		/*
		 * This may run in reclaim: no allocation that waits for it (a failed
		 * one only leaves the pages pinned), and no wait a signal cuts short.
		 */
		for (i = 0; i < n; i++)
			sent[i] = xpmem_fabric_submit(nodes[i], XPMEM_FMSG_RECALL,
						      &reqs[i], sizeof(reqs[i]),
						      GFP_NOWAIT | __GFP_NOWARN);
		deadline = jiffies + msecs_to_jiffies(remote_recall_timeout_ms);
		for (i = 0; i < n; i++) {
			ret = IS_ERR(sent[i]) ? PTR_ERR(sent[i]) :
				xpmem_fabric_wait(sent[i], NULL, NULL,
						  max_t(long, deadline - jiffies, 1),
						  false);
			/*
			 * Acknowledged, or the node is dead and fenced, or it has
			 * forgotten the segment: its pages may go. Else they stay
			 * pinned with the permit until the node is gone.
			 */
			list_for_each_entry_safe(g, tmp, &taken, list) {
				if (g->node != nodes[i])
					continue;
				if (!ret || ret == -EHOSTDOWN || ret == -ENOENT) {
					list_move(&g->list, &done);
				} else {
					list_del(&g->list);
					xpmem_grant_orphan(g);
				}
			}
		}
	}
	list_for_each_entry_safe(g, tmp, &done, list)
		xpmem_grant_free(g);
	atomic64_inc(&seg->recalls);
	xpmem_stat_inc(recalls);
}

/* The segment was removed: tell every node holding a permit for it. */
void xpmem_remote_segment_gone(struct xpmem_segment *seg)
{
	struct xpmem_rmsg_range req = { .segid = seg->segid };
	struct xpmem_rpermit *rp;
	unsigned long id;
	u32 told[8];
	unsigned int n = 0, i;

	/* Nodes collected under the lock, told after it: posting allocates. */
	mutex_lock(&xpmem_rpermits_lock);
	xa_for_each(&xpmem_rpermits, id, rp) {
		if (rp->seg != seg)
			continue;
		for (i = 0; i < n && told[i] != rp->node; i++)
			;
		if (i == n && n < ARRAY_SIZE(told))
			told[n++] = rp->node;
	}
	mutex_unlock(&xpmem_rpermits_lock);
	for (i = 0; i < n; i++)
		xpmem_fabric_post(told[i], XPMEM_FMSG_GONE, &req, sizeof(req));
}

/* Ends every permit of node given before before_epoch (0: of every node). */
static void xpmem_rpermits_end_node(u32 node, u64 before_epoch)
{
	struct xpmem_rpermit *rp;
	unsigned long id;
	LIST_HEAD(ended);

	for (;;) {
		mutex_lock(&xpmem_rpermits_lock);
		xa_for_each(&xpmem_rpermits, id, rp)
			if ((!node || rp->node == node) && rp->epoch < before_epoch)
				break;
		if (rp)
			xa_erase(&xpmem_rpermits, rp->id);
		mutex_unlock(&xpmem_rpermits_lock);
		if (!rp)
			break;
		xpmem_rpermit_end(rp);
	}
}

/*
 * Node restarted (before_epoch: its new epoch) or is dead (U64_MAX). What we
 * map of it goes; what it was given is freed only if it can no longer reach it:
 * restarted (its kernel dropped its mappings with its daemon) or fenced.
 */
void xpmem_remote_peer_gone(u32 node, u64 before_epoch, bool fenced)
{
	xpmem_remote_drop_shadows(node, before_epoch);
	if (fenced)
		xpmem_rpermits_end_node(node, before_epoch);
}

/* Module unload: no daemon is left to tell anyone; nothing may stay pinned. */
void xpmem_remote_exit(void)
{
	struct xpmem_unreleased *u, *tmp;

	cancel_work_sync(&xpmem_release_work);
	list_for_each_entry_safe(u, tmp, &xpmem_unreleased, list)
		kfree(u);
	xpmem_rpermits_end_node(0, U64_MAX);
}
