/*
 * score: from what each list answered to one verdict (SPEC §2, §3 [scoring]).
 *
 * Pure. A source's rules say what each return code weighs and which codes
 * mean "error". A tally adds up the sources as they answer and tells, while
 * some are still pending, whether the verdict (score >= threshold) is already
 * decided: that is what lets the resolver answer early.
 *
 * Weights follow postscreen_dnsbl_sites: each `codes` rule adds its weight
 * once when any returned address matches it; the source's default `weight` is
 * added once when some returned address matches no rule. An answer with any
 * address in an `errors` range, or outside 127.0.0.0/8, is an error: it counts
 * 0 and the source is reported as failed, never as listing.
 */
#ifndef RBLMUX_ZONES_SCORE_H
#define RBLMUX_ZONES_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zones/listans.h"

#define SCORE_MAX_RULES 32
#define SCORE_MAX_ERRORS 16
#define SCORE_MAX_SOURCES 64

/* An inclusive IPv4 range, host byte order. */
struct score_range {
	uint32_t lo, hi;
};

struct score_code_rule {
	struct score_range range;
	int weight;
};

struct score_rules {
	int weight;                       /* default weight of a listing */
	struct score_code_rule codes[SCORE_MAX_RULES];
	size_t ncodes;
	struct score_range errors[SCORE_MAX_ERRORS];
	size_t nerrors;                   /* 0: the default 127.255.255.0/24 */
};

/*
 * Parse one `codes` item: "127.0.0.2=3", "127.0.0.[4..7]=2" (any one octet may
 * be a [a..b] range), "127.0.0.0/24=1". Returns 0 or -EINVAL.
 */
int score_parse_code_rule(const char *text, struct score_code_rule *out);

/* Parse one `errors` item: an address, an [a..b] octet range or a CIDR. */
int score_parse_range(const char *text, struct score_range *out);

enum score_outcome {
	SCORE_CLEAN = 0,    /* not listed (NXDOMAIN/NODATA) */
	SCORE_LISTED = 1,   /* listed: weight applies */
	SCORE_FAILED = 2,   /* timeout, SERVFAIL, garbage, error code: counts 0 */
};

/*
 * What one source's answer (an A question) is worth.
 * Returns the outcome; *weight is the weight it adds (0 unless LISTED);
 * *code is the first listing (or error) address, host order (0 when none).
 */
enum score_outcome score_source(const struct score_rules *rules,
				const struct listans *ans, int *weight,
				uint32_t *code);

/* The lowest and highest weight a source can still add while pending:
 * [min(0, sum of negative weights), max(0, sum of positive weights)]. */
void score_bounds(const struct score_rules *rules, int *lo, int *hi);

/* Named apart from the verdict SCORE_SERVFAIL (one enumerator name cannot
 * belong to two enums in C). */
enum score_on_incomplete { SCORE_INCOMPLETE_PARTIAL = 0, SCORE_INCOMPLETE_SERVFAIL = 1 };

struct score_tally {
	int threshold;
	enum score_on_incomplete on_incomplete;
	int score;          /* sum of the weights of the sources that answered */
	int pending_lo;     /* sum of score_bounds lo over pending sources */
	int pending_hi;
	int failed_lo;      /* same over failed sources (for on_incomplete=servfail) */
	int failed_hi;
	unsigned npending;
	unsigned nanswered; /* clean or listed */
	unsigned nfailed;
};

void score_tally_init(struct score_tally *t, int threshold,
		      enum score_on_incomplete on_incomplete);
/* A source starts pending with its bounds. */
void score_tally_add_pending(struct score_tally *t, const struct score_rules *rules);
/* A pending source finished (outcome and weight from score_source). */
void score_tally_resolve(struct score_tally *t, const struct score_rules *rules,
			 enum score_outcome outcome, int weight);
/* A source that is down (health) or disabled: counts 0 and is not pending. */

enum score_verdict {
	SCORE_UNDECIDED = 0,  /* pending sources could still change it */
	SCORE_NOT_LISTED,     /* score < threshold, whatever is pending */
	SCORE_IS_LISTED,      /* score >= threshold, whatever is pending */
	SCORE_SERVFAIL,       /* every source failed, or on_incomplete=servfail and a
			       * failed source could have changed the verdict */
};

/*
 * The verdict so far. With sources pending it is SCORE_UNDECIDED unless the
 * pending bounds cannot move the score across the threshold. With none
 * pending (final == true: the deadline passed, pending count as failed) it
 * is always decided.
 */
enum score_verdict score_tally_verdict(const struct score_tally *t, bool final);

/* The exact score is needed (score view): decided only when nothing is
 * pending, or when the pending sources cannot change the score at all. */
bool score_tally_exact(const struct score_tally *t);

/* The A record of the score view for a score s (SPEC §2): 127.0.1.min(s,255),
 * 127.0.2.min(-s,255); returns false for s == 0 (NXDOMAIN). */
bool score_view_address(int s, uint8_t out[4]);

/* One source's line in the combined TXT. */
struct score_txt_item {
	const char *source;
	enum score_outcome outcome;
	uint32_t code;      /* listing or error code, host order (0: none) */
	int weight;
	const char *failure; /* for FAILED: "timeout", "servfail", "error-code", "down" ... */
	bool stale;          /* the answer was served stale (RFC 8767) */
};

/*
 * Format the combined TXT (SPEC §2): one line under 255 bytes, e.g.
 *   "listed: score 7 >= 5; spamcop 127.0.0.2 +3, zen 127.0.0.4 +4;
 *    failed: sorbs (timeout); stale: barracuda"
 * (one line; listed in the order given). When it would not fit, the last
 * items are replaced by "+N more". Returns the length (<= 254) and writes a NUL;
 * -ENOSPC when cap cannot hold even the head and "+N more", -EINVAL for cap 0.
 */
int score_format_txt(char *out, size_t cap, bool listed, int score, int threshold,
		     const struct score_txt_item *items, size_t n);

#endif
