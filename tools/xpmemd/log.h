/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: log lines on stderr, "xpmemd[node N]: ..." once the node is known,
 * "xpmemd: ..." before. xlog_verbose() lines only appear with --verbose.
 */
#ifndef XPMEMD_LOG_H
#define XPMEMD_LOG_H

#include <stdbool.h>
#include <stdint.h>

void xlog_set_node(uint32_t node);
void xlog_set_verbose(bool verbose);
bool xlog_is_verbose(void);
void xlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xlog_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* XPMEMD_LOG_H */
