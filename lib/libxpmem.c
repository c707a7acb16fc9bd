// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libxpmem: the user library of XPMEM.
 *
 * Each API call is exactly one request on /dev/xpmem. The device is opened lazily
 * (first call or xpmem_init) by whichever thread gets there first; a request that
 * fails with XPMEM_ERRNO_NOPROC (a descriptor inherited from another process, as
 * older modules report it) reopens the device once and is retried once.
 *
 * Nothing is validated here that the kernel validates: errno is the kernel's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "xpmem.h"
#include "xpmem_ioctl.h"

#define XPMEM_EXPORT __attribute__((visibility("default")))

/* The request layouts must be those of the existing module (x86_64 offsets). */
#define XPMEM_LAYOUT(type, field, off) \
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field " offset")
XPMEM_LAYOUT(xpmem_cmd_make, vaddr, 0);
XPMEM_LAYOUT(xpmem_cmd_make, size, 8);
XPMEM_LAYOUT(xpmem_cmd_make, permit_type, 16);
XPMEM_LAYOUT(xpmem_cmd_make, permit_value, 24);
XPMEM_LAYOUT(xpmem_cmd_make, segid, 32);
_Static_assert(sizeof(struct xpmem_cmd_make) == 40, "make size");
XPMEM_LAYOUT(xpmem_cmd_remove, segid, 0);
_Static_assert(sizeof(struct xpmem_cmd_remove) == 8, "remove size");
XPMEM_LAYOUT(xpmem_cmd_get, segid, 0);
XPMEM_LAYOUT(xpmem_cmd_get, flags, 8);
XPMEM_LAYOUT(xpmem_cmd_get, permit_type, 12);
XPMEM_LAYOUT(xpmem_cmd_get, permit_value, 16);
XPMEM_LAYOUT(xpmem_cmd_get, apid, 24);
_Static_assert(sizeof(struct xpmem_cmd_get) == 32, "get size");
XPMEM_LAYOUT(xpmem_cmd_release, apid, 0);
_Static_assert(sizeof(struct xpmem_cmd_release) == 8, "release size");
XPMEM_LAYOUT(xpmem_cmd_attach, apid, 0);
XPMEM_LAYOUT(xpmem_cmd_attach, offset, 8);
XPMEM_LAYOUT(xpmem_cmd_attach, size, 16);
XPMEM_LAYOUT(xpmem_cmd_attach, vaddr, 24);
XPMEM_LAYOUT(xpmem_cmd_attach, fd, 32);
XPMEM_LAYOUT(xpmem_cmd_attach, flags, 36);
_Static_assert(sizeof(struct xpmem_cmd_attach) == 40, "attach size");
XPMEM_LAYOUT(xpmem_cmd_detach, vaddr, 0);
_Static_assert(sizeof(struct xpmem_cmd_detach) == 8, "detach size");
#if defined(__LP64__)
_Static_assert(sizeof(struct xpmem_addr) == 16, "struct xpmem_addr size");
#endif

/* The library's descriptor (-1 until opened) and how many times it was reopened. */
static atomic_int xpmem_fd = -1;
static atomic_uint xpmem_generation;
/* Serialises opening and reopening; held across fork() so a child never inherits it locked. */
static pthread_mutex_t xpmem_lock = PTHREAD_MUTEX_INITIALIZER;

static void xpmem_lock_acquire(void)
{
	pthread_mutex_lock(&xpmem_lock);
}

static void xpmem_lock_release(void)
{
	pthread_mutex_unlock(&xpmem_lock);
}

__attribute__((constructor)) static void xpmem_lib_setup(void)
{
	pthread_atfork(xpmem_lock_acquire, xpmem_lock_release, xpmem_lock_release);
}

static int xpmem_open_device(void)
{
	return open(XPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

/* The library's descriptor, opening the device on first use; -1 with errno set. */
static int xpmem_get_fd(void)
{
	int fd = atomic_load_explicit(&xpmem_fd, memory_order_acquire);
	int saved_errno;

	if (fd >= 0)
		return fd;
	xpmem_lock_acquire();
	fd = atomic_load_explicit(&xpmem_fd, memory_order_relaxed);
	if (fd < 0) {
		fd = xpmem_open_device();
		if (fd >= 0)
			atomic_store_explicit(&xpmem_fd, fd, memory_order_release);
	}
	saved_errno = errno;
	xpmem_lock_release();
	errno = saved_errno;
	return fd;
}

/*
 * Replace the descriptor by a fresh open of the device, unless another thread already
 * did so since generation seen_gen was read. The new file takes the old descriptor's
 * number (dup3), so threads still using that number never see a closed or reused fd.
 */
static int xpmem_reopen(unsigned int seen_gen)
{
	int ret = 0;
	int saved_errno;

	xpmem_lock_acquire();
	if (atomic_load_explicit(&xpmem_generation, memory_order_relaxed) == seen_gen) {
		int old = atomic_load_explicit(&xpmem_fd, memory_order_relaxed);
		int nfd = xpmem_open_device();

		if (nfd < 0) {
			ret = -1;
		} else if (old < 0) {
			atomic_store_explicit(&xpmem_fd, nfd, memory_order_release);
		} else {
			if (dup3(nfd, old, O_CLOEXEC) < 0)
				ret = -1;
			saved_errno = errno;
			close(nfd);
			errno = saved_errno;
		}
		if (ret == 0)
			atomic_fetch_add_explicit(&xpmem_generation, 1, memory_order_release);
	}
	saved_errno = errno;
	xpmem_lock_release();
	errno = saved_errno;
	return ret;
}

XPMEM_EXPORT int xpmem_init(void)
{
	return xpmem_get_fd() < 0 ? -1 : 0;
}

XPMEM_EXPORT int xpmem_ioctl(int cmd, void *arg)
{
	unsigned int gen = atomic_load_explicit(&xpmem_generation, memory_order_acquire);
	int fd = xpmem_get_fd();
	int ret;

	if (fd < 0)
		return -1;
	ret = ioctl(fd, (unsigned long)(unsigned int)cmd, arg);
	if (ret == -1 && errno == XPMEM_ERRNO_NOPROC) {
		if (xpmem_reopen(gen) < 0)
			return -1;
		fd = atomic_load_explicit(&xpmem_fd, memory_order_acquire);
		ret = ioctl(fd, (unsigned long)(unsigned int)cmd, arg);
	}
	return ret;
}

XPMEM_EXPORT int xpmem_version(void)
{
	return xpmem_ioctl((int)XPMEM_CMD_VERSION, NULL);
}

XPMEM_EXPORT xpmem_segid_t xpmem_make(void *vaddr, size_t size, int permit_type, void *permit_value)
{
	struct xpmem_cmd_make cmd = {
		.vaddr = (uintptr_t)vaddr,
		.size = size,
		.permit_type = permit_type,
		.permit_value = (uintptr_t)permit_value,
	};

	if (xpmem_ioctl((int)XPMEM_CMD_MAKE, &cmd) == -1)
		return -1;
	return cmd.segid;
}

XPMEM_EXPORT int xpmem_remove(xpmem_segid_t segid)
{
	struct xpmem_cmd_remove cmd = { .segid = segid };

	return xpmem_ioctl((int)XPMEM_CMD_REMOVE, &cmd) == -1 ? -1 : 0;
}

XPMEM_EXPORT xpmem_apid_t xpmem_get(xpmem_segid_t segid, int flags, int permit_type,
				    void *permit_value)
{
	/* Callers pass a mode here too; like the existing library, it is not sent. */
	struct xpmem_cmd_get cmd = {
		.segid = segid,
		.flags = flags,
		.permit_type = permit_type,
		.permit_value = 0,
	};

	(void)permit_value;
	if (xpmem_ioctl((int)XPMEM_CMD_GET, &cmd) == -1)
		return -1;
	return cmd.apid;
}

XPMEM_EXPORT int xpmem_release(xpmem_apid_t apid)
{
	struct xpmem_cmd_release cmd = { .apid = apid };

	return xpmem_ioctl((int)XPMEM_CMD_RELEASE, &cmd) == -1 ? -1 : 0;
}

XPMEM_EXPORT void *xpmem_attach(struct xpmem_addr addr, size_t size, void *vaddr)
{
	struct xpmem_cmd_attach cmd = {
		.apid = addr.apid,
		.offset = addr.offset,
		.size = size,
		.vaddr = (uintptr_t)vaddr,
		.flags = 0,
	};

	cmd.fd = xpmem_get_fd();
	if (cmd.fd < 0)
		return (void *)-1;
	if (xpmem_ioctl((int)XPMEM_CMD_ATTACH, &cmd) == -1)
		return (void *)-1;
	return (void *)(uintptr_t)cmd.vaddr;
}

XPMEM_EXPORT void *xpmem_attach_ext(struct xpmem_addr addr, size_t size,
				     void *vaddr, unsigned int flags)
{
	struct xpmem_cmd_attach_ext cmd = {
		.argsz = sizeof(cmd),
		.flags = flags,
		.apid = addr.apid,
		.offset = addr.offset,
		.size = size,
		.vaddr = (uintptr_t)vaddr,
	};

	if (xpmem_ioctl((int)XPMEM_CMD_ATTACH_EXT, &cmd) == -1)
		return (void *)-1;
	return (void *)(uintptr_t)cmd.vaddr;
}

XPMEM_EXPORT int xpmem_detach(void *vaddr)
{
	struct xpmem_cmd_detach cmd = { .vaddr = (uintptr_t)vaddr };

	return xpmem_ioctl((int)XPMEM_CMD_DETACH, &cmd) == -1 ? -1 : 0;
}
