/*
 * spf_eval: check_host() of RFC 7208 with every loop and buffer bounded.
 *
 * Each record is parsed completely before any of it is evaluated, so a
 * syntax error anywhere is a permerror (§4.6). Errors carry a result
 * (permerror or temperror) in the evaluation state and unwind with -1; the
 * first error's reason is the one reported.
 */
#include "zones/spf_eval.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zones/dnswire.h"

/* An include chain can only be this deep before the term limit stops it. */
#define MAX_DEPTH (SPF_EVAL_MAX_DNS_TERMS + 2)
/* Parts of one macro's value (split on its delimiters). */
#define MAX_PARTS 600
#define NAME_TEXT_MAX 253

enum term_kind {
	M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS,
	MOD_REDIRECT, MOD_EXP, MOD_OTHER,
};

struct term {
	uint8_t kind;
	char qual;          /* + - ~ ? */
	uint8_t cidr4, cidr6;
	uint16_t off, len;  /* the whole term in the record's text */
	uint16_t spec_off, spec_len; /* domain-spec (0 length: none) */
	uint8_t addr[16];   /* ip4 (4 bytes) / ip6 */
};

struct record {
	size_t len;
	unsigned n;
	int redirect, exp;  /* term index or -1 */
	bool has_all;
	char text[SPF_EVAL_RECORD_MAX + 1];
	struct term t[SPF_EVAL_TERMS_MAX];
};

struct ev {
	const struct spf_eval_req *req;
	struct spf_eval_out *out;
	int family;                    /* AF_INET or AF_INET6, after unmapping */
	uint8_t ip[16];
	char ip_i[72];                 /* %{i} */
	char ip_c[INET6_ADDRSTRLEN];   /* %{c} */
	const char *lp;                /* %{l} */
	char sender_dom[NAME_TEXT_MAX + 1]; /* %{o} */
	char helo[NAME_TEXT_MAX + 1];  /* %{h} */
	const char *receiver;          /* %{r} */
	char tstamp[16];               /* %{t} */
	bool p_done;
	char p[NAME_TEXT_MAX + 1];     /* %{p} */
	bool failed;
	enum spf_result err;
	struct spf_answer *ans;
};

/* ------------------------------------------------------------- helpers */

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static bool word_is(const char *s, size_t n, const char *word)
{
	size_t wl = strlen(word);
	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != word[i])
			return false;
	return true;
}

/* Reasons are shown to people: keep them printable, whatever the record held. */
static void reason_vset(struct ev *ev, const char *fmt, va_list ap)
{
	char *r = ev->out->reason;
	vsnprintf(r, SPF_EVAL_REASON_MAX, fmt, ap);
	for (char *c = r; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
}

static void reason_set(struct ev *ev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reason_vset(ev, fmt, ap);
	va_end(ap);
}

/* Record an error (the first one wins) and return -1 to unwind. */
static int fail_with(struct ev *ev, enum spf_result r, const char *fmt, ...)
{
	if (!ev->failed) {
		va_list ap;
		ev->failed = true;
		ev->err = r;
		va_start(ap, fmt);
		reason_vset(ev, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* "%.*s" of attacker text, cut short for reasons. */
#define SHOWN(n) ((int)((n) > 60 ? 60 : (n)))

/* --------------------------------------------------------------- names */

/* Text ("a.b.c", one trailing dot allowed, no escapes: every byte but '.'
 * is label content) to wire form. Returns the wire length, or -1 when it is
 * not a DNS name: empty, an empty label, a label over 63, over 255 bytes. */
static int name_to_wire(const char *s, size_t n, uint8_t *out)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_TEXT_MAX)
		return -1;
	size_t o = 0, start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t l = i - start;
		if (l == 0 || l > 63 || o + 1 + l + 1 > DNSWIRE_NAME_MAX)
			return -1;
		out[o++] = (uint8_t)l;
		memcpy(out + o, s + start, l);
		o += l;
		start = i + 1;
	}
	out[o++] = 0;
	return (int)o;
}

/* Wire to text, labels joined by '.', no trailing dot. Returns the length or
 * -1 for a malformed wire name or a text over cap. */
static int wire_to_text(const uint8_t *w, size_t wl, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < wl) {
		uint8_t l = w[i];
		if (l == 0)
			break;
		if (l > 63 || i + 1 + l >= wl)
			return -1;
		if (o && o + 1 < cap)
			out[o++] = '.';
		if (o + l >= cap)
			return -1;
		memcpy(out + o, w + i + 1, l);
		o += l;
		i += 1 + (size_t)l;
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* True when wire name a equals b or is below it (case-insensitive). */
static bool wire_within(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al < bl)
		return false;
	size_t i = 0;
	/* a's suffix must start at a label boundary. */
	while (al - i > bl) {
		if (a[i] == 0 || a[i] > 63)
			return false;
		i += 1 + (size_t)a[i];
	}
	if (al - i != bl)
		return false;
	return dnswire_name_equal(a + i, bl, b, bl, false);
}

/* RFC 7208 toplabel: alphanumerics with at least one letter, or
 * alphanumerics and dashes, starting and ending alphanumeric, with a dash. */
static bool is_toplabel(const char *s, size_t n)
{
	bool alpha = false, dash = false;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (is_alpha((unsigned char)s[i]))
			alpha = true;
		else if (s[i] == '-')
			dash = true;
		else if (!is_digit((unsigned char)s[i]))
			return false;
	}
	if (!dash)
		return alpha;
	return is_alnum((unsigned char)s[0]) && is_alnum((unsigned char)s[n - 1]);
}

/* <domain> of check_host (§4.3): a multi-label name of visible ASCII whose
 * last label is a toplabel. */
static bool domain_valid(const char *d, size_t n)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	if (n > 0 && d[n - 1] == '.')
		n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] < 0x21 || (unsigned char)d[i] > 0x7e)
			return false;
	if (name_to_wire(d, n, w) < 0)
		return false;
	const char *dot = memrchr(d, '.', n);
	if (!dot)
		return false;
	return is_toplabel(dot + 1, n - (size_t)(dot + 1 - d));
}

static int reverse_name(const struct ev *ev, uint8_t *out)
{
	char text[80];
	if (ev->family == AF_INET) {
		snprintf(text, sizeof(text), "%u.%u.%u.%u.in-addr.arpa", ev->ip[3], ev->ip[2],
			 ev->ip[1], ev->ip[0]);
	} else {
		static const char hex[] = "0123456789abcdef";
		size_t o = 0;
		for (int i = 15; i >= 0; i--) {
			text[o++] = hex[ev->ip[i] & 15];
			text[o++] = '.';
			text[o++] = hex[ev->ip[i] >> 4];
			text[o++] = '.';
		}
		memcpy(text + o, "ip6.arpa", 9);
	}
	return name_to_wire(text, strlen(text), out);
}

/* ----------------------------------------------------------------- DNS */

int spf_answer_add(struct spf_answer *a, const void *data, size_t len, uint16_t pref)
{
	if (a->n_total < UINT16_MAX)
		a->n_total++;
	if (a->n >= SPF_ANS_MAX_RR || len > UINT16_MAX ||
	    len > SPF_ANS_DATA_MAX - a->data_len)
		return -ENOSPC;
	struct spf_answer_rr *rr = &a->rr[a->n++];
	rr->off = a->data_len;
	rr->len = (uint16_t)len;
	rr->pref = pref;
	if (len)
		memcpy(a->data + a->data_len, data, len);
	a->data_len += (uint32_t)len;
	return 0;
}

static bool answer_sane(const struct spf_answer *a)
{
	if (a->status > SPF_ANS_ERROR || a->n > SPF_ANS_MAX_RR ||
	    a->data_len > SPF_ANS_DATA_MAX || a->n_total < a->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->rr[i].off > a->data_len || a->rr[i].len > a->data_len - a->rr[i].off)
			return false;
	return true;
}

/* One question. Returns 0 with ev->ans filled, or -1 (error recorded) when
 * the evaluation has asked too many questions. An answer with records but
 * none kept reads as NODATA. */
static int ask(struct ev *ev, const uint8_t *name, size_t len, uint16_t qtype)
{
	struct spf_answer *a = ev->ans;
	if (ev->out->questions >= SPF_EVAL_MAX_QUESTIONS)
		return fail_with(ev, SPF_PERMERROR, "too many DNS questions");
	ev->out->questions++;
	a->status = SPF_ANS_ERROR;
	a->n = a->n_total = 0;
	a->data_len = 0;
	if (ev->req->dns(ev->req->dns_arg, name, len, qtype, a) < 0 || !answer_sane(a)) {
		a->status = SPF_ANS_ERROR;
		a->n = a->n_total = 0;
	}
	if (a->status == SPF_ANS_RECORDS && a->n_total == 0)
		a->status = SPF_ANS_NODATA;
	return 0;
}

static const char *qtype_name(uint16_t t)
{
	switch (t) {
	case DNS_T_A: return "A";
	case DNS_T_AAAA: return "AAAA";
	case DNS_T_MX: return "MX";
	case DNS_T_PTR: return "PTR";
	case DNS_T_TXT: return "TXT";
	}
	return "?";
}

static int dns_error(struct ev *ev, const uint8_t *name, size_t len, uint16_t qtype)
{
	char text[NAME_TEXT_MAX + 1];
	if (wire_to_text(name, len, text, sizeof(text)) < 0)
		strcpy(text, "?");
	return fail_with(ev, SPF_TEMPERROR, "DNS error or timeout for %s %.*s", qtype_name(qtype),
			 SHOWN(strlen(text)), text);
}

/* Count a DNS-querying term (§4.6.4). */
static int count_term(struct ev *ev)
{
	if (++ev->out->dns_terms > SPF_EVAL_MAX_DNS_TERMS)
		return fail_with(ev, SPF_PERMERROR, "more than %d DNS-querying terms",
				 SPF_EVAL_MAX_DNS_TERMS);
	return 0;
}

static int count_void(struct ev *ev)
{
	if (++ev->out->void_lookups > SPF_EVAL_MAX_VOID)
		return fail_with(ev, SPF_PERMERROR, "more than %d void lookups",
				 SPF_EVAL_MAX_VOID);
	return 0;
}

static bool addr_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* Does the current answer (A or AAAA) hold the client's address? */
static bool answer_has_ip(const struct ev *ev, unsigned bits)
{
	const struct spf_answer *a = ev->ans;
	size_t alen = ev->family == AF_INET ? 4 : 16;
	if (a->status != SPF_ANS_RECORDS)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->rr[i].len == alen && addr_match(a->data + a->rr[i].off, ev->ip, bits))
			return true;
	return false;
}

/* -------------------------------------------------------------- macros */

enum macro_mode {
	MACRO_DOMAIN,   /* domain-spec: no c, r, t; no spaces */
	MACRO_MODIFIER, /* unknown modifier's value: any letter */
	MACRO_EXPLAIN,  /* explanation text: any letter, spaces */
};

/* Check macro-string syntax (§7.1). *last_end: offset just after the last
 * macro-expand (0 when none). Returns 0 or -1 (not recorded). */
static int macro_check(const char *s, size_t n, enum macro_mode mode, size_t *last_end)
{
	size_t i = 0, end = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 1 >= n)
				return -1;
			char d = s[i + 1];
			if (d == '%' || d == '_' || d == '-') {
				i += 2;
				end = i;
				continue;
			}
			if (d != '{' || i + 2 >= n)
				return -1;
			size_t j = i + 2;
			int letter = lower((unsigned char)s[j]);
			if (!strchr("slodiphvcrt", letter) || letter == 0)
				return -1;
			if (mode == MACRO_DOMAIN && strchr("crt", letter))
				return -1;
			j++;
			size_t digits = j;
			unsigned long v = 0;
			while (j < n && is_digit((unsigned char)s[j])) {
				if (v < 1000)
					v = v * 10 + (unsigned long)(s[j] - '0');
				j++;
			}
			/* §7.1: a DIGIT transformer must be nonzero. */
			if (j > digits && v == 0)
				return -1;
			if (j < n && lower((unsigned char)s[j]) == 'r')
				j++;
			while (j < n && strchr(".-+,/_=", s[j]) && s[j])
				j++;
			if (j >= n || s[j] != '}')
				return -1;
			i = j + 1;
			end = i;
			continue;
		}
		if (c == ' ' && mode == MACRO_EXPLAIN) {
			i++;
			continue;
		}
		if (c < 0x21 || c > 0x7e)
			return -1;
		i++;
	}
	if (last_end)
		*last_end = end;
	return 0;
}

/* domain-spec = macro-string domain-end; domain-end = ("." toplabel ["."])
 * / macro-expand (§7.1). */
static bool domain_spec_valid(const char *s, size_t n)
{
	size_t last_end;
	if (n == 0 || macro_check(s, n, MACRO_DOMAIN, &last_end) < 0)
		return false;
	if (last_end == n)
		return true;
	if (s[n - 1] == '.')
		n--;
	if (n == 0 || last_end >= n)
		return false;
	const char *dot = memrchr(s + last_end, '.', n - last_end);
	if (!dot)
		return false;
	size_t off = (size_t)(dot + 1 - s);
	return is_toplabel(s + off, n - off);
}

static int get_p(struct ev *ev, const char *domain);

/* Unreserved characters (RFC 3986) stay; others become %XX (§7.3). */
static int url_escape(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return (int)o;
}

/* The value of one macro letter. Returns 0, or -1 on an error recorded. */
static int macro_value(struct ev *ev, int letter, const char *domain, char *buf,
		       size_t cap, const char **val)
{
	switch (letter) {
	case 's':
		snprintf(buf, cap, "%s@%s", ev->lp, ev->sender_dom);
		*val = buf;
		return 0;
	case 'l': *val = ev->lp; return 0;
	case 'o': *val = ev->sender_dom; return 0;
	case 'd': *val = domain; return 0;
	case 'i': *val = ev->ip_i; return 0;
	case 'v': *val = ev->family == AF_INET ? "in-addr" : "ip6"; return 0;
	case 'h': *val = ev->helo; return 0;
	case 'c': *val = ev->ip_c; return 0;
	case 'r': *val = ev->receiver; return 0;
	case 't': *val = ev->tstamp; return 0;
	case 'p':
		if (get_p(ev, domain) < 0)
			return -1;
		*val = ev->p;
		return 0;
	}
	return fail_with(ev, SPF_PERMERROR, "unknown macro letter");
}

/* Expand a macro-string already checked by macro_check. Returns the length
 * written (NUL-terminated), or -1: an error recorded (when fatal is true) or
 * an expansion over cap. */
static int expand(struct ev *ev, const char *s, size_t n, const char *domain,
		  char *out, size_t cap, bool fatal)
{
	size_t o = 0, i = 0;
	char vbuf[600];
	char part_buf[600];
	uint16_t starts[MAX_PARTS], lens[MAX_PARTS];

	while (i < n) {
		const char *lit = NULL;
		size_t lit_len = 0;
		if (s[i] != '%') {
			lit = s + i;
			lit_len = 1;
			i++;
		} else if (i + 1 < n && s[i + 1] != '{') {
			lit = s[i + 1] == '%' ? "%" : s[i + 1] == '_' ? " " : "%20";
			lit_len = strlen(lit);
			i += 2;
		}
		if (lit) {
			if (o + lit_len >= cap)
				goto too_long;
			memcpy(out + o, lit, lit_len);
			o += lit_len;
			continue;
		}
		/* %{ letter digits [r] delimiters } */
		size_t j = i + 2;
		if (j >= n)
			return fail_with(ev, SPF_PERMERROR, "bad macro");
		bool upper = s[j] >= 'A' && s[j] <= 'Z';
		int letter = lower((unsigned char)s[j]);
		j++;
		unsigned keep = 0;
		while (j < n && is_digit((unsigned char)s[j])) {
			if (keep < 1000)
				keep = keep * 10 + (unsigned)(s[j] - '0');
			j++;
		}
		bool reverse = false;
		if (j < n && lower((unsigned char)s[j]) == 'r') {
			reverse = true;
			j++;
		}
		const char *delims = s + j;
		size_t ndelims = 0;
		while (j < n && s[j] != '}') {
			j++;
			ndelims++;
		}
		if (j >= n)
			return fail_with(ev, SPF_PERMERROR, "bad macro");
		i = j + 1;

		const char *val = "";
		if (macro_value(ev, letter, domain, vbuf, sizeof(vbuf), &val) < 0)
			return -1;
		size_t vlen = strlen(val);
		if (vlen >= sizeof(part_buf))
			goto too_long;

		/* Split on the delimiters (default '.'), reverse, keep the
		 * rightmost parts, join with '.'. */
		unsigned np = 0;
		size_t start = 0;
		for (size_t k = 0; k <= vlen; k++) {
			bool delim = k == vlen;
			if (!delim) {
				if (ndelims == 0)
					delim = val[k] == '.';
				else
					delim = memchr(delims, val[k], ndelims) != NULL;
			}
			if (!delim)
				continue;
			if (np >= MAX_PARTS)
				goto too_long;
			starts[np] = (uint16_t)start;
			lens[np] = (uint16_t)(k - start);
			np++;
			start = k + 1;
		}
		/* In the (possibly reversed) order, keep the rightmost parts. */
		size_t pl = 0;
		unsigned first = (keep && keep < np) ? np - keep : 0;
		for (unsigned k = first; k < np; k++) {
			unsigned idx = reverse ? np - 1 - k : k;
			if (k > first)
				part_buf[pl++] = '.';
			memcpy(part_buf + pl, val + starts[idx], lens[idx]);
			pl += lens[idx];
		}
		int w;
		if (upper) {
			if (o >= cap)
				goto too_long;
			w = url_escape(part_buf, pl, out + o, cap - o);
			if (w < 0)
				goto too_long;
		} else {
			if (o + pl >= cap)
				goto too_long;
			memcpy(out + o, part_buf, pl);
			w = (int)pl;
		}
		o += (size_t)w;
	}
	out[o] = '\0';
	return (int)o;

too_long:
	if (fatal)
		return fail_with(ev, SPF_PERMERROR, "macro expansion too long");
	return -1;
}

/* Expand a domain-spec into a wire name: a trailing dot dropped, cut from
 * the left to 253 bytes (§7.3). A result that is no DNS name (empty label,
 * label over 63) is a permerror: RFC 7208 leaves it undefined, and it can
 * never work. Returns the wire length or -1. */
static int expand_domain(struct ev *ev, const char *s, size_t n, const char *domain,
			 uint8_t *wire, char *text_out)
{
	char buf[SPF_EVAL_EXPAND_MAX];
	int len = expand(ev, s, n, domain, buf, sizeof(buf), true);
	if (len < 0)
		return -1;
	size_t l = (size_t)len;
	if (l > 0 && buf[l - 1] == '.')
		buf[--l] = '\0';
	const char *p = buf;
	while (l > NAME_TEXT_MAX) {
		const char *dot = memchr(p, '.', l);
		if (!dot)
			break;
		l -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	int wl = name_to_wire(p, l, wire);
	if (wl < 0)
		return fail_with(ev, SPF_PERMERROR, "invalid domain name %.*s", SHOWN(l), p);
	if (text_out) {
		memcpy(text_out, p, l);
		text_out[l] = '\0';
	}
	return wl;
}

/* %{p} (§7.3): a validated name of the client, preferring the current
 * domain or a name below it; "unknown" when none. Computed once; DNS errors
 * only make it "unknown". */
static int get_p(struct ev *ev, const char *domain)
{
	uint8_t rev[DNSWIRE_NAME_MAX], dw[DNSWIRE_NAME_MAX];
	uint8_t names[SPF_EVAL_MAX_NAMES][DNSWIRE_NAME_MAX];
	size_t name_len[SPF_EVAL_MAX_NAMES];
	int best = -1, best_rank = 0;

	if (ev->p_done)
		return 0;
	ev->p_done = true;
	strcpy(ev->p, "unknown");
	int rl = reverse_name(ev, rev);
	int dl = name_to_wire(domain, strlen(domain), dw);
	if (rl < 0)
		return 0;
	if (ask(ev, rev, (size_t)rl, DNS_T_PTR) < 0)
		return -1;
	if (ev->ans->status != SPF_ANS_RECORDS)
		return 0;
	unsigned nn = 0;
	for (unsigned i = 0; i < ev->ans->n && nn < SPF_EVAL_MAX_NAMES; i++) {
		const struct spf_answer_rr *rr = &ev->ans->rr[i];
		if (rr->len == 0 || rr->len > DNSWIRE_NAME_MAX)
			continue;
		memcpy(names[nn], ev->ans->data + rr->off, rr->len);
		name_len[nn++] = rr->len;
	}
	for (unsigned i = 0; i < nn; i++) {
		if (ask(ev, names[i], name_len[i], ev->family == AF_INET ? DNS_T_A : DNS_T_AAAA) < 0)
			return -1;
		if (!answer_has_ip(ev, ev->family == AF_INET ? 32 : 128))
			continue;
		int rank = 1;
		if (dl > 0 && wire_within(names[i], name_len[i], dw, (size_t)dl))
			rank = dnswire_name_equal(names[i], name_len[i], dw, (size_t)dl, false) ? 3 : 2;
		if (rank > best_rank) {
			best_rank = rank;
			best = (int)i;
		}
	}
	if (best >= 0 && wire_to_text(names[best], name_len[best], ev->p, sizeof(ev->p)) < 0)
		strcpy(ev->p, "unknown");
	return 0;
}

/* -------------------------------------------------------------- parsing */

/* "/" digits, no leading zero, at most max. Returns the value or -1. */
static int parse_cidr(const char *s, size_t n, unsigned max)
{
	unsigned v = 0;
	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v > max ? -1 : (int)v;
}

/* Dotted quad, each octet 0-255 without leading zeros. */
static bool parse_ip4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		size_t start = i;
		unsigned v = 0;
		while (i < n && is_digit((unsigned char)s[i]) && i - start < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		size_t len = i - start;
		if (len == 0 || v > 255 || (len > 1 && s[start] == '0'))
			return false;
		out[k] = (uint8_t)v;
		if (k < 3) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

static bool parse_ip6(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 1];
	if (n == 0 || n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(is_alnum((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'))
			return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

static int perm_term(struct ev *ev, const char *what, const char *s, size_t n)
{
	return fail_with(ev, SPF_PERMERROR, "%s: %.*s", what, SHOWN(n), s);
}

static int parse_modifier(struct ev *ev, struct record *rec, struct term *t,
			  const char *s, size_t name_len, size_t n)
{
	const char *v = s + name_len + 1;
	size_t vl = n - name_len - 1;
	if (word_is(s, name_len, "redirect") || word_is(s, name_len, "exp")) {
		bool redirect = name_len == 8;
		int *slot = redirect ? &rec->redirect : &rec->exp;
		if (*slot >= 0)
			return perm_term(ev, redirect ? "second redirect" : "second exp", s, n);
		if (!domain_spec_valid(v, vl))
			return perm_term(ev, "syntax error", s, n);
		t->kind = redirect ? MOD_REDIRECT : MOD_EXP;
		t->spec_off = (uint16_t)(v - rec->text);
		t->spec_len = (uint16_t)vl;
		*slot = (int)rec->n;
		return 0;
	}
	if (macro_check(v, vl, MACRO_MODIFIER, NULL) < 0)
		return perm_term(ev, "syntax error", s, n);
	t->kind = MOD_OTHER;
	return 0;
}

/* Split "...[/c4][//c6]" off the end of rest. Returns the length left, or -1. */
static int split_dual_cidr(const char *rest, size_t n, struct term *t)
{
	size_t end = n, d = n;
	while (d > 0 && is_digit((unsigned char)rest[d - 1]))
		d--;
	if (d < end && d >= 2 && rest[d - 1] == '/' && rest[d - 2] == '/') {
		int c6 = parse_cidr(rest + d, end - d, 128);
		if (c6 < 0)
			return -1;
		t->cidr6 = (uint8_t)c6;
		end = d - 2;
		d = end;
		while (d > 0 && is_digit((unsigned char)rest[d - 1]))
			d--;
	}
	if (d < end && d >= 1 && rest[d - 1] == '/' && (d < 2 || rest[d - 2] != '/')) {
		int c4 = parse_cidr(rest + d, end - d, 32);
		if (c4 < 0)
			return -1;
		t->cidr4 = (uint8_t)c4;
		end = d - 1;
	}
	return (int)end;
}

static int parse_mechanism(struct ev *ev, struct record *rec, struct term *t,
			   const char *s, size_t n)
{
	const char *term = s;
	size_t term_len = n;
	t->qual = '+';
	if (n && strchr("+-~?", s[0])) {
		t->qual = s[0];
		s++;
		n--;
	}
	size_t nl = 0;
	while (nl < n && s[nl] != ':' && s[nl] != '/')
		nl++;
	const char *rest = s + nl;
	size_t rl = n - nl;
	static const struct { const char *name; uint8_t kind; } mechs[] = {
		{ "all", M_ALL }, { "include", M_INCLUDE }, { "a", M_A }, { "mx", M_MX },
		{ "ptr", M_PTR }, { "ip4", M_IP4 }, { "ip6", M_IP6 }, { "exists", M_EXISTS },
	};
	int kind = -1;
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (word_is(s, nl, mechs[i].name))
			kind = mechs[i].kind;
	if (kind < 0)
		return perm_term(ev, "unknown mechanism", term, term_len);
	t->kind = (uint8_t)kind;
	t->cidr4 = 32;
	t->cidr6 = 128;

	switch (kind) {
	case M_ALL:
		if (rl != 0)
			return perm_term(ev, "syntax error", term, term_len);
		rec->has_all = true;
		return 0;
	case M_INCLUDE:
	case M_EXISTS:
	case M_PTR:
		if (rl == 0 && kind == M_PTR)
			return 0;
		if (rl < 2 || rest[0] != ':' || !domain_spec_valid(rest + 1, rl - 1))
			return perm_term(ev, "syntax error", term, term_len);
		t->spec_off = (uint16_t)(rest + 1 - rec->text);
		t->spec_len = (uint16_t)(rl - 1);
		return 0;
	case M_A:
	case M_MX: {
		int left = split_dual_cidr(rest, rl, t);
		if (left < 0)
			return perm_term(ev, "bad CIDR length", term, term_len);
		if (left == 0)
			return 0;
		if (left < 2 || rest[0] != ':' || !domain_spec_valid(rest + 1, (size_t)left - 1))
			return perm_term(ev, "syntax error", term, term_len);
		t->spec_off = (uint16_t)(rest + 1 - rec->text);
		t->spec_len = (uint16_t)(left - 1);
		return 0;
	}
	case M_IP4:
	case M_IP6: {
		if (rl < 2 || rest[0] != ':')
			return perm_term(ev, "syntax error", term, term_len);
		const char *a = rest + 1;
		size_t al = rl - 1;
		const char *slash = memchr(a, '/', al);
		size_t addr_len = slash ? (size_t)(slash - a) : al;
		if (slash) {
			int c = parse_cidr(slash + 1, al - addr_len - 1, kind == M_IP4 ? 32 : 128);
			if (c < 0)
				return perm_term(ev, "bad CIDR length", term, term_len);
			if (kind == M_IP4)
				t->cidr4 = (uint8_t)c;
			else
				t->cidr6 = (uint8_t)c;
		}
		bool ok = kind == M_IP4 ? parse_ip4(a, addr_len, t->addr)
					: parse_ip6(a, addr_len, t->addr);
		if (!ok)
			return perm_term(ev, "bad address", term, term_len);
		return 0;
	}
	}
	return perm_term(ev, "unknown mechanism", term, term_len);
}

/* Parse rec->text (selected, so it starts with "v=spf1"). */
static int parse_record(struct ev *ev, struct record *rec)
{
	rec->n = 0;
	rec->redirect = rec->exp = -1;
	rec->has_all = false;
	for (size_t i = 0; i < rec->len; i++) {
		unsigned char c = (unsigned char)rec->text[i];
		if (c < 0x20 || c > 0x7e)
			return fail_with(ev, SPF_PERMERROR,
					 "non-ASCII or control character in the record");
	}
	size_t i = 6;
	while (i < rec->len) {
		while (i < rec->len && rec->text[i] == ' ')
			i++;
		if (i >= rec->len)
			break;
		size_t start = i;
		while (i < rec->len && rec->text[i] != ' ')
			i++;
		if (rec->n >= SPF_EVAL_TERMS_MAX)
			return fail_with(ev, SPF_PERMERROR, "too many terms");
		struct term *t = &rec->t[rec->n];
		memset(t, 0, sizeof(*t));
		t->off = (uint16_t)start;
		t->len = (uint16_t)(i - start);
		const char *s = rec->text + start;
		size_t n = i - start;
		/* A modifier is name "=" with name = ALPHA *(ALPHA / DIGIT / "-"
		 * / "_" / "."); anything else before a '=' makes a mechanism. */
		size_t k = 0;
		if (is_alpha((unsigned char)s[0])) {
			k = 1;
			while (k < n && (is_alnum((unsigned char)s[k]) || s[k] == '-' ||
					 s[k] == '_' || s[k] == '.'))
				k++;
		}
		int rc;
		if (k < n && s[k] == '=') {
			if (k == 0)
				return perm_term(ev, "empty modifier name", s, n);
			rc = parse_modifier(ev, rec, t, s, k, n);
		} else {
			rc = parse_mechanism(ev, rec, t, s, n);
		}
		if (rc < 0)
			return -1;
		rec->n++;
	}
	return 0;
}

/* ------------------------------------------------------------ records */

/* The domain's SPF record (§4.4, §4.5) into rec. Returns 1 found, 0 none
 * (*is_void tells NXDOMAIN/NODATA from "no SPF record among the TXT"), -1. */
static int fetch_record(struct ev *ev, const uint8_t *wire, size_t wl, struct record *rec,
			bool *is_void)
{
	*is_void = false;
	if (ask(ev, wire, wl, DNS_T_TXT) < 0)
		return -1;
	const struct spf_answer *a = ev->ans;
	if (a->status == SPF_ANS_ERROR)
		return dns_error(ev, wire, wl, DNS_T_TXT);
	if (a->status != SPF_ANS_RECORDS) {
		*is_void = true;
		return 0;
	}
	int found = -1;
	for (unsigned i = 0; i < a->n; i++) {
		const char *txt = (const char *)a->data + a->rr[i].off;
		size_t len = a->rr[i].len;
		if (len < 6 || !word_is(txt, 6, "v=spf1") || (len > 6 && txt[6] != ' '))
			continue;
		if (found >= 0)
			return fail_with(ev, SPF_PERMERROR, "more than one SPF record");
		found = (int)i;
	}
	if (found < 0) {
		/* Records that did not fit the answer buffer could hide one. */
		if (a->n < a->n_total)
			return fail_with(ev, SPF_TEMPERROR, "TXT answer too large");
		return 0;
	}
	size_t len = a->rr[found].len;
	if (len > SPF_EVAL_RECORD_MAX)
		return fail_with(ev, SPF_PERMERROR, "SPF record longer than %d bytes",
				 SPF_EVAL_RECORD_MAX);
	memcpy(rec->text, a->data + a->rr[found].off, len);
	rec->text[len] = '\0';
	rec->len = len;
	return 1;
}

/* ---------------------------------------------------------- mechanisms */

static unsigned client_bits(const struct ev *ev, const struct term *t)
{
	return ev->family == AF_INET ? t->cidr4 : t->cidr6;
}

static uint16_t addr_qtype(const struct ev *ev)
{
	return ev->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

static int mech_a(struct ev *ev, const uint8_t *w, size_t wl, const struct term *t)
{
	uint16_t qt = addr_qtype(ev);
	if (ask(ev, w, wl, qt) < 0)
		return -1;
	if (ev->ans->status == SPF_ANS_ERROR)
		return dns_error(ev, w, wl, qt);
	if (ev->ans->status != SPF_ANS_RECORDS)
		return count_void(ev);
	return answer_has_ip(ev, client_bits(ev, t)) ? 1 : 0;
}

static int mech_mx(struct ev *ev, const uint8_t *w, size_t wl, const struct term *t)
{
	uint8_t names[SPF_EVAL_MAX_NAMES][DNSWIRE_NAME_MAX];
	size_t lens[SPF_EVAL_MAX_NAMES];
	unsigned nn = 0;

	if (ask(ev, w, wl, DNS_T_MX) < 0)
		return -1;
	const struct spf_answer *a = ev->ans;
	if (a->status == SPF_ANS_ERROR)
		return dns_error(ev, w, wl, DNS_T_MX);
	if (a->status != SPF_ANS_RECORDS)
		return count_void(ev);
	if (a->n_total > SPF_EVAL_MAX_NAMES)
		return fail_with(ev, SPF_PERMERROR, "more than %d MX records",
				 SPF_EVAL_MAX_NAMES);
	for (unsigned i = 0; i < a->n; i++) {
		const struct spf_answer_rr *rr = &a->rr[i];
		/* A null MX (RFC 7505, exchange ".") names no host. */
		if (rr->len < 2 || rr->len > DNSWIRE_NAME_MAX)
			continue;
		memcpy(names[nn], a->data + rr->off, rr->len);
		lens[nn++] = rr->len;
	}
	uint16_t qt = addr_qtype(ev);
	for (unsigned i = 0; i < nn; i++) {
		if (ask(ev, names[i], lens[i], qt) < 0)
			return -1;
		if (ev->ans->status == SPF_ANS_ERROR)
			return dns_error(ev, names[i], lens[i], qt);
		if (answer_has_ip(ev, client_bits(ev, t)))
			return 1;
	}
	return 0;
}

static int mech_ptr(struct ev *ev, const uint8_t *w, size_t wl)
{
	uint8_t rev[DNSWIRE_NAME_MAX];
	uint8_t names[SPF_EVAL_MAX_NAMES][DNSWIRE_NAME_MAX];
	size_t lens[SPF_EVAL_MAX_NAMES];
	unsigned nn = 0;

	int rl = reverse_name(ev, rev);
	if (rl < 0)
		return 0;
	if (ask(ev, rev, (size_t)rl, DNS_T_PTR) < 0)
		return -1;
	const struct spf_answer *a = ev->ans;
	/* §5.5: a DNS error during the PTR lookup is no match. */
	if (a->status == SPF_ANS_ERROR)
		return 0;
	if (a->status != SPF_ANS_RECORDS)
		return count_void(ev);
	/* Only the first 10 names count; only those at or below the target
	 * could match, so only they are validated. */
	for (unsigned i = 0; i < a->n && i < SPF_EVAL_MAX_NAMES; i++) {
		const struct spf_answer_rr *rr = &a->rr[i];
		if (rr->len == 0 || rr->len > DNSWIRE_NAME_MAX ||
		    !wire_within(a->data + rr->off, rr->len, w, wl))
			continue;
		memcpy(names[nn], a->data + rr->off, rr->len);
		lens[nn++] = rr->len;
	}
	for (unsigned i = 0; i < nn; i++) {
		if (ask(ev, names[i], lens[i], addr_qtype(ev)) < 0)
			return -1;
		if (answer_has_ip(ev, ev->family == AF_INET ? 32 : 128))
			return 1;
	}
	return 0;
}

static int mech_exists(struct ev *ev, const uint8_t *w, size_t wl)
{
	if (ask(ev, w, wl, DNS_T_A) < 0)
		return -1;
	if (ev->ans->status == SPF_ANS_ERROR)
		return dns_error(ev, w, wl, DNS_T_A);
	if (ev->ans->status != SPF_ANS_RECORDS)
		return count_void(ev);
	for (unsigned i = 0; i < ev->ans->n; i++)
		if (ev->ans->rr[i].len == 4)
			return 1;
	return 0;
}

static enum spf_result check_domain(struct ev *ev, const char *domain, int depth,
				    bool top, bool *no_record);

/* Evaluate a record's explanation (§6.2). Any problem leaves the default. */
static void explain(struct ev *ev, const struct record *rec, const char *domain)
{
	const struct term *t = &rec->t[rec->exp];
	uint8_t w[DNSWIRE_NAME_MAX];
	char reason[SPF_EVAL_REASON_MAX];
	/* A failure here must not turn the fail into an error. */
	memcpy(reason, ev->out->reason, sizeof(reason));
	int wl = expand_domain(ev, rec->text + t->spec_off, t->spec_len, domain, w, NULL);
	if (wl < 0 || ask(ev, w, (size_t)wl, DNS_T_TXT) < 0)
		goto restore;
	const struct spf_answer *a = ev->ans;
	if (a->status != SPF_ANS_RECORDS || a->n_total != 1 || a->n != 1)
		return;
	const char *txt = (const char *)a->data + a->rr[0].off;
	size_t len = a->rr[0].len;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)txt[i] < 0x20 || (unsigned char)txt[i] > 0x7e)
			return;
	if (len >= SPF_EVAL_EXPAND_MAX || macro_check(txt, len, MACRO_EXPLAIN, NULL) < 0)
		return;
	char src[SPF_EVAL_EXPAND_MAX], buf[SPF_EVAL_EXPAND_MAX];
	memcpy(src, txt, len);
	int n = expand(ev, src, len, domain, buf, sizeof(buf), false);
	if (n < 0 || ev->failed)
		goto restore;
	size_t keep = (size_t)n < SPF_EVAL_EXP_MAX ? (size_t)n : SPF_EVAL_EXP_MAX - 1;
	memcpy(ev->out->explanation, buf, keep);
	ev->out->explanation[keep] = '\0';
	ev->out->has_explanation = true;
	return;

restore:
	ev->failed = false;
	memcpy(ev->out->reason, reason, sizeof(reason));
}

static enum spf_result qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_FAIL;
	case '~': return SPF_SOFTFAIL;
	case '?': return SPF_NEUTRAL;
	}
	return SPF_PASS;
}

/* One mechanism: 1 match, 0 no match, -1 error. */
static int eval_mechanism(struct ev *ev, const struct record *rec, const struct term *t,
			  const char *domain, int depth)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	char target[NAME_TEXT_MAX + 1];
	int wl = 0;

	switch (t->kind) {
	case M_ALL:
		return 1;
	case M_IP4:
		return ev->family == AF_INET && addr_match(ev->ip, t->addr, t->cidr4);
	case M_IP6:
		return ev->family == AF_INET6 && addr_match(ev->ip, t->addr, t->cidr6);
	default:
		break;
	}
	if (count_term(ev) < 0)
		return -1;
	if (t->spec_len)
		wl = expand_domain(ev, rec->text + t->spec_off, t->spec_len, domain, w, target);
	else
		wl = name_to_wire(domain, strlen(domain), w);
	if (wl < 0)
		return ev->failed ? -1 : fail_with(ev, SPF_PERMERROR, "invalid domain");
	if (!t->spec_len)
		snprintf(target, sizeof(target), "%s", domain);

	switch (t->kind) {
	case M_A:
		return mech_a(ev, w, (size_t)wl, t);
	case M_MX:
		return mech_mx(ev, w, (size_t)wl, t);
	case M_PTR:
		return mech_ptr(ev, w, (size_t)wl);
	case M_EXISTS:
		return mech_exists(ev, w, (size_t)wl);
	case M_INCLUDE: {
		bool none = false;
		enum spf_result r = check_domain(ev, target, depth + 1, false, &none);
		if (ev->failed)
			return -1;
		if (none)
			return fail_with(ev, SPF_PERMERROR, "include:%.*s has no SPF record",
					 SHOWN(strlen(target)), target);
		return r == SPF_PASS ? 1 : 0;
	}
	}
	return fail_with(ev, SPF_PERMERROR, "unknown mechanism");
}

/*
 * check_host() on domain's record. top: a fail here takes this record's
 * explanation. *no_record is set when the domain has none (the result is
 * then SPF_NONE). Errors return ev->err with ev->failed set.
 */
static enum spf_result check_domain(struct ev *ev, const char *domain, int depth,
				    bool top, bool *no_record)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	enum spf_result result = SPF_NEUTRAL;
	bool is_void;

	*no_record = false;
	if (depth > MAX_DEPTH) {
		fail_with(ev, SPF_PERMERROR, "records nested too deep");
		return ev->err;
	}
	int wl = name_to_wire(domain, strlen(domain), w);
	if (wl < 0) {
		fail_with(ev, SPF_PERMERROR, "invalid domain name %.*s",
			  SHOWN(strlen(domain)), domain);
		return ev->err;
	}
	struct record *rec = malloc(sizeof(*rec));
	if (!rec) {
		fail_with(ev, SPF_TEMPERROR, "out of memory");
		return ev->err;
	}
	int found = fetch_record(ev, w, (size_t)wl, rec, &is_void);
	if (found < 0)
		goto error;
	if (found == 0) {
		/* An include or redirect to nothing is a void lookup too. */
		if (is_void && depth > 0 && count_void(ev) < 0)
			goto error;
		*no_record = true;
		if (depth == 0)
			reason_set(ev, "no SPF record");
		free(rec);
		return SPF_NONE;
	}
	if (parse_record(ev, rec) < 0)
		goto error;

	bool matched = false;
	for (unsigned i = 0; i < rec->n && !matched; i++) {
		const struct term *t = &rec->t[i];
		if (t->kind >= MOD_REDIRECT)
			continue;
		int m = eval_mechanism(ev, rec, t, domain, depth);
		if (m < 0)
			goto error;
		if (m > 0) {
			matched = true;
			result = qualifier_result(t->qual);
			reason_set(ev, "%s matched %.*s", domain, SHOWN(t->len), rec->text + t->off);
		}
	}
	if (!matched && rec->redirect >= 0 && !rec->has_all) {
		const struct term *t = &rec->t[rec->redirect];
		char target[NAME_TEXT_MAX + 1];
		bool none = false;
		if (count_term(ev) < 0 ||
		    expand_domain(ev, rec->text + t->spec_off, t->spec_len, domain, w, target) < 0)
			goto error;
		free(rec);
		result = check_domain(ev, target, depth + 1, top, &none);
		if (ev->failed)
			return ev->err;
		if (none) {
			fail_with(ev, SPF_PERMERROR, "redirect=%.*s has no SPF record",
				  SHOWN(strlen(target)), target);
			return ev->err;
		}
		return result;
	}
	if (!matched)
		reason_set(ev, "%s: no mechanism matched", domain);
	if (result == SPF_FAIL && top && rec->exp >= 0)
		explain(ev, rec, domain);
	free(rec);
	return result;

error:
	free(rec);
	return ev->err;
}

/* ---------------------------------------------------------------- entry */

static void set_client(struct ev *ev, int family, const uint8_t *ip)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (family == AF_INET6 && memcmp(ip, mapped, 12) == 0) {
		family = AF_INET;
		ip += 12;
	}
	ev->family = family;
	memset(ev->ip, 0, sizeof(ev->ip));
	memcpy(ev->ip, ip, family == AF_INET ? 4 : 16);
	inet_ntop(family, ev->ip, ev->ip_c, sizeof(ev->ip_c));
	if (family == AF_INET) {
		snprintf(ev->ip_i, sizeof(ev->ip_i), "%s", ev->ip_c);
		return;
	}
	/* Upper-case nibbles, as the openspf suite expects (only explanations
	 * can tell: DNS names are case-insensitive). */
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		ev->ip_i[o++] = hex[ev->ip[i] >> 4];
		ev->ip_i[o++] = '.';
		ev->ip_i[o++] = hex[ev->ip[i] & 15];
		ev->ip_i[o++] = '.';
	}
	ev->ip_i[o - 1] = '\0';
}

enum spf_result spf_eval_check_host(const struct spf_eval_req *req,
				    struct spf_eval_out *out)
{
	struct ev ev;
	bool none;

	memset(out, 0, sizeof(*out));
	memset(&ev, 0, sizeof(ev));
	ev.req = req;
	ev.out = out;
	if (!req->domain || !req->dns || (req->family != AF_INET && req->family != AF_INET6)) {
		out->result = SPF_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "bad request");
		return out->result;
	}
	set_client(&ev, req->family, req->ip);

	size_t dl = strlen(req->domain);
	if (dl > 0 && req->domain[dl - 1] == '.')
		dl--;
	if (!domain_valid(req->domain, dl)) {
		out->result = SPF_NONE;
		snprintf(out->reason, sizeof(out->reason), "not a valid domain name");
		return out->result;
	}
	memcpy(ev.sender_dom, req->domain, dl);
	ev.sender_dom[dl] = '\0';
	ev.lp = req->local_part && req->local_part[0] ? req->local_part : "postmaster";
	snprintf(ev.helo, sizeof(ev.helo), "%s", req->helo ? req->helo : ev.sender_dom);
	ev.receiver = req->receiver ? req->receiver : "unknown";
	snprintf(ev.tstamp, sizeof(ev.tstamp), "%u", (unsigned)req->now);

	ev.ans = malloc(sizeof(*ev.ans));
	if (!ev.ans) {
		out->result = SPF_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		return out->result;
	}
	enum spf_result r = check_domain(&ev, ev.sender_dom, 0, true, &none);
	free(ev.ans);
	out->result = ev.failed ? ev.err : r;
	if (out->result != SPF_FAIL) {
		out->has_explanation = false;
		out->explanation[0] = '\0';
	}
	return out->result;
}

/* ------------------------------------------------------------- answers */

size_t spf_eval_format_txt(char *out, size_t cap, enum spf_result r, const char *domain,
			   const char *ip_text, const char *explanation,
			   const char *reason)
{
	char comment[SPF_EVAL_EXP_MAX + NAME_TEXT_MAX + 64];
	const char *why = reason && reason[0] ? reason : "no reason given";

	if (cap == 0)
		return 0;
	switch (r) {
	case SPF_PASS:
		snprintf(comment, sizeof(comment), "%s: %s is a permitted sender", domain, ip_text);
		break;
	case SPF_FAIL:
		if (explanation)
			snprintf(comment, sizeof(comment), "%s", explanation);
		else
			snprintf(comment, sizeof(comment), "%s: %s is not a permitted sender",
				 domain, ip_text);
		break;
	case SPF_SOFTFAIL:
		snprintf(comment, sizeof(comment), "%s: %s is probably not a permitted sender",
			 domain, ip_text);
		break;
	case SPF_NEUTRAL:
		snprintf(comment, sizeof(comment), "%s: %s is neither permitted nor denied",
			 domain, ip_text);
		break;
	default:
		snprintf(comment, sizeof(comment), "%s: %s", domain, why);
		break;
	}

	size_t max = cap - 1 < SPF_EVAL_TXT_MAX ? cap - 1 : SPF_EVAL_TXT_MAX;
	const char *name = spf_result_name(r);
	size_t o = (size_t)snprintf(out, cap, "%s (", name);
	if (o + 1 > max) {
		out[max] = '\0';
		return strlen(out);
	}
	/* Room for ")" at the end, and "..." when the comment is cut. */
	size_t clen = strlen(comment), esc = 0, i = 0;
	for (size_t k = 0; k < clen; k++)
		esc += strchr("()\\", comment[k]) ? 2 : 1;
	size_t room = max - o - 1;
	bool cut = esc > room;
	if (cut)
		room = room >= 3 ? room - 3 : 0;
	for (; i < clen; i++) {
		unsigned char c = (unsigned char)comment[i];
		bool quote = c == '(' || c == ')' || c == '\\';
		if ((quote ? 2u : 1u) > room)
			break;
		if (c < 0x20 || c > 0x7e)
			c = '?';
		if (quote) {
			out[o++] = '\\';
			room--;
		}
		out[o++] = (char)c;
		room--;
	}
	if (cut) {
		size_t dots = max - o - 1 < 3 ? max - o - 1 : 3;
		memcpy(out + o, "...", dots);
		o += dots;
	}
	out[o++] = ')';
	out[o] = '\0';
	return o;
}

static const char *const result_names[] = {
	NULL, "pass", "fail", "softfail", "neutral", "none", "permerror", "temperror",
};

const char *spf_result_name(enum spf_result r)
{
	if (r < SPF_PASS || r > SPF_TEMPERROR)
		return "?";
	return result_names[r];
}

enum spf_result spf_result_from_name(const char *name)
{
	for (int r = SPF_PASS; r <= SPF_TEMPERROR; r++)
		if (word_is(name, strlen(name), result_names[r]))
			return (enum spf_result)r;
	return 0;
}
