// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: the recall path and the fault path that it keeps in sync.
 *
 * Recall (lock): every change to the exporter's page tables inside a segment,
 * whoever causes it, reaches xpmem_invalidate() through the segment's
 * mmu_interval_notifier before the change completes. It bumps the notifier
 * sequence under seg->lock and then clears the attacher PTEs of the range and
 * flushes the TLBs before returning, so the exporter's change
 * proceeds only once no attacher can reach the old pages.
 *
 * Fault (unlock side): read_begin, fault the source page with hmm_range_fault()
 * (no pin), take seg->lock, read_retry; install the PTE only if no recall ran in
 * between, otherwise start over. Faults of different pages run in parallel; only
 * the few instructions of the install are serialised.
 */
#include <linux/hmm.h>
#include <linux/interval_tree_generic.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/pfn_t.h>
#include <linux/delay.h>
#include <linux/sched/signal.h>
#include <linux/smp.h>
#include <asm/tlbflush.h>
#include <linux/sched/mm.h>

#include "xpmem_private.h"

static int xpmem_clear_pte(pte_t *pte, unsigned long addr, void *data)
{
	struct vm_area_struct *vma = data;

	ptep_get_and_clear(vma->vm_mm, addr, pte);
	return 0;
}

/*
 * The PMD entry of addr if the page tables down to it exist, else NULL. *next
 * is where the next lookup of a walk up to end goes: past the PMD, or past the
 * whole empty upper-level range (attachment windows can span terabytes).
 * *leaf is the PUD entry when that maps 1 GiB itself (then NULL is returned).
 */
static pmd_t *xpmem_find_pmd(struct mm_struct *mm, unsigned long addr,
			     unsigned long end, unsigned long *next,
			     pud_t **leaf)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;

	*leaf = NULL;
	*next = pgd_addr_end(addr, end);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	*next = p4d_addr_end(addr, end);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return NULL;
	pud = pud_offset(p4d, addr);
	*next = pud_addr_end(addr, end);
	if (pud_trans_huge(READ_ONCE(*pud)))
		*leaf = pud;
	if (pud_none(*pud) || pud_bad(*pud))
		return NULL;
	*next = pmd_addr_end(addr, end);
	return pmd_offset(pud, addr);
}

/*
 * Clear the attacher mappings of [from, to) in one VMA: 1 GiB and 2 MiB entries
 * whole (they lie inside the VMA; neighbours simply fault again), PTEs one by
 * one. apply_to_existing_page_range() must not meet a huge entry, so those are
 * taken first under their page table lock.
 */
static void xpmem_clear_range(struct vm_area_struct *vma, unsigned long from,
			      unsigned long to)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr, next;
	pud_t *leaf;

	for (addr = from; addr < to; addr = next) {
		pmd_t *pmd = xpmem_find_pmd(mm, addr, to, &next, &leaf);
		spinlock_t *ptl; /* of the PUD or PMD, for a huge entry */

		if (leaf) {
			ptl = pud_lock(mm, leaf);
			if (pud_trans_huge(*leaf))
				pudp_huge_get_and_clear(mm, addr & PUD_MASK, leaf);
			spin_unlock(ptl);
			continue;
		}
		if (!pmd || pmd_none(READ_ONCE(*pmd)))
			continue;
		if (pmd_trans_huge(READ_ONCE(*pmd))) {
			ptl = pmd_lock(mm, pmd);
			if (pmd_trans_huge(*pmd))
				pmdp_huge_get_and_clear(mm, addr & PMD_MASK, pmd);
			spin_unlock(ptl);
			continue;
		}
		apply_to_existing_page_range(mm, addr, next - addr,
					     xpmem_clear_pte, vma);
	}
}

static unsigned long xpmem_vma_first_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

static unsigned long xpmem_vma_last_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff + vma_pages(vma) - 1;
}

/*
 * Lookups in a mapping's i_mmap interval tree (the core mm's own iterators
 * over it are not exported); only the iterators are used, never an update.
 */
INTERVAL_TREE_DEFINE(struct vm_area_struct, shared.rb, unsigned long,
		     shared.rb_subtree_last, xpmem_vma_first_pgoff,
		     xpmem_vma_last_pgoff, static inline, xpmem_i_mmap)

static void xpmem_flush_tlb_cpu(void *unused)
{
	__flush_tlb_all();
}

/* Clear what vma maps of source pages [first, last] (page offsets). */
static void xpmem_clear_pgoffs(struct vm_area_struct *vma, unsigned long first,
			       unsigned long last)
{
	unsigned long vfirst = vma->vm_pgoff;

	xpmem_clear_range(vma,
			  vma->vm_start + ((max(first, vfirst) - vfirst) << PAGE_SHIFT),
			  vma->vm_start + ((min(last, xpmem_vma_last_pgoff(vma)) -
					    vfirst + 1) << PAGE_SHIFT));
}

#ifdef XPMEM_HUGE_PUD_PFNMAP
/*
 * new, a VMA of att not linked yet, is being split off another or copied from
 * one for mremap: clear what that other one maps of the same source pages.
 * mremap's page table walk takes a 1 GiB entry for a corrupt table ("bad
 * pud"), and a split may cut one; the pages simply fault again.
 */
void xpmem_att_vma_copied(struct xpmem_attachment *att,
			  struct vm_area_struct *new)
{
	struct address_space *mapping = att->seg->inode->i_mapping;
	unsigned long first = new->vm_pgoff, last = xpmem_vma_last_pgoff(new);
	struct vm_area_struct *vma;
	bool cleared = false;

	i_mmap_lock_read(mapping);
	for (vma = xpmem_i_mmap_iter_first(&mapping->i_mmap, first, last); vma;
	     vma = xpmem_i_mmap_iter_next(vma, first, last)) {
		if (vma->vm_mm != new->vm_mm || vma->vm_private_data != att)
			continue;
		xpmem_clear_pgoffs(vma, first, last);
		cleared = true;
	}
	i_mmap_unlock_read(mapping);
	if (cleared)
		on_each_cpu(xpmem_flush_tlb_cpu, NULL, 1);
}
#endif

/*
 * Revoke attacher PTEs for exporter addresses [start, end) of the segment.
 *
 * This runs inside mmu notifier callbacks, where zap_page_range() and
 * unmap_mapping_range() must not be used: they start a nested invalidation
 * on the attacher's mm. So the PTEs are cleared directly: the attachment VMAs
 * are found in the segment's i_mmap tree, whose lock also keeps their page
 * tables from being freed (munmap unlinks a VMA from it first), and every
 * CPU's TLB is flushed afterwards (no per-mm flush is exported to modules).
 * Attachment entries are special: they need no rmap or refcounts.
 */
void xpmem_unmap_attachers(struct xpmem_segment *seg, unsigned long start,
			   unsigned long end)
{
	struct address_space *mapping = seg->inode->i_mapping;
	unsigned long first = start >> PAGE_SHIFT, last = (end - 1) >> PAGE_SHIFT;
	struct vm_area_struct *vma;
	bool cleared = false;

	i_mmap_lock_read(mapping);
	for (vma = xpmem_i_mmap_iter_first(&mapping->i_mmap, first, last); vma;
	     vma = xpmem_i_mmap_iter_next(vma, first, last)) {
		xpmem_clear_pgoffs(vma, first, last);
		atomic64_inc(&((struct xpmem_attachment *)vma->vm_private_data)->recalls);
		cleared = true;
	}
	i_mmap_unlock_read(mapping);
	if (cleared) {
		on_each_cpu(xpmem_flush_tlb_cpu, NULL, 1);
		atomic64_inc(&seg->recalls);
		xpmem_stat_inc(recalls);
	}
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
	if (attached)
		xpmem_unmap_attachers(seg, start, end);
	/* Then other nodes: they hold the pages pinned until they acknowledge. */
	xpmem_remote_recall(seg, start, end);
	return true;
}

const struct mmu_interval_notifier_ops xpmem_segment_notifier_ops = {
	.invalidate = xpmem_invalidate,
};

static int xpmem_count_pte(pte_t *pte, unsigned long addr, void *data)
{
	u64 *n4k = data;

	if (pte_present(ptep_get(pte)))
		(*n4k)++;
	return 0;
}

/*
 * For queries: count the entries that attacher VMAs of the segment have now,
 * in total and into each attachment's query_4k/2m/1g. The i_mmap lock keeps
 * the page tables alive, as for a recall. Caller holds xpmem_all_lock.
 */
void xpmem_count_mapped(struct xpmem_segment *seg, u64 *n4k, u64 *n2m,
			u64 *n1g)
{
	struct address_space *mapping = seg->inode->i_mapping;
	struct rb_node *node;

	i_mmap_lock_read(mapping);
	for (node = rb_first_cached(&mapping->i_mmap); node; node = rb_next(node)) {
		struct vm_area_struct *vma =
			rb_entry(node, struct vm_area_struct, shared.rb);
		struct xpmem_attachment *att = vma->vm_private_data;
		unsigned long addr, next;
		u64 v4k = 0, v2m = 0, v1g = 0;
		pud_t *leaf;

		for (addr = vma->vm_start; addr < vma->vm_end; addr = next) {
			pmd_t *pmd = xpmem_find_pmd(vma->vm_mm, addr,
						    vma->vm_end, &next, &leaf);
			pmd_t val;

			if (leaf) {
				v1g++;
				continue;
			}
			val = pmd ? READ_ONCE(*pmd) : __pmd(0);
			if (pmd_none(val))
				continue;
			if (pmd_trans_huge(val))
				v2m++;
			else
				apply_to_existing_page_range(vma->vm_mm, addr,
							     next - addr,
							     xpmem_count_pte,
							     &v4k);
		}
		att->query_4k += v4k;
		att->query_2m += v2m;
		att->query_1g += v1g;
		*n4k += v4k;
		*n2m += v2m;
		*n1g += v1g;
	}
	i_mmap_unlock_read(mapping);
}

/* Segment removed or its exporter gone: no attacher may keep a PTE. */
void xpmem_recall_segment(struct xpmem_segment *seg)
{
	xpmem_unmap_attachers(seg, seg->start, seg->end);
	xpmem_remote_recall(seg, seg->start, seg->end);
}

static unsigned int fault_around = 16;
module_param(fault_around, uint, 0644);
MODULE_PARM_DESC(fault_around,
		 "Pages mapped by one fault around the faulting page, if present in the exporter (1..64, 1 = single-page faults)");

#define XPMEM_NORETRY_POLLS 100 /* about 0.1 s */

/* Exporter address behind an attacher address: the file offset is the exporter VA. */
static unsigned long xpmem_src_addr(struct vm_area_struct *vma,
				    unsigned long addr)
{
	return (vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);
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
	int tries;

	if (mmap_read_trylock(src_mm))
		return 0;
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
		/*
		 * fixup_user_fault() without "unlocked" (futex ops, robust lists)
		 * can neither drop our lock nor safely block under it: give the
		 * exporter's writer a moment, then fail the access (-EFAULT there).
		 */
		for (tries = 0; tries < XPMEM_NORETRY_POLLS; tries++) {
			if (fatal_signal_pending(current))
				break;
			usleep_range(500, 1000);
			if (mmap_read_trylock(src_mm))
				return 0;
		}
		return VM_FAULT_SIGBUS;
	}
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;
	xpmem_release_fault_lock(vmf);
	if (!mmap_read_lock_killable(src_mm))
		mmap_read_unlock(src_mm);
	return VM_FAULT_RETRY;
}

/*
 * Fault the target page (if any) of a batch, then take a snapshot of the pages
 * the exporter already has in the rest of it. Two calls because hmm_range_fault()
 * faults a whole unpopulated page table range once any page of it asks for a
 * fault. Both run under one notifier sequence, so xpmem_install() sees a recall
 * between them. The caller holds the exporter's mmap lock.
 */
int xpmem_fetch(struct xpmem_segment *seg, unsigned long src,
		struct xpmem_batch *b, struct hmm_range *range)
{
	unsigned long want = HMM_PFN_REQ_FAULT | (b->write ? HMM_PFN_REQ_WRITE : 0);
	unsigned long idx = (b->target - b->start) >> PAGE_SHIFT;
	unsigned long target_pfn = 0;
	int err;

	range->notifier = &seg->notifier;
	range->pfn_flags_mask = 0;
	if (b->target) {
		range->start = src + (b->target - b->start);
		range->end = range->start + PAGE_SIZE;
		range->hmm_pfns = &target_pfn;
		range->default_flags = want;
		err = hmm_range_fault(range);
		if (err || b->huge || b->end - b->start == PAGE_SIZE) {
			b->pfns[0] = target_pfn;
			return err;
		}
	}
	range->start = src;
	range->end = src + (b->end - b->start);
	range->hmm_pfns = b->pfns;
	range->default_flags = 0;
	err = hmm_range_fault(range);
	if (b->target)
		b->pfns[idx] = target_pfn;
	return err;
}

/*
 * Install the fetched pages unless a recall ran since range->notifier_seq.
 * Returns the target's result (VM_FAULT_NOPAGE when mapped), or 0 when the
 * batch must be fetched again.
 */
static vm_fault_t xpmem_install(struct xpmem_segment *seg,
				struct vm_area_struct *vma,
				struct xpmem_batch *b, struct hmm_range *range)
{
	pgprot_t ro = vma->vm_page_prot, rw = vm_get_page_prot(vma->vm_flags);
	unsigned long i, n = (b->end - b->start) >> PAGE_SHIFT;
	vm_fault_t ret = VM_FAULT_NOPAGE, r;

	mutex_lock(&seg->lock);
	if (seg->removed) {
		mutex_unlock(&seg->lock);
		return VM_FAULT_SIGBUS;
	}
	if (mmu_interval_read_retry(&seg->notifier, range->notifier_seq)) {
		mutex_unlock(&seg->lock);
		xpmem_stat_inc(fault_retries);
		return 0;
	}
	for (i = 0; i < n; i++) {
		unsigned long hmm_pfn = b->pfns[i];
		unsigned long pfn = hmm_pfn & ~HMM_PFN_FLAGS;
		unsigned long addr = b->start + (i << PAGE_SHIFT);
		/*
		 * Writable only when faulting for write: a read-mapped page comes
		 * back through pfn_mkwrite so the exporter's page is faulted for
		 * write (COW break) first. vm_page_prot is write-protected for that.
		 */
		bool writable = b->write && (hmm_pfn & HMM_PFN_WRITE);

		if (!(hmm_pfn & HMM_PFN_VALID))
			continue;
		r = vmf_insert_pfn_prot(vma, addr, pfn, writable ? rw : ro);
		/* Written through a PTE the core mm does not see: keep the page dirty. */
		if (writable && r == VM_FAULT_NOPAGE && pfn_valid(pfn))
			folio_mark_dirty(page_folio(pfn_to_page(pfn)));
		if (addr == b->target)
			ret = r;
	}
	mutex_unlock(&seg->lock);
	return ret;
}

/* One 2 MiB entry for pfn, unless the PMD slot is taken. */
static vm_fault_t xpmem_map_pmd(struct vm_fault *vmf, unsigned long pfn,
				bool writable, bool *mapped)
{
	pmd_t pmd = READ_ONCE(*vmf->pmd);

	/* Another thread mapped it, huge or with a page table. */
	if (!pmd_none(pmd))
		return pmd_trans_huge(pmd) ? VM_FAULT_NOPAGE : VM_FAULT_FALLBACK;
	*mapped = true;
	return vmf_insert_pfn_pmd(vmf, pfn_to_pfn_t(pfn), writable);
}

#ifdef XPMEM_HUGE_PUD_PFNMAP
/*
 * One 1 GiB entry for pfn if the exporter maps the GiB whole, or make ours
 * writable. A PUD leaf here is ours and still maps what the exporter maps (a
 * change would have recalled it first); the core asks us about it only for a
 * write to a read-only one. Never fall back then: the core would split it
 * while we may be upgrading it.
 * The core fills an empty PUD with a PMD table outside table_lock only after a
 * fallback for the same GiB, which has the same answer here unless THP is
 * switched off or fault_around set to 1 meanwhile: then the insert below finds
 * the table and maps nothing (and WARNs once for a write); the access faults again.
 */
static vm_fault_t xpmem_map_pud(struct vm_fault *vmf, unsigned long pfn,
				bool whole, bool writable, bool *mapped)
{
	pud_t pud = READ_ONCE(*vmf->pud);

	if (pud_trans_huge(pud)) {
		if (!whole || !writable || pud_pfn(pud) != pfn)
			return VM_FAULT_NOPAGE;
	} else if (!whole || !pud_none(pud)) {
		return VM_FAULT_FALLBACK; /* smaller pieces, below a page table */
	}
	*mapped = true;
	return vmf_insert_pfn_pud(vmf, pfn_to_pfn_t(pfn), writable);
}
#endif

/*
 * Map a huge batch (a whole PMD or PUD) with one entry if the exporter maps
 * all of it with one entry at least as large (THP, hugetlb page; a 2 MiB part
 * of a 1 GiB page will do). VM_FAULT_FALLBACK: map it in smaller pieces;
 * 0: fetch again after a recall.
 */
static vm_fault_t xpmem_install_huge(struct xpmem_segment *seg,
				     struct vm_fault *vmf,
				     struct xpmem_batch *b,
				     struct hmm_range *range)
{
	struct xpmem_attachment *att = vmf->vma->vm_private_data;
	unsigned long npages = (b->end - b->start) >> PAGE_SHIFT;
	unsigned long hmm_pfn = b->pfns[0];
	unsigned long pfn = (hmm_pfn & ~HMM_PFN_FLAGS) -
			    ((b->target - b->start) >> PAGE_SHIFT);
	bool writable = b->write && (hmm_pfn & HMM_PFN_WRITE);
	bool whole = (hmm_pfn & HMM_PFN_VALID) &&
		     hmm_pfn_to_map_order(hmm_pfn) >= ilog2(npages) &&
		     IS_ALIGNED(pfn, npages);
	bool mapped = false;
	vm_fault_t ret;

	mutex_lock(&att->table_lock);
	mutex_lock(&seg->lock);
	if (seg->removed) {
		ret = VM_FAULT_SIGBUS;
	} else if (mmu_interval_read_retry(&seg->notifier,
					   range->notifier_seq)) {
		xpmem_stat_inc(fault_retries);
		ret = 0;
#ifdef XPMEM_HUGE_PUD_PFNMAP
	} else if (npages == PUD_SIZE >> PAGE_SHIFT) {
		ret = xpmem_map_pud(vmf, pfn, whole, writable, &mapped);
		if (mapped)
			WRITE_ONCE(att->pud_mapped, true);
#endif
	} else {
		ret = whole ? xpmem_map_pmd(vmf, pfn, writable, &mapped) :
			      VM_FAULT_FALLBACK;
	}
	if (mapped && ret == VM_FAULT_NOPAGE) {
		/* Written through an entry the core mm does not see: keep it dirty. */
		if (writable)
			folio_mark_dirty(page_folio(pfn_to_page(pfn)));
		xpmem_stat_inc(huge_faults);
		atomic64_inc(&att->huge_faults);
		atomic64_inc(&seg->huge_faults);
	}
	mutex_unlock(&seg->lock);
	mutex_unlock(&att->table_lock);
	return ret;
}

/*
 * Allocate the page table of [start, end) (within one PMD) now: nothing may
 * allocate under seg->lock. Returns 0, VM_FAULT_NOPAGE when a 2 MiB or 1 GiB
 * entry already maps the range, or VM_FAULT_OOM.
 */
vm_fault_t xpmem_prealloc_ptes(struct xpmem_attachment *att,
			       struct mm_struct *mm, unsigned long start,
			       unsigned long end)
{
	unsigned long next;
	vm_fault_t ret = 0;
	pud_t *leaf;
	pmd_t *pmd;

	mutex_lock(&att->table_lock);
	pmd = xpmem_find_pmd(mm, start, end, &next, &leaf);
	if (leaf || (pmd && pmd_trans_huge(READ_ONCE(*pmd))))
		ret = VM_FAULT_NOPAGE;
	else if (apply_to_page_range(mm, start, end - start, xpmem_pte_noop,
				     NULL))
		ret = VM_FAULT_OOM;
	mutex_unlock(&att->table_lock);
	return ret;
}

static vm_fault_t xpmem_fetch_error(int err)
{
	/* Hole, PROT_NONE or I/O memory: SIGBUS; write to a read-only source: SIGSEGV. */
	if (err == -ENOMEM)
		return VM_FAULT_OOM;
	if (err == -EPERM)
		return VM_FAULT_SIGSEGV;
	return VM_FAULT_SIGBUS;
}

/* Fault handler body for one batch: collision-retry until installed or failed. */
static vm_fault_t xpmem_fault_batch(struct vm_fault *vmf, struct xpmem_batch *b)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	struct xpmem_segment *seg = att->seg;
	struct mm_struct *src_mm = seg->mm;
	bool foreign = src_mm != vma->vm_mm;
	struct hmm_range range = {};
	vm_fault_t ret;
	int err;

	if (READ_ONCE(seg->removed) || !mmget_not_zero(src_mm))
		return VM_FAULT_SIGBUS;
	if (!b->huge) {
		ret = xpmem_prealloc_ptes(att, vma->vm_mm, b->start, b->end);
		if (ret)
			goto out;
	}
	do {
		range.notifier_seq = mmu_interval_read_begin(&seg->notifier);
		if (foreign) {
			ret = xpmem_lock_source(vmf, src_mm);
			if (ret)
				goto out; /* fault lock dropped: vma, att, seg are off limits */
		}
		err = xpmem_fetch(seg, xpmem_src_addr(vma, b->start), b, &range);
		if (foreign)
			mmap_read_unlock(src_mm);
		if (err == -EBUSY) {
			xpmem_stat_inc(fault_retries);
			ret = 0;
			continue;
		}
		if (err) {
			ret = xpmem_fetch_error(err);
			goto out;
		}
		if (b->huge)
			ret = xpmem_install_huge(seg, vmf, b, &range);
		else
			ret = xpmem_install(seg, vma, b, &range);
	} while (!ret);
out:
	mmput_async(src_mm);
	return ret;
}

/* [haddr, haddr + size) lies in the VMA, its source aligned to size. */
static bool xpmem_huge_fits(struct vm_area_struct *vma, unsigned long haddr,
			    unsigned long size)
{
	return haddr >= vma->vm_start && haddr + size <= vma->vm_end &&
	       IS_ALIGNED(xpmem_src_addr(vma, haddr), size);
}

/* The whole PMD around the fault lies in the VMA, congruent with the source. */
bool xpmem_huge_candidate(struct vm_fault *vmf, unsigned long window)
{
	return XPMEM_HUGE_PFNMAP && window > 1 &&
	       xpmem_huge_fits(vmf->vma, vmf->address & PMD_MASK, PMD_SIZE) &&
	       pmd_none(READ_ONCE(*vmf->pmd));
}

#ifdef XPMEM_HUGE_PUD_PFNMAP
/*
 * The core asks for a 1 GiB entry on a fault where the PUD is empty, and on a
 * write to a read-only 1 GiB entry. 2 MiB entries are made by xpmem_fault()
 * (a fault below an existing PMD table), so those requests fall back.
 */
vm_fault_t xpmem_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	unsigned long target_pfn;
	struct xpmem_batch b = {
		.target = vmf->address & PAGE_MASK,
		.start = vmf->address & PUD_MASK,
		.end = (vmf->address & PUD_MASK) + PUD_SIZE,
		.write = vmf->flags & FAULT_FLAG_WRITE,
		.huge = true,
		.pfns = &target_pfn,
	};
	vm_fault_t ret;

	if (order != PUD_ORDER || att->seg->remote ||
	    READ_ONCE(fault_around) <= 1 ||
	    !xpmem_huge_fits(vma, b.start, PUD_SIZE))
		return VM_FAULT_FALLBACK;
	if (xpmem_fault_under_vma_lock(vmf)) {
		xpmem_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}
	if (b.write && !att->writable)
		return VM_FAULT_SIGSEGV;
	ret = xpmem_fault_batch(vmf, &b);
	/* After a retry the fault lock is gone, and att with it maybe. */
	if (!(ret & (VM_FAULT_FALLBACK | VM_FAULT_RETRY))) {
		xpmem_stat_inc(faults);
		atomic64_inc(&att->faults);
		atomic64_inc(&att->seg->faults);
	}
	return ret;
}
#endif

vm_fault_t xpmem_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	unsigned long pfns[XPMEM_FAULT_BATCH];
	unsigned long window = clamp_val(fault_around, 1, XPMEM_FAULT_BATCH);
	struct xpmem_batch b = {
		.target = vmf->address & PAGE_MASK,
		.write = vmf->flags & FAULT_FLAG_WRITE,
		.pfns = pfns,
	};
	vm_fault_t ret;

	/* hmm_range_fault() may need our own mmap lock (self-attach): retry under it. */
	if (xpmem_fault_under_vma_lock(vmf)) {
		xpmem_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}
	xpmem_stat_inc(faults);
	atomic64_inc(&att->faults);
	atomic64_inc(&att->seg->faults);
	if (b.write && !att->writable)
		return VM_FAULT_SIGSEGV;
	if (att->seg->remote)
		return xpmem_remote_fault(vmf);

	if (xpmem_huge_candidate(vmf, window)) {
		b.start = b.target & PMD_MASK;
		b.end = b.start + PMD_SIZE;
		b.huge = true;
		ret = xpmem_fault_batch(vmf, &b);
		if (ret != VM_FAULT_FALLBACK)
			return ret;
		b.huge = false;
	}

	xpmem_fault_window(vmf, &b.start, &b.end);
	return xpmem_fault_batch(vmf, &b);
}

/* An aligned run of fault_around pages around the fault, inside the VMA (and so one PMD). */
unsigned int xpmem_fault_window(struct vm_fault *vmf, unsigned long *start,
				unsigned long *end)
{
	unsigned long window = clamp_val(fault_around, 1, XPMEM_FAULT_BATCH);
	unsigned long target = vmf->address & PAGE_MASK;

	window = rounddown_pow_of_two(window) << PAGE_SHIFT;
	*start = max(ALIGN_DOWN(target, window), vmf->vma->vm_start);
	*end = min(ALIGN_DOWN(target, window) + window, vmf->vma->vm_end);
	return (*end - *start) >> PAGE_SHIFT;
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

/*
 * Map what the exporter has in [start, end) of a fresh attachment, so the
 * attacher takes no faults there. Runs in the attacher's ioctl, so unlike the
 * fault path it can take the two mmap locks one after the other.
 * Best effort: holes and pages the exporter lacks stay unmapped (they fault
 * later), and so do exporter huge pages, which one fault maps whole.
 */
int xpmem_prefault(struct xpmem_attachment *att, unsigned long start,
		   unsigned long end)
{
	struct xpmem_segment *seg = att->seg;
	struct mm_struct *mm = current->mm, *src_mm = seg->mm;
	struct hmm_range range = {};
	struct xpmem_batch b = { .write = att->writable };
	struct vm_area_struct *vma;
	unsigned long addr, i, n, src;
	vm_fault_t ret;
	int err = 0;

	b.pfns = kmalloc_array(PTRS_PER_PTE, sizeof(*b.pfns), GFP_KERNEL);
	if (!b.pfns)
		return -ENOMEM;
	if (!mmget_not_zero(src_mm)) {
		kfree(b.pfns);
		return 0;
	}
	for (addr = start; addr < end && !err; addr = b.end) {
		b.start = addr;
		b.end = min(ALIGN_DOWN(addr, PMD_SIZE) + PMD_SIZE, end);
		mmap_read_lock(mm);
		vma = vma_lookup(mm, addr);
		if (!vma || vma->vm_private_data != att || b.end > vma->vm_end) {
			mmap_read_unlock(mm);
			break; /* unmapped under us by another thread: nothing to do */
		}
		src = xpmem_src_addr(vma, addr);
		mmap_read_unlock(mm);
retry:
		range.notifier_seq = mmu_interval_read_begin(&seg->notifier);
		mmap_read_lock(src_mm);
		err = xpmem_fetch(seg, src, &b, &range);
		mmap_read_unlock(src_mm);
		if (err == -EBUSY)
			goto retry;
		if (err)
			break;
		n = (b.end - b.start) >> PAGE_SHIFT;
		for (i = 0; i < n && !(b.pfns[i] & HMM_PFN_VALID); i++)
			;
		if (i == n)
			continue;
		/* A whole exporter huge page: its first touch maps it with one entry. */
		if (XPMEM_HUGE_PFNMAP && READ_ONCE(fault_around) > 1 &&
		    n == PTRS_PER_PMD && IS_ALIGNED(src, PMD_SIZE) &&
		    hmm_pfn_to_map_order(b.pfns[0]) >= PMD_SHIFT - PAGE_SHIFT)
			continue;

		mmap_read_lock(mm);
		vma = vma_lookup(mm, addr);
		if (!vma || vma->vm_private_data != att || b.end > vma->vm_end ||
		    xpmem_src_addr(vma, addr) != src) {
			mmap_read_unlock(mm);
			break;
		}
		ret = xpmem_prealloc_ptes(att, mm, b.start, b.end);
		if (ret) {
			mmap_read_unlock(mm);
			if (ret == VM_FAULT_NOPAGE)
				continue; /* mapped huge by a fault meanwhile */
			err = -ENOMEM;
			break;
		}
		ret = xpmem_install(seg, vma, &b, &range);
		mmap_read_unlock(mm);
		if (!ret)
			goto retry;
		if (ret & VM_FAULT_ERROR)
			break;
	}
	mmput_async(src_mm);
	kfree(b.pfns);
	return err;
}
