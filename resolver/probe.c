#include "resolver/probe.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolver/health.h"
#include "resolver/log.h"
#include "resolver/runtime.h"
#include "resolver/server.h"
#include "resolver/upstream.h"
#include "zones/qname.h"
#include "zones/score.h"

struct probe {
	struct runtime *rt;
	unsigned src;
	int answers;                 /* 0..2 */
	struct listans listed, unlisted;
};

struct probe_half {
	struct probe *p;
	bool listed_point;
};

static enum health_probe_result probe_judge(const struct probe *p)
{
	const struct score_rules *rules = &p->rt->src[p->src].cfg->rules;
	int weight;
	uint32_t code;
	if (p->unlisted.status == LISTANS_RECORDS &&
	    score_source(rules, &p->unlisted, &weight, &code) == SCORE_LISTED)
		return PROBE_WORLD;
	if (p->listed.status == LISTANS_RECORDS)
		return score_source(rules, &p->listed, &weight, &code) == SCORE_LISTED
			       ? PROBE_PASS : PROBE_NO_ANSWER;
	if (p->listed.status >= LISTANS_SERVFAIL)
		return PROBE_NO_ANSWER;
	return PROBE_MISSING_TEST;
}

static void probe_done(void *arg, const struct listans *ans, uint64_t latency_us)
{
	struct probe_half *h = arg;
	struct probe *p = h->p;
	*(h->listed_point ? &p->listed : &p->unlisted) = *ans;
	free(h);
	if (++p->answers < 2)
		return;
	const struct rt_source *s = &p->rt->src[p->src];
	char reason[80];
	enum health_probe_result r = probe_judge(p);
	if (health_probe_done(s->health, r)) {
		uint32_t p50;
		double err;
		if (health_snapshot(s->health, &p50, &err, reason, sizeof(reason)) == HEALTH_DOWN)
			log_warn("source %s (%s) is down: %s; it counts 0 until it recovers",
				 s->cfg->name, s->cfg->zone_text, reason);
		else
			log_notice("source %s (%s) is up again", s->cfg->name, s->cfg->zone_text);
	}
	runtime_unref(p->rt);
	free(p);
}

static int probe_name(const struct rt_source *s, bool listed, uint8_t *out, size_t cap)
{
	const struct config_source *c = s->cfg;
	if (c->type == QSRC_DOMAIN) {
		static const uint8_t test[] = "\x04test\x00", invalid[] = "\x07invalid\x00";
		const uint8_t *d = listed ? test : invalid;
		/* Without the root byte: the zone follows. */
		size_t dlen = (listed ? sizeof(test) : sizeof(invalid)) - 2;
		return qname_build_domain(d, dlen, c->zone, c->zone_len, out, cap);
	}
	struct qname_addr ip;
	memset(&ip, 0, sizeof(ip));
	if (c->type == QSRC_IP6) {
		ip.family = AF_INET6;
		ip.addr[10] = ip.addr[11] = 0xff;
		ip.addr[12] = 127;
		ip.addr[15] = listed ? 2 : 1;
	} else {
		ip.family = AF_INET;
		ip.addr[0] = 127;
		ip.addr[3] = listed ? 2 : 1;
	}
	return qname_build_ip(&ip, c->zone, c->zone_len, out, cap);
}

static void probe_source(struct worker *w, struct runtime *rt, unsigned i)
{
	const struct rt_source *s = &rt->src[i];
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->rt = rt;
	p->src = i;
	runtime_ref(rt);
	int started = 0;
	for (int half = 0; half < 2; half++) {
		bool listed = half == 0;
		uint8_t name[DNSWIRE_NAME_MAX];
		int len = probe_name(s, listed, name, sizeof(name));
		struct probe_half *h = malloc(sizeof(*h));
		if (h) {
			h->p = p;
			h->listed_point = listed;
		}
		if (len < 0 || !h ||
		    upstream_query(w->up, s->servers_csv, s->timeout_ms, name, (size_t)len,
				   DNS_T_A, probe_done, h) < 0) {
			free(h);
			/* Count the half that could not start as not answered. */
			(listed ? &p->listed : &p->unlisted)->status = LISTANS_SERVFAIL;
			p->answers++;
			continue;
		}
		started++;
	}
	if (!started) {
		runtime_unref(rt);
		free(p);
	}
}

void probe_all(struct worker *w)
{
	struct runtime *rt = w->rt;
	for (unsigned i = 0; i < rt->cfg->nsources; i++)
		if (rt->src[i].cfg->enabled)
			probe_source(w, rt, i);
}
