/*
 * ptrview: the reverse-DNS flags of one client address (SPEC §2, the
 * `<ip>.ptr.<apex>` view), looked up through the worker's upstream pool and
 * remembered in the cache.
 *
 * For an address it asks PTR of the reverse name (in-addr.arpa, ip6.arpa;
 * RFC 2317 CNAMEs are followed), asks A (IPv4 client) or AAAA (IPv6 client)
 * of each PTR name in parallel (at most max_names of them), and:
 *   - no PTR (NXDOMAIN or NODATA)                      -> flag 1;
 *   - no PTR name's forward records hold the address   -> flag 2 (FCrDNS fails);
 *   - the name zones/ptrclass classifies               -> flags 4, 8, 16.
 * A lookup that fails (timeout, SERVFAIL, garbage) never becomes a flag: a
 * failed PTR lookup is "unknown", not "no PTR", and a failed forward lookup
 * withholds flag 2 (unless another name is confirmed: then it does not
 * matter). Such results are marked failed and get a short TTL.
 *
 * When several names are forward-confirmed (or none is), the one classified
 * is the most favourable (fewest and mildest flags; ties by name), so the
 * answer does not change with the order a resolver rotates the PTR records
 * into, and a properly named confirmed host is not flagged for a second,
 * generic PTR.
 *
 * The final result is cached per (level, address) with its TTL; failures
 * are cached too, for at most error_ttl, so a dead reverse zone is not asked
 * on every query. Runs on the pool's loop thread; no global state.
 */
#ifndef RBLMUX_RESOLVER_PTRVIEW_H
#define RBLMUX_RESOLVER_PTRVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "resolver/upstream.h"
#include "zones/ptrclass.h"

/* SPEC §2 flag bits of 127.0.3.<bits>. */
#define PTRVIEW_F_NO_PTR  1
#define PTRVIEW_F_NO_FCRDNS 2
#define PTRVIEW_F_DYNAMIC PTRCLASS_F_DYNAMIC   /* 4 */
#define PTRVIEW_F_EMBEDS  PTRCLASS_F_EMBEDS    /* 8 */
#define PTRVIEW_F_STATIC  PTRCLASS_F_STATIC    /* 16 */

#define PTRVIEW_MAX_NAMES 16       /* upper bound of max_names */
#define PTRVIEW_DEFAULT_NAMES 4    /* max_names 0 means this */
#define PTRVIEW_TXT_MAX 254        /* TXT bytes, one character-string */

struct ptrview_params {
	struct upstream_pool *up;  /* the calling loop's pool */
	struct cache_tier *cache;  /* NULL: no caching */
	const char *servers_csv;   /* NULL or "system": /etc/resolv.conf; copied */
	uint32_t timeout_ms;       /* per lookup (> 0) */
	uint32_t budget_ms;        /* the whole check, CNAME re-asks and forward
				    * lookups included: later lookups get what is
				    * left of it; 0 = no bound but timeout_ms each */
	uint32_t min_ttl, max_ttl, error_ttl;   /* seconds, as [cache] */
	enum ptrclass_level level;
	unsigned max_names;        /* PTR names checked; 0: PTRVIEW_DEFAULT_NAMES,
				    * more than PTRVIEW_MAX_NAMES: that */
	uint32_t (*now)(void);     /* wall-clock seconds for the cache; NULL: time() */
};

struct ptrview_result {
	uint8_t flags;             /* PTRVIEW_F_*; 0: none (NXDOMAIN) */
	bool failed;               /* a lookup failed: flags are what is known */
	bool from_cache;
	uint8_t nnames;            /* PTR names found (checked or not) */
	uint32_t ttl;              /* seconds, for the answer */
	char txt[PTRVIEW_TXT_MAX + 2]; /* NUL-terminated, at most PTRVIEW_TXT_MAX
					* bytes of printable ASCII */
};

/* Called exactly once per ptrview_check that returned 0, on the pool's loop;
 * r is valid only during the call. */
typedef void (*ptrview_cb)(void *arg, const struct ptrview_result *r);

/*
 * Check family/addr (AF_INET: 4 bytes, AF_INET6: 16; an IPv4-mapped IPv6
 * address is checked as IPv4). p is read during the call only.
 * Returns 1 with *r filled from the cache (cb never called), 0 when cb will
 * be called exactly once later (never from inside this call), or a negative
 * errno (cb never called): -EINVAL for a bad argument, or what
 * upstream_query_raw returned (-ESHUTDOWN once the pool is closing). Closing
 * the pool completes outstanding checks (as failed).
 */
int ptrview_check(const struct ptrview_params *p, int family, const uint8_t *addr,
		  ptrview_cb cb, void *arg, struct ptrview_result *r);

/*
 * What a result adds to the combined score ([ptr] weights): weight for a
 * dynamic-looking name (flag 4), weight_no_ptr for flag 1, weight_no_fcrdns
 * for flag 2. Flags 8 and 16 alone add nothing.
 */
int ptrview_weight(uint8_t flags, int weight, int weight_no_ptr, int weight_no_fcrdns);

/* The cache key of an address checked at level: "ptr:", a format byte, the
 * level, the family (4 or 6) and the address bytes. Returns its length, or
 * -EINVAL. key must hold PTRVIEW_KEY_MAX bytes. */
#define PTRVIEW_KEY_MAX 24
int ptrview_cache_key(enum ptrclass_level level, int family, const uint8_t *addr,
		      uint8_t *key);

#endif
