/* Unit tests for zones/score.c: code rules, source weights, early verdicts,
 * the combined TXT. The answers are built by hand: no listans.c needed. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "zones/score.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static struct listans answer(uint8_t status, size_t n, const uint32_t *addrs)
{
	struct listans a;

	memset(&a, 0, sizeof(a));
	a.status = status;
	a.n_a = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		a.a[i][0] = (uint8_t)(addrs[i] >> 24);
		a.a[i][1] = (uint8_t)(addrs[i] >> 16);
		a.a[i][2] = (uint8_t)(addrs[i] >> 8);
		a.a[i][3] = (uint8_t)addrs[i];
	}
	return a;
}

static void add_code(struct score_rules *r, const char *text)
{
	assert_int_equal(score_parse_code_rule(text, &r->codes[r->ncodes]), 0);
	r->ncodes++;
}

static void add_error(struct score_rules *r, const char *text)
{
	assert_int_equal(score_parse_range(text, &r->errors[r->nerrors]), 0);
	r->nerrors++;
}

/* Rules with only a default weight. */
static struct score_rules plain(int weight)
{
	struct score_rules r;

	memset(&r, 0, sizeof(r));
	r.weight = weight;
	return r;
}

/* Spamhaus ZEN-like: SBL 3, XBL 2, PBL 1, anything else listed 1. */
static struct score_rules zen_rules(void)
{
	struct score_rules r = plain(1);

	add_code(&r, "127.0.0.2=3");
	add_code(&r, "127.0.0.[4..7]=2");
	add_code(&r, "127.0.0.[10..11]=1");
	return r;
}

/* ----------------------------------------------------------- parsing */

static void assert_rule(const char *text, uint32_t lo, uint32_t hi, int weight)
{
	struct score_code_rule rule;

	assert_int_equal(score_parse_code_rule(text, &rule), 0);
	assert_int_equal(rule.range.lo, lo);
	assert_int_equal(rule.range.hi, hi);
	assert_int_equal(rule.weight, weight);
}

static void test_parse_code_rule(void **state)
{
	assert_rule("127.0.0.2=3", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 3);
	assert_rule("127.0.0.[4..7]=2", IP4(127, 0, 0, 4), IP4(127, 0, 0, 7), 2);
	assert_rule("127.0.0.0/24=1", IP4(127, 0, 0, 0), IP4(127, 0, 0, 255), 1);
	assert_rule("127.0.[1..255].[0..255]=-5", IP4(127, 0, 1, 0), IP4(127, 0, 255, 255), -5);
	assert_rule("127.[0..255].[0..255].[0..255]=1", IP4(127, 0, 0, 0), IP4(127, 255, 255, 255), 1);
	assert_rule("127.0.0.[3..3]=4", IP4(127, 0, 0, 3), IP4(127, 0, 0, 3), 4);
}

static void test_parse_code_rule_forms(void **state)
{
	assert_rule("  127.0.0.2 = 3  ", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 3);
	assert_rule("127.0.0.2\t=\t-3", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), -3);
	assert_rule("127.0.0.2=+3", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 3);
	assert_rule("127.0.0.2=0", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 0);
	assert_rule("127.0.0.2/32=7", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 7);
	assert_rule("0.0.0.0/0=1", 0, UINT32_MAX, 1);
	assert_rule("127.0.0.0/8=1", IP4(127, 0, 0, 0), IP4(127, 255, 255, 255), 1);
	assert_rule("127.0.0.2=100000", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), 100000);
	assert_rule("127.0.0.2=-100000", IP4(127, 0, 0, 2), IP4(127, 0, 0, 2), -100000);
}

static void test_parse_code_rule_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"=3",
		"127.0.0.2",             /* no weight */
		"127.0.0.2=",
		"127.0.0.2= ",
		"127.0.0.2=-",
		"127.0.0.2=3x",          /* trailing junk */
		"127.0.0.2=3 4",
		"127.0.0.2==3",
		"127.0.0.2=3.5",
		"127.0.0.2=100001",      /* beyond the weight bound */
		"127.0.0.2=99999999999999999999",
		"127.0.0.256=1",         /* octet > 255 */
		"127.0.0.[4..256]=1",
		"127.0.0.[7..4]=1",      /* a > b */
		"127.0.0.[4-7]=1",
		"127.0.0.[4..7=1",
		"127.0.0.[..7]=1",
		"127.0.0.4..7=1",
		"127.0.0.0/33=1",        /* bad prefix */
		"127.0.0.0/=1",
		"127.0.0.0/024=1",
		"127.0.0.0/-1=1",
		"127.0.0.1/24=1",        /* host bits set */
		"127.0.0.[1..3]/24=1",   /* range and prefix */
		"127.0.[1..2].[3..4]=1", /* not one contiguous range */
		"127.0.[1..2].5=1",
		"127.0.0=1",
		"127.0.0.2.1=1",
		"127.0.0.02=1",          /* leading zero: octal or decimal? */
		"127.0.0.-2=1",
		"127.0.0.2 3=1",
		"localhost=1",
		"::1=1",
		"[126..127].0.0.0/32=4",
	};
	struct score_code_rule rule;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (score_parse_code_rule(bad[i], &rule) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(score_parse_code_rule(NULL, &rule), -EINVAL);
}

static void test_parse_range(void **state)
{
	struct score_range r;

	assert_int_equal(score_parse_range("127.255.255.0/24", &r), 0);
	assert_int_equal(r.lo, IP4(127, 255, 255, 0));
	assert_int_equal(r.hi, IP4(127, 255, 255, 255));
	assert_int_equal(score_parse_range(" 127.0.0.1 ", &r), 0);
	assert_int_equal(r.lo, IP4(127, 0, 0, 1));
	assert_int_equal(r.hi, IP4(127, 0, 0, 1));
	assert_int_equal(score_parse_range("127.255.255.[252..255]", &r), 0);
	assert_int_equal(r.lo, IP4(127, 255, 255, 252));
	assert_int_equal(r.hi, IP4(127, 255, 255, 255));

	assert_int_equal(score_parse_range("127.0.0.1=3", &r), -EINVAL);
	assert_int_equal(score_parse_range("127.0.0.1 x", &r), -EINVAL);
	assert_int_equal(score_parse_range("127.0.0.1,", &r), -EINVAL);
	assert_int_equal(score_parse_range("", &r), -EINVAL);
	assert_int_equal(score_parse_range("300.0.0.1", &r), -EINVAL);
	assert_int_equal(score_parse_range("127.0.0.0/40", &r), -EINVAL);
}

/* ------------------------------------------------------- score_source */

static void assert_source(const struct score_rules *rules, uint8_t status, size_t n,
			  const uint32_t *addrs, enum score_outcome outcome, int weight,
			  uint32_t code)
{
	struct listans a = answer(status, n, addrs);
	int w = 12345;
	uint32_t c = 12345;

	assert_int_equal(score_source(rules, &a, &w, &c), outcome);
	assert_int_equal(w, weight);
	assert_int_equal(c, code);
}

static void test_source_statuses(void **state)
{
	struct score_rules r = zen_rules();
	const uint32_t sbl = IP4(127, 0, 0, 2);

	assert_source(&r, LISTANS_NXDOMAIN, 0, NULL, SCORE_CLEAN, 0, 0);
	assert_source(&r, LISTANS_NODATA, 0, NULL, SCORE_CLEAN, 0, 0);
	assert_source(&r, LISTANS_TIMEOUT, 0, NULL, SCORE_FAILED, 0, 0);
	assert_source(&r, LISTANS_SERVFAIL, 0, NULL, SCORE_FAILED, 0, 0);
	assert_source(&r, LISTANS_BAD, 0, NULL, SCORE_FAILED, 0, 0);
	assert_source(&r, 42, 0, NULL, SCORE_FAILED, 0, 0);
	/* records but no address: neither listed nor clean */
	assert_source(&r, LISTANS_RECORDS, 0, NULL, SCORE_FAILED, 0, 0);
	/* addresses left over from a status that says otherwise are ignored */
	assert_source(&r, LISTANS_NXDOMAIN, 1, &sbl, SCORE_CLEAN, 0, 0);
}

static void test_source_postscreen_weights(void **state)
{
	struct score_rules r = zen_rules();
	const uint32_t all3[] = { IP4(127, 0, 0, 10), IP4(127, 0, 0, 4), IP4(127, 0, 0, 2) };
	const uint32_t two_xbl[] = { IP4(127, 0, 0, 4), IP4(127, 0, 0, 5), IP4(127, 0, 0, 7) };
	const uint32_t unknown[] = { IP4(127, 0, 0, 3) };
	const uint32_t known_and_unknown[] = { IP4(127, 0, 0, 2), IP4(127, 0, 0, 3), IP4(127, 0, 0, 9) };

	/* each rule adds once */
	assert_source(&r, LISTANS_RECORDS, 3, all3, SCORE_LISTED, 3 + 2 + 1, IP4(127, 0, 0, 10));
	assert_source(&r, LISTANS_RECORDS, 3, two_xbl, SCORE_LISTED, 2, IP4(127, 0, 0, 4));
	/* the default weight for codes no rule names, once */
	assert_source(&r, LISTANS_RECORDS, 1, unknown, SCORE_LISTED, 1, IP4(127, 0, 0, 3));
	assert_source(&r, LISTANS_RECORDS, 3, known_and_unknown, SCORE_LISTED, 3 + 1,
		      IP4(127, 0, 0, 2));

	/* overlapping rules both apply */
	add_code(&r, "127.0.0.0/29=10");
	assert_source(&r, LISTANS_RECORDS, 1, unknown, SCORE_LISTED, 10, IP4(127, 0, 0, 3));
	assert_source(&r, LISTANS_RECORDS, 3, two_xbl, SCORE_LISTED, 2 + 10, IP4(127, 0, 0, 4));
}

static void test_source_zero_and_negative(void **state)
{
	struct score_rules r = plain(3);
	struct score_rules dnswl = plain(-5);
	const uint32_t two[] = { IP4(127, 0, 0, 2) };
	const uint32_t wl[] = { IP4(127, 0, 15, 3) };

	add_code(&r, "127.0.0.2=0");
	/* listed, even though it weighs nothing */
	assert_source(&r, LISTANS_RECORDS, 1, two, SCORE_LISTED, 0, IP4(127, 0, 0, 2));

	add_code(&dnswl, "127.0.15.[0..255]=-10");
	assert_source(&dnswl, LISTANS_RECORDS, 1, wl, SCORE_LISTED, -10, IP4(127, 0, 15, 3));
	assert_source(&dnswl, LISTANS_RECORDS, 1, two, SCORE_LISTED, -5, IP4(127, 0, 0, 2));
}

static void test_source_errors(void **state)
{
	struct score_rules r = zen_rules();
	const uint32_t quota[] = { IP4(127, 255, 255, 254) };
	const uint32_t mixed[] = { IP4(127, 0, 0, 2), IP4(127, 255, 255, 252) };
	const uint32_t outside[] = { IP4(8, 8, 8, 8) };
	const uint32_t mixed_outside[] = { IP4(127, 0, 0, 2), IP4(10, 0, 0, 1) };
	const uint32_t edge[] = { IP4(127, 255, 254, 255) };

	assert_source(&r, LISTANS_RECORDS, 1, quota, SCORE_FAILED, 0, IP4(127, 255, 255, 254));
	/* one error address spoils the listing next to it */
	assert_source(&r, LISTANS_RECORDS, 2, mixed, SCORE_FAILED, 0, IP4(127, 255, 255, 252));
	/* outside 127/8: a redirecting resolver or a dead list's parking page */
	assert_source(&r, LISTANS_RECORDS, 1, outside, SCORE_FAILED, 0, IP4(8, 8, 8, 8));
	assert_source(&r, LISTANS_RECORDS, 2, mixed_outside, SCORE_FAILED, 0, IP4(10, 0, 0, 1));
	/* just below the default error range: a listing */
	assert_source(&r, LISTANS_RECORDS, 1, edge, SCORE_LISTED, 1, IP4(127, 255, 254, 255));
}

static void test_source_configured_errors(void **state)
{
	/* hostkarma-like: 127.0.0.1 is its allowlist code, not an error */
	struct score_rules karma = plain(2);
	const uint32_t one[] = { IP4(127, 0, 0, 1) };
	const uint32_t quota[] = { IP4(127, 255, 255, 254) };
	const uint32_t outside[] = { IP4(8, 8, 8, 8) };

	add_code(&karma, "127.0.0.1=-2");
	assert_source(&karma, LISTANS_RECORDS, 1, one, SCORE_LISTED, -2, IP4(127, 0, 0, 1));

	/* a list whose 127.0.0.1 means "error" says so; its errors then replace
	 * the default range rather than add to it */
	add_error(&karma, "127.0.0.1");
	assert_source(&karma, LISTANS_RECORDS, 1, one, SCORE_FAILED, 0, IP4(127, 0, 0, 1));
	assert_source(&karma, LISTANS_RECORDS, 1, quota, SCORE_LISTED, 2, IP4(127, 255, 255, 254));
	/* outside 127/8 stays an error whatever is configured */
	assert_source(&karma, LISTANS_RECORDS, 1, outside, SCORE_FAILED, 0, IP4(8, 8, 8, 8));
}

static void test_bounds(void **state)
{
	struct score_rules r = zen_rules();
	struct score_rules wl = plain(-5);
	struct score_rules none = plain(0);
	int lo = 99, hi = 99;

	score_bounds(&r, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 1 + 3 + 2 + 1);

	add_code(&r, "127.0.1.0/24=-4");
	score_bounds(&r, &lo, &hi);
	assert_int_equal(lo, -4);
	assert_int_equal(hi, 7);

	add_code(&wl, "127.0.0.[10..20]=-2");
	score_bounds(&wl, &lo, &hi);
	assert_int_equal(lo, -7);
	assert_int_equal(hi, 0);

	score_bounds(&none, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
}

/* ------------------------------------------------------------ tally */

static void test_tally_listed_early(void **state)
{
	struct score_rules big = plain(5), small = plain(3);
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &big);
	score_tally_add_pending(&t, &small);
	assert_int_equal(t.npending, 2);
	assert_int_equal(t.pending_hi, 8);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);

	score_tally_resolve(&t, &big, SCORE_LISTED, 5);
	assert_int_equal(t.score, 5);
	assert_int_equal(t.npending, 1);
	assert_int_equal(t.pending_hi, 3);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);
	assert_false(score_tally_exact(&t));
}

static void test_tally_not_listed_early(void **state)
{
	struct score_rules a = plain(3), b = plain(1), c = plain(4);
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &b);
	score_tally_add_pending(&t, &c);

	score_tally_resolve(&t, &a, SCORE_CLEAN, 0);
	/* 0 + 1 + 4 = 5 could still reach the threshold */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &b, SCORE_CLEAN, 0);
	/* 0 + 4 < 5 */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);
	assert_int_equal(score_tally_verdict(&t, true), SCORE_NOT_LISTED);
}

static void test_tally_nothing_answered_yet(void **state)
{
	struct score_rules a = plain(1), b = plain(1);
	struct score_tally t;

	/* Even though 2 < 5 whatever they say, both may still fail, and "every
	 * source failed" is SERVFAIL: not decided until one answers. */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &b);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &a, SCORE_FAILED, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &b, SCORE_CLEAN, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);
}

static void test_tally_allowlist(void **state)
{
	struct score_rules spamcop = plain(3), zen = plain(6), dnswl = plain(-5);
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &spamcop);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &dnswl);
	assert_int_equal(t.pending_lo, -5);
	assert_int_equal(t.pending_hi, 9);

	score_tally_resolve(&t, &spamcop, SCORE_LISTED, 3);
	score_tally_resolve(&t, &zen, SCORE_LISTED, 4);
	/* 7, but the allowlist may still take 5 off */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &dnswl, SCORE_LISTED, -5);
	assert_int_equal(t.score, 2);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);
	assert_true(score_tally_exact(&t));

	/* the allowlist answering first decides it at once */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &spamcop);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &dnswl);
	score_tally_resolve(&t, &dnswl, SCORE_LISTED, -5);
	/* -5 + 9 = 4 < 5 */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);

	/* the allowlist clean: listed */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &spamcop);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &dnswl);
	score_tally_resolve(&t, &zen, SCORE_LISTED, 6);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &dnswl, SCORE_CLEAN, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);
}

static void test_tally_all_failed(void **state)
{
	struct score_rules a = plain(3), b = plain(3);
	struct score_tally t;

	for (int mode = SCORE_INCOMPLETE_PARTIAL; mode <= SCORE_INCOMPLETE_SERVFAIL; mode++) {
		score_tally_init(&t, 5, (enum score_on_incomplete)mode);
		score_tally_add_pending(&t, &a);
		score_tally_add_pending(&t, &b);
		score_tally_resolve(&t, &a, SCORE_FAILED, 0);
		score_tally_resolve(&t, &b, SCORE_FAILED, 0);
		assert_int_equal(t.nfailed, 2);
		assert_int_equal(score_tally_verdict(&t, false), SCORE_SERVFAIL);
		assert_int_equal(score_tally_verdict(&t, true), SCORE_SERVFAIL);

		/* the deadline with one failed and one still pending */
		score_tally_init(&t, 5, (enum score_on_incomplete)mode);
		score_tally_add_pending(&t, &a);
		score_tally_add_pending(&t, &b);
		score_tally_resolve(&t, &a, SCORE_FAILED, 0);
		assert_int_equal(score_tally_verdict(&t, true), SCORE_SERVFAIL);

		/* the deadline with nothing back at all */
		score_tally_init(&t, 5, (enum score_on_incomplete)mode);
		score_tally_add_pending(&t, &a);
		assert_int_equal(score_tally_verdict(&t, true), SCORE_SERVFAIL);
	}

	/* partial: one answer is enough, the failure counts 0 */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &b);
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	assert_int_equal(score_tally_verdict(&t, true), SCORE_NOT_LISTED);
}

static void test_tally_no_sources(void **state)
{
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);
	assert_int_equal(score_tally_verdict(&t, true), SCORE_NOT_LISTED);
	assert_true(score_tally_exact(&t));
	/* even where a score of 0 would reach the threshold */
	score_tally_init(&t, 0, SCORE_INCOMPLETE_SERVFAIL);
	assert_int_equal(score_tally_verdict(&t, true), SCORE_NOT_LISTED);
}

static void test_tally_servfail_mode(void **state)
{
	struct score_rules a = plain(3), b = plain(3), small = plain(1);
	struct score_tally t;

	/* 3 listed, 3 failed: the failed one could have made it 6 >= 5 */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &b);
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &b, SCORE_FAILED, 0);
	assert_int_equal(t.failed_hi, 3);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_SERVFAIL);
	/* the same in partial mode */
	t.on_incomplete = SCORE_INCOMPLETE_PARTIAL;
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);

	/* a failure that could not have changed anything: 3 + 1 < 5 */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &small);
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	score_tally_resolve(&t, &small, SCORE_FAILED, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);

	/* the deadline: a pending source counts as failed */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &b);
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	assert_int_equal(score_tally_verdict(&t, true), SCORE_SERVFAIL);
	t.on_incomplete = SCORE_INCOMPLETE_PARTIAL;
	assert_int_equal(score_tally_verdict(&t, true), SCORE_NOT_LISTED);
}

static void test_tally_servfail_mode_early(void **state)
{
	struct score_rules zen = plain(6), b = plain(3), c = plain(3), dnswl = plain(-5);
	struct score_rules one = plain(1), other = plain(1);
	struct score_tally t;

	/* listed for sure: 6 whatever the failed and pending ones say */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &b);
	score_tally_add_pending(&t, &c);
	score_tally_resolve(&t, &zen, SCORE_LISTED, 6);
	score_tally_resolve(&t, &b, SCORE_FAILED, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);

	/* a failed allowlist could have brought 6 down to 1: SERVFAIL for sure,
	 * whatever the pending one (0..3) says, since 6 - 5 + 3 < 5 */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &dnswl);
	score_tally_add_pending(&t, &c);
	score_tally_resolve(&t, &zen, SCORE_LISTED, 6);
	/* the allowlist pending: partial-mode logic would say undecided too */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	score_tally_resolve(&t, &dnswl, SCORE_FAILED, 0);
	assert_int_equal(t.failed_lo, -5);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_SERVFAIL);
	/* partial mode: 6 listed whatever c says */
	t.on_incomplete = SCORE_INCOMPLETE_PARTIAL;
	assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);

	/* a small failed allowlist: 6 - 2 < 5 unless the pending one lists */
	{
		struct score_rules small_wl = plain(-2);

		score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
		score_tally_add_pending(&t, &zen);
		score_tally_add_pending(&t, &small_wl);
		score_tally_add_pending(&t, &c);
		score_tally_resolve(&t, &zen, SCORE_LISTED, 6);
		score_tally_resolve(&t, &small_wl, SCORE_FAILED, 0);
		assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
		assert_int_equal(score_tally_verdict(&t, true), SCORE_SERVFAIL);
		score_tally_resolve(&t, &c, SCORE_CLEAN, 0);
		assert_int_equal(score_tally_verdict(&t, false), SCORE_SERVFAIL);
		t.on_incomplete = SCORE_INCOMPLETE_PARTIAL;
		assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);
	}

	/* undecided: 3 listed, 3 failed, 3 pending */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &b);
	score_tally_add_pending(&t, &c);
	score_tally_add_pending(&t, &zen);
	score_tally_resolve(&t, &b, SCORE_LISTED, 3);
	score_tally_resolve(&t, &c, SCORE_FAILED, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
	/* the pending one lists 6: 9 - 0 >= 5, the failed one cannot undo it */
	score_tally_resolve(&t, &zen, SCORE_LISTED, 6);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_IS_LISTED);

	/* not listed for sure: 0 + 1 failed + 1 pending < 5 */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &b);
	score_tally_add_pending(&t, &one);
	score_tally_add_pending(&t, &other);
	score_tally_resolve(&t, &b, SCORE_CLEAN, 0);
	score_tally_resolve(&t, &one, SCORE_FAILED, 0);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_NOT_LISTED);

	/* SERVFAIL for sure before anything answered: also what "all failed"
	 * would give */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &zen);
	score_tally_add_pending(&t, &one);
	score_tally_resolve(&t, &zen, SCORE_FAILED, 0);
	/* 0 + 0 + 1 < 5 <= 0 + 6 + 0 */
	assert_int_equal(score_tally_verdict(&t, false), SCORE_SERVFAIL);
	/* but a listing-for-sure needs an answer */
	score_tally_init(&t, -1, SCORE_INCOMPLETE_SERVFAIL);
	score_tally_add_pending(&t, &one);
	assert_int_equal(score_tally_verdict(&t, false), SCORE_UNDECIDED);
}

static void test_tally_exact(void **state)
{
	struct score_rules a = plain(3), zero = plain(0);
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &a);
	score_tally_add_pending(&t, &zero);
	assert_false(score_tally_exact(&t));
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	/* the pending source can add nothing */
	assert_true(score_tally_exact(&t));

	/* but while nothing answered it could still fail with the rest */
	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_add_pending(&t, &zero);
	assert_false(score_tally_exact(&t));
	score_tally_resolve(&t, &zero, SCORE_CLEAN, 0);
	assert_true(score_tally_exact(&t));
}

static void test_tally_resolve_without_pending(void **state)
{
	struct score_rules a = plain(3);
	struct score_tally t;

	score_tally_init(&t, 5, SCORE_INCOMPLETE_PARTIAL);
	score_tally_resolve(&t, &a, SCORE_LISTED, 3);
	assert_int_equal(t.npending, 0);
	assert_int_equal(t.pending_lo, 0);
	assert_int_equal(t.pending_hi, 0);
	assert_int_equal(t.score, 3);
	assert_int_equal(t.nanswered, 1);
}

static void test_view_address(void **state)
{
	uint8_t a[4] = { 9, 9, 9, 9 };

	assert_false(score_view_address(0, a));
	assert_true(score_view_address(1, a));
	assert_memory_equal(a, "\x7f\x00\x01\x01", 4);
	assert_true(score_view_address(255, a));
	assert_memory_equal(a, "\x7f\x00\x01\xff", 4);
	assert_true(score_view_address(300, a));
	assert_memory_equal(a, "\x7f\x00\x01\xff", 4);
	assert_true(score_view_address(INT_MAX, a));
	assert_memory_equal(a, "\x7f\x00\x01\xff", 4);
	assert_true(score_view_address(-5, a));
	assert_memory_equal(a, "\x7f\x00\x02\x05", 4);
	assert_true(score_view_address(-1000, a));
	assert_memory_equal(a, "\x7f\x00\x02\xff", 4);
	assert_true(score_view_address(INT_MIN, a));
	assert_memory_equal(a, "\x7f\x00\x02\xff", 4);
}

/* -------------------------------------------------------------- TXT */

static void test_txt_example(void **state)
{
	const struct score_txt_item items[] = {
		{ "spamcop", SCORE_LISTED, IP4(127, 0, 0, 2), 3, NULL, false },
		{ "sorbs", SCORE_FAILED, 0, 0, "timeout", false },
		{ "zen", SCORE_LISTED, IP4(127, 0, 0, 4), 4, NULL, false },
		{ "barracuda", SCORE_CLEAN, 0, 0, NULL, true },
		{ "rbljp", SCORE_CLEAN, 0, 0, NULL, false },
	};
	const char *want = "listed: score 7 >= 5; spamcop 127.0.0.2 +3, zen 127.0.0.4 +4; "
			   "failed: sorbs (timeout); stale: barracuda";
	char out[300];

	assert_int_equal(score_format_txt(out, sizeof(out), true, 7, 5, items, 5), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_txt_not_listed(void **state)
{
	const struct score_txt_item items[] = {
		{ "spamcop", SCORE_LISTED, IP4(127, 0, 0, 2), 3, NULL, true },
		{ "dnswl", SCORE_LISTED, IP4(127, 0, 15, 0), -5, NULL, false },
		{ "zen", SCORE_FAILED, IP4(127, 255, 255, 254), 0, "error-code", false },
		{ "sorbs", SCORE_FAILED, 0, 0, NULL, false },
	};
	char out[300];
	int n;

	n = score_format_txt(out, sizeof(out), false, -2, 5, items, 4);
	assert_string_equal(out, "not listed: score -2 < 5; spamcop 127.0.0.2 +3, dnswl 127.0.15.0 -5; "
			    "failed: zen (error-code 127.255.255.254), sorbs (failed); stale: spamcop");
	assert_int_equal(n, (int)strlen(out));

	n = score_format_txt(out, sizeof(out), false, 0, 5, NULL, 0);
	assert_string_equal(out, "not listed: score 0 < 5");
	assert_int_equal(n, 23);
}

static void test_txt_sanitised(void **state)
{
	const struct score_txt_item items[] = {
		{ "bad\nname\xc3\xa9", SCORE_LISTED, IP4(127, 0, 0, 2), 1, NULL, false },
		{ NULL, SCORE_LISTED, 0, 0, NULL, false },
	};
	char out[300];

	assert_true(score_format_txt(out, sizeof(out), false, 1, 5, items, 2) > 0);
	assert_string_equal(out, "not listed: score 1 < 5; bad?name?? 127.0.0.2 +1, ? +0");
}

static void test_txt_many_sources(void **state)
{
	struct score_txt_item items[SCORE_MAX_SOURCES];
	char names[SCORE_MAX_SOURCES][16];
	char out[512];
	int n;

	for (size_t i = 0; i < SCORE_MAX_SOURCES; i++) {
		snprintf(names[i], sizeof(names[i]), "source-%02zu", i);
		items[i] = (struct score_txt_item){ names[i], SCORE_LISTED, IP4(127, 0, 0, 2), 1,
						    NULL, false };
	}
	n = score_format_txt(out, sizeof(out), true, 64, 5, items, SCORE_MAX_SOURCES);
	assert_int_equal(n, (int)strlen(out));
	assert_true(n <= 254);
	/* 21 bytes of head, 2 + 22 for the first, 24 for each next, 10 for
	 * ", +55 more": nine fit in 247 bytes, a tenth would make 271 */
	assert_int_equal(n, 247);
	assert_non_null(strstr(out, "source-08 127.0.0.2 +1, +55 more"));
	assert_null(strstr(out, "source-09"));
	assert_int_equal(strncmp(out, "listed: score 64 >= 5; source-00 127.0.0.2 +1, ", 47), 0);

	/* a small buffer: fewer items, still a well-formed line */
	n = score_format_txt(out, 60, true, 64, 5, items, SCORE_MAX_SOURCES);
	assert_string_equal(out, "listed: score 64 >= 5; source-00 127.0.0.2 +1, +63 more");
	assert_int_equal(n, 55);
	/* room for the head and "+64 more" only */
	n = score_format_txt(out, 40, true, 64, 5, items, SCORE_MAX_SOURCES);
	assert_string_equal(out, "listed: score 64 >= 5; +64 more");
	/* not even that */
	assert_int_equal(score_format_txt(out, 25, true, 64, 5, items, SCORE_MAX_SOURCES), -ENOSPC);
	assert_int_equal(score_format_txt(out, 0, true, 64, 5, items, SCORE_MAX_SOURCES), -EINVAL);
}

static void test_txt_cut_between_sections(void **state)
{
	struct score_txt_item items[12];
	char names[12][64];
	char out[300];
	int n;

	/* three long hits fill most of the line; the failed ones do not fit */
	for (size_t i = 0; i < 12; i++) {
		if (i < 3) {
			memset(names[i], 'a' + (int)i, 48);
			names[i][48] = '\0';
			items[i] = (struct score_txt_item){ names[i], SCORE_LISTED,
							    IP4(127, 0, 0, 2), 2, NULL, false };
		} else {
			snprintf(names[i], sizeof(names[i]), "failing-list-%zu", i);
			items[i] = (struct score_txt_item){ names[i], SCORE_FAILED, 0, 0,
							    "timeout", false };
		}
	}
	n = score_format_txt(out, sizeof(out), true, 6, 5, items, 12);
	assert_int_equal(n, (int)strlen(out));
	assert_true(n <= 254);
	/* the first failed one fits, the next ones do not: ", +8 more" inside
	 * the failed section */
	assert_int_equal(n, 252);
	assert_int_equal(strcmp(out + n - 43, "; failed: failing-list-3 (timeout), +8 more"), 0);

	/* with longer failed names not one of them fits: "; +9 more" */
	for (size_t i = 3; i < 12; i++) {
		memset(names[i], 'z', 40);
		names[i][40] = '\0';
	}
	n = score_format_txt(out, sizeof(out), true, 6, 5, items, 12);
	assert_int_equal(n, 218);
	assert_int_equal(strcmp(out + n - 12, " +2; +9 more"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_code_rule),
		cmocka_unit_test(test_parse_code_rule_forms),
		cmocka_unit_test(test_parse_code_rule_invalid),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_source_statuses),
		cmocka_unit_test(test_source_postscreen_weights),
		cmocka_unit_test(test_source_zero_and_negative),
		cmocka_unit_test(test_source_errors),
		cmocka_unit_test(test_source_configured_errors),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_tally_listed_early),
		cmocka_unit_test(test_tally_not_listed_early),
		cmocka_unit_test(test_tally_nothing_answered_yet),
		cmocka_unit_test(test_tally_allowlist),
		cmocka_unit_test(test_tally_all_failed),
		cmocka_unit_test(test_tally_no_sources),
		cmocka_unit_test(test_tally_servfail_mode),
		cmocka_unit_test(test_tally_servfail_mode_early),
		cmocka_unit_test(test_tally_exact),
		cmocka_unit_test(test_tally_resolve_without_pending),
		cmocka_unit_test(test_view_address),
		cmocka_unit_test(test_txt_example),
		cmocka_unit_test(test_txt_not_listed),
		cmocka_unit_test(test_txt_sanitised),
		cmocka_unit_test(test_txt_many_sources),
		cmocka_unit_test(test_txt_cut_between_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
