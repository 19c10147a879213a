/*
 * inflight: identical upstream lookups in flight are merged, across every
 * loop thread: the first asker of a key becomes its owner and sends the one
 * upstream question; everyone asking the same key before the answer comes
 * waits on it. 1,000 questions about one cold IP make one upstream query per
 * list, whichever loops they arrived on.
 *
 * The table only keeps waiters; delivering the answer to them (directly on
 * the owner's loop, through an inbox on others) is the caller's business.
 */
#ifndef RBLMUX_RESOLVER_INFLIGHT_H
#define RBLMUX_RESOLVER_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

/* Caller-owned memory, linked into the table while waiting. It must stay
 * valid until inflight_finish hands it back. */
struct inflight_waiter {
	struct inflight_waiter *next;
	void *worker;     /* the loop that must be told */
	void *query;
	unsigned slot;    /* which of the query's lookups this is */
};

struct inflight_table;

struct inflight_table *inflight_new(void);
void inflight_free(struct inflight_table *t);

/*
 * Add w as a waiter on key. Returns 1 when w is the first (the caller owns
 * the lookup and must call inflight_finish once, whatever happens), 0 when
 * it joined a lookup already in flight, -ENOMEM.
 */
int inflight_join(struct inflight_table *t, const uint8_t *key, size_t key_len,
		  struct inflight_waiter *w);

/* Remove key and return its waiters (first asker first); NULL when the key
 * is not in flight. */
struct inflight_waiter *inflight_finish(struct inflight_table *t,
					const uint8_t *key, size_t key_len);

#endif
