/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmem.h - user API of libxpmem (cross-process memory export and attach).
 *
 * Source compatible with the header that existing XPMEM users (Open MPI, MPICH,
 * UCX, libfabric, ...) are built against: same types, constants and functions.
 *
 * Every function returns -1 (xpmem_attach: (void *)-1) and sets errno on failure.
 */
#ifndef XPMEM_H
#define XPMEM_H

#include <sys/types.h> /* off_t, size_t */
#include <linux/types.h> /* __s64 */

#ifdef __cplusplus
extern "C" {
#endif

/* Segment id (returned by xpmem_make) and access permit id (returned by xpmem_get). */
typedef __s64 xpmem_segid_t;
typedef __s64 xpmem_apid_t;

/* What to attach: an access permit and a byte offset into its segment. */
struct xpmem_addr {
	xpmem_apid_t apid;
	off_t offset;
};

/* Size that exports the whole user address space from vaddr on. */
#define XPMEM_MAXADDR_SIZE (size_t)(-1L)

/* errno of a request made through a descriptor the calling process did not open. */
#define XPMEM_ERRNO_NOPROC 2004

/* Access flags of xpmem_get. */
#define XPMEM_RDONLY 0x1
#define XPMEM_RDWR 0x2

/* Permit types of xpmem_make / xpmem_get. */
enum {
	XPMEM_PERMIT_MODE = 0x1 /* permit_value is a unix mode (e.g. (void *)0666) */
};

/* Interface version of the kernel module (>= 0x00026005), or -1. */
int xpmem_version(void);

/* Export [vaddr, vaddr + size) of the calling process. */
xpmem_segid_t xpmem_make(void *vaddr, size_t size, int permit_type, void *permit_value);

/* Withdraw a segment made by the calling process. */
int xpmem_remove(xpmem_segid_t segid);

/* Obtain an access permit for a segment; permit_value is accepted and ignored. */
xpmem_apid_t xpmem_get(xpmem_segid_t segid, int flags, int permit_type, void *permit_value);

/* Give back an access permit (existing attachments stay). */
int xpmem_release(xpmem_apid_t apid);

/* Map size bytes of the segment at addr.offset; vaddr NULL lets the kernel choose. */
void *xpmem_attach(struct xpmem_addr addr, size_t size, void *vaddr);

/*
 * Extension: xpmem_attach with flags. XPMEM_ATTACH_PREFAULT maps everything the
 * exporter has present in the window at attach time (no faults on first touch).
 */
#define XPMEM_ATTACH_PREFAULT 0x1
void *xpmem_attach_ext(struct xpmem_addr addr, size_t size, void *vaddr, unsigned int flags);

/* Unmap the whole attachment that contains vaddr. */
int xpmem_detach(void *vaddr);

/* Open /dev/xpmem now (it is otherwise opened on first use): 0 or -1. */
int xpmem_init(void);

/* Issue one request on the library's descriptor (cmd is one of the device's ioctls). */
int xpmem_ioctl(int cmd, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* XPMEM_H */
