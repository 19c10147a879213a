#include "resolver/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int runtime_new(struct config *cfg_own, struct health_table *ht,
		struct runtime **out)
{
	int rc = -ENOMEM;
	struct runtime *rt = calloc(1, sizeof(*rt));
	if (!rt) {
		config_free(cfg_own);
		return -ENOMEM;
	}
	atomic_init(&rt->refs, 1);
	rt->cfg = cfg_own;
	size_t n = cfg_own->nsources;
	rt->src = calloc(n ? n : 1, sizeof(*rt->src));
	rt->qsrc = calloc(n ? n : 1, sizeof(*rt->qsrc));
	if (!rt->src || !rt->qsrc)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct config_source *cs = &cfg_own->sources[i];
		struct rt_source *s = &rt->src[i];
		s->cfg = cs;
		s->health = health_get(ht, cs->zone, cs->zone_len);
		if (!s->health)
			goto fail;
		const struct config_servers *sv =
			(cs->servers.n || cs->servers.system) ? &cs->servers
							      : &cfg_own->servers;
		s->servers_csv = sv->system ? NULL : sv->csv;
		s->timeout_ms = cs->timeout_ms ? cs->timeout_ms : cfg_own->timeout_ms;
		score_bounds(&cs->rules, &s->lo, &s->hi);
		rt->qsrc[i].name = cs->name;
		rt->qsrc[i].type = cs->type;
	}
	/* The PTR check adds at most the sum of its positive weights and at
	 * least the sum of its negative ones: three rules give the tally those
	 * bounds (their ranges are never matched). */
	const int ptr_weights[3] = { cfg_own->ptr.weight, cfg_own->ptr.weight_no_ptr,
				     cfg_own->ptr.weight_no_fcrdns };
	for (int i = 0; i < 3; i++)
		rt->ptr_rules.codes[rt->ptr_rules.ncodes++].weight = ptr_weights[i];
	rt->qzone.apex = cfg_own->zone;
	rt->qzone.apex_len = cfg_own->zone_len;
	rt->qzone.sources = rt->qsrc;
	rt->qzone.nsources = n;
	rt->serial = (uint32_t)time(NULL);
	static const uint8_t hostmaster[] = "\x0ahostmaster";
	rt->rname_len = sizeof(hostmaster) - 1 + cfg_own->zone_len;
	if (rt->rname_len > sizeof(rt->rname)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	memcpy(rt->rname, hostmaster, sizeof(hostmaster) - 1);
	memcpy(rt->rname + sizeof(hostmaster) - 1, cfg_own->zone, cfg_own->zone_len);
	*out = rt;
	return 0;
fail:
	free(rt->src);
	free(rt->qsrc);
	config_free(rt->cfg);
	free(rt);
	return rc;
}

void runtime_unref(struct runtime *rt)
{
	if (atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(rt->src);
	free(rt->qsrc);
	config_free(rt->cfg);
	free(rt);
}
