/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xpmemd: what the daemon's own files share. */
#ifndef XPMEMD_H
#define XPMEMD_H

#include <stdint.h>

#ifndef XPMEMD_VERSION
#define XPMEMD_VERSION "unknown"
#endif

/* Exit codes. */
#define XPMEMD_EXIT_OK 0
#define XPMEMD_EXIT_RUNTIME 1
#define XPMEMD_EXIT_USAGE 2

uint64_t xpmemd_now_ns(void); /* CLOCK_MONOTONIC */

/* --selftest-transport: two endpoints on 127.0.0.1, no device. Exit code. */
int xpmemd_selftest_transport(void);

#endif /* XPMEMD_H */
