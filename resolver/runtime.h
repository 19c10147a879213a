/*
 * runtime: one loaded configuration and everything derived from it that the
 * loops read while answering (source table, zone for the name classifier,
 * SOA). Immutable once built; reference counted so that a reload swaps in a
 * new one while queries that started under the old one finish under it.
 */
#ifndef RBLMUX_RESOLVER_RUNTIME_H
#define RBLMUX_RESOLVER_RUNTIME_H

#include <stdatomic.h>
#include <stdint.h>

#include "resolver/config.h"
#include "resolver/health.h"
#include "zones/qname.h"

struct rt_source {
	const struct config_source *cfg;
	struct health_source *health;   /* shared across reloads by zone */
	const char *servers_csv;        /* NULL: the system resolvers */
	uint32_t timeout_ms;
	int lo, hi;                     /* what it can add to a score */
};

struct runtime {
	atomic_int refs;
	struct config *cfg;             /* owned */
	struct rt_source *src;          /* cfg->nsources entries */
	struct qname_source *qsrc;
	struct qname_zone qzone;
	struct score_rules ptr_rules;   /* [ptr] weights, as rules for the tally */
	uint32_t serial;                /* SOA serial: when it was loaded */
	uint8_t rname[DNSWIRE_NAME_MAX];/* hostmaster.<apex> */
	size_t rname_len;
};

/*
 * Build a runtime from cfg_own (ownership passes to the runtime, also on
 * failure). Returns 0 with *out (one reference) or a negative errno.
 */
int runtime_new(struct config *cfg_own, struct health_table *ht,
		struct runtime **out);

static inline void runtime_ref(struct runtime *rt)
{
	atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
}

void runtime_unref(struct runtime *rt);

#endif
