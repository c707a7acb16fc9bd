// SPDX-License-Identifier: LGPL-2.1-or-later
/* xpmemd: outstanding forwarded requests (see reqtab.h). Chained hash on the id. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "reqtab.h"

static size_t slot(const struct reqtab *t, uint64_t id)
{
	/* Fibonacci hashing: kernel ids are often sequential. */
	return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (t->nbuckets - 1);
}

int reqtab_init(struct reqtab *t, size_t nbuckets)
{
	size_t n = 1;

	while (n < nbuckets)
		n <<= 1;
	t->bucket = calloc(n, sizeof(*t->bucket));
	if (!t->bucket)
		return -ENOMEM;
	t->nbuckets = n;
	t->count = 0;
	return 0;
}

void reqtab_free(struct reqtab *t)
{
	for (size_t i = 0; t->bucket && i < t->nbuckets; i++) {
		struct reqtab_entry *e = t->bucket[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->bucket);
	t->bucket = NULL;
	t->count = 0;
}

int reqtab_add(struct reqtab *t, uint64_t id, uint32_t node, uint32_t type, uint64_t epoch,
	       uint64_t now_ns)
{
	size_t s = slot(t, id);
	struct reqtab_entry *e;

	for (e = t->bucket[s]; e; e = e->next)
		if (e->id == id)
			return -EEXIST;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->id = id;
	e->node = node;
	e->type = type;
	e->epoch = epoch;
	e->since_ns = now_ns;
	e->next = t->bucket[s];
	t->bucket[s] = e;
	t->count++;
	return 0;
}

int reqtab_take(struct reqtab *t, uint64_t id, uint32_t node, uint64_t epoch,
		struct reqtab_entry *out)
{
	struct reqtab_entry **pp, *e;

	for (pp = &t->bucket[slot(t, id)]; (e = *pp); pp = &e->next) {
		if (e->id != id)
			continue;
		if (e->node != node || e->epoch != epoch)
			return -ENOENT;
		*pp = e->next;
		*out = *e;
		out->next = NULL;
		free(e);
		t->count--;
		return 0;
	}
	return -ENOENT;
}

static size_t remove_if(struct reqtab *t, bool (*match)(const struct reqtab_entry *, const void *),
			const void *arg, reqtab_fn fn, void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct reqtab_entry **pp = &t->bucket[i], *e;

		while ((e = *pp)) {
			if (!match(e, arg)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			t->count--;
			n++;
			if (fn)
				fn(ctx, e);
			free(e);
		}
	}
	return n;
}

static bool match_node(const struct reqtab_entry *e, const void *arg)
{
	return e->node == *(const uint32_t *)arg;
}

size_t reqtab_drain(struct reqtab *t, uint32_t node, reqtab_fn fn, void *ctx)
{
	return remove_if(t, match_node, &node, fn, ctx);
}

struct age_arg {
	uint64_t now, max;
};

static bool match_age(const struct reqtab_entry *e, const void *arg)
{
	const struct age_arg *a = arg;

	return a->now >= e->since_ns && a->now - e->since_ns > a->max;
}

size_t reqtab_expire(struct reqtab *t, uint64_t now_ns, uint64_t max_age_ns, reqtab_fn fn,
		     void *ctx)
{
	struct age_arg a = { now_ns, max_age_ns };

	return remove_if(t, match_age, &a, fn, ctx);
}
