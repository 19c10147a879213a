/*
 * spf: SPF verdicts for the spf. view (SPEC §2), on rblmuxd's side.
 *
 * One spf_service per event loop. It starts the SPF helper (rblmux-spf, see
 * spfhelper.c) over a socketpair, sends it the checks, and answers each DNS
 * question the helper asks with the loop's upstream resolvers (so SPF goes
 * through rblmuxd's own upstream configuration): the packet is read here
 * (zones/spf_dns) and only the records go back. The helper parses the SPF
 * records, which are attacker-written: it runs unprivileged and sandboxed,
 * and when it dies the checks it held are answered temperror and a new one
 * is started (with a backoff), while checks not yet sent wait for it; one
 * that lets many checks in a row run out of time without a single result
 * is killed as stuck.
 *
 * Nothing here blocks the loop. Every check ends within the time limit: a
 * temperror at the latest. Verdicts are cached per (client address, domain,
 * local part) in the cache tier, for the smallest TTL of the DNS answers the
 * evaluation used, at most [spf] ttl; temperrors are not cached. Identical
 * checks in flight on one loop share one evaluation.
 *
 * In-process cache keys start with zone id 0 (lookup.c's list zones count
 * from 1), then 'S' 'P'; see spf.c. The shared tier gets readable keys.
 */
#ifndef RBLMUX_RESOLVER_SPF_H
#define RBLMUX_RESOLVER_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cache/cache.h"
#include "resolver/upstream.h"
#include "zones/spf_eval.h"

/* The TXT answer is one character-string: under 255 bytes. */
#define SPF_TXT_MAX 254

struct spf_service;

struct spf_options {
	const char *helper_path;        /* the rblmux-spf executable */
	const char *const *helper_args; /* more arguments (NULL-terminated), or NULL */
	unsigned helper_threads;        /* evaluations at once in the helper (0: 64) */
	const char *helper_user;        /* the helper's user when rblmuxd is root
					 * (NULL: "nobody") */
	struct upstream_pool *up;       /* this loop's pool */
	const char *servers_csv;        /* resolvers asked (NULL: "system") */
	uint32_t dns_timeout_ms;        /* per question (0: 1500) */
	uint32_t time_limit_ms;         /* per check, from spf_check to the verdict
					 * (0: 2000) */
	uint32_t ttl_max_s;             /* [spf] ttl (0: 300) */
	uint32_t error_ttl_s;           /* TTL given with a temperror (0: 30) */
	struct cache_tier *cache;       /* verdict cache, or NULL: the in-process
					 * tier, asked synchronously */
	struct cache_tier *shared;      /* a second tier asked after a miss in
					 * cache (Redis, for a fleet), or NULL; its
					 * keys are text: "spf:<address>:<local
					 * part>@<domain>" */
	const char *receiver;           /* %{r} in explanations (NULL: "unknown") */
	unsigned max_pending;           /* checks queued or running (0: 4096); more
					 * are answered temperror at once */
};

/* A check: SPF check_host(ip, domain) for MAIL FROM <local_part>@<domain>,
 * HELO <domain> (SPEC §2). */
struct spf_request {
	int family;                     /* AF_INET or AF_INET6 (IPv4-mapped IPv6:
					 * checked as IPv4) */
	uint8_t ip[16];                 /* network order */
	const uint8_t *domain;          /* wire form, as the question named it */
	size_t domain_len;
	const uint8_t *local_part;      /* the label's bytes, case kept (a '.' in
					 * it is part of it); NULL or empty:
					 * "postmaster" */
	size_t local_part_len;
};

enum spf_source {
	SPF_SRC_CACHE = 0,      /* a fresh cached verdict */
	SPF_SRC_HELPER = 1,     /* evaluated for this check */
	SPF_SRC_COALESCED = 2,  /* joined an evaluation another check started */
	SPF_SRC_LOCAL = 3,      /* decided here: malformed name, overload, helper
				 * down or too slow, shutdown */
};

struct spf_verdict {
	enum spf_result result;
	uint32_t ttl;                   /* seconds; not clamped to [min_ttl, max_ttl] */
	uint8_t source;                 /* enum spf_source */
	uint64_t latency_us;            /* spf_check to verdict */
	/* A Received-SPF header value: result, then a comment, e.g.
	 * "fail (example.com: 192.0.2.9 is not a permitted sender)"; for a
	 * fail, the comment is the domain's own explanation when it gave one.
	 * Printable ASCII, at most SPF_TXT_MAX bytes. */
	char txt[SPF_TXT_MAX + 1];
};

/* The verdict of a check that did not finish inside spf_check. Called
 * exactly once, on the service's loop, never from inside spf_check. v is
 * valid only during the call. */
typedef void (*spf_done_cb)(void *arg, const struct spf_verdict *v);

/*
 * Start the service on loop (its helper starts at once; checks wait for it).
 * Strings in opt are copied. Returns 0 with *out, or a negative errno
 * (-EINVAL for missing helper_path or up).
 */
int spf_service_start(uv_loop_t *loop, const struct spf_options *opt,
		      struct spf_service **out);

/*
 * Change the options of a running service (a reload): servers, timeouts,
 * TTLs, cache, receiver and max_pending take effect for new checks;
 * helper_path, helper_args, helper_threads and helper_user at the next
 * helper start. Returns 0 or -ENOMEM (the old options stay).
 */
int spf_service_set_options(struct spf_service *s, const struct spf_options *opt);

/*
 * Check req. Returns 1 when the verdict is known at once (*now filled; cb
 * is not called): a cache hit, a name that needs no evaluation, or an
 * overload (temperror). Returns 0 when cb will be called later, exactly
 * once. Returns -EINVAL (bad family, empty domain) or -ESHUTDOWN (stopping):
 * cb is never called.
 */
int spf_check(struct spf_service *s, const struct spf_request *req,
	      spf_done_cb cb, void *arg, struct spf_verdict *now);

/*
 * Stop: every check not yet answered is answered temperror (its callback
 * runs inside this call), the helper is told to exit (its socket closes),
 * and the service frees itself once its handles are closed and its DNS
 * questions have come back: the loop must keep running until then (closing
 * the upstream pool ends the questions).
 */
void spf_service_stop(struct spf_service *s);

struct spf_stats {
	uint64_t checks;          /* spf_check calls that returned 0 or 1 */
	uint64_t cache_hits;
	uint64_t coalesced;
	uint64_t evaluations;     /* sent to a helper */
	uint64_t results;         /* results received from a helper */
	uint64_t questions;       /* DNS questions asked for helpers */
	uint64_t timeouts;        /* checks answered temperror at the time limit */
	uint64_t helper_starts;
	uint64_t helper_deaths;   /* helpers that exited or were killed */
	uint64_t refused;         /* questions refused: unknown check, over the cap */
	unsigned pending;         /* checks queued or running now */
};

void spf_service_stats(const struct spf_service *s, struct spf_stats *out);

/*
 * Where the helper is: beside the running executable (a build tree), else
 * RBLMUX_LIBEXECDIR/rblmux-spf (a compile-time define; default
 * /usr/local/libexec). Writes the path to out; returns 0, or -ENOENT when
 * neither is an executable file, -ENOSPC when cap is too small.
 */
int spf_default_helper_path(char *out, size_t cap);

/* The running helper's process id, 0 when none is up (tests kill it). */
int spf_service_helper_pid(const struct spf_service *s);

/* True once a helper has said hello and nothing since killed it. */
bool spf_service_ready(const struct spf_service *s);

#endif
