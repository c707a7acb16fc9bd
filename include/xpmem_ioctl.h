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

#endif /* XPMEM_IOCTL_H */
