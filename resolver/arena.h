/*
 * arena: per-query memory (like Knot Resolver's kr_request.pool). Everything
 * a query needs while it lives comes from its arena and is freed at once when
 * the query ends; nothing is freed piecemeal.
 */
#ifndef RBLMUX_RESOLVER_ARENA_H
#define RBLMUX_RESOLVER_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct arena_block;

struct arena {
	struct arena_block *extra; /* blocks beyond the first, newest first */
	uint8_t *cur;
	size_t left;
	uint8_t first[2048];       /* most queries never allocate beyond this */
};

void arena_init(struct arena *a);

/* 16-byte aligned, zeroed memory; NULL on ENOMEM. */
void *arena_alloc(struct arena *a, size_t size);

/* Free every block but the embedded first one. */
void arena_release(struct arena *a);

#endif
