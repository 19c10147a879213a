#include "resolver/lookup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "resolver/health.h"
#include "resolver/inflight.h"
#include "resolver/log.h"
#include "resolver/metrics.h"
#include "resolver/query.h"
#include "resolver/runtime.h"
#include "resolver/server.h"
#include "resolver/upstream.h"
#include "zones/qname.h"
#include "zones/score.h"

/* The owner's side of a lookup: lives from the upstream question to its
 * answer. */
struct lookup {
	struct worker *w;
	struct runtime *rt;
	unsigned src;
	uint16_t qtype;
	uint16_t key_len;
	uint16_t rkey_len;
	uint16_t name_len;
	uint8_t key[CACHE_KEY_MAX];
	char rkey[CACHE_KEY_MAX];        /* the fleet-wide key, for Redis */
	uint8_t name[DNSWIRE_NAME_MAX];  /* the question for the list */
	struct cache_item *redis_stale;  /* an expired answer Redis still had */
};

static void lookup_ask_list(struct lookup *lk);

uint32_t lookup_now(void)
{
	return (uint32_t)time(NULL);
}

/* Key: zone id, question type, then the address or domain. The zone id is
 * per zone, not per source name, so renaming a source keeps its cache and a
 * changed zone never serves the old zone's answers. Zone ids are this
 * process's own: Redis gets the text form (build_redis_key). */
static size_t build_key(uint8_t *key, uint16_t zone_id, uint16_t qtype,
			const uint8_t *material, size_t material_len)
{
	key[0] = (uint8_t)(zone_id >> 8);
	key[1] = (uint8_t)zone_id;
	key[2] = (uint8_t)(qtype >> 8);
	key[3] = (uint8_t)qtype;
	memcpy(key + 4, material, material_len);
	return 4 + material_len;
}

/* The Redis key (after the tier's "<prefix>v1:"): "<zone>:<type>:<what>",
 * e.g. "bl.spamcop.net:A:192.0.2.1", readable with redis-cli and the same on
 * every member of a fleet. */
static int build_redis_key(char *out, size_t cap, const char *zone, uint16_t qtype,
			   int family, bool domain, const uint8_t *material,
			   size_t material_len)
{
	char what[DNSWIRE_NAME_MAX * 4 + 1];
	if (domain) {
		if (dnswire_name_to_text(material, material_len, what, sizeof(what)) < 0)
			return -EINVAL;
	} else if (!inet_ntop(family, material, what, sizeof(what))) {
		return -EINVAL;
	}
	int n = snprintf(out, cap, "%s:%s:%s", zone, qtype == DNS_T_TXT ? "TXT" : "A", what);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static void fill_result(struct lookup_result *res, uint8_t tier, uint32_t now,
			uint32_t expire, uint64_t latency_us,
			const uint8_t *val, size_t len)
{
	res->tier = tier;
	res->now = now;
	res->expire = expire;
	res->latency_us = latency_us;
	res->len = (uint16_t)len;
	memcpy(res->val, val, len);
}

int lookup_result_decode(const struct lookup_result *res, struct listans *ans,
			 bool *stale)
{
	if (res->len < 1)
		return -EBADMSG;
	*stale = (res->val[0] & LOOKUP_META_STALE) != 0;
	return listans_decode(res->val + 1, res->len - 1u, ans);
}

/* Encode a list answer as a cache value: meta byte, then the answer. */
static int encode_value(const struct listans *ans, uint8_t meta, uint8_t *buf,
			size_t cap)
{
	buf[0] = meta;
	int n = listans_encode(ans, buf + 1, cap - 1);
	return n < 0 ? n : n + 1;
}

static void deliver(struct worker *w, struct inflight_waiter *list,
		    struct lookup_result *res, bool stale)
{
	bool first = true;
	uint8_t own_tier = res->tier;
	while (list) {
		struct inflight_waiter *next = list->next;
		res->tier = stale ? TIER_STALE : first ? own_tier : TIER_COALESCED;
		first = false;
		if (list->worker == w)
			query_slot_result(list->query, list->slot, res);
		else
			worker_post(list->worker, list->query, list->slot, res);
		list = next;
	}
}

static void lookup_free(struct lookup *lk)
{
	struct worker *w = lk->w;
	runtime_unref(lk->rt);
	free(lk->redis_stale);
	free(lk);
	w->lookups_owned--;
	if (w->stopping)
		worker_stop_settled(w);
}

static void lookup_complete(struct lookup *lk, const struct listans *ans,
			    uint64_t latency_us)
{
	struct worker *w = lk->w;
	struct server *srv = w->srv;
	const struct config *cfg = lk->rt->cfg;
	const struct rt_source *src = &lk->rt->src[lk->src];
	struct cache_tier *cache = srv->cache;
	uint32_t now = lookup_now();

	bool failed = ans->status >= LISTANS_SERVFAIL;
	if (!failed && lk->qtype == DNS_T_A && ans->status == LISTANS_RECORDS) {
		int weight;
		uint32_t code;
		failed = score_source(&src->cfg->rules, ans, &weight, &code) == SCORE_FAILED;
	}
	health_record(src->health, failed, latency_us);
	metrics_upstream(w, src->health->zone_id, ans->status, failed, latency_us);

	struct lookup_result *res = malloc(sizeof(*res));
	if (!res) {
		log_err("out of memory delivering a lookup");
		abort();
	}
	uint8_t val[CACHE_VALUE_MAX];
	int len;
	uint32_t expire, stale_until;
	bool stale = false;
	if (!failed) {
		uint32_t ttl = ans->has_ttl ? ans->ttl : cfg->min_ttl_s;
		if (ttl < cfg->min_ttl_s)
			ttl = cfg->min_ttl_s;
		if (ttl > cfg->max_ttl_s)
			ttl = cfg->max_ttl_s;
		expire = now + ttl;
		stale_until = expire + cfg->stale_ttl_s;
		len = encode_value(ans, 0, val, sizeof(val));
	} else {
		struct cache_item item;
		int st = cache->ops->get(cache, lk->key, lk->key_len, now, &item, NULL, NULL);
		if (st != CACHE_STALE && lk->redis_stale && lk->redis_stale->stale_until > now) {
			item = *lk->redis_stale;
			st = CACHE_STALE;
		}
		if (st == CACHE_STALE && item.len >= 1) {
			/* RFC 8767: serve the expired answer, and ask again only
			 * after error_ttl (its "failure recheck" timer). */
			stale = true;
			memcpy(val, item.value, item.len);
			val[0] |= LOOKUP_META_STALE;
			len = item.len;
			stale_until = item.stale_until;
			expire = now + cfg->error_ttl_s;
			if (expire > stale_until)
				expire = stale_until;
		} else {
			expire = now + cfg->error_ttl_s;
			stale_until = expire;
			len = encode_value(ans, 0, val, sizeof(val));
		}
	}
	if (len < 0) {
		/* Cannot happen with CACHE_VALUE_MAX sized for LISTANS_TXT_MAX;
		 * degrade to "failed" rather than lose the waiters. */
		struct listans bad = { .status = LISTANS_BAD };
		len = encode_value(&bad, 0, val, sizeof(val));
		expire = stale_until = now + cfg->error_ttl_s;
	}
	cache->ops->put(cache, lk->key, lk->key_len, val, (size_t)len, now, expire,
			stale_until);
	if (w->redis && lk->rkey_len)
		w->redis->ops->put(w->redis, (const uint8_t *)lk->rkey, lk->rkey_len, val,
				   (size_t)len, now, expire, stale_until);
	fill_result(res, TIER_UPSTREAM, now, expire, latency_us, val, (size_t)len);
	deliver(w, inflight_finish(srv->inflight, lk->key, lk->key_len), res, stale);
	free(res);
	lookup_free(lk);
}

static void lookup_upstream_done(void *arg, const struct listans *ans,
				 uint64_t latency_us)
{
	lookup_complete(arg, ans, latency_us);
}

static void lookup_ask_list(struct lookup *lk)
{
	const struct rt_source *src = &lk->rt->src[lk->src];
	int rc = upstream_query(lk->w->up, src->servers_csv, src->timeout_ms, lk->name,
				lk->name_len, lk->qtype, lookup_upstream_done, lk);
	if (rc < 0) {
		struct listans failure = { .status = LISTANS_SERVFAIL };
		lookup_complete(lk, &failure, 0);
	}
}

/* Redis answered (or gave up within redis_timeout): a fresh entry ends the
 * lookup and fills the in-process tier; otherwise ask the list, keeping an
 * expired entry for serve-stale. */
static void lookup_redis_done(void *arg, enum cache_status status,
			      const struct cache_item *item)
{
	struct lookup *lk = arg;
	struct worker *w = lk->w;
	struct server *srv = w->srv;
	if (status == CACHE_HIT && item && item->len >= 1) {
		uint32_t now = lookup_now();
		srv->cache->ops->put(srv->cache, lk->key, lk->key_len, item->value, item->len,
				     now, item->expire, item->stale_until);
		struct lookup_result *res = malloc(sizeof(*res));
		if (res) {
			fill_result(res, TIER_REDIS, now, item->expire, 0, item->value, item->len);
			deliver(w, inflight_finish(srv->inflight, lk->key, lk->key_len), res,
				(item->value[0] & LOOKUP_META_STALE) != 0);
			free(res);
			lookup_free(lk);
			return;
		}
	}
	if (status == CACHE_STALE && item && item->len >= 1) {
		lk->redis_stale = malloc(sizeof(*lk->redis_stale));
		if (lk->redis_stale)
			memcpy(lk->redis_stale, item, sizeof(*item));
	}
	if (w->stopping) {
		struct listans failure = { .status = LISTANS_TIMEOUT };
		lookup_complete(lk, &failure, 0);
		return;
	}
	lookup_ask_list(lk);
}

int lookup_start(struct worker *w, struct runtime *rt, unsigned srcidx,
		 uint16_t qtype, int family, const uint8_t *material,
		 size_t material_len, struct inflight_waiter *waiter,
		 struct lookup_result *res)
{
	struct server *srv = w->srv;
	const struct rt_source *src = &rt->src[srcidx];
	uint8_t key[CACHE_KEY_MAX];
	size_t key_len = build_key(key, src->health->zone_id, qtype, material,
				   material_len);
	uint32_t now = lookup_now();
	struct cache_item item;
	int st = srv->cache->ops->get(srv->cache, key, key_len, now, &item, NULL, NULL);
	if (st == CACHE_HIT) {
		fill_result(res, TIER_MEM, now, item.expire, 0, item.value, item.len);
		return 1;
	}

	struct listans failure = { .status = LISTANS_SERVFAIL };
	struct lookup *lk = malloc(sizeof(*lk));
	int joined;
	if (!lk)
		goto fail_now;
	joined = inflight_join(srv->inflight, key, key_len, waiter);
	if (joined <= 0) {
		free(lk);
		if (joined == 0)
			return 0;
		goto fail_now;
	}
	lk->w = w;
	w->lookups_owned++;
	lk->rt = rt;
	runtime_ref(rt);
	lk->src = srcidx;
	lk->qtype = qtype;
	lk->key_len = (uint16_t)key_len;
	memcpy(lk->key, key, key_len);
	lk->redis_stale = NULL;

	bool domain = src->cfg->type == QSRC_DOMAIN;
	int name_len;
	if (domain) {
		name_len = qname_build_domain(material, material_len, src->cfg->zone,
					      src->cfg->zone_len, lk->name, sizeof(lk->name));
	} else {
		struct qname_addr ip = { .family = family };
		memcpy(ip.addr, material, material_len);
		name_len = qname_build_ip(&ip, src->cfg->zone, src->cfg->zone_len,
					  lk->name, sizeof(lk->name));
	}
	if (name_len < 0) {
		/* A long domain under a long zone does not fit in a name: a
		 * failed answer, delivered to the waiters (this query among
		 * them) through the normal path. */
		struct listans bad = { .status = LISTANS_BAD };
		lk->rkey_len = 0;
		lookup_complete(lk, &bad, 0);
		return 0;
	}
	lk->name_len = (uint16_t)name_len;
	int rlen = build_redis_key(lk->rkey, sizeof(lk->rkey), src->cfg->zone_text, qtype,
				   family, domain, material, material_len);
	lk->rkey_len = rlen < 0 ? 0 : (uint16_t)rlen;
	if (w->redis && lk->rkey_len &&
	    w->redis->ops->get(w->redis, (const uint8_t *)lk->rkey, lk->rkey_len, now,
			       NULL, lookup_redis_done, lk) == -EINPROGRESS)
		return 0;
	lookup_ask_list(lk);
	return 0;

fail_now:;
	uint8_t val[16];
	int len = encode_value(&failure, 0, val, sizeof(val));
	fill_result(res, TIER_UPSTREAM, now, now + rt->cfg->error_ttl_s, 0, val,
		    len < 0 ? 0 : (size_t)len);
	return 1;
}
