/* cmocka tests for zones/spf_eval: a fake zone behind the DNS callback. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "zones/dnswire.h"
#include "zones/spf_eval.h"

/* ------------------------------------------------------------ fake zone */

#define ZMAX 4096

struct zrec {
	char name[300];      /* lowercase text, no trailing dot */
	uint16_t type;       /* 0: the name exists, no data */
	bool error;          /* this (name, type) fails: SERVFAIL */
	uint16_t pref;
	uint8_t data[600];
	size_t len;
};

static struct zrec zone[ZMAX];
static size_t nzone;
static unsigned questions;
static char asked[256][300];
static uint16_t asked_type[256];
static bool corrupt_answers;

static void zreset(void)
{
	nzone = 0;
	questions = 0;
	corrupt_answers = false;
}

static struct zrec *zadd(const char *name, uint16_t type)
{
	assert_true(nzone < ZMAX);
	struct zrec *z = &zone[nzone++];
	memset(z, 0, sizeof(*z));
	snprintf(z->name, sizeof(z->name), "%s", name);
	for (char *c = z->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	z->type = type;
	return z;
}

static int text_wire(const char *t, uint8_t *w)
{
	int n = dnswire_name_from_text(t, w, DNSWIRE_NAME_MAX);
	assert_true(n > 0);
	return n;
}

static void z_txt(const char *name, const char *txt)
{
	struct zrec *z = zadd(name, DNS_T_TXT);
	z->len = strlen(txt);
	memcpy(z->data, txt, z->len);
}

static void z_a(const char *name, const char *addr)
{
	struct zrec *z = zadd(name, strchr(addr, ':') ? DNS_T_AAAA : DNS_T_A);
	z->len = z->type == DNS_T_A ? 4 : 16;
	assert_int_equal(inet_pton(z->type == DNS_T_A ? AF_INET : AF_INET6, addr, z->data), 1);
}

static void z_name(const char *name, uint16_t type, const char *target, uint16_t pref)
{
	struct zrec *z = zadd(name, type);
	z->pref = pref;
	z->len = (size_t)text_wire(target, z->data);
}

static void z_error(const char *name, uint16_t type)
{
	zadd(name, type)->error = true;
}

static void wire_lc(const uint8_t *w, size_t wl, char *out)
{
	size_t i = 0, o = 0;
	while (i < wl && w[i]) {
		if (o)
			out[o++] = '.';
		for (int k = 0; k < w[i]; k++)
			out[o++] = (char)tolower(w[i + 1 + k]);
		i += 1u + w[i];
	}
	out[o] = '\0';
}

static int fake_dns(void *arg, const uint8_t *name, size_t len, uint16_t qtype,
		    struct spf_answer *a)
{
	char t[300];
	bool exists = false;
	(void)arg;
	wire_lc(name, len, t);
	if (questions < 256) {
		snprintf(asked[questions], sizeof(asked[0]), "%s", t);
		asked_type[questions] = qtype;
	}
	questions++;
	a->status = SPF_ANS_RECORDS;
	for (size_t i = 0; i < nzone; i++) {
		struct zrec *z = &zone[i];
		if (strcmp(z->name, t) != 0)
			continue;
		exists = true;
		if (z->type != qtype)
			continue;
		if (z->error) {
			a->status = SPF_ANS_ERROR;
			return 0;
		}
		spf_answer_add(a, z->data, z->len, z->pref);
	}
	if (!exists)
		a->status = SPF_ANS_NXDOMAIN;
	else if (a->n_total == 0)
		a->status = SPF_ANS_NODATA;
	if (corrupt_answers && a->n)
		a->rr[0].off = a->data_len + 5;
	return 0;
}

static struct spf_eval_out out;

static enum spf_result check(const char *ip, const char *domain, const char *lp)
{
	struct spf_eval_req r = { 0 };
	if (inet_pton(AF_INET, ip, r.ip) == 1) {
		r.family = AF_INET;
	} else {
		r.family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, r.ip), 1);
	}
	r.domain = domain;
	r.local_part = lp;
	r.now = 1700000000;
	r.dns = fake_dns;
	questions = 0;
	return spf_eval_check_host(&r, &out);
}

/* ---------------------------------------------------------------- tests */

static void test_basic_results(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 ip4:192.0.2.0/24 ~ip4:198.51.100.0/24 ?ip4:203.0.113.1 -all");
	z_txt("example.com", "google-site-verification=abc");
	assert_int_equal(check("192.0.2.9", "example.com", NULL), SPF_PASS);
	assert_string_equal(out.reason, "example.com matched ip4:192.0.2.0/24");
	assert_int_equal(out.dns_terms, 0);
	assert_int_equal(out.questions, 1);
	assert_int_equal(check("198.51.100.1", "example.com", NULL), SPF_SOFTFAIL);
	assert_int_equal(check("203.0.113.1", "example.com", NULL), SPF_NEUTRAL);
	assert_int_equal(check("203.0.113.2", "example.com", NULL), SPF_FAIL);
	assert_false(out.has_explanation);
	/* The domain may come with its final dot. */
	assert_int_equal(check("192.0.2.9", "EXAMPLE.com.", NULL), SPF_PASS);
}

static void test_none_and_record_selection(void **state)
{
	(void)state;
	zreset();
	z_txt("notspf.example", "v=spf10 -all");
	z_txt("notspf.example", "hello");
	z_txt("two.example", "v=spf1 -all");
	z_txt("two.example", "V=SPF1 +all");
	z_txt("bare.example", "v=spf1");
	z_txt("upper.example", "V=SpF1 ~ALL");
	z_error("broken.example", DNS_T_TXT);
	zadd("nodata.example", DNS_T_A);
	assert_int_equal(check("192.0.2.1", "nx.example", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "nodata.example", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "notspf.example", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "two.example", NULL), SPF_PERMERROR);
	assert_string_equal(out.reason, "more than one SPF record");
	assert_int_equal(check("192.0.2.1", "bare.example", NULL), SPF_NEUTRAL);
	assert_int_equal(check("192.0.2.1", "upper.example", NULL), SPF_SOFTFAIL);
	assert_int_equal(check("192.0.2.1", "broken.example", NULL), SPF_TEMPERROR);
	/* Not a domain: no question at all. */
	assert_int_equal(check("192.0.2.1", "localhost", NULL), SPF_NONE);
	assert_int_equal(questions, 0);
	assert_int_equal(check("192.0.2.1", "[192.0.2.1]", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "a..example", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "example.123", NULL), SPF_NONE);
	assert_int_equal(check("192.0.2.1", "", NULL), SPF_NONE);
	assert_int_equal(questions, 0);
}

static void test_syntax_errors(void **state)
{
	static const char *const bad[] = {
		"v=spf1 foo", "v=spf1 all.", "v=spf1 all:x", "v=spf1 -all/8", "v=spf1 =x",
		"v=spf1 1up=x", "v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip4:1.2.3.4/032",
		"v=spf1 ip4:1.2.03.4", "v=spf1 ip4:1.2.3.4//64", "v=spf1 ip4:1.2.3.4:25",
		"v=spf1 ip6:1.2.3.4", "v=spf1 ip6:::1/129", "v=spf1 a:com", "v=spf1 a:com.",
		"v=spf1 a:foo.123", "v=spf1 a:", "v=spf1 a/33", "v=spf1 a//129", "v=spf1 a:x.com/0a",
		"v=spf1 ptr/24", "v=spf1 exists", "v=spf1 exists:x.com/24", "v=spf1 include",
		"v=spf1 include:x.com/24", "v=spf1 mx:%(d).com", "v=spf1 exists:%{x}.com",
		"v=spf1 exists:%{d0}.com", "v=spf1 exists:%{c}.com", "v=spf1 exists:%{d", "v=spf1 a:foo%",
		"v=spf1 redirect=", "v=spf1 exp=", "v=spf1 exp=a.com exp=b.com",
		"v=spf1 redirect=a.com redirect=b.com", "v=spf1 foo=%q", "v=spf1 redirect:x.com",
		"v=spf1 -all\x01", "v=spf1 a:caf\xc3\xa9.com", "v=spf1 ip4:1.2.3.4\tall",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		zreset();
		z_txt("example.com", bad[i]);
		/* The error is found even behind a matching "+all". */
		assert_int_equal(check("192.0.2.1", "example.com", NULL), SPF_PERMERROR);
		assert_int_equal(questions, 1);
	}
	static const char *const good[] = {
		"v=spf1 -ip4:198.51.100.0/24 moo.cow-2_3=%{d} a/24//64 a:x.example-com +all",
		"v=spf1  ip4:10.0.0.0/8   +all  ", "v=spf1 ip6:::/0 +all", "v=spf1 ip4:0.0.0.0/0",
		"v=spf1 exists:%{i}.%{l1r-}.x.com ?ip4:1.1.1.1 default=- +all",
		"v=spf1 a:%{d}.%%.%_.%- +all",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		zreset();
		z_txt("example.com", good[i]);
		assert_int_equal(check("192.0.2.1", "example.com", NULL), SPF_PASS);
	}
}

static void test_a_mx_ptr_exists(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 a mx/24 ptr exists:%{ir}.bl.example.com -all");
	z_a("example.com", "192.0.2.10");
	z_a("example.com", "2001:db8::10");
	z_name("example.com", DNS_T_MX, "mx1.example.com", 10);
	z_name("example.com", DNS_T_MX, "mx2.example.com", 20);
	z_a("mx1.example.com", "198.51.100.5");
	z_a("mx2.example.com", "203.0.114.5");
	z_name("7.113.0.203.in-addr.arpa", DNS_T_PTR, "other.example.net", 0);
	z_name("7.113.0.203.in-addr.arpa", DNS_T_PTR, "host7.example.com", 0);
	z_a("host7.example.com", "203.0.113.7");
	z_a("9.0.0.10.bl.example.com", "127.0.0.2");
	assert_int_equal(check("192.0.2.10", "example.com", NULL), SPF_PASS);
	assert_int_equal(out.dns_terms, 1);
	assert_int_equal(check("2001:db8::10", "example.com", NULL), SPF_PASS);
	assert_int_equal(check("::ffff:192.0.2.10", "example.com", NULL), SPF_PASS);
	assert_int_equal(asked_type[1], DNS_T_A);
	assert_int_equal(check("198.51.100.77", "example.com", NULL), SPF_PASS);
	assert_int_equal(out.dns_terms, 2);
	assert_int_equal(check("203.0.113.7", "example.com", NULL), SPF_PASS);
	assert_string_equal(out.reason, "example.com matched ptr");
	/* The unvalidated other.example.net is never asked about. */
	for (unsigned i = 0; i < questions && i < 256; i++)
		assert_string_not_equal(asked[i], "other.example.net");
	assert_int_equal(check("10.0.0.9", "example.com", NULL), SPF_PASS);
	assert_string_equal(out.reason, "example.com matched exists:%{ir}.bl.example.com");
	assert_int_equal(check("10.0.0.8", "example.com", NULL), SPF_FAIL);
	assert_int_equal(out.dns_terms, 4);
}

static void test_include_redirect(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 include:_spf.example.net -include:bad.example.net ~all");
	z_txt("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all");
	z_txt("bad.example.net", "v=spf1 ip4:198.51.100.0/24 -all");
	z_txt("red.example.com", "v=spf1 ip4:203.0.113.1 redirect=example.com");
	z_txt("redall.example.com", "v=spf1 redirect=example.com ?all");
	z_txt("inc-none.example.com", "v=spf1 include:nothing.example.com +all");
	z_txt("inc-err.example.com", "v=spf1 include:broken.example.com +all");
	z_txt("inc-perm.example.com", "v=spf1 include:perm.example.com +all");
	z_txt("perm.example.com", "v=spf1 bogus");
	z_txt("red-none.example.com", "v=spf1 redirect=nothing.example.com");
	z_error("broken.example.com", DNS_T_TXT);
	assert_int_equal(check("192.0.2.1", "example.com", NULL), SPF_PASS);
	assert_string_equal(out.reason, "example.com matched include:_spf.example.net");
	assert_int_equal(check("198.51.100.1", "example.com", NULL), SPF_FAIL);
	/* Inside an include, fail is only "no match". */
	assert_int_equal(check("203.0.113.9", "example.com", NULL), SPF_SOFTFAIL);
	assert_int_equal(check("203.0.113.1", "red.example.com", NULL), SPF_PASS);
	assert_int_equal(check("198.51.100.1", "red.example.com", NULL), SPF_FAIL);
	assert_int_equal(out.dns_terms, 3);
	/* redirect is ignored when the record has "all". */
	assert_int_equal(check("192.0.2.1", "redall.example.com", NULL), SPF_NEUTRAL);
	assert_int_equal(check("192.0.2.1", "inc-none.example.com", NULL), SPF_PERMERROR);
	assert_int_equal(check("192.0.2.1", "inc-err.example.com", NULL), SPF_TEMPERROR);
	assert_int_equal(check("192.0.2.1", "inc-perm.example.com", NULL), SPF_PERMERROR);
	assert_string_equal(out.reason, "unknown mechanism: bogus");
	assert_int_equal(check("192.0.2.1", "red-none.example.com", NULL), SPF_PERMERROR);
}

static void test_explanations(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 -include:inc.example.com ip4:192.0.2.1 -all exp=why.%{d}");
	z_txt("why.example.com", "%{i} is not one of %{d}'s (%{c}, %{v}, %{L}, %{o2r}) %_%%");
	z_txt("inc.example.com", "v=spf1 +ip4:198.51.100.1 -all exp=never.example.com");
	z_txt("never.example.com", "include explanations are never used");
	z_txt("r.example.com", "v=spf1 redirect=example.com exp=never.example.com");
	z_txt("multi.example.com", "v=spf1 -all exp=two.example.com");
	z_txt("two.example.com", "one");
	z_txt("two.example.com", "two");
	z_txt("badmacro.example.com", "v=spf1 -all exp=bad.example.com");
	z_txt("bad.example.com", "oops %{x}");
	z_txt("err.example.com", "v=spf1 -all exp=broken.example.com");
	z_error("broken.example.com", DNS_T_TXT);
	z_txt("soft.example.com", "v=spf1 ~all exp=why.example.com");

	assert_int_equal(check("203.0.113.9", "example.com", "a&b"), SPF_FAIL);
	assert_true(out.has_explanation);
	assert_string_equal(out.explanation,
			    "203.0.113.9 is not one of example.com's (203.0.113.9, in-addr, a%26b, com.example)  %");
	assert_int_equal(check("198.51.100.1", "example.com", NULL), SPF_FAIL);
	assert_true(out.has_explanation);
	assert_int_equal(check("203.0.113.9", "r.example.com", NULL), SPF_FAIL);
	assert_string_equal(out.explanation,
			    "203.0.113.9 is not one of example.com's (203.0.113.9, in-addr, postmaster, example.r)  %");
	/* Unusable explanations leave the default, never an error. */
	assert_int_equal(check("192.0.2.9", "multi.example.com", NULL), SPF_FAIL);
	assert_false(out.has_explanation);
	assert_int_equal(check("192.0.2.9", "badmacro.example.com", NULL), SPF_FAIL);
	assert_false(out.has_explanation);
	assert_int_equal(check("192.0.2.9", "err.example.com", NULL), SPF_FAIL);
	assert_false(out.has_explanation);
	assert_string_equal(out.reason, "err.example.com matched -all");
	/* Only fail has one. */
	assert_int_equal(check("192.0.2.9", "soft.example.com", NULL), SPF_SOFTFAIL);
	assert_false(out.has_explanation);
	assert_string_equal(out.explanation, "");
}

static void test_macros(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com",
	      "v=spf1 exists:%{l1r-}.%{lr+-}.%{d2}.%{i}.%{v}.%{h}.%{s}.x.test -all exp=e.example.com");
	z_txt("e.example.com", "%{i} %{ir} %{i2} %{d1r} %{h}");
	z_txt("v6.example.com", "v=spf1 -all exp=e6.example.com");
	z_txt("e6.example.com", "%{i} %{c} %{v}");
	assert_int_equal(check("192.0.2.3", "example.com", "a-b+c"), SPF_FAIL);
	/* The exists name as asked. */
	assert_string_equal(asked[1],
			    "a.c.b.a.example.com.192.0.2.3.in-addr.example.com.a-b+c@example.com.x.test");
	assert_string_equal(out.explanation, "192.0.2.3 3.2.0.192 2.3 example example.com");
	assert_int_equal(check("2001:db8::cb01", "v6.example.com", NULL), SPF_FAIL);
	assert_string_equal(out.explanation,
			    "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1 2001:db8::cb01 ip6");
}

static void test_p_macro(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 -all exp=e.example.com");
	z_txt("e.example.com", "from %{p}");
	z_name("1.2.0.192.in-addr.arpa", DNS_T_PTR, "unvalidated.example.org", 0);
	z_name("1.2.0.192.in-addr.arpa", DNS_T_PTR, "other.example.org", 0);
	z_name("1.2.0.192.in-addr.arpa", DNS_T_PTR, "mail.example.com", 0);
	z_a("other.example.org", "192.0.2.1");
	z_a("mail.example.com", "192.0.2.1");
	assert_int_equal(check("192.0.2.1", "example.com", NULL), SPF_FAIL);
	assert_string_equal(out.explanation, "from mail.example.com");
	assert_int_equal(check("192.0.2.2", "example.com", NULL), SPF_FAIL);
	assert_string_equal(out.explanation, "from unknown");
}

static void test_truncation(void **state)
{
	char want[300];
	size_t o = 0;
	(void)state;
	zreset();
	/* Ten %{d} of 24 bytes and ".x.com" make 255 bytes: the leftmost label
	 * goes (§7.3). */
	z_txt("aaaaaaaa.bbbbbbbb.cc.com",
	      "v=spf1 exists:%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.x.com -all");
	assert_int_equal(check("192.0.2.1", "aaaaaaaa.bbbbbbbb.cc.com", NULL), SPF_FAIL);
	o += (size_t)snprintf(want + o, sizeof(want) - o, "bbbbbbbb.cc.com");
	for (int i = 0; i < 9; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, ".aaaaaaaa.bbbbbbbb.cc.com");
	snprintf(want + o, sizeof(want) - o, ".x.com");
	assert_int_equal(strlen(want), 246);
	assert_string_equal(asked[1], want);
}

static void test_lookup_limits(void **state)
{
	char name[64], rec[512];
	(void)state;
	zreset();
	/* 10 DNS terms pass, the 11th is a permerror, includes counted. */
	z_txt("ten.example", "v=spf1 a:a1.x.example a:a2.x.example a:a3.x.example include:i.example "
			     "a:a5.x.example a:a6.x.example a:a7.x.example a:a8.x.example a:a9.x.example "
			     "ip4:192.0.2.1 ~all");
	z_txt("i.example", "v=spf1 a:a10.x.example");
	z_txt("eleven.example", "v=spf1 include:ten.example a:ok.x.example -all");
	for (int i = 1; i <= 10; i++) {
		snprintf(name, sizeof(name), "a%d.x.example", i);
		z_a(name, "198.51.100.1");
	}
	z_a("ok.x.example", "192.0.2.99");
	assert_int_equal(check("192.0.2.1", "ten.example", NULL), SPF_PASS);
	assert_int_equal(out.dns_terms, 10);
	assert_int_equal(check("192.0.2.99", "eleven.example", NULL), SPF_PERMERROR);
	assert_string_equal(out.reason, "more than 10 DNS-querying terms");

	/* Void lookups: two are fine, the third is a permerror. */
	z_txt("void2.example", "v=spf1 a:nx1.example mx:nx2.example ?all");
	z_txt("void3.example", "v=spf1 a:nx1.example exists:nx2.example a:nx3.example ?all");
	assert_int_equal(check("192.0.2.1", "void2.example", NULL), SPF_NEUTRAL);
	assert_int_equal(out.void_lookups, 2);
	assert_int_equal(check("192.0.2.1", "void3.example", NULL), SPF_PERMERROR);

	/* More than 10 MX records: permerror. 11 PTR names: the rest ignored. */
	z_txt("mx.example", "v=spf1 mx ?all");
	z_txt("ptr.example", "v=spf1 ptr ?all");
	for (int i = 0; i < 11; i++) {
		snprintf(name, sizeof(name), "mx%d.mx.example", i);
		z_name("mx.example", DNS_T_MX, name, (uint16_t)i);
		snprintf(name, sizeof(name), "h%d.ptr.example", i);
		z_name("1.2.0.192.in-addr.arpa", DNS_T_PTR, name, 0);
		z_a(name, "192.0.2.1");
	}
	assert_int_equal(check("192.0.2.1", "mx.example", NULL), SPF_PERMERROR);
	assert_int_equal(check("192.0.2.1", "ptr.example", NULL), SPF_PASS);
	/* TXT, PTR, and the first name validates at once. */
	assert_int_equal(questions, 3);

	/* A loop stops at the term limit. */
	z_txt("loop.example", "v=spf1 include:loop.example -all");
	assert_int_equal(check("192.0.2.1", "loop.example", NULL), SPF_PERMERROR);
	assert_int_equal(questions, 11);

	/* The amplifier of the issue: a 5-level tree of 10 includes each. */
	for (int level = 0; level < 5; level++) {
		size_t o = (size_t)snprintf(rec, sizeof(rec), "v=spf1");
		for (int k = 0; k < 10; k++)
			o += (size_t)snprintf(rec + o, sizeof(rec) - o, " include:l%d.tree.example",
					      level + 1);
		snprintf(rec + o, sizeof(rec) - o, " -all");
		snprintf(name, sizeof(name), "l%d.tree.example", level);
		z_txt(name, rec);
	}
	assert_int_equal(check("192.0.2.1", "l0.tree.example", NULL), SPF_PERMERROR);
	assert_true(questions <= SPF_EVAL_MAX_DNS_TERMS + 1);
}

static void test_dns_errors(void **state)
{
	(void)state;
	zreset();
	z_txt("example.com", "v=spf1 a:broken.example.com -all");
	z_txt("mx.example.com", "v=spf1 mx:mxbroken.example.com -all");
	z_txt("ptr.example.com", "v=spf1 ptr -all");
	z_txt("ex.example.com", "v=spf1 exists:broken.example.com -all");
	z_error("broken.example.com", DNS_T_A);
	z_error("mxbroken.example.com", DNS_T_MX);
	z_error("1.2.0.192.in-addr.arpa", DNS_T_PTR);
	assert_int_equal(check("192.0.2.1", "example.com", NULL), SPF_TEMPERROR);
	assert_string_equal(out.reason, "DNS error or timeout for A broken.example.com");
	assert_int_equal(check("192.0.2.1", "mx.example.com", NULL), SPF_TEMPERROR);
	assert_int_equal(check("192.0.2.1", "ex.example.com", NULL), SPF_TEMPERROR);
	/* A PTR lookup error is only "no match" (§5.5). */
	assert_int_equal(check("192.0.2.1", "ptr.example.com", NULL), SPF_FAIL);
	/* An answer whose records point out of its buffer is an error. */
	corrupt_answers = true;
	assert_int_equal(check("192.0.2.1", "ptr.example.com", NULL), SPF_TEMPERROR);
	corrupt_answers = false;
}

/* Random records: never a crash, never a result out of range, never more
 * questions than the cap. */
static void test_garbage_records(void **state)
{
	static const char alphabet[] = "v=spf1 +-~?%{}_.:/adlimxpt0123456789rRDI,=exists include redirect exp";
	char rec[300];
	uint32_t seed = 12345;
	(void)state;
	for (int round = 0; round < 3000; round++) {
		zreset();
		size_t n = 7;
		memcpy(rec, "v=spf1 ", 7);
		size_t len = 7 + (seed >> 7) % 200;
		while (n < len) {
			seed = seed * 1103515245u + 12345u;
			rec[n++] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		rec[n] = '\0';
		z_txt("example.com", rec);
		z_txt("d.example.com", rec);
		z_a("example.com", "192.0.2.1");
		enum spf_result r = check("192.0.2.1", "example.com", "x.y");
		assert_true(r >= SPF_PASS && r <= SPF_TEMPERROR);
		assert_true(out.questions <= SPF_EVAL_MAX_QUESTIONS);
		assert_true(strlen(out.reason) < SPF_EVAL_REASON_MAX);
	}
}

static void test_result_names(void **state)
{
	(void)state;
	assert_string_equal(spf_result_name(SPF_PASS), "pass");
	assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
	assert_string_equal(spf_result_name((enum spf_result)0), "?");
	assert_string_equal(spf_result_name((enum spf_result)8), "?");
	assert_int_equal(spf_result_from_name("SoftFail"), SPF_SOFTFAIL);
	assert_int_equal(spf_result_from_name("permerror"), SPF_PERMERROR);
	assert_int_equal(spf_result_from_name("passed"), 0);
	assert_int_equal(spf_result_from_name(""), 0);
}

static void test_answer_add(void **state)
{
	static struct spf_answer a;
	uint8_t big[SPF_ANS_DATA_MAX];
	(void)state;
	memset(&a, 0, sizeof(a));
	memset(big, 'x', sizeof(big));
	assert_int_equal(spf_answer_add(&a, "abc", 3, 7), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rr[0].pref, 7);
	assert_int_equal(spf_answer_add(&a, big, sizeof(big), 0), -ENOSPC);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.n_total, 2);
	for (int i = 1; i < SPF_ANS_MAX_RR; i++)
		assert_int_equal(spf_answer_add(&a, "", 0, 0), 0);
	assert_int_equal(spf_answer_add(&a, "", 0, 0), -ENOSPC);
	assert_int_equal(a.n, SPF_ANS_MAX_RR);
}

static void test_format_txt(void **state)
{
	char txt[300], longexp[400];
	size_t n;
	(void)state;
	n = spf_eval_format_txt(txt, sizeof(txt), SPF_FAIL, "example.com", "192.0.2.9", NULL, NULL);
	assert_string_equal(txt, "fail (example.com: 192.0.2.9 is not a permitted sender)");
	assert_int_equal(n, strlen(txt));
	spf_eval_format_txt(txt, sizeof(txt), SPF_FAIL, "example.com", "192.0.2.9",
			    "See http://x/(why)\\ \x01\xff", NULL);
	assert_string_equal(txt, "fail (See http://x/\\(why\\)\\\\ ?" "?)");
	spf_eval_format_txt(txt, sizeof(txt), SPF_PASS, "example.com", "2001:db8::1", NULL, "x");
	assert_string_equal(txt, "pass (example.com: 2001:db8::1 is a permitted sender)");
	spf_eval_format_txt(txt, sizeof(txt), SPF_SOFTFAIL, "e.com", "192.0.2.9", "unused", NULL);
	assert_string_equal(txt, "softfail (e.com: 192.0.2.9 is probably not a permitted sender)");
	spf_eval_format_txt(txt, sizeof(txt), SPF_NEUTRAL, "e.com", "192.0.2.9", NULL, NULL);
	assert_string_equal(txt, "neutral (e.com: 192.0.2.9 is neither permitted nor denied)");
	spf_eval_format_txt(txt, sizeof(txt), SPF_PERMERROR, "e.com", "192.0.2.9", NULL,
			    "more than 10 DNS-querying terms");
	assert_string_equal(txt, "permerror (e.com: more than 10 DNS-querying terms)");
	spf_eval_format_txt(txt, sizeof(txt), SPF_NONE, "e.com", "192.0.2.9", NULL, NULL);
	assert_string_equal(txt, "none (e.com: no reason given)");

	/* Too long: cut to 254 bytes, "..." and the closing parenthesis kept,
	 * never half an escape. */
	memset(longexp, '(', sizeof(longexp) - 1);
	longexp[sizeof(longexp) - 1] = '\0';
	n = spf_eval_format_txt(txt, sizeof(txt), SPF_FAIL, "e.com", "192.0.2.9", longexp, NULL);
	assert_int_equal(n, strlen(txt));
	assert_true(n <= SPF_EVAL_TXT_MAX);
	assert_true(n >= SPF_EVAL_TXT_MAX - 1);
	assert_string_equal(txt + n - 5, "(...)");
	assert_int_equal(txt[n - 6], '\\');
	memset(longexp, 'x', sizeof(longexp) - 1);
	n = spf_eval_format_txt(txt, sizeof(txt), SPF_FAIL, "e.com", "192.0.2.9", longexp, NULL);
	assert_int_equal(n, SPF_EVAL_TXT_MAX);
	assert_string_equal(txt + n - 5, "x...)");
	/* A small buffer bounds everything. */
	n = spf_eval_format_txt(txt, 12, SPF_FAIL, "e.com", "192.0.2.9", NULL, NULL);
	assert_int_equal(n, 11);
	assert_string_equal(txt, "fail (e...)");
	n = spf_eval_format_txt(txt, 4, SPF_TEMPERROR, "e.com", "192.0.2.9", NULL, NULL);
	assert_int_equal(n, 3);
	assert_string_equal(txt, "tem");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_results),
		cmocka_unit_test(test_none_and_record_selection),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_a_mx_ptr_exists),
		cmocka_unit_test(test_include_redirect),
		cmocka_unit_test(test_explanations),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_p_macro),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_lookup_limits),
		cmocka_unit_test(test_dns_errors),
		cmocka_unit_test(test_garbage_records),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_answer_add),
		cmocka_unit_test(test_format_txt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
