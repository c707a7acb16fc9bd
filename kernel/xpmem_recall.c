// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: the recall path and the fault path that it keeps in sync.
 *
 * Recall (lock): every change to the exporter's page tables inside a segment,
 * whoever causes it, reaches xpmem_invalidate() through the segment's
 * mmu_interval_notifier before the change completes. It bumps the notifier
 * sequence under seg->lock and then revokes the attacher PTEs of the range with
 * unmap_mapping_range() (TLB flushed) before returning, so the exporter's change
 * proceeds only once no attacher can reach the old pages.
 *
 * Fault (unlock side): read_begin, fault the source page with hmm_range_fault()
 * (no pin), take seg->lock, read_retry; install the PTE only if no recall ran in
 * between, otherwise start over. Faults of different pages run in parallel; only
 * the few instructions of the install are serialised.
 */
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>

#include "xpmem_private.h"

/* Revoke attacher PTEs for exporter addresses [start, end) of the segment. */
static void xpmem_unmap_attachers(struct xpmem_segment *seg,
				  unsigned long start, unsigned long end)
{
	unmap_mapping_range(seg->inode->i_mapping, start, end - start, 0);
}

static bool xpmem_invalidate(struct mmu_interval_notifier *mni,
			     const struct mmu_notifier_range *range,
			     unsigned long cur_seq)
{
	struct xpmem_segment *seg =
		container_of(mni, struct xpmem_segment, notifier);
	unsigned long start = max(range->start, seg->start);
	unsigned long end = min(range->end, seg->end);
	bool attached;

	/* The OOM reaper cannot wait for us: let it skip this mm. */
	if (!mmu_notifier_range_blockable(range))
		return false;

	mutex_lock(&seg->lock);
	mmu_interval_set_seq(mni, cur_seq);
	attached = interval_tree_iter_first(&seg->attachments,
					    start >> PAGE_SHIFT,
					    (end - 1) >> PAGE_SHIFT);
	mutex_unlock(&seg->lock);

	/*
	 * A fault that passed read_retry before set_seq installed its PTE before we
	 * took the lock, so the unmap below removes it; later ones retry. Ranges no
	 * attachment covers need no unmap (attachments are published before they
	 * can fault).
	 */
	if (attached) {
		xpmem_unmap_attachers(seg, start, end);
		xpmem_stat_inc(recalls);
	}
	return true;
}

const struct mmu_interval_notifier_ops xpmem_segment_notifier_ops = {
	.invalidate = xpmem_invalidate,
};

/* Segment removed or its exporter gone: no attacher may keep a PTE. */
void xpmem_recall_segment(struct xpmem_segment *seg)
{
	xpmem_unmap_attachers(seg, seg->start, seg->end);
	xpmem_stat_inc(recalls);
}

static int xpmem_pte_noop(pte_t *pte, unsigned long addr, void *data)
{
	return 0;
}

/*
 * Read-lock the exporter's mm while the attacher's fault lock is held. Blocking
 * here could deadlock against a process attaching us at the same time with mmap
 * writers queued on both sides, so on contention drop our fault lock, wait for
 * the exporter's writer without holding anything, and let the fault be retried.
 * Returns 0 with the exporter's mm read-locked, or a fault code to return.
 */
static vm_fault_t xpmem_lock_source(struct vm_fault *vmf,
				    struct mm_struct *src_mm)
{
	if (mmap_read_trylock(src_mm))
		return 0;
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
		/* Callers that cannot retry (none reach a VM_PFNMAP fault today). */
		mmap_read_lock(src_mm);
		return 0;
	}
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;
	xpmem_release_fault_lock(vmf);
	if (!mmap_read_lock_killable(src_mm))
		mmap_read_unlock(src_mm);
	return VM_FAULT_RETRY;
}

static vm_fault_t xpmem_fault_page(struct vm_fault *vmf, bool write)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	struct xpmem_segment *seg = att->seg;
	struct mm_struct *src_mm = seg->mm;
	bool foreign = src_mm != vma->vm_mm;
	unsigned long src = vmf->pgoff << PAGE_SHIFT;
	unsigned long dst = vmf->address & PAGE_MASK;
	unsigned long hmm_pfn;
	struct hmm_range range = {
		.notifier = &seg->notifier,
		.start = src,
		.end = src + PAGE_SIZE,
		.hmm_pfns = &hmm_pfn,
		.default_flags = HMM_PFN_REQ_FAULT |
				 (write ? HMM_PFN_REQ_WRITE : 0),
	};
	unsigned long pfn;
	pgprot_t prot;
	vm_fault_t ret;
	int err;

	/* hmm_range_fault() may need our own mmap lock (self-attach): retry under it. */
	if (xpmem_fault_under_vma_lock(vmf)) {
		xpmem_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}
	xpmem_stat_inc(faults);
	if (write && !att->writable)
		return VM_FAULT_SIGSEGV;
	if (src < seg->start || src >= seg->end || READ_ONCE(seg->removed))
		return VM_FAULT_SIGBUS;
	if (!mmget_not_zero(src_mm))
		return VM_FAULT_SIGBUS;

	/* Allocate the page table now: nothing may allocate under seg->lock. */
	if (apply_to_page_range(vma->vm_mm, dst, PAGE_SIZE, xpmem_pte_noop,
				NULL)) {
		ret = VM_FAULT_OOM;
		goto out;
	}

again:
	range.notifier_seq = mmu_interval_read_begin(&seg->notifier);
	if (foreign) {
		ret = xpmem_lock_source(vmf, src_mm);
		if (ret)
			goto out; /* fault lock released: vma, att, seg are off limits */
	}
	err = hmm_range_fault(&range);
	if (foreign)
		mmap_read_unlock(src_mm);
	if (err == -EBUSY) {
		xpmem_stat_inc(fault_retries);
		goto again;
	}
	if (err) {
		/* Hole, PROT_NONE or I/O memory: SIGBUS; write to read-only source: SIGSEGV. */
		if (err == -ENOMEM)
			ret = VM_FAULT_OOM;
		else if (err == -EPERM)
			ret = VM_FAULT_SIGSEGV;
		else
			ret = VM_FAULT_SIGBUS;
		goto out;
	}

	mutex_lock(&seg->lock);
	if (seg->removed) {
		mutex_unlock(&seg->lock);
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	if (mmu_interval_read_retry(&seg->notifier, range.notifier_seq)) {
		mutex_unlock(&seg->lock);
		xpmem_stat_inc(fault_retries);
		goto again;
	}
	pfn = hmm_pfn & ~HMM_PFN_FLAGS;
	/*
	 * Read faults map read-only even when the source is writable, so a later
	 * write comes through pfn_mkwrite and faults the source for write (COW
	 * break, dirty tracking). vm_page_prot is write-protected for this reason.
	 */
	prot = write ? vm_get_page_prot(vma->vm_flags) : vma->vm_page_prot;
	ret = vmf_insert_pfn_prot(vma, dst, pfn, prot);
	/* Written through a PTE the core mm cannot see: the source page is dirty. */
	if (write && ret == VM_FAULT_NOPAGE && pfn_valid(pfn))
		folio_mark_dirty(page_folio(pfn_to_page(pfn)));
	mutex_unlock(&seg->lock);
out:
	mmput_async(src_mm);
	return ret;
}

vm_fault_t xpmem_fault(struct vm_fault *vmf)
{
	return xpmem_fault_page(vmf, vmf->flags & FAULT_FLAG_WRITE);
}

/*
 * Write to a page mapped read-only by an earlier read fault: drop the PTE and
 * let the access fault again as a write, which faults the source for write.
 */
vm_fault_t xpmem_pfn_mkwrite(struct vm_fault *vmf)
{
	struct xpmem_attachment *att = vmf->vma->vm_private_data;

	if (!att->writable)
		return VM_FAULT_SIGSEGV;
	zap_vma_ptes(vmf->vma, vmf->address & PAGE_MASK, PAGE_SIZE);
	return VM_FAULT_NOPAGE;
}
