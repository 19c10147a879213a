#include "resolver/query.h"

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/config.h"
#include "resolver/frontend.h"
#include "resolver/health.h"
#include "resolver/log.h"
#include "resolver/metrics.h"
#include "resolver/ptrview.h"
#include "resolver/spf.h"
#include "resolver/runtime.h"
#include "resolver/server.h"

/* SOA timers of the synthetic zone: it has no secondaries, so only MINIMUM
 * (the negative TTL) matters; the others are the usual values. */
#define SOA_REFRESH 3600
#define SOA_RETRY 600
#define SOA_EXPIRE 86400
#define DIAG_MAX DNSWIRE_DIAG_MAX

static const uint8_t localhost_wire[] = "\x09localhost";
#define LOCALHOST_LEN (sizeof(localhost_wire)) /* with the root byte */

/* Where an answer goes: the parts of a query needed to send one. */
struct reply_to {
	struct worker *w;
	const struct config *cfg;
	const struct dnswire_query *dq;
	struct udp_sock *udp;
	const struct sockaddr *peer;
	struct tcp_conn *conn;
	int view;                     /* for metrics: enum qname_view or METRICS_VIEW_NONE */
	uint64_t start_ms;            /* for metrics: loop time of the question, 0: now */
};

/* ----------------------------------------------------------- writing */

static size_t reply_limit(const struct reply_to *to)
{
	if (to->conn)
		return 65535;
	if (!to->dq->has_edns)
		return DNSWIRE_UDP_MIN;
	size_t size = to->dq->edns_udp_size;
	if (size > to->cfg->udp_max_size)
		size = to->cfg->udp_max_size;
	return size < DNSWIRE_UDP_MIN ? DNSWIRE_UDP_MIN : size;
}

static int reply_begin(const struct reply_to *to, struct dnswire_writer *wr,
		       enum dns_rcode rcode, bool aa)
{
	return dnswire_write_response(wr, to->w->out, sizeof(to->w->out),
				      reply_limit(to), to->dq, rcode, aa);
}

static void reply_send(const struct reply_to *to, struct dnswire_writer *wr,
		       const char *diag)
{
	struct worker *w = to->w;
	if (to->dq->has_edns)
		dnswire_write_opt(wr, to->dq, (uint16_t)to->cfg->udp_max_size, diag);
	size_t len = dnswire_finish(wr);
	w->stats.answers++;
	metrics_answer(w, to->view, to->dq->qtype, w->out[3] & 0x0fu, to->start_ms);
	if (w->stopping)
		return;
	if (to->conn)
		frontend_tcp_send(to->conn, w->out, len);
	else
		frontend_udp_send(to->udp, to->peer, w->out, len);
}

/* An answer with no records: errors, REFUSED, NOTIMP. */
static void reply_rcode(const struct reply_to *to, enum dns_rcode rcode, bool aa)
{
	struct dnswire_writer wr;
	if (reply_begin(to, &wr, rcode, aa) < 0)
		return;
	if (rcode == DNS_R_SERVFAIL)
		to->w->stats.servfail++;
	reply_send(to, &wr, NULL);
}

static void write_soa(struct dnswire_writer *wr, const struct runtime *rt,
		      const struct qname_result *qr, enum dnswire_section sec,
		      uint32_t ttl)
{
	struct dnswire_soa soa = {
		.mname = localhost_wire, .mname_len = LOCALHOST_LEN,
		.rname = rt->rname, .rname_len = rt->rname_len,
		.serial = rt->serial, .refresh = SOA_REFRESH, .retry = SOA_RETRY,
		.expire = SOA_EXPIRE, .minimum = ttl,
	};
	dnswire_write_soa(wr, sec, (uint16_t)(DNSWIRE_QNAME_OFF + qr->apex_off), ttl, &soa);
}

/* NXDOMAIN or NODATA, with the SOA whose minimum is the negative TTL. */
static void reply_negative(const struct reply_to *to, const struct runtime *rt,
			   const struct qname_result *qr, bool nxdomain,
			   uint32_t ttl, const char *diag)
{
	struct dnswire_writer wr;
	if (reply_begin(to, &wr, nxdomain ? DNS_R_NXDOMAIN : DNS_R_NOERROR, true) < 0)
		return;
	write_soa(&wr, rt, qr, DNSWIRE_NS, ttl);
	reply_send(to, &wr, diag);
}

static const uint8_t listed_addr[4] = { 127, 0, 0, 2 };

/* A name that exists with one A record and one TXT string (the verdict
 * views, the test points): answers A, TXT, ANY (the A set, RFC 8482) or
 * NODATA for other types. */
static void reply_a_txt(const struct reply_to *to, const struct runtime *rt,
			const struct qname_result *qr, const uint8_t addr[4],
			const char *txt, uint32_t ttl, const char *diag)
{
	uint16_t qtype = to->dq->qtype;
	if (qtype != DNS_T_A && qtype != DNS_T_TXT && qtype != DNS_T_ANY) {
		reply_negative(to, rt, qr, false, ttl, diag);
		return;
	}
	struct dnswire_writer wr;
	if (reply_begin(to, &wr, DNS_R_NOERROR, true) < 0)
		return;
	if (qtype == DNS_T_TXT)
		dnswire_write_txt(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, ttl, txt, strlen(txt));
	else
		dnswire_write_a(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, ttl, addr);
	reply_send(to, &wr, diag);
}

/* ------------------------------------------------------ static views */

static uint32_t static_negative_ttl(const struct config *cfg)
{
	return cfg->min_ttl_s;
}

static void reply_apex(const struct reply_to *to, const struct runtime *rt,
		       const struct qname_result *qr)
{
	uint16_t qtype = to->dq->qtype;
	uint32_t ttl = static_negative_ttl(rt->cfg);
	struct dnswire_writer wr;
	if (qtype != DNS_T_SOA && qtype != DNS_T_NS && qtype != DNS_T_ANY) {
		reply_negative(to, rt, qr, false, ttl, NULL);
		return;
	}
	if (reply_begin(to, &wr, DNS_R_NOERROR, true) < 0)
		return;
	if (qtype == DNS_T_NS)
		dnswire_write_ns(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, rt->cfg->max_ttl_s,
				 localhost_wire, LOCALHOST_LEN);
	else
		write_soa(&wr, rt, qr, DNSWIRE_AN, ttl);
	reply_send(to, &wr, NULL);
}

static void reply_health(const struct reply_to *to, const struct runtime *rt,
			 const struct qname_result *qr)
{
	if (to->dq->qtype != DNS_T_TXT && to->dq->qtype != DNS_T_ANY) {
		reply_negative(to, rt, qr, false, 0, NULL);
		return;
	}
	/* One string per list, then one for Redis when it is configured. */
	size_t n = rt->cfg->nsources, cap = n + 1;
	char (*lines)[128] = calloc(cap, sizeof(*lines));
	const char **strs = calloc(cap, sizeof(*strs));
	size_t *lens = calloc(cap, sizeof(*lens));
	if (!lines || !strs || !lens)
		goto out;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rt_source *s = &rt->src[i];
		uint32_t p50;
		double err;
		char reason[80];
		enum health_state st = health_snapshot(s->health, &p50, &err, reason,
						       sizeof(reason));
		if (!s->cfg->enabled)
			st = HEALTH_DISABLED;
		int len = snprintf(lines[k], sizeof(lines[k]), "%s %s p50=%ums err=%.1f%%%s%s",
				   s->cfg->name, health_state_name(st),
				   (unsigned)((p50 + 500) / 1000), err * 100.0,
				   st == HEALTH_DOWN && reason[0] ? " " : "",
				   st == HEALTH_DOWN ? reason : "");
		lens[k++] = len < 0 ? 0 : (size_t)len >= sizeof(lines[0]) ? sizeof(lines[0]) - 1 : (size_t)len;
	}
	const char *redis = server_redis_state(to->w);
	if (redis) {
		int len = snprintf(lines[k], sizeof(lines[k]), "redis %s %s", redis, rt->cfg->redis);
		lens[k++] = len < 0 ? 0 : (size_t)len >= sizeof(lines[0]) ? sizeof(lines[0]) - 1 : (size_t)len;
	}
	for (size_t i = 0; i < k; i++)
		strs[i] = lines[i];
	struct dnswire_writer wr;
	if (reply_begin(to, &wr, DNS_R_NOERROR, true) == 0) {
		if (k)
			dnswire_write_txt_multi(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 0,
						strs, lens, k);
		else
			dnswire_write_txt(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 0,
					  "no sources", 10);
		reply_send(to, &wr, NULL);
	}
out:
	free(lines);
	free(strs);
	free(lens);
}

static void reply_test_point(const struct reply_to *to, const struct runtime *rt,
			     const struct qname_result *qr)
{
	uint32_t ttl = rt->cfg->max_ttl_s;
	if (qr->test_point == 1) {
		reply_negative(to, rt, qr, true, ttl, NULL);
		return;
	}
	uint8_t addr[4];
	memcpy(addr, listed_addr, 4);
	if (qr->view == QV_SCORE && !score_view_address(rt->cfg->threshold, addr))
		memcpy(addr, listed_addr, 4);
	reply_a_txt(to, rt, qr, addr,
		    "test point: always listed (RFC 5782); rblmux is answering", ttl, NULL);
}

/* ------------------------------------------------------- dynamic views */

static void deadline_remove(struct query *q)
{
	struct worker *w = q->w;
	if (!q->on_deadline_list)
		return;
	if (q->dl_prev)
		q->dl_prev->dl_next = q->dl_next;
	else
		w->dl_head = q->dl_next;
	if (q->dl_next)
		q->dl_next->dl_prev = q->dl_prev;
	else
		w->dl_tail = q->dl_prev;
	q->dl_prev = q->dl_next = NULL;
	q->on_deadline_list = false;
}

static void deadline_timer_cb(uv_timer_t *t);

static void deadline_arm(struct worker *w)
{
	if (!w->dl_head || w->stopping) {
		uv_timer_stop(&w->deadline_timer);
		return;
	}
	uint64_t now = worker_now_ms(w);
	uint64_t due = w->dl_head->deadline_ms;
	uv_timer_start(&w->deadline_timer, deadline_timer_cb, due > now ? due - now : 0, 0);
}

static void deadline_add(struct query *q)
{
	struct worker *w = q->w;
	/* The deadline is the same for every query of a runtime, so appending
	 * keeps the list sorted; after a reload that changed it, walk back. */
	struct query *after = w->dl_tail;
	while (after && after->deadline_ms > q->deadline_ms)
		after = after->dl_prev;
	q->dl_prev = after;
	q->dl_next = after ? after->dl_next : w->dl_head;
	if (q->dl_next)
		q->dl_next->dl_prev = q;
	else
		w->dl_tail = q;
	if (after)
		after->dl_next = q;
	else
		w->dl_head = q;
	q->on_deadline_list = true;
	if (w->dl_head == q)
		deadline_arm(w);
}

static void query_free(struct query *q)
{
	deadline_remove(q);
	if (q->conn)
		frontend_tcp_unref(q->conn);
	runtime_unref(q->rt);
	arena_release(&q->arena);
	free(q);
}

static struct reply_to query_reply_to(struct query *q)
{
	struct reply_to to = {
		.w = q->w, .cfg = q->rt->cfg, .dq = &q->dq, .udp = q->udp,
		.peer = (const struct sockaddr *)&q->peer, .conn = q->conn,
	};
	to.view = (int)q->qr.view;
	to.start_ms = q->deadline_ms - q->rt->cfg->deadline_ms;
	return to;
}

static const char *tier_name(uint8_t tier)
{
	switch (tier) {
	case TIER_MEM: return "mem";
	case TIER_UPSTREAM: return "upstream";
	case TIER_COALESCED: return "coalesced";
	case TIER_STALE: return "stale";
	case TIER_REDIS: return "redis";
	}
	return "?";
}

static const char *slot_name(const struct query *q, const struct query_slot *s)
{
	return s->is_ptr ? "ptr" : s->is_spf ? "spf" : q->rt->src[s->src].cfg->name;
}

/* The EDNS diagnostics rblmux check shows: per list, where the answer came
 * from and the upstream latency. */
static void query_diag(const struct query *q, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < q->nslots && n < cap; i++) {
		const struct query_slot *s = &q->slots[i];
		const char *name = slot_name(q, s);
		int m;
		if (s->state == SLOT_SKIPPED)
			m = snprintf(out + n, cap - n, "%s%s=down", n ? " " : "", name);
		else if (s->state == SLOT_PENDING)
			m = snprintf(out + n, cap - n, "%s%s=pending", n ? " " : "", name);
		else
			m = snprintf(out + n, cap - n, "%s%s=%s:%lluus:ttl%u", n ? " " : "", name,
				     tier_name(s->tier), (unsigned long long)s->latency_us,
				     s->ttl_left);
		if (m < 0 || (size_t)m >= cap - n)
			break;
		n += (size_t)m;
	}
}

/* The TTL of a verdict: the smallest remaining TTL of what it was made
 * from, clamped; error_ttl when a list failed. */
static uint32_t query_ttl(const struct query *q, bool final)
{
	const struct config *cfg = q->rt->cfg;
	uint32_t ttl = cfg->max_ttl_s;
	bool failed = false;
	for (unsigned i = 0; i < q->nslots; i++) {
		const struct query_slot *s = &q->slots[i];
		if (s->state == SLOT_PENDING) {
			failed |= final;
		} else if (s->state == SLOT_DONE) {
			if (s->outcome == SCORE_FAILED)
				failed = true;
			else if (s->ttl_left < ttl)
				ttl = s->ttl_left;
		}
	}
	if (ttl < cfg->min_ttl_s)
		ttl = cfg->min_ttl_s;
	if (ttl > cfg->max_ttl_s)
		ttl = cfg->max_ttl_s;
	if (failed && ttl > cfg->error_ttl_s)
		ttl = cfg->error_ttl_s;
	return ttl;
}

static void query_txt(const struct query *q, bool listed, char *out, size_t cap)
{
	struct score_txt_item items[SCORE_MAX_SOURCES];
	size_t n = 0;
	for (unsigned i = 0; i < q->nslots && n < SCORE_MAX_SOURCES; i++) {
		const struct query_slot *s = &q->slots[i];
		struct score_txt_item *it = &items[n];
		memset(it, 0, sizeof(*it));
		it->source = slot_name(q, s);
		if (s->state == SLOT_SKIPPED) {
			it->outcome = SCORE_FAILED;
			it->failure = "down";
		} else if (s->state == SLOT_PENDING) {
			it->outcome = SCORE_FAILED;
			it->failure = "deadline";
		} else if (s->outcome == SCORE_CLEAN && !s->stale) {
			continue;
		} else {
			it->outcome = s->outcome;
			it->code = s->code;
			it->weight = s->weight;
			it->failure = s->failure;
			it->stale = s->stale;
		}
		n++;
	}
	score_format_txt(out, cap, listed, q->tally.score, q->tally.threshold, items, n);
}

static void answer_verdict(struct query *q, bool final, const struct reply_to *to,
			   const char *diag)
{
	enum score_verdict v = score_tally_verdict(&q->tally, final);
	if (v == SCORE_SERVFAIL || v == SCORE_UNDECIDED) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		return;
	}
	uint32_t ttl = query_ttl(q, final);
	char txt[256];
	if (q->qr.view == QV_SCORE) {
		uint8_t addr[4];
		if (!score_view_address(q->tally.score, addr)) {
			reply_negative(to, q->rt, &q->qr, true, ttl, diag);
			return;
		}
		txt[0] = '\0';
		if (to->dq->qtype == DNS_T_TXT)
			query_txt(q, q->tally.score >= q->tally.threshold, txt, sizeof(txt));
		reply_a_txt(to, q->rt, &q->qr, addr, txt, ttl, diag);
		return;
	}
	if (v == SCORE_NOT_LISTED) {
		reply_negative(to, q->rt, &q->qr, true, ttl, diag);
		return;
	}
	/* The TXT line is only written for TXT questions. */
	txt[0] = '\0';
	if (to->dq->qtype == DNS_T_TXT)
		query_txt(q, true, txt, sizeof(txt));
	reply_a_txt(to, q->rt, &q->qr, listed_addr, txt, ttl, diag);
}

/* One list's own answer, passed through. */
static void answer_source(struct query *q, const struct reply_to *to,
			  const char *diag)
{
	const struct query_slot *s = &q->slots[0];
	const struct listans *ans = s->ans;
	if (s->state != SLOT_DONE || !ans || ans->status >= LISTANS_SERVFAIL) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		return;
	}
	const struct config *cfg = q->rt->cfg;
	uint32_t ttl = s->ttl_left;
	if (ttl < cfg->min_ttl_s && !s->stale)
		ttl = cfg->min_ttl_s;
	if (ttl > cfg->max_ttl_s)
		ttl = cfg->max_ttl_s;
	if (ans->status == LISTANS_NXDOMAIN || ans->status == LISTANS_NODATA) {
		reply_negative(to, q->rt, &q->qr, ans->status == LISTANS_NXDOMAIN, ttl, diag);
		return;
	}
	uint16_t qtype = to->dq->qtype;
	if (qtype != DNS_T_A && qtype != DNS_T_TXT && qtype != DNS_T_ANY) {
		reply_negative(to, q->rt, &q->qr, false, ttl, diag);
		return;
	}
	struct dnswire_writer wr;
	if (reply_begin(to, &wr, DNS_R_NOERROR, true) < 0)
		return;
	if (qtype == DNS_T_TXT) {
		size_t off = 0;
		while (off + 2 <= ans->txt_len) {
			uint16_t rdlen = (uint16_t)(ans->txt[off] << 8 | ans->txt[off + 1]);
			if (off + 2 + rdlen > ans->txt_len ||
			    dnswire_write_rdata(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, DNS_T_TXT,
						ttl, ans->txt + off + 2, rdlen) < 0)
				break;
			off += 2u + rdlen;
		}
	} else {
		for (unsigned i = 0; i < ans->n_a; i++)
			if (dnswire_write_a(&wr, DNSWIRE_AN, DNSWIRE_QNAME_OFF, ttl, ans->a[i]) < 0)
				break;
	}
	reply_send(to, &wr, diag);
}

/* The reverse-DNS view: 127.0.3.<flags> and the explanation, NXDOMAIN
 * without flags, SERVFAIL when nothing is known. */
static void answer_ptr(struct query *q, const struct reply_to *to, const char *diag)
{
	const struct query_slot *s = &q->slots[0];
	const struct ptrview_result *r = s->ptr;
	if (s->state != SLOT_DONE || !r || (r->failed && r->nnames == 0)) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		return;
	}
	if (!r->flags) {
		reply_negative(to, q->rt, &q->qr, true, r->ttl, diag);
		return;
	}
	const uint8_t addr[4] = { 127, 0, 3, r->flags };
	reply_a_txt(to, q->rt, &q->qr, addr, r->txt, r->ttl, diag);
}

/* The SPF view: 127.0.4.<result> and the Received-SPF TXT; SERVFAIL only
 * when no verdict came before the deadline. */
static void answer_spf(struct query *q, const struct reply_to *to, const char *diag)
{
	const struct query_slot *s = &q->slots[0];
	const struct spf_verdict *v = s->spf;
	const struct config *cfg = q->rt->cfg;
	if (s->state != SLOT_DONE || !v) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		return;
	}
	uint32_t ttl = v->ttl;
	if (v->result == SPF_TEMPERROR) {
		if (ttl > cfg->error_ttl_s)
			ttl = cfg->error_ttl_s;
	} else {
		if (ttl < cfg->min_ttl_s)
			ttl = cfg->min_ttl_s;
		if (ttl > cfg->max_ttl_s)
			ttl = cfg->max_ttl_s;
	}
	const uint8_t addr[4] = { 127, 0, 4, (uint8_t)v->result };
	metrics_spf(q->w, (unsigned)v->result);
	reply_a_txt(to, q->rt, &q->qr, addr, v->txt, ttl, diag);
}

static void query_answer(struct query *q, bool final)
{
	struct reply_to to = query_reply_to(q);
	char diag[DIAG_MAX + 1];
	const char *d = NULL;
	if (q->dq.want_diag) {
		query_diag(q, diag, sizeof(diag));
		d = diag;
	}
	q->answered = true;
	deadline_remove(q);
	if (q->qr.view == QV_SOURCE)
		answer_source(q, &to, d);
	else if (q->qr.view == QV_PTR)
		answer_ptr(q, &to, d);
	else if (q->qr.view == QV_SPF)
		answer_spf(q, &to, d);
	else
		answer_verdict(q, final, &to, d);
}

static bool query_decided(const struct query *q)
{
	switch (q->qr.view) {
	case QV_SOURCE:
	case QV_PTR:
	case QV_SPF:
		return q->slots[0].state != SLOT_PENDING;
	case QV_SCORE:
		return score_tally_exact(&q->tally);
	default:
		return score_tally_verdict(&q->tally, false) != SCORE_UNDECIDED;
	}
}

static void query_progress(struct query *q)
{
	if (!q->answered && query_decided(q))
		query_answer(q, false);
	if (q->answered && q->pending == 0)
		query_free(q);
}

static const char *failure_name(const struct listans *ans)
{
	if (ans->status == LISTANS_RECORDS)
		return "error code";
	return listans_status_name(ans->status);
}

static void slot_apply(struct query *q, unsigned idx, const struct lookup_result *res)
{
	struct query_slot *s = &q->slots[idx];
	const struct rt_source *src = &q->rt->src[s->src];
	struct listans local, *ans = &local;
	bool stale = false;
	if (q->qr.view == QV_SOURCE) {
		ans = arena_alloc(&q->arena, sizeof(*ans));
		if (!ans)
			ans = &local;
	}
	if (lookup_result_decode(res, ans, &stale) < 0) {
		memset(ans, 0, sizeof(*ans));
		ans->status = LISTANS_BAD;
	}
	s->state = SLOT_DONE;
	s->tier = res->tier;
	metrics_lookup(q->w, src->health->zone_id, res->tier);
	s->stale = stale;
	s->latency_us = res->latency_us;
	s->ttl_left = res->expire > res->now ? res->expire - res->now : 0;
	if (q->qr.view == QV_SOURCE) {
		s->ans = ans;
		return;
	}
	s->outcome = score_source(&src->cfg->rules, ans, &s->weight, &s->code);
	if (s->outcome == SCORE_FAILED)
		s->failure = failure_name(ans);
	score_tally_resolve(&q->tally, &src->cfg->rules, s->outcome, s->weight);
}

static void ptr_slot_apply(struct query *q, unsigned idx, const struct ptrview_result *r)
{
	struct query_slot *s = &q->slots[idx];
	const struct config *cfg = q->rt->cfg;
	s->state = SLOT_DONE;
	s->tier = r->from_cache ? TIER_MEM : TIER_UPSTREAM;
	s->ttl_left = r->ttl;
	s->ptr = arena_alloc(&q->arena, sizeof(*s->ptr));
	if (s->ptr)
		*s->ptr = *r;
	if (r->failed && r->nnames == 0) {
		s->outcome = SCORE_FAILED;
		s->failure = "lookup failed";
	} else {
		s->weight = ptrview_weight(r->flags, cfg->ptr.weight, cfg->ptr.weight_no_ptr,
					   cfg->ptr.weight_no_fcrdns);
		s->outcome = s->weight ? SCORE_LISTED : SCORE_CLEAN;
		s->code = r->flags ? (127u << 24 | 3u << 8 | r->flags) : 0;
	}
	if (q->qr.view != QV_PTR)
		score_tally_resolve(&q->tally, &q->rt->ptr_rules, s->outcome, s->weight);
}

static void ptr_done(void *arg, const struct ptrview_result *r)
{
	struct inflight_waiter *wt = arg;
	struct query *q = wt->query;
	ptr_slot_apply(q, wt->slot, r);
	q->pending--;
	query_progress(q);
}

static void ptr_slot_start(struct query *q, unsigned idx)
{
	struct worker *w = q->w;
	const struct config *cfg = q->rt->cfg;
	struct query_slot *s = &q->slots[idx];
	struct ptrview_params p = {
		.up = w->up, .cache = w->srv->cache,
		.servers_csv = cfg->servers.system ? NULL : cfg->servers.csv,
		.timeout_ms = cfg->timeout_ms, .budget_ms = cfg->deadline_ms,
		.min_ttl = cfg->min_ttl_s, .max_ttl = cfg->max_ttl_s,
		.error_ttl = cfg->error_ttl_s,
		.level = (enum ptrclass_level)cfg->ptr.level, .now = lookup_now,
	};
	struct ptrview_result r;
	s->waiter.query = q;
	s->waiter.slot = idx;
	q->pending++;
	int rc = ptrview_check(&p, q->qr.ip.family, q->qr.ip.addr, ptr_done, &s->waiter, &r);
	if (rc == 0)
		return;
	if (rc < 0) {
		memset(&r, 0, sizeof(r));
		r.failed = true;
		r.ttl = cfg->error_ttl_s;
	}
	ptr_slot_apply(q, idx, &r);
	q->pending--;
}

static void spf_slot_apply(struct query *q, unsigned idx, const struct spf_verdict *v)
{
	struct query_slot *s = &q->slots[idx];
	s->state = SLOT_DONE;
	s->tier = v->source == SPF_SRC_CACHE ? TIER_MEM
		: v->source == SPF_SRC_COALESCED ? TIER_COALESCED : TIER_UPSTREAM;
	s->ttl_left = v->ttl;
	s->latency_us = v->latency_us;
	s->spf = arena_alloc(&q->arena, sizeof(*s->spf));
	if (s->spf)
		*s->spf = *v;
}

static void spf_done(void *arg, const struct spf_verdict *v)
{
	struct inflight_waiter *wt = arg;
	struct query *q = wt->query;
	spf_slot_apply(q, wt->slot, v);
	q->pending--;
	query_progress(q);
}

/* The local part as the question wrote it: qname_classify lowercased it,
 * but local parts are case-sensitive and macros show them ("%{l}"). It is
 * the label before "_l", "spf" and the apex. */
static void spf_local_part(const struct query *q, const uint8_t **lp, size_t *len)
{
	const struct dnswire_query *dq = &q->dq;
	const struct qname_result *qr = &q->qr;
	*lp = NULL;
	*len = 0;
	if (!qr->has_local_part)
		return;
	*lp = (const uint8_t *)qr->local_part;
	*len = qr->local_part_len;
	for (unsigned a = 3; a < dq->nlabels; a++) {
		if (dq->label_off[a] != qr->apex_off)
			continue;
		const uint8_t *label = dq->qname + dq->label_off[a - 3];
		if (label[0] == qr->local_part_len)
			*lp = label + 1;
		return;
	}
}

static void spf_slot_start(struct query *q, unsigned idx)
{
	struct query_slot *s = &q->slots[idx];
	struct spf_request req = {
		.family = q->qr.ip.family,
		.domain = q->qr.domain,
		.domain_len = q->qr.domain_len,
	};
	struct spf_verdict v;
	memcpy(req.ip, q->qr.ip.addr, sizeof(req.ip));
	spf_local_part(q, &req.local_part, &req.local_part_len);
	s->waiter.query = q;
	s->waiter.slot = idx;
	q->pending++;
	int rc = spf_check(q->w->spf, &req, spf_done, &s->waiter, &v);
	if (rc == 0)
		return;
	if (rc == 1)
		spf_slot_apply(q, idx, &v);
	else
		s->state = SLOT_DONE; /* no verdict: SERVFAIL */
	q->pending--;
}

void query_slot_result(struct query *q, unsigned slot,
		       const struct lookup_result *res)
{
	if (slot < q->nslots && q->slots[slot].state == SLOT_PENDING)
		slot_apply(q, slot, res);
	q->pending--;
	query_progress(q);
}

static bool source_serves(const struct rt_source *s, const struct qname_result *qr)
{
	if (!s->cfg->enabled)
		return false;
	switch (qr->view) {
	case QV_RHS:
		return s->cfg->type == QSRC_DOMAIN;
	case QV_COMBINED:
	case QV_SCORE:
		if (s->cfg->type == QSRC_IP)
			return true;
		return qr->ip.family == AF_INET ? s->cfg->type == QSRC_IP4
						: s->cfg->type == QSRC_IP6;
	default:
		return false;
	}
}

static void query_start(struct worker *w, const struct dnswire_query *dq,
			const struct qname_result *qr, const struct reply_to *to)
{
	struct runtime *rt = w->rt;
	const struct config *cfg = rt->cfg;
	if ((qr->view == QV_SOURCE && !rt->src[qr->source].cfg->enabled) ||
	    (qr->view == QV_PTR && !cfg->ptr.enabled) ||
	    (qr->view == QV_SPF && (!cfg->spf.enabled || !w->spf))) {
		/* A disabled list or view names nothing. */
		reply_negative(to, rt, qr, true, static_negative_ttl(cfg), NULL);
		return;
	}
	struct query *q = malloc(sizeof(*q));
	if (!q) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		return;
	}
	memset(q, 0, offsetof(struct query, arena));
	arena_init(&q->arena);
	q->w = w;
	q->rt = rt;
	runtime_ref(rt);
	q->dq = *dq;
	q->qr = *qr;
	q->udp = to->udp;
	if (to->udp)
		memcpy(&q->peer, to->peer,
		       to->peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						       : sizeof(struct sockaddr_in));
	q->conn = to->conn;
	if (q->conn)
		frontend_tcp_ref(q->conn);
	q->deadline_ms = worker_now_ms(w) + cfg->deadline_ms;
	score_tally_init(&q->tally, cfg->threshold, cfg->on_incomplete);

	unsigned nsrc = 0;
	bool with_spf = qr->view == QV_SPF;
	bool with_ptr = qr->view == QV_PTR ||
			(cfg->ptr.enabled && (qr->view == QV_COMBINED || qr->view == QV_SCORE));
	if (qr->view == QV_SOURCE) {
		nsrc = 1;
	} else if (qr->view != QV_PTR && !with_spf) {
		for (size_t i = 0; i < cfg->nsources; i++)
			nsrc += source_serves(&rt->src[i], qr);
	}
	q->slots = arena_alloc(&q->arena, (nsrc + with_ptr + with_spf ?
					   nsrc + with_ptr + with_spf : 1) * sizeof(*q->slots));
	if (!q->slots) {
		reply_rcode(to, DNS_R_SERVFAIL, true);
		q->answered = true;
		query_free(q);
		return;
	}
	for (size_t i = 0, k = 0; i < cfg->nsources && k < nsrc; i++) {
		bool take = qr->view == QV_SOURCE ? (int)i == qr->source
						  : source_serves(&rt->src[i], qr);
		if (!take)
			continue;
		struct query_slot *s = &q->slots[k++];
		s->src = (unsigned)i;
		if (qr->view != QV_SOURCE && health_is_down(rt->src[i].health)) {
			s->state = SLOT_SKIPPED;
			continue;
		}
		s->state = SLOT_PENDING;
		if (qr->view != QV_SOURCE)
			score_tally_add_pending(&q->tally, &rt->src[i].cfg->rules);
	}
	q->nslots = nsrc;
	if (with_ptr) {
		q->slots[q->nslots].is_ptr = true;
		q->slots[q->nslots].state = SLOT_PENDING;
		if (qr->view != QV_PTR)
			score_tally_add_pending(&q->tally, &rt->ptr_rules);
		q->nslots++;
	}
	if (with_spf) {
		q->slots[q->nslots].is_spf = true;
		q->slots[q->nslots].state = SLOT_PENDING;
		q->nslots++;
	}

	/* Held while lookups start, so that one completing synchronously
	 * cannot free the query under this loop. */
	q->pending = 1;
	const uint8_t *material = qr->view == QV_RHS ? qr->domain : qr->ip.addr;
	size_t material_len;
	int family = qr->ip.family;
	uint16_t qtype = qr->view == QV_SOURCE && dq->qtype == DNS_T_TXT ? DNS_T_TXT : DNS_T_A;
	for (unsigned i = 0; i < q->nslots; i++) {
		struct query_slot *s = &q->slots[i];
		if (s->state != SLOT_PENDING)
			continue;
		if (s->is_ptr) {
			ptr_slot_start(q, i);
			continue;
		}
		if (s->is_spf) {
			spf_slot_start(q, i);
			continue;
		}
		const struct rt_source *src = &rt->src[s->src];
		if (src->cfg->type == QSRC_DOMAIN) {
			material = qr->domain;
			material_len = qr->domain_len;
		} else {
			material = qr->ip.addr;
			material_len = family == AF_INET ? 4 : 16;
		}
		s->waiter.worker = w;
		s->waiter.query = q;
		s->waiter.slot = i;
		struct lookup_result res;
		q->pending++;
		if (lookup_start(w, rt, s->src, qtype, family, material, material_len,
				 &s->waiter, &res) == 1) {
			slot_apply(q, i, &res);
			q->pending--;
		}
	}
	q->pending--;
	/* Every lookup may have answered from the cache: then query_progress
	 * frees q, so look at it before. */
	bool undecided = !q->answered && !query_decided(q);
	query_progress(q);
	if (undecided)
		deadline_add(q);
}

/* --------------------------------------------------------------- entry */

void query_handle_packet(struct worker *w, const uint8_t *pkt, size_t len,
			 struct udp_sock *udp, const struct sockaddr *peer,
			 struct tcp_conn *conn)
{
	struct runtime *rt = w->rt;
	const struct config *cfg = rt->cfg;
	struct dnswire_query dq;
	w->stats.queries++;
	int rc = dnswire_parse_query(pkt, len, &dq);
	if (rc == -EINVAL) {
		w->stats.dropped++;
		return;
	}
	struct reply_to to = { .w = w, .cfg = cfg, .dq = &dq, .udp = udp,
			       .peer = peer, .conn = conn };
	to.view = METRICS_VIEW_NONE;
	if (!frontend_allowed(cfg, peer)) {
		w->stats.refused++;
		reply_rcode(&to, DNS_R_REFUSED, false);
		return;
	}
	if (DNS_OPCODE(dq.flags) != DNS_OP_QUERY) {
		reply_rcode(&to, DNS_R_NOTIMP, false);
		return;
	}
	if (rc < 0 || dq.bad_edns) {
		w->stats.formerr++;
		reply_rcode(&to, DNS_R_FORMERR, false);
		return;
	}
	if (dq.has_edns && dq.edns_version > 0) {
		struct dnswire_writer wr;
		if (reply_begin(&to, &wr, DNS_R_NOERROR, false) == 0) {
			dnswire_write_badvers(&wr, &dq, (uint16_t)cfg->udp_max_size);
			w->stats.answers++;
			metrics_answer(w, METRICS_VIEW_NONE, dq.qtype, DNS_R_BADVERS, 0);
			size_t n = dnswire_finish(&wr);
			if (conn)
				frontend_tcp_send(conn, w->out, n);
			else
				frontend_udp_send(udp, peer, w->out, n);
		}
		return;
	}
	if (dq.qclass != DNS_C_IN && dq.qclass != DNS_C_ANY) {
		reply_rcode(&to, DNS_R_REFUSED, false);
		return;
	}
	struct qname_result qr;
	if (qname_classify(dq.qname_lc, dq.qname_len, &rt->qzone, &qr) < 0) {
		reply_rcode(&to, DNS_R_FORMERR, false);
		return;
	}
	to.view = (int)qr.view;
	/* Zone transfers: there is no zone to transfer. */
	if (dq.qtype == 251 || dq.qtype == 252) {
		reply_rcode(&to, qr.view == QV_OUTSIDE ? DNS_R_REFUSED : DNS_R_NOTIMP,
			    qr.view != QV_OUTSIDE);
		return;
	}
	switch (qr.view) {
	case QV_OUTSIDE:
		w->stats.refused++;
		reply_rcode(&to, DNS_R_REFUSED, false);
		return;
	case QV_NXDOMAIN:
	case QV_ENT:
		reply_negative(&to, rt, &qr, qr.view == QV_NXDOMAIN,
			       static_negative_ttl(cfg), NULL);
		return;
	case QV_APEX:
		reply_apex(&to, rt, &qr);
		return;
	case QV_HEALTH:
		reply_health(&to, rt, &qr);
		return;
	case QV_SPF:
	case QV_PTR:
		query_start(w, &dq, &qr, &to);
		return;
	case QV_COMBINED:
	case QV_SCORE:
	case QV_RHS:
		if (qr.test_point) {
			reply_test_point(&to, rt, &qr);
			return;
		}
		query_start(w, &dq, &qr, &to);
		return;
	case QV_SOURCE:
		query_start(w, &dq, &qr, &to);
		return;
	}
}

static void deadline_timer_cb(uv_timer_t *t)
{
	query_deadline_expired(t->data);
}

void query_deadline_expired(struct worker *w)
{
	uint64_t now = worker_now_ms(w);
	while (w->dl_head && w->dl_head->deadline_ms <= now) {
		struct query *q = w->dl_head;
		deadline_remove(q);
		query_answer(q, true);
		if (q->pending == 0)
			query_free(q);
	}
	deadline_arm(w);
}
