#include "resolver/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "cache/cache_redis.h"
#include "resolver/health.h"
#include "resolver/log.h"
#include "resolver/lookup.h"
#include "resolver/runtime.h"
#include "resolver/server.h"
#include "zones/dnswire.h"
#include "zones/listans.h"
#include "zones/qname.h"

typedef _Atomic uint64_t ctr_t;

/* Only the owning loop writes: load + store, no locked add. */
static inline void ctr_add(ctr_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t ctr_get(ctr_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ------------------------------------------------------------ layout */

/* Index = view + 1: METRICS_VIEW_NONE first, then enum qname_view. */
static const char *const view_names[] = {
	"none", "outside", "nxdomain", "ent", "apex", "combined", "score", "source",
	"rhs", "ptr", "spf", "health",
};
#define NVIEWS (sizeof(view_names) / sizeof(view_names[0]))

static const struct { uint16_t type; const char *name; } qtypes[] = {
	{ DNS_T_A, "A" }, { DNS_T_NS, "NS" }, { DNS_T_SOA, "SOA" }, { DNS_T_PTR, "PTR" },
	{ DNS_T_MX, "MX" }, { DNS_T_TXT, "TXT" }, { DNS_T_AAAA, "AAAA" },
	{ DNS_T_ANY, "ANY" },
};
#define NQTYPES (sizeof(qtypes) / sizeof(qtypes[0]) + 1) /* + "other" */

static const char *const rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
};
#define NRCODES (sizeof(rcode_names) / sizeof(rcode_names[0]))

/* enum lookup_tier order */
static const char *const tier_names[] = { "mem", "upstream", "coalesced", "stale", "redis" };
#define NTIERS (sizeof(tier_names) / sizeof(tier_names[0]))

enum { UP_LISTED, UP_NOT_LISTED, UP_ERROR_CODE, UP_SERVFAIL, UP_TIMEOUT, UP_BAD, NUP };
static const char *const upstream_names[NUP] = {
	"listed", "not_listed", "error_code", "servfail", "timeout", "bad",
};

/* enum spf_result 1..7 */
static const char *const spf_names[] = {
	"pass", "fail", "softfail", "neutral", "none", "permerror", "temperror",
};
#define NSPF (sizeof(spf_names) / sizeof(spf_names[0]))

/* Upper bounds of the latency buckets, µs: 250 µs to 5 s. */
static const uint64_t bucket_us[] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

struct hist {
	ctr_t bucket[NBUCKETS + 1];  /* the last one is +Inf */
	ctr_t sum_us;
};

struct zone_counters {
	ctr_t lookups[NTIERS];
	ctr_t upstream[NUP];
	struct hist upstream_lat;
};

struct loop_counters {
	ctr_t queries[NVIEWS][NQTYPES][NRCODES];
	struct hist query_lat[NVIEWS];
	ctr_t spf[NSPF];
	_Atomic(struct zone_counters *) zones[HEALTH_MAX_ZONES + 1];
};

struct http_conn;

struct http_server {
	uv_tcp_t listener;
	bool closing;
	unsigned nconns;
	struct http_conn *conns;
};

struct metrics {
	struct server *srv;
	unsigned nloops;
	struct loop_counters **loops;
	time_t started;
	struct http_server *http;
};

static struct metrics *M;

static struct loop_counters *loop_of(const struct worker *w)
{
	if (!M || w->idx >= M->nloops)
		return NULL;
	return M->loops[w->idx];
}

static void hist_observe(struct hist *h, uint64_t us)
{
	size_t i = 0;
	while (i < NBUCKETS && us > bucket_us[i])
		i++;
	ctr_add(&h->bucket[i], 1);
	ctr_add(&h->sum_us, us);
}

/* ------------------------------------------------------------ hooks */

static unsigned qtype_index(uint16_t qtype)
{
	for (unsigned i = 0; i < NQTYPES - 1; i++)
		if (qtypes[i].type == qtype)
			return i;
	return NQTYPES - 1;
}

static unsigned rcode_index(unsigned rcode)
{
	if (rcode <= DNS_R_REFUSED)
		return rcode;
	return rcode == DNS_R_BADVERS ? 6 : NRCODES - 1;
}

void metrics_answer(struct worker *w, int view, uint16_t qtype, unsigned rcode,
		    uint64_t start_ms)
{
	struct loop_counters *m = loop_of(w);
	if (!m)
		return;
	unsigned v = view + 1 >= 0 && (size_t)(view + 1) < NVIEWS ? (unsigned)(view + 1) : 0;
	ctr_add(&m->queries[v][qtype_index(qtype)][rcode_index(rcode)], 1);
	uint64_t now = uv_now(&w->loop);
	hist_observe(&m->query_lat[v], start_ms && now > start_ms ? (now - start_ms) * 1000 : 0);
}

/* The zone's counters of this loop, made on first use (NULL without
 * memory: that event goes uncounted). */
static struct zone_counters *zone_of(struct loop_counters *m, uint16_t zone_id)
{
	if (zone_id > HEALTH_MAX_ZONES)
		return NULL;
	struct zone_counters *z = atomic_load_explicit(&m->zones[zone_id], memory_order_relaxed);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (z)
		atomic_store_explicit(&m->zones[zone_id], z, memory_order_release);
	return z;
}

void metrics_lookup(struct worker *w, uint16_t zone_id, unsigned tier)
{
	struct loop_counters *m = loop_of(w);
	struct zone_counters *z = m ? zone_of(m, zone_id) : NULL;
	if (z && tier < NTIERS)
		ctr_add(&z->lookups[tier], 1);
}

void metrics_upstream(struct worker *w, uint16_t zone_id, unsigned status,
		      bool failed, uint64_t latency_us)
{
	struct loop_counters *m = loop_of(w);
	struct zone_counters *z = m ? zone_of(m, zone_id) : NULL;
	if (!z)
		return;
	unsigned r;
	switch (status) {
	case LISTANS_RECORDS: r = failed ? UP_ERROR_CODE : UP_LISTED; break;
	case LISTANS_NXDOMAIN:
	case LISTANS_NODATA: r = UP_NOT_LISTED; break;
	case LISTANS_SERVFAIL: r = UP_SERVFAIL; break;
	case LISTANS_TIMEOUT: r = UP_TIMEOUT; break;
	default: r = UP_BAD; break;
	}
	ctr_add(&z->upstream[r], 1);
	/* A question that never went out has no duration to show. */
	if (latency_us)
		hist_observe(&z->upstream_lat, latency_us);
}

void metrics_spf(struct worker *w, unsigned result)
{
	struct loop_counters *m = loop_of(w);
	if (m && result >= 1 && result <= NSPF)
		ctr_add(&m->spf[result - 1], 1);
}

/* ---------------------------------------------------------- rendering */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: \\, \" and \n escaped. Source names
 * are DNS labels and never need it, but the format is strict. */
static const char *label_value(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	for (; *s && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			out[n++] = '\\';
			out[n++] = *s;
		} else if (*s == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	return out;
}

/* Sum of every loop's histogram (non-cumulative buckets). */
struct hist_sum {
	uint64_t bucket[NBUCKETS + 1];
	uint64_t sum_us;
};

static void hist_add(struct hist_sum *s, struct hist *h)
{
	for (size_t i = 0; i <= NBUCKETS; i++)
		s->bucket[i] += ctr_get(&h->bucket[i]);
	s->sum_us += ctr_get(&h->sum_us);
}

static uint64_t hist_count(const struct hist_sum *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i <= NBUCKETS; i++)
		n += s->bucket[i];
	return n;
}

/* labels: "" or 'name="v",' (with the trailing comma). */
static void hist_render(struct sbuf *b, const char *name, const char *labels,
			const struct hist_sum *s)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += s->bucket[i];
		sb_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, bucket_us[i] / 1e6,
			  (unsigned long long)cum);
	}
	cum += s->bucket[NBUCKETS];
	sb_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	/* The same labels without the trailing comma, and no braces without
	 * labels, for _sum and _count. */
	int ll = (int)strlen(labels);
	sb_printf(b, "%s_sum%s%.*s%s %.6f\n", name, ll ? "{" : "", ll ? ll - 1 : 0, labels,
		  ll ? "}" : "", s->sum_us / 1e6);
	sb_printf(b, "%s_count%s%.*s%s %llu\n", name, ll ? "{" : "", ll ? ll - 1 : 0, labels,
		  ll ? "}" : "", (unsigned long long)cum);
}

static uint64_t stat_sum(const struct server *srv, size_t offset)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		/* Written by each loop as plain counters: aligned 64-bit loads
		 * are not torn on the platforms rblmuxd runs on. */
		uint64_t *c = (uint64_t *)((char *)&srv->workers[i].stats + offset);
		n += __atomic_load_n(c, __ATOMIC_RELAXED);
	}
	return n;
}

static void render_process(struct sbuf *b, struct server *srv, const struct runtime *rt)
{
	family(b, "rblmux_build_info", "gauge", "Always 1; the version of rblmuxd answering.");
	sb_printf(b, "rblmux_build_info{version=\"%s\"} 1\n", RBLMUX_VERSION);
	family(b, "rblmux_start_time_seconds", "gauge", "When rblmuxd started, Unix time.");
	sb_printf(b, "rblmux_start_time_seconds %lld\n", (long long)M->started);
	family(b, "rblmux_config_load_time_seconds", "gauge",
	       "When the configuration in force was loaded (the SOA serial), Unix time.");
	sb_printf(b, "rblmux_config_load_time_seconds %u\n", rt->serial);
	family(b, "rblmux_loops", "gauge", "Event loop threads.");
	sb_printf(b, "rblmux_loops %u\n", srv->nworkers);
	family(b, "rblmux_sources", "gauge", "Configured sources (lists).");
	sb_printf(b, "rblmux_sources %zu\n", rt->cfg->nsources);
}

static void render_queries(struct sbuf *b, struct server *srv)
{
	family(b, "rblmux_queries_total", "counter",
	       "Questions answered, by view, question type and response code.");
	for (size_t v = 0; v < NVIEWS; v++)
		for (size_t t = 0; t < NQTYPES; t++)
			for (size_t r = 0; r < NRCODES; r++) {
				uint64_t n = 0;
				for (unsigned i = 0; i < M->nloops; i++)
					n += ctr_get(&M->loops[i]->queries[v][t][r]);
				if (!n)
					continue;
				sb_printf(b, "rblmux_queries_total{view=\"%s\",qtype=\"%s\",rcode=\"%s\"} %llu\n",
					  view_names[v], t < NQTYPES - 1 ? qtypes[t].name : "other",
					  rcode_names[r], (unsigned long long)n);
			}
	family(b, "rblmux_queries_dropped_total", "counter",
	       "Packets dropped without an answer (no readable DNS header).");
	sb_printf(b, "rblmux_queries_dropped_total %llu\n",
		  (unsigned long long)stat_sum(srv, offsetof(struct worker_stats, dropped)));
	family(b, "rblmux_tcp_connections_total", "counter", "TCP connections accepted.");
	sb_printf(b, "rblmux_tcp_connections_total %llu\n",
		  (unsigned long long)stat_sum(srv, offsetof(struct worker_stats, tcp_conns)));

	family(b, "rblmux_query_duration_seconds", "histogram",
	       "Time from question to answer, by view (loop clock: 1 ms resolution; "
	       "answers given at once count 0).");
	for (size_t v = 0; v < NVIEWS; v++) {
		struct hist_sum s;
		memset(&s, 0, sizeof(s));
		for (unsigned i = 0; i < M->nloops; i++)
			hist_add(&s, &M->loops[i]->query_lat[v]);
		if (!hist_count(&s))
			continue;
		char labels[64];
		snprintf(labels, sizeof(labels), "view=\"%s\",", view_names[v]);
		hist_render(b, "rblmux_query_duration_seconds", labels, &s);
	}
}

static void render_sources(struct sbuf *b, const struct runtime *rt)
{
	size_t n = rt->cfg->nsources;
	char name[160];

	family(b, "rblmux_lookups_total", "counter",
	       "List answers that reached a query, by source and where they came from: "
	       "mem (in-process cache), redis, upstream (asked for this query), "
	       "coalesced (joined a question in flight), stale (served expired, RFC 8767).");
	for (size_t i = 0; i < n; i++) {
		uint16_t zid = rt->src[i].health->zone_id;
		label_value(rt->src[i].cfg->name, name, sizeof(name));
		for (size_t t = 0; t < NTIERS; t++) {
			uint64_t c = 0;
			for (unsigned l = 0; l < M->nloops; l++) {
				struct zone_counters *z = atomic_load_explicit(
					&M->loops[l]->zones[zid], memory_order_acquire);
				if (z)
					c += ctr_get(&z->lookups[t]);
			}
			sb_printf(b, "rblmux_lookups_total{source=\"%s\",tier=\"%s\"} %llu\n",
				  name, tier_names[t], (unsigned long long)c);
		}
	}

	family(b, "rblmux_upstream_queries_total", "counter",
	       "Questions to the lists' resolvers, by source and outcome "
	       "(error_code: an answer in the source's errors range).");
	for (size_t i = 0; i < n; i++) {
		uint16_t zid = rt->src[i].health->zone_id;
		label_value(rt->src[i].cfg->name, name, sizeof(name));
		for (size_t r = 0; r < NUP; r++) {
			uint64_t c = 0;
			for (unsigned l = 0; l < M->nloops; l++) {
				struct zone_counters *z = atomic_load_explicit(
					&M->loops[l]->zones[zid], memory_order_acquire);
				if (z)
					c += ctr_get(&z->upstream[r]);
			}
			sb_printf(b, "rblmux_upstream_queries_total{source=\"%s\",result=\"%s\"} %llu\n",
				  name, upstream_names[r], (unsigned long long)c);
		}
	}

	family(b, "rblmux_upstream_duration_seconds", "histogram",
	       "Time from sending a list's question to its answer or timeout, by source.");
	for (size_t i = 0; i < n; i++) {
		uint16_t zid = rt->src[i].health->zone_id;
		struct hist_sum s;
		memset(&s, 0, sizeof(s));
		for (unsigned l = 0; l < M->nloops; l++) {
			struct zone_counters *z = atomic_load_explicit(&M->loops[l]->zones[zid],
								       memory_order_acquire);
			if (z)
				hist_add(&s, &z->upstream_lat);
		}
		char labels[200];
		snprintf(labels, sizeof(labels), "source=\"%s\",",
			 label_value(rt->src[i].cfg->name, name, sizeof(name)));
		hist_render(b, "rblmux_upstream_duration_seconds", labels, &s);
	}

	static const enum health_state states[] = { HEALTH_OK, HEALTH_DEGRADED, HEALTH_DOWN,
						    HEALTH_DISABLED };
	family(b, "rblmux_source_state", "gauge",
	       "1 for the state each source is in (ok, degraded, down, disabled), else 0.");
	struct snap { enum health_state st; uint32_t p50; double err; } *snaps =
		calloc(n ? n : 1, sizeof(*snaps));
	if (!snaps) {
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char reason[80];
		snaps[i].st = health_snapshot(rt->src[i].health, &snaps[i].p50, &snaps[i].err,
					      reason, sizeof(reason));
		if (!rt->src[i].cfg->enabled)
			snaps[i].st = HEALTH_DISABLED;
		label_value(rt->src[i].cfg->name, name, sizeof(name));
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++)
			sb_printf(b, "rblmux_source_state{source=\"%s\",state=\"%s\"} %d\n", name,
				  health_state_name(states[k]), snaps[i].st == states[k]);
	}
	family(b, "rblmux_source_error_ratio", "gauge",
	       "Share of a source's recent answers that failed (decaying average, 0..1).");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "rblmux_source_error_ratio{source=\"%s\"} %.4f\n",
			  label_value(rt->src[i].cfg->name, name, sizeof(name)), snaps[i].err);
	family(b, "rblmux_source_latency_p50_seconds", "gauge",
	       "Median of a source's last answers' latency.");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "rblmux_source_latency_p50_seconds{source=\"%s\"} %.6f\n",
			  label_value(rt->src[i].cfg->name, name, sizeof(name)), snaps[i].p50 / 1e6);
	free(snaps);
}

static void render_cache(struct sbuf *b, struct server *srv, const struct runtime *rt)
{
	struct cache_mem_stats cs;
	cache_mem_get_stats(srv->cache, &cs);
	family(b, "rblmux_cache_entries", "gauge", "Entries in the in-process cache.");
	sb_printf(b, "rblmux_cache_entries %llu\n", (unsigned long long)cs.entries);
	family(b, "rblmux_cache_bytes", "gauge", "Bytes the in-process cache holds (accounted).");
	sb_printf(b, "rblmux_cache_bytes %llu\n", (unsigned long long)cs.bytes);
	family(b, "rblmux_cache_limit_bytes", "gauge", "The in-process cache's bound ([cache] memory).");
	sb_printf(b, "rblmux_cache_limit_bytes %llu\n", (unsigned long long)rt->cfg->memory_bytes);
	family(b, "rblmux_cache_gets_total", "counter",
	       "Reads of the in-process cache, by result (lists, PTR and SPF alike).");
	sb_printf(b, "rblmux_cache_gets_total{result=\"hit\"} %llu\n", (unsigned long long)cs.hits);
	sb_printf(b, "rblmux_cache_gets_total{result=\"stale\"} %llu\n",
		  (unsigned long long)cs.stale_hits);
	sb_printf(b, "rblmux_cache_gets_total{result=\"miss\"} %llu\n", (unsigned long long)cs.misses);
	family(b, "rblmux_cache_evictions_total", "counter",
	       "Entries evicted from the in-process cache to stay under its bound.");
	sb_printf(b, "rblmux_cache_evictions_total %llu\n", (unsigned long long)cs.evictions);

	static const char *const redis_states[] = { "connecting", "up", "down", "auth-failed" };
	unsigned per_state[4] = { 0 };
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];
		if (!__atomic_load_n(&w->redis, __ATOMIC_RELAXED))
			continue;
		int st = atomic_load(&w->redis_state);
		if (st >= 0 && st < 4)
			per_state[st]++;
	}
	family(b, "rblmux_redis_connections", "gauge",
	       "Loops whose Redis connection is in each state (all 0 without [cache] redis).");
	for (size_t k = 0; k < 4; k++)
		sb_printf(b, "rblmux_redis_connections{state=\"%s\"} %u\n", redis_states[k],
			  per_state[k]);
}

static void render_spf(struct sbuf *b)
{
	family(b, "rblmux_spf_checks_total", "counter", "SPF checks (spf view), by result.");
	for (size_t r = 0; r < NSPF; r++) {
		uint64_t n = 0;
		for (unsigned i = 0; i < M->nloops; i++)
			n += ctr_get(&M->loops[i]->spf[r]);
		sb_printf(b, "rblmux_spf_checks_total{result=\"%s\"} %llu\n", spf_names[r],
			  (unsigned long long)n);
	}
}

int metrics_render(struct server *srv, char **out, size_t *len)
{
	if (!M || M->srv != srv)
		return -ENODEV;
	struct sbuf b = { .cap = 16384 };
	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	struct runtime *rt = server_runtime(srv);
	render_process(&b, srv, rt);
	render_queries(&b, srv);
	render_sources(&b, rt);
	render_cache(&b, srv, rt);
	render_spf(&b);
	runtime_unref(rt);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* -------------------------------------------------------------- HTTP */

static const char *find_head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i + 4;
	}
	return NULL;
}

int metrics_http_route(const char *buf, size_t len, bool *head_only)
{
	*head_only = false;
	if (!find_head_end(buf, len))
		return len >= METRICS_REQUEST_MAX ? 431 : 0;
	const char *eol = memchr(buf, '\n', len);
	size_t line = (size_t)(eol - buf);
	if (line && buf[line - 1] == '\r')
		line--;
	const char *sp1 = memchr(buf, ' ', line);
	if (!sp1 || sp1 == buf)
		return 400;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', line - (size_t)(target - buf));
	if (!sp2 || sp2 == target)
		return 400;
	const char *version = sp2 + 1;
	size_t vlen = line - (size_t)(version - buf);
	if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9')
		return 400;
	size_t mlen = (size_t)(sp1 - buf), tlen = (size_t)(sp2 - target);
	bool get = mlen == 3 && memcmp(buf, "GET", 3) == 0;
	bool head = mlen == 4 && memcmp(buf, "HEAD", 4) == 0;
	bool path = tlen >= 8 && memcmp(target, "/metrics", 8) == 0 &&
		    (tlen == 8 || target[8] == '?');
	if ((!get && !head) || !path)
		return 404;
	*head_only = head;
	return 200;
}

struct http_conn {
	struct http_conn *prev, *next;
	struct http_server *h;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	int open_handles;
	bool closing;
	char *resp;
	size_t len;
	char req[METRICS_REQUEST_MAX];
};

static void conn_handle_closed(uv_handle_t *handle)
{
	struct http_conn *c = handle->data;
	if (--c->open_handles > 0)
		return;
	free(c->resp);
	free(c);
}

static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	struct http_server *h = c->h;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_shutdown_done(uv_shutdown_t *req, int status)
{
	conn_close(req->data);
}

static void conn_written(uv_write_t *req, int status)
{
	struct http_conn *c = req->data;
	if (c->closing)
		return;
	if (status < 0 || uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
				      conn_shutdown_done) < 0)
		conn_close(c);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 431: return "Request Header Fields Too Large";
	}
	return "Internal Server Error";
}

static void conn_respond(struct http_conn *c, int status, bool head_only)
{
	char *body = NULL;
	size_t body_len = 0;
	const char *type = "text/plain; charset=utf-8";
	if (status == 200) {
		if (metrics_render(M->srv, &body, &body_len) < 0)
			status = 500;
		else
			type = "text/plain; version=0.0.4; charset=utf-8";
	}
	if (status != 200) {
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "%d %s\n", status, status_text(status));
		body = strdup(msg);
		body_len = body && n > 0 ? (size_t)n : 0;
	}
	char head[256];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, status_text(status), type, body_len);
	size_t total = (size_t)hl + (head_only ? 0 : body_len);
	c->resp = malloc(total);
	if (!c->resp) {
		free(body);
		conn_close(c);
		return;
	}
	memcpy(c->resp, head, (size_t)hl);
	if (!head_only && body_len)
		memcpy(c->resp + hl, body, body_len);
	free(body);
	uv_buf_t buf = uv_buf_init(c->resp, (unsigned)total);
	if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, conn_written) < 0)
		conn_close(c);
}

static void conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = handle->data;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct http_conn *c = s->data;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	bool head_only;
	int status = metrics_http_route(c->req, c->len, &head_only);
	if (status == 0)
		return;
	uv_read_stop(s);
	conn_respond(c, status, head_only);
}

/* The listener (data: its server) or a connection refused for lack of
 * memory (data: itself). */
static void http_listener_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void http_accept(uv_stream_t *server, int status)
{
	struct http_server *h = server->data;
	if (status < 0 || h->closing)
		return;
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		/* Take the connection off the queue anyway (libuv stops
		 * accepting until it is), and drop it. */
		uv_tcp_t *spare = malloc(sizeof(*spare));
		if (spare) {
			uv_tcp_init(server->loop, spare);
			spare->data = spare;
			uv_accept(server, (uv_stream_t *)spare);
			uv_close((uv_handle_t *)spare, http_listener_closed);
		}
		return;
	}
	c->h = h;
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c->write_req.data = c->shutdown_req.data = c;
	c->open_handles = 2;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || h->nconns > METRICS_MAX_CONNS) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, METRICS_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) < 0)
		conn_close(c);
}

static int http_listen(struct http_server *h, uv_loop_t *loop, const struct config_addr *a)
{
	char text[INET6_ADDRSTRLEN + 8];
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	const void *ip = sa->sa_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
	unsigned port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
							: ((const struct sockaddr_in *)sa)->sin_port);
	if (!inet_ntop(sa->sa_family, ip, text, sizeof(text)))
		snprintf(text, sizeof(text), "?");
	uv_tcp_init(loop, &h->listener);
	h->listener.data = h;
	int rc = uv_tcp_bind(&h->listener, sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&h->listener, 16, http_accept);
	if (rc < 0) {
		log_err("cannot listen for metrics on %s%s%s:%u: %s",
			sa->sa_family == AF_INET6 ? "[" : "", text,
			sa->sa_family == AF_INET6 ? "]" : "", port, uv_strerror(rc));
		return rc;
	}
	log_info("metrics on http://%s%s%s:%u/metrics", sa->sa_family == AF_INET6 ? "[" : "",
		 text, sa->sa_family == AF_INET6 ? "]" : "", port);
	return 0;
}

/* ---------------------------------------------------------- lifetime */

int metrics_start(struct server *srv)
{
	struct runtime *rt = server_runtime(srv);
	struct config_addr addr = rt->cfg->metrics;
	runtime_unref(rt);
	if (M || !addr.len)
		return 0;
	int rc = -ENOMEM;
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		goto fail;
	m->srv = srv;
	m->started = time(NULL);
	m->loops = calloc(srv->nworkers, sizeof(*m->loops));
	if (!m->loops)
		goto fail;
	m->nloops = srv->nworkers;
	for (unsigned i = 0; i < m->nloops; i++) {
		/* Own cache lines: loops never write each other's. */
		size_t size = (sizeof(struct loop_counters) + 63) & ~(size_t)63;
		m->loops[i] = aligned_alloc(64, size);
		if (!m->loops[i])
			goto fail;
		memset(m->loops[i], 0, size);
	}
	m->http = calloc(1, sizeof(*m->http));
	if (!m->http)
		goto fail;
	M = m;
	if ((rc = http_listen(m->http, &srv->workers[0].loop, &addr)) < 0) {
		uv_close((uv_handle_t *)&m->http->listener, http_listener_closed);
		m->http = NULL;
		return rc;
	}
	return 0;

fail:
	log_err("metrics: out of memory");
	if (m) {
		for (unsigned i = 0; m->loops && i < m->nloops; i++)
			free(m->loops[i]);
		free(m->loops);
		free(m->http);
		free(m);
	}
	M = NULL;
	return rc;
}

void metrics_stop(struct server *srv)
{
	if (!M || M->srv != srv || !M->http)
		return;
	struct http_server *h = M->http;
	M->http = NULL;
	h->closing = true;
	while (h->conns)
		conn_close(h->conns);
	uv_close((uv_handle_t *)&h->listener, http_listener_closed);
}

void metrics_free(void)
{
	struct metrics *m = M;
	if (!m)
		return;
	M = NULL;
	for (unsigned i = 0; i < m->nloops; i++) {
		for (size_t z = 0; z <= HEALTH_MAX_ZONES; z++)
			free(atomic_load_explicit(&m->loops[i]->zones[z], memory_order_relaxed));
		free(m->loops[i]);
	}
	free(m->loops);
	free(m);
}
