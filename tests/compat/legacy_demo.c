// SPDX-License-Identifier: GPL-2.0-only
/*
 * legacy_demo: a program written only against the documented XPMEM user API, the way
 * existing applications use it (built with `pkg-config cray-xpmem`).
 *
 * The parent exports a buffer; a forked child gets it (passing a mode to xpmem_get, as
 * MPI libraries do), attaches it, checks the parent's data, writes its answer, then
 * detaches and releases; the parent checks the answer and removes the segment.
 * Exit status 0 when everything worked.
 */
#include <xpmem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 16

static int fail(const char *what)
{
	fprintf(stderr, "legacy_demo: %s: %s\n", what, strerror(errno));
	return 1;
}

static int child(int rfd, int wfd, size_t len)
{
	xpmem_segid_t segid;
	xpmem_apid_t apid;
	struct xpmem_addr addr;
	unsigned char *p;
	char ok = 'y';

	if (read(rfd, &segid, sizeof(segid)) != (ssize_t)sizeof(segid))
		return fail("read segid");
	apid = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, (void *)0666);
	if (apid == -1)
		return fail("xpmem_get");
	addr.apid = apid;
	addr.offset = 0;
	p = xpmem_attach(addr, len, NULL);
	if (p == (void *)-1)
		return fail("xpmem_attach");
	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)(i * 7 + 3)) {
			fprintf(stderr, "legacy_demo: byte %zu is %u, expected %u\n", i, p[i],
				(unsigned char)(i * 7 + 3));
			return 1;
		}
	}
	for (size_t i = 0; i < len; i += 64)
		p[i] = (unsigned char)(i / 64 + 1);
	if (xpmem_detach(p) != 0)
		return fail("xpmem_detach");
	if (xpmem_release(apid) != 0)
		return fail("xpmem_release");
	if (write(wfd, &ok, 1) != 1)
		return fail("write");
	return 0;
}

int main(void)
{
	size_t len = PAGES * (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *buf;
	xpmem_segid_t segid;
	int down[2], up[2], status, version;
	char ok = 0;
	pid_t pid;

	version = xpmem_version();
	if (version < 0)
		return fail("xpmem_version");
	printf("legacy_demo: XPMEM interface version 0x%x\n", version);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return fail("mmap");
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	segid = xpmem_make(buf, len, XPMEM_PERMIT_MODE, (void *)0666);
	if (segid == -1)
		return fail("xpmem_make");
	if (pipe(down) != 0 || pipe(up) != 0)
		return fail("pipe");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		_exit(child(down[0], up[1], len));
	}
	close(down[0]);
	close(up[1]);
	if (write(down[1], &segid, sizeof(segid)) != (ssize_t)sizeof(segid))
		return fail("write segid");
	if (read(up[0], &ok, 1) != 1 || ok != 'y') {
		fprintf(stderr, "legacy_demo: the child did not finish\n");
		waitpid(pid, &status, 0);
		return 1;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "legacy_demo: child failed (status 0x%x)\n", status);
		return 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char want = i % 64 == 0 ? (unsigned char)(i / 64 + 1) : (unsigned char)(i * 7 + 3);

		if (buf[i] != want) {
			fprintf(stderr, "legacy_demo: byte %zu is %u after the child wrote, expected %u\n", i,
				buf[i], want);
			return 1;
		}
	}
	if (xpmem_remove(segid) != 0)
		return fail("xpmem_remove");
	printf("legacy_demo: ok\n");
	return 0;
}
