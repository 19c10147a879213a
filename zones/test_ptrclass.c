/* Unit tests for zones/ptrclass: the named cases of the PTR view's issue,
 * each address form, the levels, and malformed input. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "zones/ptrclass.h"

/* Classify with an address in text form ("-" for none); fails the test on
 * an error. */
static struct ptrclass_result classify(const char *name, const char *ip,
				       enum ptrclass_level level)
{
	struct ptrclass_result r;
	uint8_t addr[16];
	int family = 0;

	if (strcmp(ip, "-") != 0) {
		if (inet_pton(AF_INET, ip, addr) == 1)
			family = AF_INET;
		else {
			assert_int_equal(inet_pton(AF_INET6, ip, addr), 1);
			family = AF_INET6;
		}
	}
	assert_int_equal(ptrclass_classify(name, family, family ? addr : NULL, level, &r), 0);
	return r;
}

static struct ptrclass_result moderate(const char *name, const char *ip)
{
	return classify(name, ip, PTRCLASS_MODERATE);
}

static void assert_explains(const char *name, const char *ip, const char *want)
{
	struct ptrclass_result r = moderate(name, ip);
	char buf[PTRCLASS_EXPLAIN_MAX + 1];

	assert_int_equal(ptrclass_explain(&r, name, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
}

static void test_seed_dynamic(void **state)
{
	(void)state;
	for (int lv = PTRCLASS_CONSERVATIVE; lv <= PTRCLASS_AGGRESSIVE; lv++) {
		struct ptrclass_result r = classify("host-31-6-170-11.dynamic.mm.pl", "31.6.170.11",
						    (enum ptrclass_level)lv);
		assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
		assert_int_equal(r.flags, PTRCLASS_F_DYNAMIC | PTRCLASS_F_EMBEDS);
		assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
		assert_string_equal(r.keyword, "dynamic");
	}
	assert_explains("host-31-6-170-11.dynamic.mm.pl", "31.6.170.11",
			"dynamic: host-31-6-170-11.dynamic.mm.pl (embeds address; keyword \"dynamic\")");
}

static void test_seed_named_mail_host(void **state)
{
	(void)state;
	struct ptrclass_result r = moderate("smtp.nostrodominio.com", "192.0.2.25");
	assert_int_equal(r.cls, PTRCLASS_NAMED);
	assert_int_equal(r.flags, 0);
	assert_true(r.signals & PTRSIG_MAILHOST);
	assert_explains("smtp.nostrodominio.com", "192.0.2.25",
			"mail host: smtp.nostrodominio.com (mail marker \"smtp\")");
	r = classify("smtp.nostrodominio.com", "192.0.2.25", PTRCLASS_AGGRESSIVE);
	assert_int_equal(r.flags, 0);
}

static void test_hex_forms(void **state)
{
	(void)state;
	/* 91.13.79.26 = 5b.0d.4f.1a; mixed case as DNS may hand it over. */
	struct ptrclass_result r = moderate("p5B0D4F1A.dip0.t-ipconnect.de", "91.13.79.26");
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_HEX);
	assert_int_equal(r.flags, PTRCLASS_F_DYNAMIC | PTRCLASS_F_EMBEDS);

	r = moderate("5acc34b2.bb.sky.com", "90.204.52.178");
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_HEX);

	/* Another address: the hex blob is only "hex number", not the address. */
	r = moderate("5acc34b2.bb.sky.com", "90.204.52.179");
	assert_int_not_equal(r.addr_form, PTRCLASS_ADDR_HEX);
	assert_true(r.signals & PTRSIG_HEX_LIKE);
	assert_false(r.flags & PTRCLASS_F_EMBEDS);

	/* T-Mobile writes it in reverse byte order: 208.54.15.249. */
	r = moderate("mf90f36d0.tmodns.net", "208.54.15.249");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_HEX);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
}

static void test_decimal_forms(void **state)
{
	(void)state;
	struct ptrclass_result r;

	/* zero-padded */
	r = moderate("cpe-075-182-093-216.nc.res.rr.com", "75.182.93.216");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
	assert_int_equal(classify("cpe-075-182-093-216.nc.res.rr.com", "75.182.93.216",
				  PTRCLASS_CONSERVATIVE).cls, PTRCLASS_DYNAMIC);
	/* reversed, no keyword at all: an untyped ISP name */
	r = moderate("7-153-16-190.fibertel.com.ar", "190.16.153.7");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_REVERSED);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	/* twelve digits glued */
	r = moderate("yahoobb219173000034.bbtec.net", "219.173.0.34");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
	/* reversed across a dot and dashes, zero-padded */
	r = moderate("modemcable090.28-201-24.mc.videotron.ca", "24.201.28.90");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_REVERSED);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	/* underscores */
	r = moderate("dsl_10_1_2_3.example.net", "10.1.2.3");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
	/* octets in yet another order */
	r = moderate("d53-64-35-171.nap.wideopenwest.com", "64.53.171.35");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
	/* last three octets */
	r = moderate("bzq-219-42-90.isdn.bezeqint.net", "62.219.42.90");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_PART3);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	/* last two octets, as a dynamic name does it */
	r = moderate("cm-vina5-168-207.cm.vtr.net", "200.104.168.207");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_PART2);
	/* network and host number apart */
	r = moderate("lfbn-1-2229-223.w90-76.abo.wanadoo.fr", "90.76.50.223");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_PART3);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	/* last octet only */
	r = moderate("bfd208.neoplus.adsl.tpnet.pl", "83.28.41.208");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_LAST);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_int_not_equal(classify("bfd208.neoplus.adsl.tpnet.pl", "83.28.41.208",
				      PTRCLASS_CONSERVATIVE).cls, PTRCLASS_DYNAMIC);
	/* an unrelated number is not the address */
	r = moderate("host-31-6-170-11.dynamic.mm.pl", "192.0.2.1");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_LIKE);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_false(r.flags & PTRCLASS_F_EMBEDS);
}

static void test_ipv6_forms(void **state)
{
	(void)state;
	struct ptrclass_result r;

	r = moderate("p200300cbc709620016baaf70999d6a1a.dip0.t-ipconnect.de",
		     "2003:cb:c709:6200:16ba:af70:999d:6a1a");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_IPV6);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_int_equal(r.flags, PTRCLASS_F_DYNAMIC | PTRCLASS_F_EMBEDS);

	r = moderate("dynamic-2a01-0c23-c4cf-d900-0000-0000-0000-0e63.c23.pool.telefonica.de",
		     "2a01:c23:c4cf:d900::e63");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_IPV6);
	/* groups without padding */
	r = moderate("2a01-c23-c4cf-d900-0-0-0-e63.v6.example.net", "2a01:c23:c4cf:d900::e63");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_IPV6);
	/* another IPv6 address */
	r = moderate("p200300cbc709620016baaf70999d6a1a.dip0.t-ipconnect.de", "2003:cb:c709:6200::1");
	assert_int_not_equal(r.addr_form, PTRCLASS_ADDR_IPV6);
	assert_false(r.flags & PTRCLASS_F_EMBEDS);
}

static void test_big_senders_not_flagged(void **state)
{
	(void)state;
	static const struct {
		const char *name, *ip;
	} senders[] = {
		{ "o1678993x53.outbound-mail.sendgrid.net", "-" },
		{ "o1678993x53.outbound-mail.sendgrid.net", "149.72.0.53" },
		{ "out203-205-221-155.mail.qq.com", "203.205.221.155" },
		{ "mail-dm6nam10on2081.outbound.protection.outlook.com", "40.107.93.81" },
		{ "mail-bn8nam12olkn2099.outbound.protection.outlook.com", "40.92.21.99" },
		{ "a8-97.smtp-out.amazonses.com", "54.240.8.97" },
		{ "a27-38.smtp-out.us-west-2.amazonses.com", "54.240.27.38" },
		{ "mail-wr1-f53.google.com", "209.85.221.53" },
		{ "m15112.mail.126.com", "220.181.15.112" },
		{ "mta-81-96.sparkpostmail.com", "192.174.81.96" },
		{ "mail180-16.suw31.mandrillapp.com", "198.2.180.16" },
	};
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		for (int lv = PTRCLASS_CONSERVATIVE; lv <= PTRCLASS_AGGRESSIVE; lv++) {
			struct ptrclass_result r = classify(senders[i].name, senders[i].ip,
							    (enum ptrclass_level)lv);
			if (r.flags != 0 || r.cls != PTRCLASS_NAMED)
				fail_msg("%s flagged %d (class %d)", senders[i].name, r.flags, r.cls);
			assert_true(r.signals & PTRSIG_MAILHOST);
		}
	}
	/* The address is there, it just does not count against a mail host. */
	struct ptrclass_result r = moderate("out203-205-221-155.mail.qq.com", "203.205.221.155");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_FULL);
	assert_explains("out203-205-221-155.mail.qq.com", "203.205.221.155",
			"mail host: out203-205-221-155.mail.qq.com (embeds address; mail marker \"out\")");
	r = moderate("m15112.mail.126.com", "220.181.15.112");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_CONCAT);
}

static void test_mail_marker_overruled(void **state)
{
	(void)state;
	struct ptrclass_result r = moderate("mail-85-12-3-4.dynamic.example.net", "85.12.3.4");
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_true(r.signals & PTRSIG_MAIL_IGNORED);
	assert_false(r.signals & PTRSIG_MAILHOST);
	assert_explains("mail-85-12-3-4.dynamic.example.net", "85.12.3.4",
			"dynamic: mail-85-12-3-4.dynamic.example.net (embeds address; keyword \"dynamic\"; "
			"mail marker \"mail\" overruled)");
}

static void test_static_business_and_hosting(void **state)
{
	(void)state;
	static const struct {
		const char *name, *ip;
		int flags;
	} cases[] = {
		{ "rrcs-24-106-174-74.se.biz.rr.com", "24.106.174.74",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "wsip-184-188-36-2.sd.sd.cox.net", "184.188.36.2",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "s271272.static.corbina.ru", "78.107.251.238", PTRCLASS_F_STATIC },
		{ "178-73-215-171-static.glesys.net", "178.73.215.171",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "bzq-84-110-32-226.static-ip.bezeqint.net", "84.110.32.226",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "173-10-140-217-busname-washingtondc.hfc.comcastbusiness.net", "173.10.140.217",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "ec2-1-2-3-4.compute-1.amazonaws.com", "1.2.3.4",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "66.150.216.162.bc.googleusercontent.com", "162.216.150.66",
		  PTRCLASS_F_STATIC | PTRCLASS_F_EMBEDS },
		{ "www62.your-server.de", "213.133.104.62", PTRCLASS_F_STATIC },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int lv = PTRCLASS_CONSERVATIVE; lv <= PTRCLASS_AGGRESSIVE; lv++) {
			struct ptrclass_result r = classify(cases[i].name, cases[i].ip,
							    (enum ptrclass_level)lv);
			if (r.cls != PTRCLASS_STATIC || r.flags != cases[i].flags)
				fail_msg("%s: class %d flags %d", cases[i].name, r.cls, r.flags);
		}
	}
	assert_explains("rrcs-24-106-174-74.se.biz.rr.com", "24.106.174.74",
			"generic static: rrcs-24-106-174-74.se.biz.rr.com (embeds address; "
			"static marker \"rrcs\")");
	struct ptrclass_result r = moderate("ec2-1-2-3-4.compute-1.amazonaws.com", "1.2.3.4");
	assert_string_equal(r.static_marker, "compute");
	/* A server word without a number is a name, not a default name. */
	r = moderate("server.example.org", "192.0.2.9");
	assert_int_equal(r.cls, PTRCLASS_NAMED);
	assert_int_equal(r.flags, 0);
}

static void test_levels(void **state)
{
	(void)state;
	/* Address only, no keyword: moderate and aggressive, not conservative. */
	const char *n = "60-241-46-56.tpgi.com.au", *ip = "60.241.46.56";
	assert_int_equal(classify(n, ip, PTRCLASS_CONSERVATIVE).cls, PTRCLASS_UNKNOWN);
	assert_int_equal(classify(n, ip, PTRCLASS_CONSERVATIVE).flags, PTRCLASS_F_EMBEDS);
	assert_int_equal(classify(n, ip, PTRCLASS_MODERATE).cls, PTRCLASS_DYNAMIC);
	assert_int_equal(classify(n, ip, PTRCLASS_AGGRESSIVE).cls, PTRCLASS_DYNAMIC);
	/* One access keyword and nothing else: aggressive only. */
	n = "cable-a.example.net";
	assert_int_equal(classify(n, "-", PTRCLASS_MODERATE).cls, PTRCLASS_UNKNOWN);
	assert_int_equal(classify(n, "-", PTRCLASS_AGGRESSIVE).cls, PTRCLASS_DYNAMIC);
	/* With a numbered host label: moderate too, still not conservative. */
	n = "ablz112.neoplus.adsl.tpnet.pl";
	assert_int_equal(classify(n, "-", PTRCLASS_CONSERVATIVE).cls, PTRCLASS_UNKNOWN);
	assert_int_equal(classify(n, "-", PTRCLASS_MODERATE).cls, PTRCLASS_DYNAMIC);
	assert_true(classify(n, "-", PTRCLASS_MODERATE).signals & PTRSIG_NUMBERED);
	/* A numbered host and nothing else is never enough. */
	n = "mga14.intel.com";
	assert_int_equal(classify(n, "192.55.52.88", PTRCLASS_AGGRESSIVE).cls, PTRCLASS_UNKNOWN);
	assert_int_equal(classify(n, "192.55.52.88", PTRCLASS_AGGRESSIVE).flags, 0);
	/* Scores do not depend on the level except for the last octet. */
	assert_int_equal(classify("c221106.ppp.asahi-net.or.jp", "-", PTRCLASS_CONSERVATIVE).score,
			 classify("c221106.ppp.asahi-net.or.jp", "-", PTRCLASS_AGGRESSIVE).score);
}

static void test_keywords_only_in_host_part(void **state)
{
	(void)state;
	struct ptrclass_result r = moderate("www.generaldynamics.com", "192.0.2.7");
	assert_int_equal(r.cls, PTRCLASS_NAMED);
	assert_string_equal(r.keyword, "");
	r = moderate("mx1.dialog.net.pl", "192.0.2.7");
	assert_int_equal(r.flags, 0);
	/* but in the host part they count, whole or as part of a word */
	r = moderate("dsl.dynamic8510023760.ttnet.net.tr", "-");
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	r = moderate("118.red-80-35-201.pooles.rima-tde.net", "80.35.201.118");
	assert_string_equal(r.keyword, "pool");
	/* a short keyword does not match inside a word */
	r = moderate("resolver1.example.net", "192.0.2.7");
	assert_string_equal(r.keyword, "");
	assert_int_equal(r.flags, 0);
}

static void test_structure_signals(void **state)
{
	(void)state;
	struct ptrclass_result r;

	r = moderate("x1-6-00-04-bd-d2-e0-a3.k317.webspeed.dk", "80.167.158.170");
	assert_true(r.signals & PTRSIG_MAC);
	r = moderate("h0002a5d76857.ne.client2.attbi.com", "65.96.12.59");
	assert_true(r.signals & PTRSIG_MAC);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	/* address unknown: four octet-sized numbers stand in for it */
	r = moderate("85.99.227.252.dynamic.ttnet.com.tr", "-");
	assert_int_equal(r.addr_form, PTRCLASS_ADDR_LIKE);
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
	assert_int_equal(r.flags, PTRCLASS_F_DYNAMIC);  /* not 8: not known to be it */
	/* nothing generic at all */
	r = moderate("gilmore.ael.be", "158.64.60.71");
	assert_int_equal(r.cls, PTRCLASS_NAMED);
	assert_int_equal(r.signals, 0);
	assert_explains("gilmore.ael.be", "158.64.60.71", "named host: gilmore.ael.be (no generic signals)");
	/* single label, trailing dot, upper case */
	r = moderate("LOCALHOST.", "-");
	assert_int_equal(r.cls, PTRCLASS_NAMED);
	r = moderate("POOL-71-255-246-27.WASHDC.FIOS.VERIZON.NET.", "71.255.246.27");
	assert_int_equal(r.cls, PTRCLASS_DYNAMIC);
}

static void test_malformed(void **state)
{
	(void)state;
	struct ptrclass_result r;
	uint8_t a4[4] = { 192, 0, 2, 1 };
	char big[300];

	assert_int_equal(ptrclass_classify(NULL, 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify("a.example", 0, NULL, PTRCLASS_MODERATE, NULL), -EINVAL);
	assert_int_equal(ptrclass_classify("", 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify(".", 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify("a..example", 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify(".a.example", 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify("a b.example", 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify("caf\xc3\xa9.example", 0, NULL, PTRCLASS_MODERATE, &r),
			 -EINVAL);
	assert_int_equal(ptrclass_classify("a.example", AF_INET, NULL, PTRCLASS_MODERATE, &r),
			 -EINVAL);
	assert_int_equal(ptrclass_classify("a.example", 12345, a4, PTRCLASS_MODERATE, &r), -EINVAL);
	assert_int_equal(ptrclass_classify("a.example", AF_INET, a4, (enum ptrclass_level)7, &r),
			 -EINVAL);

	/* a 64-byte label, then a 254-byte name */
	memset(big, 'a', 64);
	strcpy(big + 64, ".example");
	assert_int_equal(ptrclass_classify(big, 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	for (int i = 0; i < 254; i++)
		big[i] = (i % 2) ? '.' : 'a';
	big[253] = 'a';
	big[254] = '\0';
	assert_int_equal(ptrclass_classify(big, 0, NULL, PTRCLASS_MODERATE, &r), -EINVAL);
	big[253] = '\0';   /* 253 bytes: the longest name there is */
	assert_int_equal(ptrclass_classify(big, 0, NULL, PTRCLASS_MODERATE, &r), 0);
}

static void test_explain_limits(void **state)
{
	(void)state;
	struct ptrclass_result r;
	char big[254], buf[512];

	/* 253-byte name of 63-byte labels */
	memset(big, 'b', 253);
	big[63] = big[127] = big[191] = '.';
	big[253] = '\0';
	assert_int_equal(ptrclass_classify(big, 0, NULL, PTRCLASS_MODERATE, &r), 0);
	int n = ptrclass_explain(&r, big, buf, sizeof(buf));
	assert_true(n > 0 && n <= PTRCLASS_EXPLAIN_MAX);
	assert_int_equal((size_t)n, strlen(buf));
	assert_non_null(strstr(buf, "..."));
	assert_non_null(strstr(buf, "(no generic signals)"));

	/* a small buffer truncates, never overflows */
	r = moderate("host-31-6-170-11.dynamic.mm.pl", "31.6.170.11");
	memset(buf, 'x', sizeof(buf));
	n = ptrclass_explain(&r, "host-31-6-170-11.dynamic.mm.pl", buf, 10);
	assert_true(n >= 0 && n <= 9);
	assert_int_equal(buf[n], '\0');
	assert_int_equal(buf[10], 'x');
	assert_int_equal(ptrclass_explain(&r, "x.example", buf, 1), -ENOSPC);
	assert_int_equal(ptrclass_explain(NULL, "x.example", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ptrclass_explain(&r, NULL, buf, sizeof(buf)), -EINVAL);

	/* the echoed name is made ASCII */
	n = ptrclass_explain(&r, "h\xc3\xa9 llo.example", buf, sizeof(buf));
	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		assert_true(buf[i] >= 0x20 && buf[i] <= 0x7e);
	assert_non_null(strstr(buf, "h???llo.example"));
}

static void test_level_parse_and_names(void **state)
{
	(void)state;
	enum ptrclass_level lv = PTRCLASS_MODERATE;

	assert_int_equal(ptrclass_level_parse("conservative", &lv), 0);
	assert_int_equal(lv, PTRCLASS_CONSERVATIVE);
	assert_int_equal(ptrclass_level_parse("Aggressive", &lv), 0);
	assert_int_equal(lv, PTRCLASS_AGGRESSIVE);
	assert_int_equal(ptrclass_level_parse("extreme", &lv), -EINVAL);
	assert_int_equal(lv, PTRCLASS_AGGRESSIVE);
	assert_int_equal(ptrclass_level_parse("", &lv), -EINVAL);
	assert_int_equal(ptrclass_level_parse(NULL, &lv), -EINVAL);
	assert_string_equal(ptrclass_class_name(PTRCLASS_DYNAMIC), "dynamic");
	assert_string_equal(ptrclass_class_name(PTRCLASS_STATIC), "generic static");
	assert_string_equal(ptrclass_class_name(PTRCLASS_NAMED), "named host");
	assert_string_equal(ptrclass_class_name(PTRCLASS_UNKNOWN), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_dynamic),
		cmocka_unit_test(test_seed_named_mail_host),
		cmocka_unit_test(test_hex_forms),
		cmocka_unit_test(test_decimal_forms),
		cmocka_unit_test(test_ipv6_forms),
		cmocka_unit_test(test_big_senders_not_flagged),
		cmocka_unit_test(test_mail_marker_overruled),
		cmocka_unit_test(test_static_business_and_hosting),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_keywords_only_in_host_part),
		cmocka_unit_test(test_structure_signals),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_explain_limits),
		cmocka_unit_test(test_level_parse_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
