/*
 * spfhelper_libspf2: libspf2 1.2 as an engine of rblmux-spf
 * (rblmux-spf -e libspf2), kept to measure it against the RFC 7208 suite
 * beside the evaluator rblmux uses (zones/spf_eval). Not for production:
 * Debian's libspf2 lacks the fix for CVE-2023-42118 and counts the 10-lookup
 * limit per record, not per evaluation.
 *
 * Its DNS layer is ours: every lookup goes to rblmuxd over the helper's
 * socket, with the guards libspf2 lacks, counted across the evaluation:
 * DNS-querying terms (TXT after the first, MX, PTR, and A/AAAA other than
 * those of names an MX or PTR answer gave), void lookups, and the check's
 * deadline. Past a limit, lookups answer "no data" at once and the result
 * becomes permerror. libspf2's "invalid" result becomes temperror after a
 * DNS error, else permerror. libspf2 reads an explanation's spaces as macro
 * errors: in TXT records that are not SPF records they are given as "%_".
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <spf2/spf.h>

#include "resolver/spfhelper.h"

#define HOSTS_MAX 32
/* A default explanation nobody publishes: it means "the domain gave none". */
#define NO_EXPLANATION "rblmux-libspf2-default-explanation"

struct guard {
	void *dns_arg;
	bool first_txt_done;
	unsigned terms, voids;
	bool over_terms, over_void, dns_error;
	unsigned nhosts;
	char hosts[HOSTS_MAX][256];
	struct spf_answer ans;
};

static __thread struct {
	SPF_dns_server_t *dns;
	SPF_server_t *server;
	struct guard *g;
} T;

static void quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

static int text_to_wire(const char *t, uint8_t *w)
{
	size_t n = strlen(t), o = 0, start = 0;
	if (n && t[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && t[i] != '.')
			continue;
		size_t l = i - start;
		if (l == 0 || l > 63)
			return -1;
		w[o++] = (uint8_t)l;
		memcpy(w + o, t + start, l);
		o += l;
		start = i + 1;
	}
	w[o++] = 0;
	return (int)o;
}

static void wire_to_text(const uint8_t *w, size_t wl, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < wl && w[i] && o + w[i] + 2 < cap) {
		if (o)
			out[o++] = '.';
		memcpy(out + o, w + i + 1, w[i]);
		o += w[i];
		i += 1u + w[i];
	}
	out[o] = '\0';
}

static bool is_host(const struct guard *g, const char *name)
{
	for (unsigned i = 0; i < g->nhosts; i++)
		if (strcasecmp(g->hosts[i], name) == 0)
			return true;
	return false;
}

static SPF_dns_rr_t *answer(SPF_dns_server_t *d, const char *domain, ns_type type,
			    int herrno)
{
	return SPF_dns_rr_new_init(d, domain, type, 0, herrno);
}

static SPF_dns_rr_t *guarded_lookup(SPF_dns_server_t *d, const char *domain, ns_type type,
				    int should_cache)
{
	struct guard *g = T.g;
	uint8_t wire[DNSWIRE_NAME_MAX];
	char text[256];
	(void)should_cache;

	/* Type 99 is obsolete (RFC 7208 §3.1): never asked. */
	if (type != ns_t_a && type != ns_t_aaaa && type != ns_t_mx && type != ns_t_ptr &&
	    type != ns_t_txt)
		return answer(d, domain, type, NO_DATA);
	if (g->over_terms || g->over_void)
		return answer(d, domain, type, NO_DATA);
	bool counted = true;
	if (type == ns_t_txt && !g->first_txt_done) {
		g->first_txt_done = true;
		counted = false;
	} else if ((type == ns_t_a || type == ns_t_aaaa) && is_host(g, domain)) {
		counted = false;
	}
	if (counted && ++g->terms > SPF_EVAL_MAX_DNS_TERMS) {
		g->over_terms = true;
		return answer(d, domain, type, NO_DATA);
	}
	int wl = text_to_wire(domain, wire);
	if (wl < 0)
		return answer(d, domain, type, HOST_NOT_FOUND);
	spfhelper_dns(g->dns_arg, wire, (size_t)wl, (uint16_t)type, &g->ans);
	const struct spf_answer *a = &g->ans;
	if (a->status == SPF_ANS_ERROR) {
		g->dns_error = true;
		return answer(d, domain, type, TRY_AGAIN);
	}
	if (a->status != SPF_ANS_RECORDS || a->n == 0) {
		if (counted && ++g->voids > SPF_EVAL_MAX_VOID)
			g->over_void = true;
		return answer(d, domain, type,
			      a->status == SPF_ANS_NXDOMAIN ? HOST_NOT_FOUND : NO_DATA);
	}
	SPF_dns_rr_t *rr = answer(d, domain, type, NETDB_SUCCESS);
	if (!rr)
		return NULL;
	int n = 0;
	for (unsigned i = 0; i < a->n; i++) {
		const uint8_t *data = a->data + a->rr[i].off;
		size_t len = a->rr[i].len;
		switch (type) {
		case ns_t_a:
			if (len != 4 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in_addr)))
				continue;
			memcpy(&rr->rr[n]->a, data, 4);
			break;
		case ns_t_aaaa:
			if (len != 16 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in6_addr)))
				continue;
			memcpy(&rr->rr[n]->aaaa, data, 16);
			break;
		case ns_t_txt: {
			bool spf = len >= 6 && strncasecmp((const char *)data, "v=spf1", 6) == 0;
			if (SPF_dns_rr_buf_realloc(rr, n, 2 * len + 1))
				continue;
			size_t o = 0;
			for (size_t k = 0; k < len; k++) {
				if (data[k] == ' ' && !spf) {
					rr->rr[n]->txt[o++] = '%';
					rr->rr[n]->txt[o++] = '_';
				} else {
					rr->rr[n]->txt[o++] = (char)data[k];
				}
			}
			rr->rr[n]->txt[o] = '\0';
			break;
		}
		default: /* MX, PTR: a name */
			wire_to_text(data, len, text, sizeof(text));
			if (SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1))
				continue;
			strcpy(rr->rr[n]->mx, text);
			if (g->nhosts < HOSTS_MAX)
				snprintf(g->hosts[g->nhosts++], sizeof(g->hosts[0]), "%s", text);
			break;
		}
		n++;
	}
	rr->num_rr = n;
	if (n == 0)
		rr->herrno = NO_DATA;
	return rr;
}

static void guarded_destroy(SPF_dns_server_t *d)
{
	free(d);
}

static bool thread_init(const char *receiver)
{
	if (T.server)
		return true;
	SPF_warning_handler = quiet;
	SPF_info_handler = quiet;
	SPF_debug_handler = quiet;
	T.g = calloc(1, sizeof(*T.g));
	T.dns = calloc(1, sizeof(*T.dns));
	if (!T.g || !T.dns)
		return false;
	T.dns->destroy = guarded_destroy;
	T.dns->lookup = guarded_lookup;
	T.dns->name = "rblmux";
	T.server = SPF_server_new_dns(T.dns, 0);
	if (!T.server)
		return false;
	SPF_server_set_rec_dom(T.server, receiver);
	/* Its sanitizing turns the spaces of explanations into '%'. */
	SPF_server_set_sanitize(T.server, 0);
	SPF_response_t *resp = NULL;
	SPF_server_set_explanation(T.server, NO_EXPLANATION, &resp);
	if (resp)
		SPF_response_free(resp);
	return true;
}

static enum spf_result map_result(SPF_result_t r, const struct guard *g)
{
	switch (r) {
	case SPF_RESULT_PASS: return SPF_PASS;
	case SPF_RESULT_FAIL: return SPF_FAIL;
	case SPF_RESULT_SOFTFAIL: return SPF_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return SPF_NEUTRAL;
	case SPF_RESULT_NONE: return SPF_NONE;
	case SPF_RESULT_TEMPERROR: return SPF_TEMPERROR;
	case SPF_RESULT_PERMERROR: return SPF_PERMERROR;
	default: return g->dns_error ? SPF_TEMPERROR : SPF_PERMERROR;
	}
}

static void engine_libspf2(void *dns_arg, const struct spfipc_check *c, struct spfipc_result *r)
{
	char sender[2 * SPFIPC_TEXT_MAX + 2];
	SPF_response_t *resp = NULL;

	r->result = SPF_TEMPERROR;
	if (!thread_init(c->receiver[0] ? c->receiver : "unknown")) {
		snprintf(r->reason, sizeof(r->reason), "libspf2 did not start");
		return;
	}
	struct guard *g = T.g;
	memset(g, 0, offsetof(struct guard, ans));
	g->dns_arg = dns_arg;

	SPF_request_t *req = SPF_request_new(T.server);
	if (!req) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		return;
	}
	if (c->family == AF_INET) {
		struct in_addr a;
		memcpy(&a, c->ip, 4);
		SPF_request_set_ipv4(req, a);
	} else {
		struct in6_addr a;
		memcpy(&a, c->ip, 16);
		SPF_request_set_ipv6(req, a);
	}
	SPF_request_set_helo_dom(req, c->helo[0] ? c->helo : c->domain);
	snprintf(sender, sizeof(sender), "%s@%s", c->local_part[0] ? c->local_part : "postmaster",
		 c->domain);
	if (SPF_request_set_env_from(req, sender) != 0) {
		r->result = SPF_NONE;
		snprintf(r->reason, sizeof(r->reason), "libspf2 refused the sender");
		SPF_request_free(req);
		return;
	}
	SPF_request_query_mailfrom(req, &resp);
	r->result = (uint8_t)(resp ? map_result(SPF_response_result(resp), g) : SPF_TEMPERROR);
	if (g->over_terms || g->over_void) {
		r->result = SPF_PERMERROR;
		snprintf(r->reason, sizeof(r->reason), "%s", g->over_terms
			 ? "more than 10 DNS-querying terms" : "more than 2 void lookups");
	} else if (resp) {
		snprintf(r->reason, sizeof(r->reason), "libspf2: %s",
			 SPF_strreason(SPF_response_reason(resp)));
	}
	if (r->result == SPF_FAIL && resp) {
		const char *exp = SPF_response_get_explanation(resp);
		if (exp && strcmp(exp, NO_EXPLANATION) != 0) {
			r->has_explanation = true;
			snprintf(r->explanation, sizeof(r->explanation), "%s", exp);
		}
	}
	r->dns_terms = (uint16_t)g->terms;
	r->void_lookups = (uint16_t)g->voids;
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(req);
}

spfhelper_engine_fn spfhelper_engine_libspf2(void)
{
	return engine_libspf2;
}
