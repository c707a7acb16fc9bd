// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: attachments. Each attachment is a VM_PFNMAP mapping of its segment's
 * pseudo file, file offset = exporter virtual address, so that a recall finds
 * every attacher's VMAs in that file's i_mmap tree without touching any
 * attacher's mmap lock.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>

#include "xpmem_private.h"

#define XPMEM_FS_MAGIC 0x78706d6d /* "xpmm" */

static struct vfsmount *xpmem_mnt;
/*
 * All attachment mappings share one lock class for i_mmap_rwsem, distinct from
 * regular files': the recall takes it while the exporter's own file locks may be
 * held.
 */
static struct lock_class_key xpmem_i_mmap_key;

static int xpmem_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, XPMEM_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type xpmem_fs_type = {
	.name = "xpmem",
	.init_fs_context = xpmem_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int xpmem_fs_init(void)
{
	xpmem_mnt = kern_mount(&xpmem_fs_type);
	return PTR_ERR_OR_ZERO(xpmem_mnt);
}

void xpmem_fs_exit(void)
{
	kern_unmount(xpmem_mnt);
}

struct inode *xpmem_segment_inode(void)
{
	struct inode *inode = alloc_anon_inode(xpmem_mnt->mnt_sb);

	if (!IS_ERR(inode))
		lockdep_set_class(&inode->i_mapping->i_mmap_rwsem,
				  &xpmem_i_mmap_key);
	return inode;
}

void xpmem_attachment_put(struct xpmem_attachment *att)
{
	struct xpmem_segment *seg = att->seg;

	if (!refcount_dec_and_test(&att->refs))
		return;
	mutex_lock(&seg->lock);
	interval_tree_remove(&att->range, &seg->attachments);
	mutex_unlock(&seg->lock);
	atomic_dec(&seg->nr_attachments);
	put_pid(att->pid);
	xpmem_segment_put(seg);
	xpmem_stat_dec(attachments_live);
	kfree(att);
}

/* A VMA of the attachment was made, split off or copied by mremap. */
static void xpmem_vma_open(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = vma->vm_private_data;

	refcount_inc(&att->refs);
	atomic_inc(&att->nr_vmas);
#ifdef XPMEM_HUGE_PUD_PFNMAP
	if (READ_ONCE(att->pud_mapped))
		xpmem_att_vma_copied(att, vma);
#endif
}

static void xpmem_vma_close(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = vma->vm_private_data;

	atomic_dec(&att->nr_vmas);
	xpmem_attachment_put(att);
}

static const struct vm_operations_struct xpmem_vm_ops = {
	.open = xpmem_vma_open,
	.close = xpmem_vma_close,
	.fault = xpmem_fault,
#ifdef XPMEM_HUGE_PUD_PFNMAP
	.huge_fault = xpmem_huge_fault,
#endif
	.pfn_mkwrite = xpmem_pfn_mkwrite,
};

/* Only reached from xpmem_attach()'s vm_mmap(): the file is never in a file table. */
static int xpmem_att_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = file->private_data;
	unsigned long first = vma->vm_pgoff;
	unsigned long last = first + vma_pages(vma) - 1;

	if (!att || first < att->range.start || last > att->range.last)
		return -EINVAL;
	/*
	 * No inheritance across fork, no growth by mremap, no GUP (the pages are
	 * the exporter's, reached only through the fault path), no core dump.
	 */
	xpmem_vma_mod_flags(vma,
			    VM_PFNMAP | VM_IO | VM_DONTCOPY | VM_DONTEXPAND |
				    VM_DONTDUMP | XPMEM_VM_HUGE_FAULTS,
			    att->writable ? 0 : VM_MAYWRITE);
	vma->vm_ops = &xpmem_vm_ops;
	vma->vm_private_data = att;
	xpmem_vma_open(vma);
	return 0;
}

#ifdef XPMEM_HUGE_PUD_PFNMAP
/*
 * Place an attachment that can hold an aligned 1 GiB of its source congruent to
 * the source modulo 1 GiB, so that 1 GiB pages map whole; others modulo 2 MiB.
 */
static unsigned long xpmem_att_get_unmapped_area(struct file *file,
						 unsigned long addr,
						 unsigned long len,
						 unsigned long pgoff,
						 unsigned long flags)
{
	unsigned long off = pgoff << PAGE_SHIFT, padded = len + PUD_SIZE;
	unsigned long ret, shift;

	if (!addr && !(flags & MAP_FIXED) &&
	    ALIGN(off, PUD_SIZE) + PUD_SIZE <= off + len && padded > len) {
		ret = mm_get_unmapped_area(current->mm, file, 0, padded, pgoff,
					   flags);
		if (!IS_ERR_VALUE(ret)) {
			shift = (off - ret) & (PUD_SIZE - 1);
			/* Top-down: keep the padding below, as the core does. */
			if (!shift && test_bit(MMF_TOPDOWN, &current->mm->flags))
				shift = PUD_SIZE;
			return ret + shift;
		}
	}
	return thp_get_unmapped_area(file, addr, len, pgoff, flags);
}
#elif defined(CONFIG_ARCH_SUPPORTS_PMD_PFNMAP)
#define xpmem_att_get_unmapped_area thp_get_unmapped_area
#else
#define xpmem_att_get_unmapped_area NULL
#endif

static const struct file_operations xpmem_att_fops = {
	.owner = THIS_MODULE,
	.mmap = xpmem_att_mmap,
	/* Congruent to the exporter's address: its huge pages map whole. */
	.get_unmapped_area = xpmem_att_get_unmapped_area,
};

int xpmem_attach(struct xpmem_proc *proc, s64 apid, s64 offset, u64 size,
		 u64 *vaddr, int flags, bool prefault)
{
	struct xpmem_access *ap = xpmem_access_lookup(proc, apid);
	struct xpmem_segment *seg;
	struct xpmem_attachment *att;
	unsigned long addr, prot, mmap_flags;
	struct file *file;
	int ret;

	if (IS_ERR(ap))
		return PTR_ERR(ap);
	seg = ap->seg;
	ret = -EINVAL;
	if (flags || offset < 0 || !PAGE_ALIGNED(offset) ||
	    !PAGE_ALIGNED(*vaddr) || !size || size > seg->end - seg->start ||
	    offset > seg->end - seg->start - PAGE_ALIGN(size) ||
	    *vaddr > TASK_SIZE - PAGE_ALIGN(size))
		goto out_ap;
	size = PAGE_ALIGN(size);

	ret = -ENOMEM;
	att = kzalloc(sizeof(*att), GFP_KERNEL);
	if (!att)
		goto out_ap;
	refcount_set(&att->refs, 1);
	mutex_init(&att->table_lock);
	att->writable = ap->writable;
	att->pid = get_task_pid(current, PIDTYPE_TGID);
	att->uid = current_euid();
	att->range.start = (seg->start + offset) >> PAGE_SHIFT;
	att->range.last = att->range.start + (size >> PAGE_SHIFT) - 1;

	/* Publish the range before any fault can map it, so recalls see it. */
	mutex_lock(&seg->lock);
	if (seg->removed) {
		mutex_unlock(&seg->lock);
		put_pid(att->pid);
		kfree(att);
		ret = -ENOENT;
		goto out_ap;
	}
	interval_tree_insert(&att->range, &seg->attachments);
	mutex_unlock(&seg->lock);
	xpmem_segment_get(seg);
	att->seg = seg;
	atomic_inc(&seg->nr_attachments);
	xpmem_stat_inc(attachments_live);

	mutex_lock(&ap->file_lock);
	file = ap->file;
	if (!file) {
		ihold(seg->inode);
		__module_get(THIS_MODULE); /* dropped by the last fput */
		file = alloc_file_pseudo(seg->inode, xpmem_mnt, "xpmem",
					 ap->writable ? O_RDWR : O_RDONLY,
					 &xpmem_att_fops);
		if (IS_ERR(file)) {
			mutex_unlock(&ap->file_lock);
			iput(seg->inode);
			module_put(THIS_MODULE);
			ret = PTR_ERR(file);
			goto out_att;
		}
		ap->file = file;
	}
	file->private_data = att;

	prot = PROT_READ | (att->writable ? PROT_WRITE : 0);
	mmap_flags = MAP_SHARED | (*vaddr ? MAP_FIXED_NOREPLACE : 0);
	addr = vm_mmap(file, *vaddr, size, prot, mmap_flags,
		       seg->start + offset);
	file->private_data = NULL;
	mutex_unlock(&ap->file_lock);
	if (IS_ERR_VALUE(addr)) {
		ret = (int)addr;
		goto out_att;
	}
	/* Pages of another node come with its faults (first touch) only. */
	if (prefault && !seg->remote) {
		ret = xpmem_prefault(att, addr, addr + size);
		if (ret) {
			vm_munmap(addr, size);
			goto out_att;
		}
	}
	*vaddr = addr;
	WRITE_ONCE(att->vaddr, addr);
	xpmem_stat_inc(attaches);
	ret = 0;
out_att:
	xpmem_attachment_put(att);
out_ap:
	xpmem_access_put(ap);
	return ret;
}

/* Unmap every VMA of the attachment that contains vaddr in the caller's mm. */
int xpmem_detach(unsigned long vaddr)
{
	struct mm_struct *mm = current->mm;
	struct xpmem_attachment *att;
	struct vm_area_struct *vma, *target;
	unsigned long start, end;
	int ret;

	for (;;) {
		mmap_read_lock(mm);
		target = vma_lookup(mm, vaddr);
		if (!target || target->vm_ops != &xpmem_vm_ops) {
			mmap_read_unlock(mm);
			return -EINVAL;
		}
		att = target->vm_private_data;
		if (atomic_read(&att->nr_vmas) > 1) {
			/* Split by our own munmap/mprotect/mremap: unmap the others first. */
			VMA_ITERATOR(vmi, mm, 0);

			for_each_vma(vmi, vma) {
				if (vma != target &&
				    vma->vm_ops == &xpmem_vm_ops &&
				    vma->vm_private_data == att) {
					target = vma;
					break;
				}
			}
		}
		start = target->vm_start;
		end = target->vm_end;
		mmap_read_unlock(mm);
		ret = vm_munmap(start, end - start);
		if (ret)
			return ret;
		if (vaddr >= start && vaddr < end)
			break;
	}
	xpmem_stat_inc(detaches);
	return 0;
}
