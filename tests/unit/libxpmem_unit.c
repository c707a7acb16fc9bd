// SPDX-License-Identifier: GPL-2.0-only
/*
 * libxpmem-unit: host-side unit test of the library's argument handling, without the
 * kernel module. The executable defines open() and ioctl(), which take precedence over
 * libc's for libxpmem.so's calls: /dev/xpmem becomes a scripted fake that records every
 * request. Run: $(BUILD)/tests/libxpmem-unit (or `make lib-check`).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xpmem.h"
#include "xpmem_ioctl.h"

int ioctl(int fd, unsigned long request, ...);

/* ---- the fake device ---- */
static int fake_fds[8];
static int nopens;
static int open_flags;
static int open_fail_errno; /* next open fails with this, once */
static int last_fd;
static struct {
	unsigned long cmd;
	unsigned char arg[64];
	int fd;
} calls[16];
static int ncalls;
static int fail_next[4]; /* errno of the next ioctls (0: succeed) */
static int nfail;

static bool is_fake(int fd)
{
	for (int i = 0; i < nopens; i++)
		if (fake_fds[i] == fd)
			return true;
	return false;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & O_CREAT) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (strcmp(path, XPMEM_DEVICE_PATH) != 0)
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	if (open_fail_errno) {
		errno = open_fail_errno;
		open_fail_errno = 0;
		return -1;
	}
	open_flags = flags;
	last_fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC, 0);
	fake_fds[nopens++] = last_fd;
	return last_fd;
}

static size_t arg_size(unsigned long cmd)
{
	switch (cmd) {
	case XPMEM_CMD_MAKE:
		return sizeof(struct xpmem_cmd_make);
	case XPMEM_CMD_GET:
		return sizeof(struct xpmem_cmd_get);
	case XPMEM_CMD_ATTACH:
		return sizeof(struct xpmem_cmd_attach);
	case XPMEM_CMD_REMOVE:
	case XPMEM_CMD_RELEASE:
	case XPMEM_CMD_DETACH:
		return 8;
	}
	return 0;
}

int ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	void *arg;
	size_t sz;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	/* dup3() keeps the descriptor number: the fd is fake if it has ever been one. */
	if (!is_fake(fd) && fd != fake_fds[0])
		return (int)syscall(SYS_ioctl, fd, cmd, arg);
	sz = arg_size(cmd);
	calls[ncalls].cmd = cmd;
	calls[ncalls].fd = fd;
	if (sz)
		memcpy(calls[ncalls].arg, arg, sz);
	ncalls++;
	if (nfail > 0) {
		int e = fail_next[0];

		memmove(fail_next, fail_next + 1, sizeof(fail_next) - sizeof(fail_next[0]));
		nfail--;
		if (e) {
			errno = e;
			return -1;
		}
	}
	switch (cmd) {
	case XPMEM_CMD_VERSION:
		return XPMEM_INTERFACE_VERSION;
	case XPMEM_CMD_MAKE:
		((struct xpmem_cmd_make *)arg)->segid = 0x1234;
		break;
	case XPMEM_CMD_GET:
		((struct xpmem_cmd_get *)arg)->apid = 0x5678;
		break;
	case XPMEM_CMD_ATTACH: {
		struct xpmem_cmd_attach *a = arg;

		if (!a->vaddr)
			a->vaddr = 0x7f0000000000ULL;
		break;
	}
	}
	return 0;
}

static void reset(void)
{
	ncalls = 0;
	nfail = 0;
}

static void script_fail(int e)
{
	fail_next[nfail++] = e;
}

/* ---- tests (order matters: the first ones see the library before any open) ---- */

static void t_init_open_failure_then_lazy_open(void **state)
{
	(void)state;
	open_fail_errno = ENOENT;
	errno = 0;
	assert_int_equal(xpmem_init(), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(nopens, 0);
	/* Not cached: the next call opens. */
	assert_int_equal(xpmem_version(), XPMEM_INTERFACE_VERSION);
	assert_int_equal(nopens, 1);
	assert_int_equal(open_flags & O_ACCMODE, O_RDWR);
	assert_true(open_flags & O_CLOEXEC);
	assert_int_equal(xpmem_init(), 0);
	assert_int_equal(nopens, 1);
}

static void t_make_one_request(void **state)
{
	(void)state;
	reset();
	assert_int_equal(xpmem_make((void *)0x10000, 0x3000, XPMEM_PERMIT_MODE, (void *)0640), 0x1234);
	assert_int_equal(ncalls, 1);
	assert_int_equal(calls[0].cmd, XPMEM_CMD_MAKE);
	{
		struct xpmem_cmd_make m;

		memcpy(&m, calls[0].arg, sizeof(m));
		assert_int_equal(m.vaddr, 0x10000);
		assert_int_equal(m.size, 0x3000);
		assert_int_equal(m.permit_type, XPMEM_PERMIT_MODE);
		assert_int_equal(m.permit_value, 0640);
	}
	/* Nothing validated in the library: odd values reach the kernel unchanged. */
	reset();
	script_fail(EINVAL);
	errno = 0;
	assert_int_equal(xpmem_make((void *)0x10001, XPMEM_MAXADDR_SIZE, 7, (void *)0xffff), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ncalls, 1);
	{
		struct xpmem_cmd_make m;

		memcpy(&m, calls[0].arg, sizeof(m));
		assert_int_equal(m.vaddr, 0x10001);
		assert_int_equal(m.size, ~0ULL);
		assert_int_equal(m.permit_type, 7);
		assert_int_equal(m.permit_value, 0xffff);
	}
}

static void t_get_ignores_permit_value(void **state)
{
	struct xpmem_cmd_get g;

	(void)state;
	reset();
	assert_int_equal(xpmem_get(99, XPMEM_RDONLY, XPMEM_PERMIT_MODE, (void *)0666), 0x5678);
	assert_int_equal(ncalls, 1);
	assert_int_equal(calls[0].cmd, XPMEM_CMD_GET);
	memcpy(&g, calls[0].arg, sizeof(g));
	assert_int_equal(g.segid, 99);
	assert_int_equal(g.flags, XPMEM_RDONLY);
	assert_int_equal(g.permit_type, XPMEM_PERMIT_MODE);
	assert_int_equal(g.permit_value, 0);
	reset();
	assert_int_equal(xpmem_get(98, 0, 5, (void *)0600), 0x5678);
	memcpy(&g, calls[0].arg, sizeof(g));
	assert_int_equal(g.flags, 0);
	assert_int_equal(g.permit_type, 5);
	assert_int_equal(g.permit_value, 0);
}

static void t_attach(void **state)
{
	struct xpmem_cmd_attach a;
	struct xpmem_addr xa = { .apid = 77, .offset = 0x5000 };

	(void)state;
	reset();
	assert_ptr_equal(xpmem_attach(xa, 0x2000, NULL), (void *)0x7f0000000000ULL);
	assert_int_equal(ncalls, 1);
	assert_int_equal(calls[0].cmd, XPMEM_CMD_ATTACH);
	memcpy(&a, calls[0].arg, sizeof(a));
	assert_int_equal(a.apid, 77);
	assert_int_equal(a.offset, 0x5000);
	assert_int_equal(a.size, 0x2000);
	assert_int_equal(a.vaddr, 0);
	assert_int_equal(a.fd, calls[0].fd);
	assert_int_equal(a.flags, 0);
	reset();
	assert_ptr_equal(xpmem_attach(xa, 0x1000, (void *)0x600000), (void *)0x600000);
	memcpy(&a, calls[0].arg, sizeof(a));
	assert_int_equal(a.vaddr, 0x600000);
	reset();
	script_fail(EEXIST);
	errno = 0;
	assert_ptr_equal(xpmem_attach(xa, 0x1000, (void *)0x600000), (void *)-1);
	assert_int_equal(errno, EEXIST);
}

static void t_simple_calls(void **state)
{
	uint64_t v;

	(void)state;
	reset();
	assert_int_equal(xpmem_remove(11), 0);
	assert_int_equal(xpmem_release(12), 0);
	assert_int_equal(xpmem_detach((void *)0x700123), 0);
	assert_int_equal(ncalls, 3);
	assert_int_equal(calls[0].cmd, XPMEM_CMD_REMOVE);
	memcpy(&v, calls[0].arg, 8);
	assert_int_equal(v, 11);
	assert_int_equal(calls[1].cmd, XPMEM_CMD_RELEASE);
	memcpy(&v, calls[1].arg, 8);
	assert_int_equal(v, 12);
	assert_int_equal(calls[2].cmd, XPMEM_CMD_DETACH);
	memcpy(&v, calls[2].arg, 8);
	assert_int_equal(v, 0x700123);
	reset();
	script_fail(ENOENT);
	script_fail(EACCES);
	script_fail(EINVAL);
	errno = 0;
	assert_int_equal(xpmem_remove(11), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(xpmem_release(12), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(xpmem_detach(NULL), -1);
	assert_int_equal(errno, EINVAL);
	reset();
	script_fail(ENOTTY);
	assert_int_equal(xpmem_version(), -1);
	assert_int_equal(errno, ENOTTY);
}

/* errno 2004: reopen once (same descriptor number), retry once. */
static void t_noproc_reopen_retry(void **state)
{
	int opens = nopens, fd;

	(void)state;
	reset();
	script_fail(XPMEM_ERRNO_NOPROC);
	assert_int_equal(xpmem_make((void *)0x10000, 0x1000, XPMEM_PERMIT_MODE, (void *)0600), 0x1234);
	assert_int_equal(nopens, opens + 1);
	assert_int_equal(ncalls, 2);
	assert_int_equal(calls[0].cmd, XPMEM_CMD_MAKE);
	assert_int_equal(calls[1].cmd, XPMEM_CMD_MAKE);
	assert_int_equal(calls[0].fd, calls[1].fd);
	fd = calls[1].fd;
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Twice in a row: only one retry, the second errno is returned. */
	reset();
	script_fail(XPMEM_ERRNO_NOPROC);
	script_fail(XPMEM_ERRNO_NOPROC);
	errno = 0;
	assert_int_equal(xpmem_remove(5), -1);
	assert_int_equal(errno, XPMEM_ERRNO_NOPROC);
	assert_int_equal(ncalls, 2);
	/* The library's descriptor number is stable. */
	reset();
	assert_int_equal(xpmem_remove(5), 0);
	assert_int_equal(calls[0].fd, fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_init_open_failure_then_lazy_open),
		cmocka_unit_test(t_make_one_request),
		cmocka_unit_test(t_get_ignores_permit_value),
		cmocka_unit_test(t_attach),
		cmocka_unit_test(t_simple_calls),
		cmocka_unit_test(t_noproc_reopen_retry),
	};

	return cmocka_run_group_tests_name("libxpmem-unit", tests, NULL, NULL) ? 1 : 0;
}
