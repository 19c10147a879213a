/* Unit tests for zones/listans: upstream answers and their cache encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "zones/dnswire.h"
#include "zones/listans.h"

/* ------------------------------------------------------------ answer builder */

struct msg {
	uint8_t b[8192];
	size_t n;
	uint16_t counts[4];
};

#define QNAME "2.0.0.127.ZeN.example"
#define QPTR 0xc00c /* the question name, compressed */

static void m_u8(struct msg *m, uint8_t v)
{
	assert_true(m->n < sizeof m->b);
	m->b[m->n++] = v;
}

static void m_u16(struct msg *m, uint16_t v)
{
	m_u8(m, (uint8_t)(v >> 8));
	m_u8(m, (uint8_t)v);
}

static void m_u32(struct msg *m, uint32_t v)
{
	m_u16(m, (uint16_t)(v >> 16));
	m_u16(m, (uint16_t)v);
}

static void m_bytes(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof m->b);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static size_t wire(const char *text, uint8_t *out)
{
	int n = dnswire_name_from_text(text, out, DNSWIRE_NAME_MAX);
	assert_true(n > 0);
	return (size_t)n;
}

static void m_name(struct msg *m, const char *text)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	m_bytes(m, w, wire(text, w));
}

/* A response header (flags word as given, QR not added) and one question. */
static void m_start(struct msg *m, uint16_t flags, const char *qname, uint16_t qtype)
{
	memset(m->counts, 0, sizeof m->counts);
	m->n = 0;
	m_u16(m, 0x4242);
	m_u16(m, flags);
	m_bytes(m, "\0\0\0\0\0\0\0\0", 8);
	m_name(m, qname);
	m_u16(m, qtype);
	m_u16(m, DNS_C_IN);
	m->counts[DNSWIRE_QD] = 1;
}

/* A record; owner NULL means a pointer to the question name. */
static void m_rr(struct msg *m, int sec, const char *owner, uint16_t type,
		 uint16_t rclass, uint32_t ttl, const void *rdata, uint16_t rdlen)
{
	if (owner)
		m_name(m, owner);
	else
		m_u16(m, QPTR);
	m_u16(m, type);
	m_u16(m, rclass);
	m_u32(m, ttl);
	m_u16(m, rdlen);
	m_bytes(m, rdata, rdlen);
	m->counts[sec]++;
}

static void m_a(struct msg *m, const char *owner, uint32_t ttl, uint8_t last)
{
	const uint8_t addr[4] = { 127, 0, 0, last };
	m_rr(m, DNSWIRE_AN, owner, DNS_T_A, DNS_C_IN, ttl, addr, 4);
}

static void m_cname(struct msg *m, const char *owner, const char *target, uint32_t ttl)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	size_t n = wire(target, w);
	m_rr(m, DNSWIRE_AN, owner, DNS_T_CNAME, DNS_C_IN, ttl, w, (uint16_t)n);
}

static void m_soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
	uint8_t rd[600];
	size_t n = wire("ns.example", rd);
	n += wire("hostmaster.example", rd + n);
	const uint32_t fields[5] = { 2024, 3600, 600, 86400, minimum };
	for (int i = 0; i < 5; i++) {
		rd[n++] = (uint8_t)(fields[i] >> 24);
		rd[n++] = (uint8_t)(fields[i] >> 16);
		rd[n++] = (uint8_t)(fields[i] >> 8);
		rd[n++] = (uint8_t)fields[i];
	}
	m_rr(m, DNSWIRE_NS, "example", DNS_T_SOA, DNS_C_IN, ttl, rd, (uint16_t)n);
}

static void m_end(struct msg *m)
{
	for (int s = 0; s < 4; s++) {
		m->b[4 + 2 * s] = (uint8_t)(m->counts[s] >> 8);
		m->b[5 + 2 * s] = (uint8_t)m->counts[s];
	}
}

static struct listans la;

static void parse(const struct msg *m, const char *qname, uint16_t qtype)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	size_t n = wire(qname, w);
	assert_int_equal(listans_parse(m->b, m->n, w, n, qtype, &la), 0);
}

static const uint16_t RESP = DNS_F_QR | DNS_F_RD | DNS_F_RA;

/* ------------------------------------------------------------ parse */

static void test_a_records(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, NULL, 300, 2);
	m_a(&m, NULL, 200, 4);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.rcode, 0);
	assert_int_equal(la.n_a, 2);
	assert_memory_equal(la.a[0], "\177\0\0\002", 4);
	assert_memory_equal(la.a[1], "\177\0\0\004", 4);
	assert_int_equal(la.ttl, 200);
	assert_true(la.has_ttl);
	assert_int_equal(la.txt_len, 0);
}

static void test_question_case_must_match(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, "2.0.0.127.zen.example", DNS_T_A);
	m_a(&m, NULL, 300, 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
	assert_int_equal(la.n_a, 0);
	parse(&m, "2.0.0.127.zen.example", DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	parse(&m, "2.0.0.127.zen.example.org", DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
}

static void test_not_an_answer_to_the_question(void **state)
{
	struct msg m;
	(void)state;

	/* wrong qtype */
	m_start(&m, RESP, QNAME, DNS_T_TXT);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* wrong qclass */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m.b[m.n - 1] = 3; /* CH */
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* a query, not a response */
	m_start(&m, DNS_F_RD, QNAME, DNS_T_A);
	m_a(&m, NULL, 300, 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* opcode 4 (NOTIFY) */
	m_start(&m, RESP | 0x2000, QNAME, DNS_T_A);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* truncated */
	m_start(&m, RESP | DNS_F_TC, QNAME, DNS_T_A);
	m_a(&m, NULL, 300, 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* no question, two questions */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m.counts[DNSWIRE_QD] = 0;
	m.n = 12;
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_name(&m, QNAME);
	m_u16(&m, DNS_T_A);
	m_u16(&m, DNS_C_IN);
	m.counts[DNSWIRE_QD] = 2;
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* an empty qname from the caller */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_end(&m);
	assert_int_equal(listans_parse(m.b, m.n, (const uint8_t *)"", 0, DNS_T_A, &la), 0);
	assert_int_equal(la.status, LISTANS_BAD);
}

static void test_every_truncation_is_bad(void **state)
{
	struct msg m;
	uint8_t w[DNSWIRE_NAME_MAX];
	size_t wl = wire(QNAME, w);
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, NULL, 300, 2);
	m_a(&m, NULL, 300, 3);
	m_soa(&m, 60, 60);
	m_end(&m);
	for (size_t n = 0; n < m.n; n++) {
		listans_parse(m.b, n, w, wl, DNS_T_A, &la);
		assert_int_equal(la.status, LISTANS_BAD);
	}
	listans_parse(m.b, m.n, w, wl, DNS_T_A, &la);
	assert_int_equal(la.status, LISTANS_RECORDS);
}

static void test_owner_and_class_filter(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, "3.0.0.127.zen.example", 300, 9);         /* another name */
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_A, 3, 300, "\177\0\0\011", 4); /* class CH */
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_AAAA, DNS_C_IN, 300,
	     "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	m_a(&m, "2.0.0.127.ZEN.EXAMPLE", 500, 2);        /* same name, other case */
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.n_a, 1);
	assert_memory_equal(la.a[0], "\177\0\0\002", 4);
	assert_int_equal(la.ttl, 500);

	/* the same without the matching record: NODATA, no SOA, no TTL */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, "3.0.0.127.zen.example", 300, 9);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NODATA);
	assert_false(la.has_ttl);
	assert_int_equal(la.n_a, 0);
}

static void test_cname_chain(void **state)
{
	struct msg m;
	(void)state;

	/* records out of order; owners in other cases */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, "Target.Example.NET", 300, 2);
	m_cname(&m, "mid.example.net", "target.example.net", 50);
	m_a(&m, "mid.example.net", 1, 99); /* not at the end of the chain: ignored */
	m_cname(&m, "2.0.0.127.zen.EXAMPLE", "MID.example.net", 100);
	m_a(&m, "target.example.net", 400, 3);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.n_a, 2);
	assert_memory_equal(la.a[0], "\177\0\0\002", 4);
	assert_memory_equal(la.a[1], "\177\0\0\003", 4);
	assert_int_equal(la.ttl, 50);

	/* chain ending nowhere: NODATA with the SOA's TTL */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_cname(&m, NULL, "gone.example.net", 100);
	m_soa(&m, 3600, 120);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NODATA);
	assert_int_equal(la.ttl, 120);
	assert_true(la.has_ttl);

	/* and ending in NXDOMAIN */
	m_start(&m, RESP | DNS_R_NXDOMAIN, QNAME, DNS_T_A);
	m_cname(&m, NULL, "gone.example.net", 100);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NXDOMAIN);
}

/* A chain of links CNAMEs from the question to c<links>, which has an A. */
static void build_chain(struct msg *m, int links)
{
	char owner[32], target[32];

	m_start(m, RESP, QNAME, DNS_T_A);
	for (int i = 0; i < links; i++) {
		snprintf(owner, sizeof owner, "c%d.example", i);
		snprintf(target, sizeof target, "c%d.example", i + 1);
		m_cname(m, i == 0 ? NULL : owner, target, 60);
	}
	snprintf(target, sizeof target, "c%d.example", links);
	m_a(m, target, 60, 2);
	m_end(m);
}

static void test_cname_chain_limits(void **state)
{
	struct msg m;
	(void)state;

	build_chain(&m, 8);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	build_chain(&m, 9);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* a loop */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_cname(&m, NULL, "a.example", 60);
	m_cname(&m, "a.example", "b.example", 60);
	m_cname(&m, "b.example", QNAME, 60);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* CNAME rdata with bytes after the name */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_CNAME, DNS_C_IN, 60, "\001a\0\0", 4);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);

	/* CNAME rdata whose name runs past the rdata into the next record */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_CNAME, DNS_C_IN, 60, "\001a", 2);
	m_a(&m, NULL, 60, 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
}

static void test_nxdomain_ttl(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP | DNS_R_NXDOMAIN, QNAME, DNS_T_A);
	m_soa(&m, 3600, 900);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NXDOMAIN);
	assert_int_equal(la.rcode, DNS_R_NXDOMAIN);
	assert_int_equal(la.ttl, 900);
	assert_true(la.has_ttl);

	m_start(&m, RESP | DNS_R_NXDOMAIN, QNAME, DNS_T_A);
	m_soa(&m, 60, 900);
	m_soa(&m, 10, 10); /* only the first SOA counts */
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.ttl, 60);

	m_start(&m, RESP | DNS_R_NXDOMAIN, QNAME, DNS_T_A);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NXDOMAIN);
	assert_false(la.has_ttl);
	assert_int_equal(la.ttl, 0);

	/* a SOA in the answer section does not count as the negative TTL */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_soa(&m, 60, 60);
	m.counts[DNSWIRE_NS] = 0;
	m.counts[DNSWIRE_AN] = 1;
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_NODATA);
	assert_false(la.has_ttl);
}

static void test_nodata_ttl(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_TXT);
	m_soa(&m, 300, 3600);
	m_end(&m);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.status, LISTANS_NODATA);
	assert_int_equal(la.rcode, 0);
	assert_int_equal(la.ttl, 300);
	assert_true(la.has_ttl);
}

static void test_bad_soa(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP | DNS_R_NXDOMAIN, QNAME, DNS_T_A);
	m_rr(&m, DNSWIRE_NS, "example", DNS_T_SOA, DNS_C_IN, 60, "\001a\0\001b\0\0\0\0\1", 10);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
}

static void test_failing_rcodes(void **state)
{
	static const uint16_t rcodes[] = { DNS_R_SERVFAIL, DNS_R_REFUSED, DNS_R_FORMERR,
					   DNS_R_NOTIMP, 9 };
	struct msg m;
	(void)state;

	for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++) {
		m_start(&m, RESP | rcodes[i], QNAME, DNS_T_A);
		m_soa(&m, 60, 60);
		m_end(&m);
		parse(&m, QNAME, DNS_T_A);
		assert_int_equal(la.status, LISTANS_SERVFAIL);
		assert_int_equal(la.rcode, rcodes[i]);
		assert_false(la.has_ttl);
	}

	/* BADVERS: header rcode 0, extended rcode 1 in the OPT */
	m_start(&m, RESP, QNAME, DNS_T_A);
	m_u8(&m, 0);
	m_u16(&m, DNS_T_OPT);
	m_u16(&m, 1232);
	m_u32(&m, 0x01000000);
	m_u16(&m, 0);
	m.counts[DNSWIRE_AR] = 1;
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_SERVFAIL);
	assert_int_equal(la.rcode, 16);
}

static void test_a_rdata_length(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, NULL, 60, 2);
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_A, DNS_C_IN, 60, "\177\0\0\002\0", 5);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
	assert_int_equal(la.n_a, 0);

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_A, DNS_C_IN, 60, "\177\0\0", 3);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_BAD);
}

static void test_many_a_records(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	for (int i = 1; i <= 20; i++)
		m_a(&m, NULL, (uint32_t)(1000 - i), (uint8_t)i);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.n_a, LISTANS_MAX_A);
	for (int i = 0; i < LISTANS_MAX_A; i++)
		assert_int_equal(la.a[i][3], i + 1);
	assert_int_equal(la.ttl, 980); /* over every record of the set */
}

static void test_ttl_top_bit(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, NULL, 0x80000001u, 2);
	m_a(&m, NULL, 100, 3);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.ttl, 0);

	m_start(&m, RESP, QNAME, DNS_T_A);
	m_a(&m, NULL, 0x7fffffffu, 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_A);
	assert_int_equal(la.ttl, 0x7fffffffu);
}

static void test_txt_records(void **state)
{
	struct msg m;
	(void)state;

	m_start(&m, RESP, QNAME, DNS_T_TXT);
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_TXT, DNS_C_IN, 900, "\005hello\000\002hi", 10);
	m_a(&m, NULL, 60, 2); /* other type: ignored, and no TTL effect */
	m_rr(&m, DNSWIRE_AN, NULL, DNS_T_TXT, DNS_C_IN, 800, "\001x", 2);
	m_end(&m);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.n_a, 0);
	assert_int_equal(la.ttl, 800);
	assert_int_equal(la.txt_len, 2 + 10 + 2 + 2);
	assert_memory_equal(la.txt, "\0\012\005hello\000\002hi\0\002\001x", 16);
}

static void test_txt_malformed(void **state)
{
	static const struct { const char *rdata; uint16_t len; } bad[] = {
		{ "\005abc", 4 },       /* string runs past the rdata */
		{ "\002ab\001", 4 },    /* second string cut */
		{ "", 0 },              /* no string at all */
	};
	struct msg m;
	(void)state;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		m_start(&m, RESP, QNAME, DNS_T_TXT);
		m_rr(&m, DNSWIRE_AN, NULL, DNS_T_TXT, DNS_C_IN, 900, "\001x", 2);
		m_rr(&m, DNSWIRE_AN, NULL, DNS_T_TXT, DNS_C_IN, 900, bad[i].rdata, bad[i].len);
		m_end(&m);
		parse(&m, QNAME, DNS_T_TXT);
		assert_int_equal(la.status, LISTANS_BAD);
		assert_int_equal(la.txt_len, 0);
	}
}

/* TXT records of rdlen bytes each (strings of 'a'). */
static void build_txts(struct msg *m, int count, uint16_t rdlen)
{
	uint8_t rd[1200];
	size_t p = 0;

	while (p < rdlen) {
		size_t s = rdlen - p - 1 > 255 ? 255 : rdlen - p - 1;
		rd[p] = (uint8_t)s;
		memset(rd + p + 1, 'a', s);
		p += 1 + s;
	}
	m_start(m, RESP, QNAME, DNS_T_TXT);
	for (int i = 0; i < count; i++)
		m_rr(m, DNSWIRE_AN, NULL, DNS_T_TXT, DNS_C_IN, 60, rd, rdlen);
	m_end(m);
}

static void test_txt_cut_at_record_boundary(void **state)
{
	struct msg m;
	(void)state;

	build_txts(&m, 4, 300);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.txt_len, 3 * 302);

	/* two records filling the store exactly */
	build_txts(&m, 2, LISTANS_TXT_MAX / 2 - 2);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.txt_len, LISTANS_TXT_MAX);
	build_txts(&m, 2, LISTANS_TXT_MAX / 2 - 1);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.txt_len, LISTANS_TXT_MAX / 2 + 1);

	/* one record bigger than the store: listed, nothing kept */
	build_txts(&m, 1, 1100);
	parse(&m, QNAME, DNS_T_TXT);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.txt_len, 0);
}

static void test_answer_from_dnswire_writer(void **state)
{
	uint8_t q[512], r[512];
	uint8_t name[DNSWIRE_NAME_MAX];
	size_t nl = wire(QNAME, name);
	struct dnswire_query dq;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 127, 0, 0, 10 };
	(void)state;

	int n = dnswire_build_query(q, sizeof q, name, nl, DNS_T_A, 1232);
	assert_true(n > 0);
	assert_int_equal(dnswire_parse_query(q, (size_t)n, &dq), 0);
	assert_int_equal(dnswire_write_response(&w, r, sizeof r, 512, &dq, 0, false), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 77, addr), 0);
	assert_int_equal(dnswire_write_opt(&w, &dq, 1232, NULL), 0);
	size_t len = dnswire_finish(&w);
	assert_int_equal(listans_parse(r, len, name, nl, DNS_T_A, &la), 0);
	assert_int_equal(la.status, LISTANS_RECORDS);
	assert_int_equal(la.n_a, 1);
	assert_int_equal(la.a[0][3], 10);
	assert_int_equal(la.ttl, 77);
}

/* ------------------------------------------------------------ encode/decode */

static struct listans back;

static void assert_same(const struct listans *a, const struct listans *b)
{
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->rcode, b->rcode);
	assert_int_equal(a->n_a, b->n_a);
	assert_memory_equal(a->a, b->a, 4u * a->n_a);
	assert_int_equal(a->txt_len, b->txt_len);
	assert_memory_equal(a->txt, b->txt, a->txt_len);
}

static void test_encode_small(void **state)
{
	uint8_t buf[2000];
	struct listans a;
	(void)state;

	memset(&a, 0, sizeof a);
	a.status = LISTANS_NXDOMAIN;
	a.rcode = DNS_R_NXDOMAIN;
	a.ttl = 900;
	a.has_ttl = true;
	assert_int_equal(listans_encode(&a, buf, sizeof buf), 2);
	assert_memory_equal(buf, "\0\3", 2);
	assert_int_equal(listans_decode(buf, 2, &back), 0);
	assert_same(&a, &back);
	assert_int_equal(back.ttl, 0);
	assert_false(back.has_ttl);

	memset(&a, 0, sizeof a);
	a.status = LISTANS_RECORDS;
	a.n_a = 2;
	memcpy(a.a[0], "\177\0\0\002", 4);
	memcpy(a.a[1], "\177\0\0\012", 4);
	assert_int_equal(listans_encode(&a, buf, sizeof buf), 10);
	assert_memory_equal(buf, "\002\002\177\0\0\002\177\0\0\012", 10);
	assert_int_equal(listans_decode(buf, 10, &back), 0);
	assert_same(&a, &back);

	assert_int_equal(listans_encode(&a, buf, 9), -ENOSPC);
	assert_int_equal(listans_encode(&a, buf, 10), 10);
	a.status = LISTANS_SERVFAIL;
	a.rcode = DNS_R_REFUSED;
	assert_int_equal(listans_encode(&a, buf, 1), -ENOSPC);
	assert_int_equal(listans_encode(&a, buf, 2), 2);
	assert_int_equal(listans_decode(buf, 2, &back), 0);
	assert_int_equal(back.status, LISTANS_SERVFAIL);
	assert_int_equal(back.rcode, DNS_R_REFUSED);
	assert_int_equal(back.n_a, 0); /* not kept for failures */
}

static void test_encode_every_status(void **state)
{
	uint8_t buf[16];
	struct listans a;
	(void)state;

	for (int s = LISTANS_NXDOMAIN; s <= LISTANS_BAD; s++) {
		memset(&a, 0, sizeof a);
		a.status = (uint8_t)s;
		int n = listans_encode(&a, buf, sizeof buf);
		assert_int_equal(n, 2);
		assert_int_equal(listans_decode(buf, (size_t)n, &back), 0);
		assert_same(&a, &back);
	}
	a.status = 6;
	assert_int_equal(listans_encode(&a, buf, sizeof buf), -EINVAL);
}

static void test_encode_txt_round_trip(void **state)
{
	static uint8_t buf[2000];
	struct msg m;
	(void)state;

	build_txts(&m, 3, 300);
	parse(&m, QNAME, DNS_T_TXT);
	int n = listans_encode(&la, buf, sizeof buf);
	assert_int_equal(n, 2 + 3 * 302);
	assert_int_equal(listans_decode(buf, (size_t)n, &back), 0);
	assert_same(&la, &back);
}

static void test_encode_refuses_impossible(void **state)
{
	uint8_t buf[2000];
	struct listans a;
	(void)state;

	memset(&a, 0, sizeof a);
	a.status = LISTANS_RECORDS;
	a.rcode = DNS_R_NXDOMAIN;
	assert_int_equal(listans_encode(&a, buf, sizeof buf), -EINVAL);
	a.rcode = 0;
	a.n_a = LISTANS_MAX_A + 1;
	assert_int_equal(listans_encode(&a, buf, sizeof buf), -EINVAL);
	a.n_a = 0;
	a.txt_len = 3;
	memcpy(a.txt, "\0\001\005", 3); /* string longer than its rdata */
	assert_int_equal(listans_encode(&a, buf, sizeof buf), -EINVAL);
	a.txt_len = LISTANS_TXT_MAX + 1;
	assert_int_equal(listans_encode(&a, buf, sizeof buf), -EINVAL);
}

static void assert_decode_fails(const void *buf, size_t len)
{
	assert_int_equal(listans_decode(buf, len, &back), -EBADMSG);
	assert_int_equal(back.status, LISTANS_BAD);
	assert_int_equal(back.n_a, 0);
	assert_int_equal(back.txt_len, 0);
}

static void test_decode_rejects(void **state)
{
	static uint8_t big[2 + LISTANS_TXT_MAX + 1];
	(void)state;

	assert_decode_fails("", 0);
	assert_decode_fails("\0", 1);
	assert_decode_fails("\006\0", 2);              /* status out of range */
	assert_decode_fails("\020\0", 2);              /* upper bits set */
	assert_decode_fails("\0\003\0", 3);            /* NXDOMAIN with extra bytes */
	assert_decode_fails("\002\021", 2);            /* 17 addresses */
	assert_decode_fails("\002\002\177\0\0\002\177\0\0", 9); /* short address */
	assert_decode_fails("\002\000\000", 3);        /* TXT length cut */
	assert_decode_fails("\002\000\000\004\002ab", 7); /* rdlen past the end */
	assert_decode_fails("\002\000\000\000", 4);    /* rdlen 0 */
	assert_decode_fails("\002\000\000\002\002a", 6); /* string past rdata */
	assert_decode_fails("\002\000\000\002\001a\000", 7); /* dangling byte */

	/* TXT store one byte over the maximum */
	big[0] = LISTANS_RECORDS;
	big[1] = 0;
	size_t p = 2;
	while (p + 2 + 256 <= sizeof big) {
		big[p] = 1;
		big[p + 1] = 0;
		big[p + 2] = 255;
		memset(big + p + 3, 'x', 255);
		p += 2 + 256;
	}
	size_t left = sizeof big - p - 2; /* fill the rest with one more record */
	big[p] = (uint8_t)(left >> 8);
	big[p + 1] = (uint8_t)left;
	big[p + 2] = (uint8_t)(left - 1);
	memset(big + p + 3, 'y', left - 1);
	assert_decode_fails(big, sizeof big);
	/* the same with the last record one byte shorter fits exactly */
	big[p] = (uint8_t)((left - 1) >> 8);
	big[p + 1] = (uint8_t)(left - 1);
	big[p + 2] = (uint8_t)(left - 2);
	assert_int_equal(listans_decode(big, sizeof big - 1, &back), 0);
	assert_int_equal(back.txt_len, LISTANS_TXT_MAX);
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 16;
}

/* Random input never crashes decode, and whatever decodes re-encodes to the
 * same bytes (one encoding per value). */
static void test_decode_random(void **state)
{
	uint8_t buf[64], enc[2 + 4 * LISTANS_MAX_A + LISTANS_TXT_MAX];
	int ok = 0;
	(void)state;

	for (int i = 0; i < 200000; i++) {
		size_t len = rng() % sizeof buf;
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)(rng() % 8 == 0 ? rng() : rng() % 6);
		if (listans_decode(buf, len, &back) < 0)
			continue;
		ok++;
		int n = listans_encode(&back, enc, sizeof enc);
		assert_int_equal(n, len);
		assert_memory_equal(enc, buf, len);
	}
	assert_true(ok > 100);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(listans_status_name(LISTANS_NXDOMAIN), "nxdomain");
	assert_string_equal(listans_status_name(LISTANS_NODATA), "nodata");
	assert_string_equal(listans_status_name(LISTANS_RECORDS), "records");
	assert_string_equal(listans_status_name(LISTANS_SERVFAIL), "servfail");
	assert_string_equal(listans_status_name(LISTANS_TIMEOUT), "timeout");
	assert_string_equal(listans_status_name(LISTANS_BAD), "bad");
	assert_string_equal(listans_status_name((enum listans_status)42), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_records),
		cmocka_unit_test(test_question_case_must_match),
		cmocka_unit_test(test_not_an_answer_to_the_question),
		cmocka_unit_test(test_every_truncation_is_bad),
		cmocka_unit_test(test_owner_and_class_filter),
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_cname_chain_limits),
		cmocka_unit_test(test_nxdomain_ttl),
		cmocka_unit_test(test_nodata_ttl),
		cmocka_unit_test(test_bad_soa),
		cmocka_unit_test(test_failing_rcodes),
		cmocka_unit_test(test_a_rdata_length),
		cmocka_unit_test(test_many_a_records),
		cmocka_unit_test(test_ttl_top_bit),
		cmocka_unit_test(test_txt_records),
		cmocka_unit_test(test_txt_malformed),
		cmocka_unit_test(test_txt_cut_at_record_boundary),
		cmocka_unit_test(test_answer_from_dnswire_writer),
		cmocka_unit_test(test_encode_small),
		cmocka_unit_test(test_encode_every_status),
		cmocka_unit_test(test_encode_txt_round_trip),
		cmocka_unit_test(test_encode_refuses_impossible),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_decode_random),
		cmocka_unit_test(test_status_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
