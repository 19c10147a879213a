/*
 * score: weights of list answers, and when the verdict is decided (SPEC §2
 * "TTLs and failure", §3 [source] and [scoring]).
 */
#include "zones/score.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Weights are bounded so that no sum over SCORE_MAX_SOURCES sources of
 * SCORE_MAX_RULES + 1 weights each can overflow an int. */
#define SCORE_WEIGHT_MAX 100000

/* The default `errors` range (SPEC §3): 127.255.255.0/24, where Spamhaus,
 * SURBL and others put their "you may not query" codes. */
static const struct score_range default_errors = { 0x7fffff00u, 0x7fffffffu };

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A decimal 0-255 without leading zeros ("010" could be read as octal). */
static const char *parse_octet(const char *p, unsigned *out)
{
	unsigned v = 0;
	size_t digits = 0;

	while (p[digits] >= '0' && p[digits] <= '9') {
		if (digits == 3)
			return NULL;
		v = v * 10 + (unsigned)(p[digits] - '0');
		digits++;
	}
	if (digits == 0 || v > 255 || (digits > 1 && p[0] == '0'))
		return NULL;
	*out = v;
	return p + digits;
}

/*
 * Parse "a.b.c.d", where each octet may be "[x..y]", or "a.b.c.d/len".
 * Several bracketed octets are accepted only when they still describe one
 * contiguous range, i.e. every octet right of the first range spans
 * [0..255] ("127.0.[1..255].[0..255]"); "127.0.[1..2].[3..4]" is not a range.
 * A CIDR with host bits set is refused: "127.0.0.1/24" may mean either
 * 127.0.0.0/24 or a typo for 127.0.0.1, and config errors should be loud.
 * Returns a pointer after the address, or NULL.
 */
static const char *parse_address(const char *p, struct score_range *out)
{
	unsigned lo[4], hi[4];
	bool ranged = false;
	uint32_t a = 0, b = 0;

	for (int i = 0; i < 4; i++) {
		if (i > 0 && *p++ != '.')
			return NULL;
		if (*p == '[') {
			p = parse_octet(p + 1, &lo[i]);
			if (p == NULL || p[0] != '.' || p[1] != '.')
				return NULL;
			p = parse_octet(p + 2, &hi[i]);
			if (p == NULL || *p++ != ']' || lo[i] > hi[i])
				return NULL;
		} else {
			p = parse_octet(p, &lo[i]);
			if (p == NULL)
				return NULL;
			hi[i] = lo[i];
		}
		if (ranged && (lo[i] != 0 || hi[i] != 255))
			return NULL;
		if (lo[i] != hi[i])
			ranged = true;
		a = a << 8 | lo[i];
		b = b << 8 | hi[i];
	}
	if (*p == '/') {
		unsigned len;
		uint32_t host;
		size_t digits = 0;

		if (ranged)
			return NULL;
		p++;
		len = 0;
		while (p[digits] >= '0' && p[digits] <= '9' && digits < 2) {
			len = len * 10 + (unsigned)(p[digits] - '0');
			digits++;
		}
		if (digits == 0 || len > 32 || (digits > 1 && p[0] == '0'))
			return NULL;
		p += digits;
		host = len == 0 ? UINT32_MAX : (len == 32 ? 0 : UINT32_MAX >> len);
		if (a & host)
			return NULL;
		b = a | host;
	}
	out->lo = a;
	out->hi = b;
	return p;
}

int score_parse_range(const char *text, struct score_range *out)
{
	struct score_range r;
	const char *p;

	if (text == NULL || out == NULL)
		return -EINVAL;
	p = parse_address(skip_space(text), &r);
	if (p == NULL || *skip_space(p) != '\0')
		return -EINVAL;
	*out = r;
	return 0;
}

int score_parse_code_rule(const char *text, struct score_code_rule *out)
{
	struct score_range r;
	const char *p;
	bool negative = false;
	long w = 0;
	size_t digits = 0;

	if (text == NULL || out == NULL)
		return -EINVAL;
	p = parse_address(skip_space(text), &r);
	if (p == NULL)
		return -EINVAL;
	p = skip_space(p);
	if (*p++ != '=')
		return -EINVAL;
	p = skip_space(p);
	if (*p == '-' || *p == '+')
		negative = *p++ == '-';
	while (*p >= '0' && *p <= '9') {
		w = w * 10 + (*p++ - '0');
		if (w > SCORE_WEIGHT_MAX)
			return -EINVAL;
		digits++;
	}
	if (digits == 0 || *skip_space(p) != '\0')
		return -EINVAL;
	out->range = r;
	out->weight = (int)(negative ? -w : w);
	return 0;
}

static bool in_range(const struct score_range *r, uint32_t a)
{
	return a >= r->lo && a <= r->hi;
}

static bool is_error_code(const struct score_rules *rules, uint32_t a)
{
	size_t n = rules->nerrors < SCORE_MAX_ERRORS ? rules->nerrors : SCORE_MAX_ERRORS;

	if ((a >> 24) != 127)
		return true;
	if (n == 0)
		return in_range(&default_errors, a);
	for (size_t i = 0; i < n; i++)
		if (in_range(&rules->errors[i], a))
			return true;
	return false;
}

static int clamp_int(long long v)
{
	return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

/*
 * A RECORDS answer to an A question without any A record (a CNAME to
 * nowhere, say) can neither list nor clear: it is FAILED, like garbage.
 */
enum score_outcome score_source(const struct score_rules *rules,
				const struct listans *ans, int *weight,
				uint32_t *code)
{
	size_t n, ncodes;
	bool rule_hit[SCORE_MAX_RULES] = { false };
	bool unmatched = false;
	long long sum = 0;

	*weight = 0;
	*code = 0;
	switch (ans->status) {
	case LISTANS_NXDOMAIN:
	case LISTANS_NODATA:
		return SCORE_CLEAN;
	case LISTANS_RECORDS:
		break;
	default:
		return SCORE_FAILED;
	}
	n = ans->n_a < LISTANS_MAX_A ? ans->n_a : LISTANS_MAX_A;
	if (n == 0)
		return SCORE_FAILED;

	/* One error address spoils the whole answer: a list that says "refused"
	 * alongside a listing code is not to be trusted for either. */
	for (size_t i = 0; i < n; i++) {
		const uint8_t *b = ans->a[i];
		uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			     (uint32_t)b[2] << 8 | b[3];

		if (is_error_code(rules, a)) {
			*code = a;
			return SCORE_FAILED;
		}
	}

	ncodes = rules->ncodes < SCORE_MAX_RULES ? rules->ncodes : SCORE_MAX_RULES;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *b = ans->a[i];
		uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			     (uint32_t)b[2] << 8 | b[3];
		bool matched = false;

		if (i == 0)
			*code = a;
		for (size_t r = 0; r < ncodes; r++) {
			if (in_range(&rules->codes[r].range, a)) {
				rule_hit[r] = true;
				matched = true;
			}
		}
		if (!matched)
			unmatched = true;
	}
	for (size_t r = 0; r < ncodes; r++)
		if (rule_hit[r])
			sum += rules->codes[r].weight;
	if (unmatched)
		sum += rules->weight;
	*weight = clamp_int(sum);
	return SCORE_LISTED;
}

void score_bounds(const struct score_rules *rules, int *lo, int *hi)
{
	size_t ncodes = rules->ncodes < SCORE_MAX_RULES ? rules->ncodes : SCORE_MAX_RULES;
	long long neg = rules->weight < 0 ? rules->weight : 0;
	long long pos = rules->weight > 0 ? rules->weight : 0;

	for (size_t i = 0; i < ncodes; i++) {
		if (rules->codes[i].weight < 0)
			neg += rules->codes[i].weight;
		else
			pos += rules->codes[i].weight;
	}
	*lo = clamp_int(neg);
	*hi = clamp_int(pos);
}

void score_tally_init(struct score_tally *t, int threshold,
		      enum score_on_incomplete on_incomplete)
{
	memset(t, 0, sizeof(*t));
	t->threshold = threshold;
	t->on_incomplete = on_incomplete;
}

void score_tally_add_pending(struct score_tally *t, const struct score_rules *rules)
{
	int lo, hi;

	score_bounds(rules, &lo, &hi);
	t->pending_lo += lo;
	t->pending_hi += hi;
	t->npending++;
}

/* A source that was never added as pending is still counted, but its bounds
 * are not taken off the pending sums it never entered. */
void score_tally_resolve(struct score_tally *t, const struct score_rules *rules,
			 enum score_outcome outcome, int weight)
{
	int lo, hi;

	score_bounds(rules, &lo, &hi);
	if (t->npending > 0) {
		t->npending--;
		t->pending_lo -= lo;
		t->pending_hi -= hi;
	}
	switch (outcome) {
	case SCORE_LISTED:
		t->score += weight;
		t->nanswered++;
		break;
	case SCORE_CLEAN:
		t->nanswered++;
		break;
	default:
		t->failed_lo += lo;
		t->failed_hi += hi;
		t->nfailed++;
		break;
	}
}

/*
 * The verdict once nothing is pending (the pending bounds already folded
 * into the failed ones when the deadline passed).
 */
static enum score_verdict settled(const struct score_tally *t, unsigned nfailed,
				  long long flo, long long fhi)
{
	long long s = t->score, th = t->threshold;

	/* No source at all (every one disabled or down) says nothing against
	 * the client, whatever the threshold: not listed. */
	if (t->nanswered == 0 && nfailed == 0)
		return SCORE_NOT_LISTED;
	if (t->nanswered == 0)
		return SCORE_SERVFAIL;
	if (t->on_incomplete == SCORE_INCOMPLETE_SERVFAIL && s + flo < th && th <= s + fhi)
		return SCORE_SERVFAIL;
	return s >= th ? SCORE_IS_LISTED : SCORE_NOT_LISTED;
}

/*
 * With sources pending, the verdict is decided only when every way they can
 * end gives the same answer. A pending source either answers, adding a
 * weight w in [lo, hi] to the score, or fails, adding [lo, hi] to the failed
 * bounds; either way it shifts both s + failed_lo and s + failed_hi by at
 * least lo and at most hi. Hence, with P = pending bounds and F = failed:
 *   partial:  listed for sure     iff s + P.lo >= T
 *             not listed for sure iff s + P.hi <  T
 *   servfail: the answer is SERVFAIL iff s + F.lo < T <= s + F.hi at the end,
 *             so listed for sure      iff s + F.lo + P.lo >= T,
 *             not listed for sure     iff s + F.hi + P.hi <  T,
 *             SERVFAIL for sure       iff s + F.lo + P.hi < T <= s + F.hi + P.lo.
 * And while no source has answered, every pending one may still fail, which
 * is SERVFAIL (all failed): nothing but a sure SERVFAIL is decided then.
 */
enum score_verdict score_tally_verdict(const struct score_tally *t, bool final)
{
	long long s = t->score, th = t->threshold;
	long long plo = t->pending_lo, phi = t->pending_hi;
	long long flo = t->failed_lo, fhi = t->failed_hi;

	if (final || t->npending == 0)
		return settled(t, t->nfailed + t->npending, flo + plo, fhi + phi);

	if (t->on_incomplete == SCORE_INCOMPLETE_SERVFAIL) {
		if (s + flo + phi < th && th <= s + fhi + plo)
			return SCORE_SERVFAIL;
		if (t->nanswered == 0)
			return SCORE_UNDECIDED;
		if (s + flo + plo >= th)
			return SCORE_IS_LISTED;
		if (s + fhi + phi < th)
			return SCORE_NOT_LISTED;
		return SCORE_UNDECIDED;
	}
	if (t->nanswered == 0)
		return SCORE_UNDECIDED;
	if (s + plo >= th)
		return SCORE_IS_LISTED;
	if (s + phi < th)
		return SCORE_NOT_LISTED;
	return SCORE_UNDECIDED;
}

/* Pending sources whose weights are all 0 cannot change the score; but while
 * none has answered, they could all fail (SERVFAIL), so that is not exact. */
bool score_tally_exact(const struct score_tally *t)
{
	if (t->npending == 0)
		return true;
	return t->pending_lo == 0 && t->pending_hi == 0 && t->nanswered > 0;
}

bool score_view_address(int s, uint8_t out[4])
{
	if (s == 0)
		return false;
	out[0] = 127;
	out[1] = 0;
	if (s > 0) {
		out[2] = 1;
		out[3] = (uint8_t)(s > 255 ? 255 : s);
	} else {
		out[2] = 2;
		out[3] = (uint8_t)(s < -255 ? 255 : -s);
	}
	return true;
}

/* ------------------------------------------------------------------ TXT */

/* The TXT goes in one character-string: at most 255 bytes, and 254 keeps it
 * clear of any off-by-one in a consumer's buffer. */
#define SCORE_TXT_MAX 254

/* Appends what fits and counts everything, like snprintf, so one pass says
 * both the text and how long it would have been. */
struct txt_buf {
	char *p;
	size_t cap;   /* bytes usable for text (without the NUL) */
	size_t len;   /* bytes the text needs, may exceed cap */
};

static void put(struct txt_buf *b, const char *s)
{
	for (; *s != '\0'; s++, b->len++) {
		/* ASCII only, and no control bytes, whatever the config says */
		char c = (*s >= 0x20 && *s < 0x7f) ? *s : '?';

		if (b->len < b->cap)
			b->p[b->len] = c;
	}
}

static void putf(struct txt_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void putf(struct txt_buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	put(b, tmp);
}

static void put_code(struct txt_buf *b, uint32_t code)
{
	putf(b, "%u.%u.%u.%u", code >> 24, (code >> 16) & 0xffu, (code >> 8) & 0xffu,
	     code & 0xffu);
}

enum txt_section { SEC_HIT = 0, SEC_FAILED, SEC_STALE };

struct txt_entry {
	const struct score_txt_item *item;
	enum txt_section section;
};

static const char *const section_title[] = { "", "failed: ", "stale: " };

static void put_entry(struct txt_buf *b, const struct txt_entry *e)
{
	const struct score_txt_item *it = e->item;

	put(b, it->source != NULL ? it->source : "?");
	switch (e->section) {
	case SEC_HIT:
		if (it->code != 0) {
			put(b, " ");
			put_code(b, it->code);
		}
		putf(b, " %+d", it->weight);
		break;
	case SEC_FAILED:
		put(b, " (");
		put(b, it->failure != NULL ? it->failure : "failed");
		if (it->code != 0) {
			put(b, " ");
			put_code(b, it->code);
		}
		put(b, ")");
		break;
	case SEC_STALE:
		break;
	}
}

/* The whole line with the first k of the entries, and "+N more" for the
 * rest: the other stored ones and the `unstored` that did not fit in e. */
static void render(struct txt_buf *b, bool listed, int score, int threshold,
		   const struct txt_entry *e, size_t n, size_t unstored, size_t k)
{
	putf(b, "%s: score %d %s %d", listed ? "listed" : "not listed", score,
	     score >= threshold ? ">=" : "<", threshold);
	for (size_t i = 0; i < k; i++) {
		if (i == 0 || e[i].section != e[i - 1].section) {
			put(b, "; ");
			put(b, section_title[e[i].section]);
		} else {
			put(b, ", ");
		}
		put_entry(b, &e[i]);
	}
	if (k < n + unstored) {
		bool same_section = k > 0 && k < n && e[k].section == e[k - 1].section;

		putf(b, "%s+%zu more", same_section ? ", " : "; ", n + unstored - k);
	}
}

/*
 * Sources that listed (with their weights), then those that failed, then
 * those served stale; clean answers are left out. When the line is too
 * long, trailing entries give way to "+N more". -ENOSPC when not even the
 * head and "+N more" fit in cap.
 */
int score_format_txt(char *out, size_t cap, bool listed, int score, int threshold,
		     const struct score_txt_item *items, size_t n)
{
	/* More entries than this cannot fit in 254 bytes anyway. */
	struct txt_entry entries[3 * SCORE_MAX_SOURCES];
	size_t nentries = 0, unstored = 0;
	size_t limit;

	if (out == NULL || cap == 0 || (items == NULL && n > 0))
		return -EINVAL;
	limit = cap - 1 < SCORE_TXT_MAX ? cap - 1 : SCORE_TXT_MAX;
	for (int sec = SEC_HIT; sec <= SEC_STALE; sec++) {
		for (size_t i = 0; i < n; i++) {
			bool in = sec == SEC_HIT ? items[i].outcome == SCORE_LISTED
				: sec == SEC_FAILED ? items[i].outcome == SCORE_FAILED
				: items[i].stale;

			if (!in)
				continue;
			if (nentries == sizeof(entries) / sizeof(entries[0])) {
				unstored++;
				continue;
			}
			entries[nentries].item = &items[i];
			entries[nentries].section = (enum txt_section)sec;
			nentries++;
		}
	}

	for (size_t k = nentries + 1; k-- > 0;) {
		struct txt_buf b = { out, limit, 0 };

		render(&b, listed, score, threshold, entries, nentries, unstored, k);
		if (b.len <= limit) {
			out[b.len] = '\0';
			return (int)b.len;
		}
	}
	out[0] = '\0';
	return -ENOSPC;
}
