// SPDX-License-Identifier: LGPL-2.1-or-later
/* xpmemd: log lines on stderr (see log.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static uint32_t log_node;
static bool log_verbose;

void xlog_set_node(uint32_t node)
{
	log_node = node;
}

void xlog_set_verbose(bool verbose)
{
	log_verbose = verbose;
}

bool xlog_is_verbose(void)
{
	return log_verbose;
}

/* One write() per line so that lines of several processes do not interleave. */
static void xlog_line(const char *fmt, va_list ap)
{
	char line[1024];
	int saved = errno;
	int n, m;

	if (log_node)
		n = snprintf(line, sizeof(line), "xpmemd[node %u]: ", log_node);
	else
		n = snprintf(line, sizeof(line), "xpmemd: ");
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to complain to. */
	}
	errno = saved;
}

void xlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xlog_line(fmt, ap);
	va_end(ap);
}

void xlog_verbose(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	xlog_line(fmt, ap);
	va_end(ap);
}
