/*
 * ptrview: PTR, then A/AAAA of each PTR name, then the classifier (see
 * ptrview.h).
 *
 * One heap request per check that misses the cache. Its lookups run in two
 * rounds: the PTR question (asked again at the end of a CNAME chain when an
 * authoritative server handed back only the CNAME), then every forward
 * question at once, counted in pending; the last one to report finishes the
 * request. upstream_query_raw never calls back from inside itself, so a
 * request is never finished while it is still starting its lookups.
 */
#include "resolver/ptrview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "zones/dnswire.h"

/* Re-asks at the end of a CNAME chain (RFC 2317 delegations are one link;
 * a few more cover chains split across servers). */
#define PTRVIEW_CNAME_HOPS 3
/* Presentation form of a wire name: every byte may become "\DDD". */
#define NAME_TEXT_MAX (DNSWIRE_NAME_MAX * 4 + 1)
#define TTL_NONE UINT32_MAX
/* Cache value: format, flags, status bits, names found, then the TXT. */
#define VALUE_FORMAT 1
#define VALUE_HEAD 4
#define VALUE_FAILED 0x01
#define KEY_FORMAT 1

enum fwd_state {
	FWD_PENDING = 0,
	FWD_CONFIRMED,    /* a forward record holds the address */
	FWD_UNCONFIRMED,  /* answered, without the address */
	FWD_FAILED,       /* no usable answer: unknown */
};

struct fwd {
	struct ptrview_req *req;
	enum fwd_state state;
	const char *failure;     /* static text, FWD_FAILED only */
	uint8_t name_len;
	uint8_t name[DNSWIRE_NAME_MAX];
};

struct ptrview_req {
	ptrview_cb cb;
	void *arg;
	struct upstream_pool *up;
	struct cache_tier *cache;
	char *servers;            /* NULL: the system resolvers */
	uint32_t timeout_ms;
	uint64_t deadline_ns;     /* uv_hrtime(); 0: no budget */
	uint32_t min_ttl, max_ttl, error_ttl;
	enum ptrclass_level level;
	unsigned max_names;
	uint32_t (*now)(void);

	int family;
	uint8_t addr[16];
	uint8_t key[PTRVIEW_KEY_MAX];
	size_t key_len;

	uint8_t qname[DNSWIRE_NAME_MAX]; /* the PTR name asked now */
	size_t qname_len;
	unsigned hops;
	uint32_t ttl;             /* smallest TTL of what was used; TTL_NONE */
	unsigned found;           /* PTR records at the chain's end, all of them */
	unsigned nfwd;
	unsigned pending;
	struct fwd fwd[PTRVIEW_MAX_NAMES];
};

/* ------------------------------------------------------------- helpers */

static uint32_t wall_now(void)
{
	return (uint32_t)time(NULL);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* RFC 2181 §8: a TTL with the top bit set means zero. */
static uint32_t sane_ttl(uint32_t ttl)
{
	return (ttl & 0x80000000u) ? 0 : ttl;
}

static void note_ttl(struct ptrview_req *req, uint32_t ttl)
{
	req->ttl = min_u32(req->ttl, sane_ttl(ttl));
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 client it stands for. */
static bool is_v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, prefix, sizeof prefix) == 0;
}

/* The reverse name of an address, wire form. */
static size_t reverse_name(int family, const uint8_t *a, uint8_t *out)
{
	static const uint8_t v4_suffix[] = "\x07in-addr\x04" "arpa";
	static const uint8_t v6_suffix[] = "\x03ip6\x04" "arpa";
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (family == AF_INET) {
		for (int i = 3; i >= 0; i--) {
			char digits[4];
			int n = snprintf(digits, sizeof digits, "%u", a[i]);
			out[o++] = (uint8_t)n;
			memcpy(out + o, digits, (size_t)n);
			o += (size_t)n;
		}
		memcpy(out + o, v4_suffix, sizeof v4_suffix);
		return o + sizeof v4_suffix;
	}
	for (int i = 15; i >= 0; i--) {
		out[o++] = 1;
		out[o++] = (uint8_t)hex[a[i] & 0x0f];
		out[o++] = 1;
		out[o++] = (uint8_t)hex[a[i] >> 4];
	}
	memcpy(out + o, v6_suffix, sizeof v6_suffix);
	return o + sizeof v6_suffix;
}

int ptrview_cache_key(enum ptrclass_level level, int family, const uint8_t *addr,
		      uint8_t *key)
{
	size_t alen = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;

	if (!addr || !key || alen == 0 || (unsigned)level > PTRCLASS_AGGRESSIVE)
		return -EINVAL;
	memcpy(key, "ptr:", 4);
	key[4] = KEY_FORMAT;
	key[5] = (uint8_t)level;
	key[6] = family == AF_INET ? 4 : 6;
	memcpy(key + 7, addr, alen);
	return (int)(7 + alen);
}

int ptrview_weight(uint8_t flags, int weight, int weight_no_ptr, int weight_no_fcrdns)
{
	int w = 0;

	if (flags & PTRVIEW_F_NO_PTR)
		w += weight_no_ptr;
	if (flags & PTRVIEW_F_NO_FCRDNS)
		w += weight_no_fcrdns;
	if (flags & PTRVIEW_F_DYNAMIC)
		w += weight;
	return w;
}

/* --------------------------------------------------------- answer text */

/* A bounded string that ends in "..." when something did not fit. */
struct txtbuf {
	char *s;
	size_t len;
	bool cut;
};

static void tb_add(struct txtbuf *b, const char *text)
{
	for (; *text && !b->cut; text++) {
		if (b->len == PTRVIEW_TXT_MAX) {
			memcpy(b->s + PTRVIEW_TXT_MAX - 3, "...", 3);
			b->cut = true;
			break;
		}
		/* TXT is ASCII: anything taken from the network is echoed, not trusted. */
		char c = *text;
		b->s[b->len++] = (c < 0x20 || c > 0x7e) ? '?' : c;
	}
	b->s[b->len] = '\0';
}

static void name_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	if (dnswire_name_to_text(name, len, out, cap) < 0)
		snprintf(out, cap, "?");
}

/* ------------------------------------------------------------- results */

static uint32_t result_ttl(const struct ptrview_req *req, bool failed)
{
	uint32_t ttl = req->ttl == TTL_NONE ? req->min_ttl : req->ttl;
	if (ttl < req->min_ttl)
		ttl = req->min_ttl;
	if (ttl > req->max_ttl)
		ttl = req->max_ttl;
	if (failed)
		ttl = min_u32(ttl, req->error_ttl);
	return ttl;
}

static void req_free(struct ptrview_req *req)
{
	free(req->servers);
	free(req);
}

static void cache_store(const struct ptrview_req *req, const struct ptrview_result *r)
{
	uint8_t val[VALUE_HEAD + PTRVIEW_TXT_MAX];
	size_t tlen = strlen(r->txt);

	if (!req->cache || r->ttl == 0)
		return;
	val[0] = VALUE_FORMAT;
	val[1] = r->flags;
	val[2] = r->failed ? VALUE_FAILED : 0;
	val[3] = r->nnames;
	memcpy(val + VALUE_HEAD, r->txt, tlen);
	uint32_t now = req->now();
	req->cache->ops->put(req->cache, req->key, req->key_len, val, VALUE_HEAD + tlen,
			     now, now + r->ttl, now + r->ttl);
}

/* Decode a cached result (it may come from another process: check it all). */
static int cache_decode(const struct cache_item *item, struct ptrview_result *r)
{
	const uint8_t *v = item->value;

	if (item->len < VALUE_HEAD || item->len > VALUE_HEAD + PTRVIEW_TXT_MAX ||
	    v[0] != VALUE_FORMAT || v[1] > 31 || (v[2] & ~VALUE_FAILED))
		return -EBADMSG;
	for (size_t i = VALUE_HEAD; i < item->len; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return -EBADMSG;
	memset(r, 0, sizeof *r);
	r->flags = v[1];
	r->failed = v[2] & VALUE_FAILED;
	r->nnames = v[3];
	r->from_cache = true;
	memcpy(r->txt, v + VALUE_HEAD, item->len - VALUE_HEAD);
	r->txt[item->len - VALUE_HEAD] = '\0';
	return 0;
}

/* A fresh cache entry as a result: the TTL is what is left of it. */
static int result_from_cache(const struct ptrview_req *req, const struct cache_item *item,
			     uint32_t now, struct ptrview_result *r)
{
	if (cache_decode(item, r) < 0)
		return -EBADMSG;
	uint32_t left = item->expire > now ? item->expire - now : 0;
	if (r->failed) {
		r->ttl = min_u32(left, req->error_ttl);
	} else {
		r->ttl = left < req->min_ttl ? req->min_ttl : left;
		r->ttl = min_u32(r->ttl, req->max_ttl);
	}
	return 0;
}

static void deliver(struct ptrview_req *req, struct ptrview_result *r)
{
	cache_store(req, r);
	req->cb(req->arg, r);
	req_free(req);
}

/* The PTR lookup itself failed: nothing is known. */
static void finish_failed(struct ptrview_req *req, const char *why)
{
	struct ptrview_result r = { .failed = true };
	struct txtbuf tb = { r.txt, 0, false };

	r.ttl = result_ttl(req, true);
	tb_add(&tb, "PTR lookup failed (");
	tb_add(&tb, why);
	tb_add(&tb, ")");
	deliver(req, &r);
}

static void finish_no_ptr(struct ptrview_req *req, const char *how)
{
	struct ptrview_result r = { .flags = PTRVIEW_F_NO_PTR };
	struct txtbuf tb = { r.txt, 0, false };

	r.ttl = result_ttl(req, false);
	tb_add(&tb, "no PTR (");
	tb_add(&tb, how);
	tb_add(&tb, ")");
	deliver(req, &r);
}

/* How strongly a classification flags its name: lower is more favourable. */
static int flag_rank(int flags)
{
	return ((flags & PTRCLASS_F_DYNAMIC) ? 4 : 0) + ((flags & PTRCLASS_F_EMBEDS) ? 2 : 0) +
	       ((flags & PTRCLASS_F_STATIC) ? 1 : 0);
}

struct classified {
	int ok;                       /* ptrclass_classify's return */
	struct ptrclass_result res;
	char text[NAME_TEXT_MAX];
};

static const char *fwd_state_text(const struct fwd *f)
{
	switch (f->state) {
	case FWD_CONFIRMED:
		return "confirmed";
	case FWD_UNCONFIRMED:
		return "not confirmed";
	case FWD_FAILED:
		return f->failure;
	case FWD_PENDING:
		break;
	}
	return "not checked";
}

/* Every forward lookup has reported: decide, explain, deliver. */
static void finish_names(struct ptrview_req *req)
{
	struct ptrview_result r = { 0 };
	struct txtbuf tb = { r.txt, 0, false };
	struct classified *cl = calloc(req->nfwd, sizeof *cl);
	bool confirmed = false, failed = false;

	for (unsigned i = 0; i < req->nfwd; i++) {
		confirmed |= req->fwd[i].state == FWD_CONFIRMED;
		failed |= req->fwd[i].state == FWD_FAILED;
	}
	if (!confirmed && failed)
		r.failed = true;
	else if (!confirmed)
		r.flags |= PTRVIEW_F_NO_FCRDNS;

	/* The most favourable candidate; ties by name, not by answer order. */
	int best = -1, best_rank = 0;
	for (unsigned i = 0; cl && i < req->nfwd; i++) {
		const struct fwd *f = &req->fwd[i];
		name_text(f->name, f->name_len, cl[i].text, sizeof cl[i].text);
		if (confirmed && f->state != FWD_CONFIRMED)
			continue;
		cl[i].ok = ptrclass_classify(cl[i].text, req->family, req->addr, req->level,
					     &cl[i].res);
		/* A name the classifier refuses (not a hostname) ranks last. */
		int rank = cl[i].ok < 0 ? 8 : flag_rank(cl[i].res.flags);
		if (best < 0 || rank < best_rank ||
		    (rank == best_rank && strcasecmp(cl[i].text, cl[best].text) < 0)) {
			best = (int)i;
			best_rank = rank;
		}
	}
	if (!cl || best < 0) {
		/* Out of memory (best stays -1 only then): say what is known. */
		tb_add(&tb, "PTR names found; classification failed");
		r.failed = true;
	} else {
		char why[PTRCLASS_EXPLAIN_MAX + 1];
		const struct fwd *f = &req->fwd[best];
		if (cl[best].ok == 0 &&
		    ptrclass_explain(&cl[best].res, cl[best].text, why, sizeof why) >= 0) {
			r.flags |= (uint8_t)cl[best].res.flags;
			tb_add(&tb, why);
		} else {
			tb_add(&tb, "not a hostname: ");
			tb_add(&tb, cl[best].text);
		}
		if (f->state == FWD_UNCONFIRMED)
			tb_add(&tb, "; not forward-confirmed");
		else if (f->state == FWD_FAILED) {
			tb_add(&tb, "; forward lookup failed (");
			tb_add(&tb, f->failure);
			tb_add(&tb, ")");
		}
		bool first = true;
		for (unsigned i = 0; i < req->nfwd; i++) {
			if ((int)i == best)
				continue;
			tb_add(&tb, first ? "; also " : ", ");
			tb_add(&tb, cl[i].text);
			tb_add(&tb, " (");
			tb_add(&tb, fwd_state_text(&req->fwd[i]));
			tb_add(&tb, ")");
			first = false;
		}
		if (req->found > req->nfwd) {
			char more[64];
			snprintf(more, sizeof more, "; %u more PTR names not checked",
				 req->found - req->nfwd);
			tb_add(&tb, more);
		}
	}
	free(cl);
	r.nnames = (uint8_t)(req->found > 255 ? 255 : req->found);
	r.ttl = result_ttl(req, r.failed);
	deliver(req, &r);
}

/* ------------------------------------------------------- reading answers */

/* The smallest of SOA TTL and SOA minimum in the authority section
 * (RFC 2308's negative TTL). Returns false when there is no usable SOA. */
static bool negative_ttl(const uint8_t *pkt, size_t len, uint32_t *ttl)
{
	struct dnswire_reader r;
	struct dnswire_rr rr;

	if (dnswire_reader_init(&r, pkt, len) < 0)
		return false;
	while (dnswire_reader_next(&r, &rr) == 1) {
		if (rr.section != DNSWIRE_NS || rr.type != DNS_T_SOA || rr.rclass != DNS_C_IN)
			continue;
		size_t end = rr.rdata_off + rr.rdlen, p;
		if (dnswire_read_name(pkt, end, rr.rdata_off, NULL, 0, &p) < 0 ||
		    dnswire_read_name(pkt, end, p, NULL, 0, &p) < 0 || end - p != 20)
			return false;
		const uint8_t *m = pkt + p + 16;
		uint32_t minimum = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
				   (uint32_t)m[2] << 8 | m[3];
		*ttl = min_u32(sane_ttl(rr.ttl), sane_ttl(minimum));
		return true;
	}
	return false;
}

/*
 * Follow the question's CNAME chain through the answer section: *name gets
 * its end (the question name when there is none). The CNAMEs' TTLs go into
 * req. Returns the links followed or -EBADMSG (bad rdata, too long, a loop).
 */
static int chain_end(struct ptrview_req *req, const struct dnswire_reader *start,
		     uint8_t *name, size_t *name_len)
{
	uint32_t ttl = UINT32_MAX;
	memcpy(name, start->qname, start->qname_len);
	*name_len = start->qname_len;
	int links = dnswire_follow_cnames(start, name, name_len, &ttl);
	if (links > 0)
		note_ttl(req, ttl);
	return links;
}

/* Keep a PTR target, once (names compare case-insensitively). */
static void add_name(struct ptrview_req *req, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i < req->nfwd; i++)
		if (dnswire_name_equal(req->fwd[i].name, req->fwd[i].name_len, name, len, false))
			return;
	req->found++;
	if (req->nfwd == req->max_names)
		return;
	struct fwd *f = &req->fwd[req->nfwd++];
	f->req = req;
	f->state = FWD_PENDING;
	f->name_len = (uint8_t)len;
	memcpy(f->name, name, len);
}

/*
 * The PTR records at the end of the answer's CNAME chain. Returns 0 (names
 * in req, chain end in end/end_len) or -EBADMSG.
 */
static int read_ptr_answer(struct ptrview_req *req, const uint8_t *pkt, size_t len,
			   uint8_t *end, size_t *end_len)
{
	struct dnswire_reader start, r;
	struct dnswire_rr rr;
	uint8_t target[DNSWIRE_NAME_MAX];
	int rc;

	if (dnswire_reader_init(&start, pkt, len) < 0 || start.qname_len == 0 ||
	    chain_end(req, &start, end, end_len) < 0)
		return -EBADMSG;
	r = start;
	while ((rc = dnswire_next_answer_for(&r, end, *end_len, &rr)) == 1) {
		if (rr.type != DNS_T_PTR)
			continue;
		int n = dnswire_read_rdata_name(pkt, &rr, target);
		if (n < 0)
			return n;
		note_ttl(req, rr.ttl);
		add_name(req, target, (size_t)n);
	}
	return rc < 0 ? rc : 0;
}

/* Whether the forward answer holds the client's address. -EBADMSG when
 * the packet cannot be read. */
static int forward_match(struct ptrview_req *req, const uint8_t *pkt, size_t len)
{
	struct dnswire_reader start, r;
	struct dnswire_rr rr;
	uint8_t end[DNSWIRE_NAME_MAX];
	size_t end_len;
	uint16_t type = req->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	uint16_t alen = req->family == AF_INET ? 4 : 16;
	bool match = false;
	int rc;

	if (dnswire_reader_init(&start, pkt, len) < 0 || start.qname_len == 0 ||
	    chain_end(req, &start, end, &end_len) < 0)
		return -EBADMSG;
	r = start;
	while ((rc = dnswire_next_answer_for(&r, end, end_len, &rr)) == 1) {
		if (rr.type != type || rr.rdlen != alen)
			continue;
		note_ttl(req, rr.ttl);
		if (memcmp(rr.rdata, req->addr, alen) == 0)
			match = true;
	}
	return rc < 0 ? rc : match;
}

static const char *failure_text(enum listans_status st)
{
	switch (st) {
	case LISTANS_TIMEOUT:
		return "timeout";
	case LISTANS_SERVFAIL:
		return "servfail";
	default:
		return "bad answer";
	}
}

/* ------------------------------------------------------------- lookups */

/* The timeout for the next lookup: what is left of the budget, at most
 * timeout_ms; 0 when the budget is spent. */
static uint32_t lookup_timeout(const struct ptrview_req *req)
{
	if (!req->deadline_ns)
		return req->timeout_ms;
	uint64_t now = uv_hrtime();
	if (now >= req->deadline_ns)
		return 0;
	uint64_t left = (req->deadline_ns - now) / 1000000;
	return left < req->timeout_ms ? (uint32_t)left : req->timeout_ms;
}

static void ptr_cb(void *arg, enum listans_status status, const uint8_t *pkt,
		   size_t len, uint64_t latency_us);
static void fwd_cb(void *arg, enum listans_status status, const uint8_t *pkt,
		   size_t len, uint64_t latency_us);

static int ask_ptr(struct ptrview_req *req)
{
	uint32_t t = lookup_timeout(req);
	if (t == 0)
		return -ETIMEDOUT;
	return upstream_query_raw(req->up, req->servers, t, req->qname, req->qname_len,
				  DNS_T_PTR, ptr_cb, req);
}

static void fwd_done(struct ptrview_req *req)
{
	if (--req->pending == 0)
		finish_names(req);
}

static void ask_forward(struct ptrview_req *req)
{
	uint16_t type = req->family == AF_INET ? DNS_T_A : DNS_T_AAAA;

	req->pending = 1; /* held while starting: no lookup can finish the request */
	for (unsigned i = 0; i < req->nfwd; i++) {
		struct fwd *f = &req->fwd[i];
		uint32_t t = lookup_timeout(req);
		if (f->name_len == 1) {
			/* A PTR to the root names no host. */
			f->state = FWD_UNCONFIRMED;
			continue;
		}
		int rc = t == 0 ? -ETIMEDOUT
				: upstream_query_raw(req->up, req->servers, t, f->name,
						     f->name_len, type, fwd_cb, f);
		if (rc < 0) {
			f->state = FWD_FAILED;
			f->failure = rc == -ETIMEDOUT ? "timeout" : "not sent";
			continue;
		}
		req->pending++;
	}
	fwd_done(req);
}

static void ptr_cb(void *arg, enum listans_status status, const uint8_t *pkt,
		   size_t len, uint64_t latency_us)
{
	struct ptrview_req *req = arg;
	uint8_t end[DNSWIRE_NAME_MAX];
	size_t end_len;
	uint32_t neg;
	(void)latency_us;

	switch (status) {
	case LISTANS_NXDOMAIN:
		if (pkt && negative_ttl(pkt, len, &neg))
			note_ttl(req, neg);
		finish_no_ptr(req, "NXDOMAIN");
		return;
	case LISTANS_NODATA:
	case LISTANS_RECORDS:
		break;
	default:
		finish_failed(req, failure_text(status));
		return;
	}
	if (!pkt || read_ptr_answer(req, pkt, len, end, &end_len) < 0) {
		finish_failed(req, "bad answer");
		return;
	}
	if (req->nfwd > 0) {
		ask_forward(req);
		return;
	}
	bool has_soa = negative_ttl(pkt, len, &neg);
	if (has_soa)
		note_ttl(req, neg);
	/* Only a CNAME, no SOA: an authoritative server that does not serve
	 * the target (RFC 2317). Ask the target itself. */
	if (!has_soa && !dnswire_name_equal(end, end_len, req->qname, req->qname_len, false)) {
		if (req->hops == PTRVIEW_CNAME_HOPS) {
			finish_failed(req, "CNAME chain too long");
			return;
		}
		req->hops++;
		memcpy(req->qname, end, end_len);
		req->qname_len = end_len;
		int rc = ask_ptr(req);
		if (rc < 0)
			finish_failed(req, rc == -ETIMEDOUT ? "timeout" : "not sent");
		return;
	}
	finish_no_ptr(req, "NODATA");
}

static void fwd_cb(void *arg, enum listans_status status, const uint8_t *pkt,
		   size_t len, uint64_t latency_us)
{
	struct fwd *f = arg;
	struct ptrview_req *req = f->req;
	uint32_t neg;
	(void)latency_us;

	switch (status) {
	case LISTANS_NXDOMAIN:
	case LISTANS_NODATA:
		f->state = FWD_UNCONFIRMED;
		if (pkt && negative_ttl(pkt, len, &neg))
			note_ttl(req, neg);
		break;
	case LISTANS_RECORDS: {
		int m = pkt ? forward_match(req, pkt, len) : -EBADMSG;
		if (m < 0) {
			f->state = FWD_FAILED;
			f->failure = "bad answer";
		} else {
			f->state = m ? FWD_CONFIRMED : FWD_UNCONFIRMED;
		}
		break;
	}
	default:
		f->state = FWD_FAILED;
		f->failure = failure_text(status);
		break;
	}
	fwd_done(req);
}

/* --------------------------------------------------------------- entry */

static void start_or_fail(struct ptrview_req *req)
{
	int rc = ask_ptr(req);
	if (rc < 0)
		finish_failed(req, rc == -ETIMEDOUT ? "timeout" : "not sent");
}

/* An asynchronous cache tier answered. */
static void cache_answered(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct ptrview_req *req = arg;
	struct ptrview_result r;

	if (status == CACHE_HIT && item &&
	    result_from_cache(req, item, req->now(), &r) == 0) {
		req->cb(req->arg, &r);
		req_free(req);
		return;
	}
	start_or_fail(req);
}

int ptrview_check(const struct ptrview_params *p, int family, const uint8_t *addr,
		  ptrview_cb cb, void *arg, struct ptrview_result *r)
{
	struct ptrview_req *req;
	int rc;

	if (!p || !p->up || !addr || !cb || !r || p->timeout_ms == 0 ||
	    (family != AF_INET && family != AF_INET6) ||
	    (unsigned)p->level > PTRCLASS_AGGRESSIVE || p->min_ttl > p->max_ttl)
		return -EINVAL;
	req = calloc(1, sizeof *req);
	if (!req)
		return -ENOMEM;
	if (p->servers_csv && strcmp(p->servers_csv, "system") != 0) {
		req->servers = strdup(p->servers_csv);
		if (!req->servers) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	req->cb = cb;
	req->arg = arg;
	req->up = p->up;
	req->cache = p->cache;
	req->timeout_ms = p->timeout_ms;
	req->deadline_ns = p->budget_ms ? uv_hrtime() + (uint64_t)p->budget_ms * 1000000 : 0;
	req->min_ttl = p->min_ttl;
	req->max_ttl = p->max_ttl;
	req->error_ttl = p->error_ttl;
	req->level = p->level;
	req->max_names = p->max_names == 0 ? PTRVIEW_DEFAULT_NAMES
			 : p->max_names > PTRVIEW_MAX_NAMES ? PTRVIEW_MAX_NAMES : p->max_names;
	req->now = p->now ? p->now : wall_now;
	req->ttl = TTL_NONE;
	if (family == AF_INET6 && is_v4_mapped(addr)) {
		req->family = AF_INET;
		memcpy(req->addr, addr + 12, 4);
	} else {
		req->family = family;
		memcpy(req->addr, addr, family == AF_INET ? 4 : 16);
	}
	req->key_len = (size_t)ptrview_cache_key(req->level, req->family, req->addr, req->key);
	req->qname_len = reverse_name(req->family, req->addr, req->qname);

	if (req->cache) {
		struct cache_item item;
		uint32_t now = req->now();
		rc = req->cache->ops->get(req->cache, req->key, req->key_len, now, &item,
					  cache_answered, req);
		if (rc == -EINPROGRESS)
			return 0;
		if (rc == CACHE_HIT && result_from_cache(req, &item, now, r) == 0) {
			req_free(req);
			return 1;
		}
	}
	rc = ask_ptr(req);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	req_free(req);
	return rc;
}
