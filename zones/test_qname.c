/* Unit tests for zones/qname.c: the name table of SPEC §2. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "zones/qname.h"

static const struct qname_source sources_under_test[] = {
	{ "spamcop", QSRC_IP },
	{ "four", QSRC_IP4 },
	{ "six", QSRC_IP6 },
	{ "dbl", QSRC_DOMAIN },
};

static uint8_t apex_wire[] = "\6rblmux\10internal";

static const struct qname_zone zone = {
	.apex = apex_wire,
	.apex_len = sizeof(apex_wire), /* with the root label: the string's NUL */
	.sources = sources_under_test,
	.nsources = sizeof(sources_under_test) / sizeof(sources_under_test[0]),
};

/* Presentation to wire form, "\." escaping a dot; "" or "." is the root.
 * Kept here so these tests do not depend on dnswire.c. */
static size_t to_wire(const char *text, uint8_t *out, size_t cap)
{
	size_t len = 0, label_at = 0;

	if (strcmp(text, ".") == 0)
		text = "";
	assert_true(cap > 0);
	out[len++] = 0;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '.') {
			out[label_at] = (uint8_t)(len - label_at - 1);
			label_at = len;
			assert_true(len < cap);
			out[len++] = 0;
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		assert_true(len < cap);
		out[len++] = (uint8_t)*p;
	}
	if (len - label_at - 1 > 0) {
		out[label_at] = (uint8_t)(len - label_at - 1);
		assert_true(len < cap);
		out[len++] = 0;
	}
	return len;
}

static struct qname_result classify_text(const char *text)
{
	uint8_t wire[512];
	struct qname_result r;
	size_t len = to_wire(text, wire, sizeof(wire));

	assert_int_equal(qname_classify(wire, len, &zone, &r), 0);
	return r;
}

static enum qname_view view_of(const char *text)
{
	return classify_text(text).view;
}

/* The 32 reversed nibbles of an IPv6 address in presentation form. */
static void nibbles(const char *v6, char *out, size_t cap)
{
	struct in6_addr a;
	size_t len = 0;

	assert_int_equal(inet_pton(AF_INET6, v6, &a), 1);
	for (int i = 15; i >= 0; i--) {
		len += (size_t)snprintf(out + len, cap - len, "%x.%x.", a.s6_addr[i] & 0xf,
					a.s6_addr[i] >> 4);
	}
	out[len - 1] = '\0';
}

static void assert_v4(const struct qname_addr *ip, const char *text)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, text, &a), 1);
	assert_int_equal(ip->family, AF_INET);
	assert_memory_equal(ip->addr, &a, 4);
}

static void assert_v6(const struct qname_addr *ip, const char *text)
{
	struct in6_addr a;

	assert_int_equal(inet_pton(AF_INET6, text, &a), 1);
	assert_int_equal(ip->family, AF_INET6);
	assert_memory_equal(ip->addr, &a, 16);
}

static void assert_domain(const struct qname_result *r, const char *text)
{
	uint8_t wire[300];
	size_t len = to_wire(text, wire, sizeof(wire));

	assert_int_equal(r->domain_len, len);
	assert_memory_equal(r->domain, wire, len);
}

/* ------------------------------------------------------------------ tests */

static void test_apex_and_outside(void **state)
{
	struct qname_result r = classify_text("rblmux.internal");

	assert_int_equal(r.view, QV_APEX);
	assert_int_equal(r.apex_off, 0);
	assert_int_equal(r.source, -1);

	/* Label-wise, not byte-wise. */
	assert_int_equal(view_of("xrblmux.internal"), QV_OUTSIDE);
	assert_int_equal(view_of("4.3.2.1.xrblmux.internal"), QV_OUTSIDE);
	assert_int_equal(view_of("internal"), QV_OUTSIDE);
	assert_int_equal(view_of("."), QV_OUTSIDE);
	assert_int_equal(view_of("example.com"), QV_OUTSIDE);
	assert_int_equal(view_of("rblmux.internal.example"), QV_OUTSIDE);
	/* A label that contains the apex's bytes, dot included. */
	assert_int_equal(view_of("a\\.rblmux.internal"), QV_OUTSIDE);
	/* The apex's bytes at the end, but starting inside a label. */
	{
		static const uint8_t inside[] = "\11xx\6rblmux\10internal";

		assert_int_equal(qname_classify(inside, sizeof(inside), &zone, &r), 0);
		assert_int_equal(r.view, QV_OUTSIDE);
	}
	r = classify_text("4.3.2.1.rblmux.internal.com");
	assert_int_equal(r.view, QV_OUTSIDE);
	assert_int_equal(r.apex_off, 0);
}

static void test_root_apex(void **state)
{
	static uint8_t root[] = { 0 };
	struct qname_zone z = zone;
	uint8_t wire[64];
	struct qname_result r;
	size_t len = to_wire("4.3.2.1", wire, sizeof(wire));

	z.apex = root;
	z.apex_len = 1;
	assert_int_equal(qname_classify(wire, len, &z, &r), 0);
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.apex_off, 8);
	assert_v4(&r.ip, "1.2.3.4");
}

static void test_malformed(void **state)
{
	struct qname_result r;
	uint8_t ptr[] = { 1, 'a', 0xc0, 0x0c };
	uint8_t past_end[] = { 5, 'a', 'b', 0 };
	uint8_t trailing[] = { 1, 'a', 0, 1 };
	uint8_t no_root[] = { 1, 'a' };
	uint8_t big[300];

	assert_int_equal(qname_classify(ptr, sizeof(ptr), &zone, &r), -EINVAL);
	assert_int_equal(qname_classify(past_end, sizeof(past_end), &zone, &r), -EINVAL);
	assert_int_equal(qname_classify(trailing, sizeof(trailing), &zone, &r), -EINVAL);
	assert_int_equal(qname_classify(no_root, sizeof(no_root), &zone, &r), -EINVAL);
	assert_int_equal(qname_classify(no_root, 0, &zone, &r), -EINVAL);
	/* 256 bytes: one over the limit, though well formed otherwise */
	memset(big, 0, sizeof(big));
	for (size_t i = 0; i < 4; i++) {
		big[i * 64] = 63;
		memset(big + i * 64 + 1, 'a', 63);
	}
	assert_int_equal(qname_classify(big, 257, &zone, &r), -EINVAL);
	big[256] = 0;
	assert_int_equal(qname_classify(big, 256, &zone, &r), -EINVAL);
	/* 255 bytes is the limit itself: 3 x 63, one label of 61, the root */
	big[192] = 61;
	big[254] = 0;
	assert_int_equal(qname_classify(big, 255, &zone, &r), 0);
	assert_int_equal(r.view, QV_OUTSIDE);
	/* a length byte of 64 is not a label length */
	big[0] = 64;
	assert_int_equal(qname_classify(big, 255, &zone, &r), -EINVAL);
}

static void test_combined_v4(void **state)
{
	struct qname_result r = classify_text("4.3.2.1.rblmux.internal");

	assert_int_equal(r.view, QV_COMBINED);
	assert_v4(&r.ip, "1.2.3.4");
	assert_int_equal(r.apex_off, 8);
	assert_int_equal(r.test_point, 0);
	assert_int_equal(r.source, -1);

	r = classify_text("255.0.100.10.rblmux.internal");
	assert_int_equal(r.view, QV_COMBINED);
	assert_v4(&r.ip, "10.100.0.255");
	assert_int_equal(r.apex_off, 13);

	assert_int_equal(view_of("256.1.1.1.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("01.1.1.1.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("1.01.1.1.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("1.1.1.-1.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("1.1.1.1000.rblmux.internal"), QV_NXDOMAIN);
	/* Five labels that are not all nibbles lead nowhere... */
	assert_int_equal(view_of("10.1.1.1.1.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("1.1.1.1.10.rblmux.internal"), QV_NXDOMAIN);
	/* ...but five single digits are the start of an IPv6 address. */
	assert_int_equal(view_of("5.4.3.2.1.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("foo.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("g.rblmux.internal"), QV_NXDOMAIN);
}

static void test_combined_v6(void **state)
{
	char name[200], nib[100];
	struct qname_result r;

	nibbles("2001:db8::1", nib, sizeof(nib));
	assert_string_equal(nib, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_COMBINED);
	assert_v6(&r.ip, "2001:db8::1");
	assert_int_equal(r.apex_off, 64);
	assert_int_equal(r.test_point, 0);

	/* Upper-case hex is not a nibble: the name is lowercased beforehand. */
	assert_int_equal(view_of("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.d.0.1.0.0.2.rblmux.internal"),
			 QV_NXDOMAIN);
	/* 33 nibbles */
	snprintf(name, sizeof(name), "0.%s.rblmux.internal", nib);
	assert_int_equal(view_of(name), QV_NXDOMAIN);
	/* two characters in one label */
	assert_int_equal(view_of("10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.rblmux.internal"),
			 QV_NXDOMAIN);
}

static void test_v4_mapped(void **state)
{
	char name[200], nib[100];
	struct qname_result r;

	nibbles("::ffff:192.0.2.1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_COMBINED);
	assert_v4(&r.ip, "192.0.2.1");
	assert_int_equal(r.test_point, 0);

	snprintf(name, sizeof(name), "%s.score.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SCORE);
	assert_v4(&r.ip, "192.0.2.1");
}

static void test_test_points(void **state)
{
	char name[200], nib[100];
	struct qname_result r;

	r = classify_text("2.0.0.127.rblmux.internal");
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.test_point, 2);
	r = classify_text("1.0.0.127.rblmux.internal");
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.test_point, 1);
	assert_int_equal(classify_text("3.0.0.127.rblmux.internal").test_point, 0);
	assert_int_equal(classify_text("2.0.1.127.rblmux.internal").test_point, 0);
	assert_int_equal(classify_text("127.0.0.2.rblmux.internal").test_point, 0);

	r = classify_text("2.0.0.127.score.rblmux.internal");
	assert_int_equal(r.view, QV_SCORE);
	assert_int_equal(r.test_point, 2);
	assert_int_equal(classify_text("1.0.0.127.score.rblmux.internal").test_point, 1);

	nibbles("::ffff:7f00:2", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.test_point, 2);
	snprintf(name, sizeof(name), "%s.score.rblmux.internal", nib);
	assert_int_equal(classify_text(name).test_point, 2);

	nibbles("::ffff:7f00:1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib);
	assert_int_equal(classify_text(name).test_point, 1);

	/* ::7f00:2 (not mapped) is a plain IPv6 address */
	nibbles("::7f00:2", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.ip.family, AF_INET6);
	assert_int_equal(r.test_point, 0);

	/* Only combined and score carry test points; a source passes through. */
	r = classify_text("2.0.0.127.spamcop.rblmux.internal");
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.test_point, 0);
	r = classify_text("2.0.0.127.ptr.rblmux.internal");
	assert_int_equal(r.view, QV_PTR);
	assert_int_equal(r.test_point, 0);
}

static void test_empty_non_terminals(void **state)
{
	char name[200], nib[100];
	struct qname_result r;

	assert_int_equal(view_of("score.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("ptr.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("rhs.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("_l.spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("spamcop.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("dbl.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("1.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("2.1.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("3.2.1.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("200.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("3.2.1.score.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("3.2.1.ptr.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("3.2.1.spamcop.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("a.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.rblmux.internal"), QV_ENT);

	/* 31 nibbles is the longest ENT */
	nibbles("2001:db8::1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.rblmux.internal", nib + 2);
	r = classify_text(name);
	assert_int_equal(r.view, QV_ENT);
	assert_int_equal(r.apex_off, 62);
	assert_int_equal(r.source, -1);
	assert_int_equal(r.ip.family, 0);

	/* health has nothing below it */
	assert_int_equal(view_of("x.health.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("health.x.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("x.score.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("256.score.rblmux.internal"), QV_NXDOMAIN);
}

static void test_views(void **state)
{
	char name[200], nib[100];
	struct qname_result r;

	assert_int_equal(view_of("health.rblmux.internal"), QV_HEALTH);
	assert_int_equal(classify_text("health.rblmux.internal").apex_off, 7);

	r = classify_text("4.3.2.1.score.rblmux.internal");
	assert_int_equal(r.view, QV_SCORE);
	assert_v4(&r.ip, "1.2.3.4");
	assert_int_equal(r.apex_off, 14);

	r = classify_text("4.3.2.1.ptr.rblmux.internal");
	assert_int_equal(r.view, QV_PTR);
	assert_v4(&r.ip, "1.2.3.4");
	assert_int_equal(r.apex_off, 12);

	nibbles("2001:db8::25", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.ptr.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_PTR);
	assert_v6(&r.ip, "2001:db8::25");

	r = classify_text("example.com.rhs.rblmux.internal");
	assert_int_equal(r.view, QV_RHS);
	assert_domain(&r, "example.com");
	assert_int_equal(r.test_point, 0);
	assert_int_equal(r.apex_off, 16);
	assert_int_equal(r.ip.family, 0);

	r = classify_text("test.rhs.rblmux.internal");
	assert_int_equal(r.view, QV_RHS);
	assert_int_equal(r.test_point, 2);
	r = classify_text("invalid.rhs.rblmux.internal");
	assert_int_equal(r.view, QV_RHS);
	assert_int_equal(r.test_point, 1);
	assert_int_equal(classify_text("a.test.rhs.rblmux.internal").test_point, 0);
	assert_int_equal(classify_text("test.a.rhs.rblmux.internal").test_point, 0);
	/* Any domain, even one that looks like an address. */
	r = classify_text("4.3.2.1.rhs.rblmux.internal");
	assert_int_equal(r.view, QV_RHS);
	assert_domain(&r, "4.3.2.1");
}

static void test_sources(void **state)
{
	char name[300], nib[100];
	struct qname_result r;

	r = classify_text("4.3.2.1.spamcop.rblmux.internal");
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 0);
	assert_v4(&r.ip, "1.2.3.4");
	assert_int_equal(r.apex_off, 16);

	nibbles("2001:db8::1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.spamcop.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 0);
	assert_v6(&r.ip, "2001:db8::1");

	/* The label must be the whole source name. */
	assert_int_equal(view_of("4.3.2.1.spamcops.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("4.3.2.1.spam.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("4.3.2.1.spamcop.x.rblmux.internal"), QV_NXDOMAIN);

	/* ip4 source */
	r = classify_text("4.3.2.1.four.rblmux.internal");
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 1);
	snprintf(name, sizeof(name), "%s.four.rblmux.internal", nib);
	assert_int_equal(view_of(name), QV_NXDOMAIN);
	/* ...asked about a mapped address: that is IPv4 */
	nibbles("::ffff:1.2.3.4", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.four.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 1);
	assert_v4(&r.ip, "1.2.3.4");
	/* partial nibbles lead to a valid name only along the mapped prefix */
	assert_int_equal(view_of("0.four.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("a.four.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.four.rblmux.internal"),
			 QV_NXDOMAIN);
	assert_int_equal(view_of("f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.four.rblmux.internal"),
			 QV_ENT);
	assert_int_equal(view_of("e.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.four.rblmux.internal"),
			 QV_NXDOMAIN);
	assert_int_equal(view_of("f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.four.rblmux.internal"),
			 QV_ENT);
	assert_int_equal(view_of("3.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.four.rblmux.internal"),
			 QV_ENT);

	/* ip6 source */
	nibbles("2001:db8::1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.six.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 2);
	assert_v6(&r.ip, "2001:db8::1");
	assert_int_equal(view_of("40.3.2.1.six.rblmux.internal"), QV_NXDOMAIN);
	assert_int_equal(view_of("2.1.10.six.rblmux.internal"), QV_NXDOMAIN);
	/* four single digits: not IPv4 for this source, but IPv6 nibbles */
	assert_int_equal(view_of("4.3.2.1.six.rblmux.internal"), QV_ENT);
	nibbles("::ffff:1.2.3.4", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.six.rblmux.internal", nib);
	assert_int_equal(view_of(name), QV_NXDOMAIN);

	/* domain source */
	r = classify_text("example.com.dbl.rblmux.internal");
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.source, 3);
	assert_domain(&r, "example.com");
	assert_int_equal(r.ip.family, 0);
	r = classify_text("test.dbl.rblmux.internal");
	assert_int_equal(r.view, QV_SOURCE);
	assert_int_equal(r.test_point, 0);
}

static void test_spf(void **state)
{
	char name[400], nib[100];
	struct qname_result r;

	r = classify_text("4.3.2.1.example.com.spf.rblmux.internal");
	assert_int_equal(r.view, QV_SPF);
	assert_v4(&r.ip, "1.2.3.4");
	assert_domain(&r, "example.com");
	assert_false(r.has_local_part);
	assert_int_equal(r.local_part_len, 0);
	assert_int_equal(r.apex_off, 24);
	assert_int_equal(r.source, -1);

	r = classify_text("4.3.2.1.example.com.john\\.doe._l.spf.rblmux.internal");
	assert_int_equal(r.view, QV_SPF);
	assert_v4(&r.ip, "1.2.3.4");
	assert_domain(&r, "example.com");
	assert_true(r.has_local_part);
	assert_int_equal(r.local_part_len, 8);
	assert_memory_equal(r.local_part, "john.doe", 8);
	assert_int_equal(r.local_part[8], '\0');

	nibbles("2001:db8::1", nib, sizeof(nib));
	snprintf(name, sizeof(name), "%s.mail.example.org.spf.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SPF);
	assert_v6(&r.ip, "2001:db8::1");
	assert_domain(&r, "mail.example.org");

	snprintf(name, sizeof(name), "%s.example.org.bob._l.spf.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SPF);
	assert_v6(&r.ip, "2001:db8::1");
	assert_domain(&r, "example.org");
	assert_int_equal(r.local_part_len, 3);

	/* A numeric domain is a domain: the IP is the first four labels. */
	r = classify_text("5.4.3.2.1.spf.rblmux.internal");
	assert_int_equal(r.view, QV_SPF);
	assert_v4(&r.ip, "2.3.4.5");
	assert_domain(&r, "1");

	/* No IP in front, or no domain: something valid exists below. */
	r = classify_text("example.com.spf.rblmux.internal");
	assert_int_equal(r.view, QV_ENT);
	assert_int_equal(r.domain_len, 0);
	assert_int_equal(r.ip.family, 0);
	assert_int_equal(view_of("4.3.2.1.spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("256.3.2.1.example.com.spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("bob._l.spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("4.3.2.1.bob._l.spf.rblmux.internal"), QV_ENT);
	assert_int_equal(view_of("example.com.bob._l.spf.rblmux.internal"), QV_ENT);
	/* 32 nibbles and nothing after them: not IPv6 (no domain follows), so
	 * the first four nibbles are the IPv4 address and the rest the domain. */
	snprintf(name, sizeof(name), "%s.spf.rblmux.internal", nib);
	r = classify_text(name);
	assert_int_equal(r.view, QV_SPF);
	assert_v4(&r.ip, "0.0.0.1");
	assert_int_equal(r.domain_len, 28 * 2 + 1);

	/* ...unless no IP could be put in front within 255 bytes. */
	{
		char big[300];
		size_t len = 0;

		/* 4 labels of 50 + "spf" + apex: 204 + 4 + 17 = 225 wire bytes */
		for (int i = 0; i < 4; i++) {
			memset(big + len, 'a' + i, 50);
			len += 50;
			big[len++] = '.';
		}
		big[len] = '\0';
		snprintf(name, sizeof(name), "%sspf.rblmux.internal", big);
		assert_int_equal(view_of(name), QV_ENT);
		/* a 22-byte label more: 248, and an IP needs 8 */
		memset(big + len, 'x', 22);
		big[len + 22] = '\0';
		snprintf(name, sizeof(name), "%s.spf.rblmux.internal", big);
		assert_int_equal(view_of(name), QV_NXDOMAIN);
		/* 21 bytes: 247 + 8 = 255 still fits */
		big[len + 21] = '\0';
		snprintf(name, sizeof(name), "%s.spf.rblmux.internal", big);
		assert_int_equal(view_of(name), QV_ENT);
	}
}

static void test_build_ip(void **state)
{
	static const uint8_t suffix[] = "\2bl\7spamcop\3net";
	uint8_t out[300], want[300];
	struct qname_addr a = { .family = AF_INET, .addr = { 1, 20, 255, 0 } };
	char nib[100], text[200];
	int n;

	n = qname_build_ip(&a, suffix, sizeof(suffix), out, sizeof(out));
	assert_int_equal(n, (int)to_wire("0.255.20.1.bl.spamcop.net", want, sizeof(want)));
	assert_memory_equal(out, want, (size_t)n);

	a.family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::af", a.addr), 1);
	n = qname_build_ip(&a, suffix, sizeof(suffix), out, sizeof(out));
	nibbles("2001:db8::af", nib, sizeof(nib));
	snprintf(text, sizeof(text), "%s.bl.spamcop.net", nib);
	assert_int_equal(n, (int)to_wire(text, want, sizeof(want)));
	assert_memory_equal(out, want, (size_t)n);
	assert_int_equal(n, 64 + (int)sizeof(suffix));

	/* exactly enough room, then one byte short */
	assert_int_equal(qname_build_ip(&a, suffix, sizeof(suffix), out, (size_t)n), n);
	assert_int_equal(qname_build_ip(&a, suffix, sizeof(suffix), out, (size_t)n - 1), -ENOSPC);

	a.family = AF_UNIX;
	assert_int_equal(qname_build_ip(&a, suffix, sizeof(suffix), out, sizeof(out)), -EINVAL);
}

static void test_build_ip_too_long(void **state)
{
	uint8_t suffix[200];
	uint8_t out[600];
	struct qname_addr a = { .family = AF_INET6 };
	size_t len = 0;

	/* 3 labels of 63 + root: 193 bytes; 64 + 193 = 257 > 255 */
	for (int i = 0; i < 3; i++) {
		suffix[len++] = 63;
		memset(suffix + len, 'x', 63);
		len += 63;
	}
	suffix[len++] = 0;
	assert_int_equal(qname_build_ip(&a, suffix, len, out, sizeof(out)), -ENOSPC);
	a.family = AF_INET;
	assert_int_equal(qname_build_ip(&a, suffix, len, out, sizeof(out)), 8 + (int)len);
}

static void test_build_roundtrip(void **state)
{
	uint8_t out[300];
	struct qname_result r;
	struct qname_addr a = { .family = AF_INET6 };
	int n;

	assert_int_equal(inet_pton(AF_INET6, "fe80::1:2:3:4", a.addr), 1);
	n = qname_build_ip(&a, apex_wire, sizeof(apex_wire), out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(qname_classify(out, (size_t)n, &zone, &r), 0);
	assert_int_equal(r.view, QV_COMBINED);
	assert_memory_equal(r.ip.addr, a.addr, 16);

	a.family = AF_INET;
	memcpy(a.addr, "\x7f\x00\x00\x02", 4);
	n = qname_build_ip(&a, apex_wire, sizeof(apex_wire), out, sizeof(out));
	assert_int_equal(qname_classify(out, (size_t)n, &zone, &r), 0);
	assert_int_equal(r.view, QV_COMBINED);
	assert_int_equal(r.test_point, 2);
}

static void test_build_domain(void **state)
{
	static const uint8_t suffix[] = "\3dbl\10spamhaus\3org";
	uint8_t domain[64], out[300], want[300];
	size_t dlen = to_wire("example.com", domain, sizeof(domain));
	uint8_t big[256];
	int n;

	n = qname_build_domain(domain, dlen, suffix, sizeof(suffix), out, sizeof(out));
	assert_int_equal(n, (int)to_wire("example.com.dbl.spamhaus.org", want, sizeof(want)));
	assert_memory_equal(out, want, (size_t)n);
	assert_int_equal(qname_build_domain(domain, dlen, suffix, sizeof(suffix), out,
					    (size_t)n - 1), -ENOSPC);

	/* a 255-byte domain: 3 labels of 63, one of 61, the root */
	for (int i = 0; i < 3; i++) {
		big[i * 64] = 63;
		memset(big + i * 64 + 1, 'y', 63);
	}
	big[192] = 61;
	memset(big + 193, 'z', 61);
	big[254] = 0;
	assert_int_equal(qname_build_domain(big, 255, suffix, sizeof(suffix), out, sizeof(out)),
			 -ENOSPC);
	/* under the root it is itself */
	assert_int_equal(qname_build_domain(big, 255, (const uint8_t *)"", 1, out, sizeof(out)), 255);
	assert_memory_equal(out, big, 255);
	/* not a name ending in the root */
	assert_int_equal(qname_build_domain(big, 254, suffix, sizeof(suffix), out, sizeof(out)),
			 -EINVAL);
}

static void test_valid_source_name(void **state)
{
	char long_name[80];

	assert_true(qname_valid_source_name("spamcop"));
	assert_true(qname_valid_source_name("zen-1"));
	assert_true(qname_valid_source_name("Barracuda"));
	assert_true(qname_valid_source_name("g"));
	assert_true(qname_valid_source_name("ab"));
	assert_true(qname_valid_source_name("scores"));

	assert_false(qname_valid_source_name(""));
	assert_false(qname_valid_source_name(NULL));
	assert_false(qname_valid_source_name("1abc"));
	assert_false(qname_valid_source_name("-abc"));
	assert_false(qname_valid_source_name("a.b"));
	assert_false(qname_valid_source_name("a_b"));
	assert_false(qname_valid_source_name("a b"));
	assert_false(qname_valid_source_name("_l"));
	assert_false(qname_valid_source_name("score"));
	assert_false(qname_valid_source_name("SCORE"));
	assert_false(qname_valid_source_name("ptr"));
	assert_false(qname_valid_source_name("spf"));
	assert_false(qname_valid_source_name("rhs"));
	assert_false(qname_valid_source_name("health"));
	/* single hex digits would shadow IPv6 nibbles */
	assert_false(qname_valid_source_name("a"));
	assert_false(qname_valid_source_name("F"));

	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	assert_true(qname_valid_source_name(long_name));
	long_name[63] = 'a';
	long_name[64] = '\0';
	assert_false(qname_valid_source_name(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apex_and_outside),
		cmocka_unit_test(test_root_apex),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_combined_v4),
		cmocka_unit_test(test_combined_v6),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_test_points),
		cmocka_unit_test(test_empty_non_terminals),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_spf),
		cmocka_unit_test(test_build_ip),
		cmocka_unit_test(test_build_ip_too_long),
		cmocka_unit_test(test_build_roundtrip),
		cmocka_unit_test(test_build_domain),
		cmocka_unit_test(test_valid_source_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
