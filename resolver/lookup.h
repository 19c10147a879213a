/*
 * lookup: one list's answer for one key, through the tiers: the in-process
 * cache, a lookup already in flight (any loop), then the list itself.
 *
 * Whatever the list answers goes into the cache before the waiters hear of
 * it, so the lookups that an early answer left behind still finish into the
 * cache. Failures are cached for error_ttl; when a fresh answer fails and an
 * expired one is still within stale_ttl, the expired one is served and marked
 * stale (RFC 8767), and re-asked after error_ttl.
 */
#ifndef RBLMUX_RESOLVER_LOOKUP_H
#define RBLMUX_RESOLVER_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "zones/listans.h"

struct worker;
struct runtime;
struct inflight_waiter;

enum lookup_tier {
	TIER_MEM = 0,       /* a fresh in-process cache entry */
	TIER_UPSTREAM = 1,  /* asked the list for this query */
	TIER_COALESCED = 2, /* joined a lookup another query started */
	TIER_STALE = 3,     /* the list failed; an expired entry was served */
	TIER_REDIS = 4,     /* the shared Redis tier (another fleet member asked) */
};

/* First byte of every cached list answer, before listans_encode's bytes. */
#define LOOKUP_META_STALE 0x01

struct lookup_result {
	uint8_t tier;
	uint32_t now;          /* wall-clock seconds when it was produced */
	uint32_t expire;       /* when the data stops being fresh */
	uint64_t latency_us;   /* upstream round trip (0 from the cache) */
	uint16_t len;
	uint8_t val[CACHE_VALUE_MAX]; /* meta byte + listans encoding */
};

/*
 * Look up (source src of rt, qtype, key material) for the query q's slot on
 * worker w. The key material is the IP (4 or 16 bytes) or the domain (wire).
 * waiter is the slot's own waiter record (lives as long as q).
 * Returns 1 when *res was filled synchronously (cache hit), 0 when the answer
 * will come through query_slot_result (on w's loop), never an error: a lookup
 * that cannot be started completes as a failure.
 */
int lookup_start(struct worker *w, struct runtime *rt, unsigned src,
		 uint16_t qtype, int family, const uint8_t *material,
		 size_t material_len, struct inflight_waiter *waiter,
		 struct lookup_result *res);

/* Decode a result's answer. Returns 0 or -EBADMSG; *stale set from the meta
 * byte. */
int lookup_result_decode(const struct lookup_result *res, struct listans *ans,
			 bool *stale);

/* Wall-clock seconds. */
uint32_t lookup_now(void);

#endif
