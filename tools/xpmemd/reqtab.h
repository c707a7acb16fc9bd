/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xpmemd: the requests this node's kernel asked of peers that are not answered
 * yet, by request id. A reply is only handed to the kernel when it comes from
 * the node the request went to, in the epoch it went to; the rest are answered
 * with an error when that peer goes away (reqtab_drain) or takes too long
 * (reqtab_expire).
 */
#ifndef XPMEMD_REQTAB_H
#define XPMEMD_REQTAB_H

#include <stddef.h>
#include <stdint.h>

struct reqtab_entry {
	uint64_t id;
	uint32_t node;
	uint32_t type;
	uint64_t epoch;
	uint64_t since_ns;
	struct reqtab_entry *next;
};

struct reqtab {
	struct reqtab_entry **bucket;
	size_t nbuckets; /* a power of two */
	size_t count;
};

typedef void (*reqtab_fn)(void *ctx, const struct reqtab_entry *e);

int reqtab_init(struct reqtab *t, size_t nbuckets);
void reqtab_free(struct reqtab *t);
/* 0, -EEXIST (id already outstanding) or -ENOMEM. */
int reqtab_add(struct reqtab *t, uint64_t id, uint32_t node, uint32_t type, uint64_t epoch,
	       uint64_t now_ns);
/* Removes and returns in *out the entry for id if it went to node in epoch: 0 or -ENOENT. */
int reqtab_take(struct reqtab *t, uint64_t id, uint32_t node, uint64_t epoch,
		struct reqtab_entry *out);
/* Removes every entry of node (any epoch), calling fn on each; returns how many. */
size_t reqtab_drain(struct reqtab *t, uint32_t node, reqtab_fn fn, void *ctx);
/* Removes every entry older than max_age_ns at now_ns, calling fn on each. */
size_t reqtab_expire(struct reqtab *t, uint64_t now_ns, uint64_t max_age_ns, reqtab_fn fn,
		     void *ctx);

#endif /* XPMEMD_REQTAB_H */
