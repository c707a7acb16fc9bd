/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem: the few kernel API differences across the supported kernels (6.1 .. 6.12),
 * kept in one place.
 */
#ifndef XPMEM_COMPAT_H
#define XPMEM_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

static inline void xpmem_vma_mod_flags(struct vm_area_struct *vma,
				       vm_flags_t set, vm_flags_t clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

/* Drop whichever lock the fault was taken under (per-VMA locks came in 6.4). */
static inline void xpmem_release_fault_lock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	release_fault_lock(vmf);
#else
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

static inline bool xpmem_fault_under_vma_lock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	return vmf->flags & FAULT_FLAG_VMA_LOCK;
#else
	return false;
#endif
}

/*
 * 2 MiB attacher mappings need huge PFNMAP entries that the core mm marks
 * special, so that GUP-fast never takes the exporter's page through them
 * (6.12 on); older kernels map 4 KiB pages only.
 */
#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
#define XPMEM_HUGE_PFNMAP true
#else
#define XPMEM_HUGE_PFNMAP false
#endif

/* 1 GiB attacher mappings (of 1 GiB hugetlb sources) likewise: 6.12 on, x86-64. */
#ifdef CONFIG_ARCH_SUPPORTS_PUD_PFNMAP
#define XPMEM_HUGE_PUD_PFNMAP
/* The core asks ->huge_fault() for a PUD only where THP is on (madvise mode too). */
#define XPMEM_VM_HUGE_FAULTS VM_HUGEPAGE
#else
#define XPMEM_VM_HUGE_FAULTS 0
#endif

#endif /* XPMEM_COMPAT_H */
