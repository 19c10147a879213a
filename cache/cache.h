/*
 * cache: the tiers behind one interface.
 *
 * A cache maps an opaque key (a few bytes: the resolver puts a zone id, a
 * question type and an address or domain in it) to an opaque value (a few
 * bytes: an encoded list answer, a verdict) with two absolute times, in
 * seconds of wall-clock time so that they mean the same across a fleet:
 *   expire       the value is fresh until then;
 *   stale_until  after expire and until then it may still be served when the
 *                source fails (RFC 8767); never after.
 *
 * The cache never decides TTLs or logs: the caller computes expire and
 * stale_until (clamping, error_ttl, ...) and decides what a miss means.
 *
 * Tiers are pluggable (struct cache_tier_ops, one file per implementation,
 * as unbound's cachedb backends): cache_mem.c (in-process, shared by every
 * loop thread, sharded locks, memory bound with CLOCK eviction); a Redis tier
 * slots in behind it with the same operations, its get completing later on
 * the caller's loop.
 */
#ifndef RBLMUX_CACHE_CACHE_H
#define RBLMUX_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_MAX 260
#define CACHE_VALUE_MAX 1280

enum cache_status {
	CACHE_MISS = 0,
	CACHE_HIT = 1,    /* fresh */
	CACHE_STALE = 2,  /* expired, within stale_until */
};

struct cache_item {
	uint32_t expire;
	uint32_t stale_until;
	uint32_t stored;      /* when it was stored: age = now - stored */
	uint16_t len;
	uint8_t value[CACHE_VALUE_MAX];
};

/* Called when an asynchronous get finishes: status and, unless CACHE_MISS,
 * the item (valid only during the call). A tier that fails (Redis down,
 * timed out) reports CACHE_MISS. */
typedef void (*cache_get_cb)(void *arg, enum cache_status status,
			     const struct cache_item *item);

struct cache_tier;

struct cache_tier_ops {
	const char *name;    /* "mem", "redis": shown in diagnostics */
	/*
	 * Look key up as of now. A synchronous tier fills *item and returns the
	 * status (>= 0) without calling cb. An asynchronous tier returns
	 * -EINPROGRESS and calls cb exactly once later; any other negative
	 * return means cb will never be called (treat as a miss).
	 */
	int (*get)(struct cache_tier *t, const uint8_t *key, size_t key_len,
		   uint32_t now, struct cache_item *item, cache_get_cb cb, void *arg);
	/* Store (replace) a value. Fire and forget: failures are counted by the
	 * tier, never reported. Values over CACHE_VALUE_MAX are not stored. */
	void (*put)(struct cache_tier *t, const uint8_t *key, size_t key_len,
		    const uint8_t *value, size_t len, uint32_t now,
		    uint32_t expire, uint32_t stale_until);
	/* Free the tier. */
	void (*destroy)(struct cache_tier *t);
};

struct cache_tier {
	const struct cache_tier_ops *ops;
};

/* ---------------------------------------------------- in-process tier */

struct cache_mem_stats {
	uint64_t entries;
	uint64_t bytes;        /* accounted bytes (entries + table), <= limit */
	uint64_t hits, stale_hits, misses, inserts, evictions;
	uint64_t drops;        /* puts not stored: malformed, bigger than a
				  shard's share of the limit, out of memory */
};

/*
 * Create the in-process tier: thread safe, at most limit_bytes accounted
 * (entry blocks as allocated plus the hash table). Returns NULL on ENOMEM or
 * a limit too small to hold the table (< 64 KiB).
 */
struct cache_tier *cache_mem_new(size_t limit_bytes);

/* Statistics of an in-process tier (thread safe, approximate). */
void cache_mem_get_stats(struct cache_tier *t, struct cache_mem_stats *out);

/* Change the memory bound at run time (reload); evicts down to it. A limit
 * under 64 KiB is taken as 64 KiB. */
void cache_mem_set_limit(struct cache_tier *t, size_t limit_bytes);

/* Drop every entry (tests, benchmarks). */
void cache_mem_clear(struct cache_tier *t);

#endif
