/* cmocka tests for zones/spf_dns: answers built byte by byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "zones/dnswire.h"
#include "zones/spf_dns.h"

struct pkt {
	uint8_t b[4096];
	size_t n;
	size_t rdlen_at;
};

static void u8(struct pkt *p, uint8_t v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = v;
}

static void u16(struct pkt *p, uint16_t v)
{
	u8(p, (uint8_t)(v >> 8));
	u8(p, (uint8_t)v);
}

static void u32(struct pkt *p, uint32_t v)
{
	u16(p, (uint16_t)(v >> 16));
	u16(p, (uint16_t)v);
}

static void name(struct pkt *p, const char *text)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	int n = dnswire_name_from_text(text, w, sizeof(w));
	assert_true(n > 0);
	memcpy(p->b + p->n, w, (size_t)n);
	p->n += (size_t)n;
}

/* Header and the question (the question name sits at offset 12). */
static void start(struct pkt *p, uint16_t flags, const char *qname, uint16_t qtype,
		  uint16_t an, uint16_t ns)
{
	p->n = 0;
	u16(p, 0x1234);
	u16(p, flags);
	u16(p, 1);
	u16(p, an);
	u16(p, ns);
	u16(p, 0);
	name(p, qname);
	u16(p, qtype);
	u16(p, DNS_C_IN);
}

/* A record header; owner NULL: a pointer to the question name. The rdata
 * follows, then rd_end() fills in its length. */
static void rr(struct pkt *p, const char *owner, uint16_t type, uint16_t cls, uint32_t ttl)
{
	if (owner) {
		name(p, owner);
	} else {
		u8(p, 0xc0);
		u8(p, 12);
	}
	u16(p, type);
	u16(p, cls);
	u32(p, ttl);
	p->rdlen_at = p->n;
	u16(p, 0);
}

static void rd_end(struct pkt *p)
{
	size_t len = p->n - p->rdlen_at - 2;
	p->b[p->rdlen_at] = (uint8_t)(len >> 8);
	p->b[p->rdlen_at + 1] = (uint8_t)len;
}

static void soa(struct pkt *p, uint32_t ttl, uint32_t minimum)
{
	rr(p, "example.com", DNS_T_SOA, DNS_C_IN, ttl);
	name(p, "ns.example.com");
	name(p, "hostmaster.example.com");
	u32(p, 1);
	u32(p, 3600);
	u32(p, 600);
	u32(p, 86400);
	u32(p, minimum);
	rd_end(p);
}

static struct spf_answer ans;
static uint32_t ttl;

static void parse(struct pkt *p, const char *qname, uint16_t qtype)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	int n = dnswire_name_from_text(qname, w, sizeof(w));
	assert_true(n > 0);
	memset(&ans, 0xa5, sizeof(ans));
	ttl = 12345;
	assert_int_equal(spf_dns_parse(p->b, p->n, w, (size_t)n, qtype, &ans, &ttl), 0);
}

#define RESP (DNS_F_QR | DNS_F_AA)

static void test_a_and_ttl(void **state)
{
	struct pkt p;
	(void)state;
	start(&p, RESP, "Example.COM", DNS_T_A, 3, 0);
	rr(&p, NULL, DNS_T_A, DNS_C_IN, 300);
	u32(&p, 0xc0000201);
	rd_end(&p);
	rr(&p, "other.example.com", DNS_T_A, DNS_C_IN, 5);
	u32(&p, 0x01020304);
	rd_end(&p);
	rr(&p, NULL, DNS_T_A, DNS_C_IN, 0x80000001u);
	u32(&p, 0xc0000202);
	rd_end(&p);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_RECORDS);
	assert_int_equal(ans.n, 2);
	assert_int_equal(ans.n_total, 2);
	assert_memory_equal(ans.data + ans.rr[0].off, "\xc0\x00\x02\x01", 4);
	assert_memory_equal(ans.data + ans.rr[1].off, "\xc0\x00\x02\x02", 4);
	/* The other owner's 5 s does not count; a top-bit TTL is 0. */
	assert_int_equal(ttl, 0);
}

static void test_txt_mx_ptr(void **state)
{
	struct pkt p;
	(void)state;
	start(&p, RESP, "example.com", DNS_T_TXT, 3, 0);
	rr(&p, NULL, DNS_T_TXT, DNS_C_IN, 60);
	u8(&p, 7);
	memcpy(p.b + p.n, "v=spf1 ", 7);
	p.n += 7;
	u8(&p, 4);
	memcpy(p.b + p.n, "-all", 4);
	p.n += 4;
	rd_end(&p);
	rr(&p, NULL, DNS_T_TXT, DNS_C_IN, 70);
	rd_end(&p); /* no strings at all */
	rr(&p, NULL, DNS_T_TXT, 3 /* CH */, 1);
	u8(&p, 1);
	u8(&p, 'x');
	rd_end(&p);
	parse(&p, "example.com", DNS_T_TXT);
	assert_int_equal(ans.status, SPF_ANS_RECORDS);
	assert_int_equal(ans.n, 2);
	assert_int_equal(ans.rr[0].len, 11);
	assert_memory_equal(ans.data + ans.rr[0].off, "v=spf1 -all", 11);
	assert_int_equal(ans.rr[1].len, 0);
	assert_int_equal(ttl, 60);

	start(&p, RESP, "example.com", DNS_T_MX, 2, 0);
	rr(&p, NULL, DNS_T_MX, DNS_C_IN, 100);
	u16(&p, 10);
	name(&p, "mx1.example.com");
	rd_end(&p);
	rr(&p, NULL, DNS_T_MX, DNS_C_IN, 100);
	u16(&p, 20);
	u8(&p, 3);
	memcpy(p.b + p.n, "mx2", 3);
	p.n += 3;
	u8(&p, 0xc0); /* compressed: "mx2" + the question name */
	u8(&p, 12);
	rd_end(&p);
	parse(&p, "example.com", DNS_T_MX);
	assert_int_equal(ans.n, 2);
	assert_int_equal(ans.rr[0].pref, 10);
	assert_int_equal(ans.rr[1].pref, 20);
	assert_int_equal(ans.rr[1].len, 17);
	assert_memory_equal(ans.data + ans.rr[1].off, "\3mx2\7example\3com\0", 17);

	start(&p, RESP, "1.2.0.192.in-addr.arpa", DNS_T_PTR, 1, 0);
	rr(&p, NULL, DNS_T_PTR, DNS_C_IN, 30);
	name(&p, "host.example.net");
	rd_end(&p);
	parse(&p, "1.2.0.192.in-addr.arpa", DNS_T_PTR);
	assert_int_equal(ans.n, 1);
	assert_memory_equal(ans.data + ans.rr[0].off, "\4host\7example\3net\0", 18);
}

static void test_cname(void **state)
{
	struct pkt p;
	(void)state;
	start(&p, RESP, "a.example.com", DNS_T_A, 3, 0);
	rr(&p, NULL, DNS_T_CNAME, DNS_C_IN, 20);
	name(&p, "b.example.com");
	rd_end(&p);
	rr(&p, "b.example.com", DNS_T_CNAME, DNS_C_IN, 300);
	name(&p, "c.example.com");
	rd_end(&p);
	rr(&p, "c.example.com", DNS_T_A, DNS_C_IN, 300);
	u32(&p, 0x0a000001);
	rd_end(&p);
	parse(&p, "a.example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_RECORDS);
	assert_int_equal(ans.n, 1);
	assert_int_equal(ttl, 20);

	/* A loop: a -> b -> a. */
	start(&p, RESP, "a.example.com", DNS_T_A, 2, 0);
	rr(&p, NULL, DNS_T_CNAME, DNS_C_IN, 20);
	name(&p, "b.example.com");
	rd_end(&p);
	rr(&p, "b.example.com", DNS_T_CNAME, DNS_C_IN, 20);
	name(&p, "a.example.com");
	rd_end(&p);
	parse(&p, "a.example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);

	/* A CNAME to a name without the type: NODATA, the CNAME's TTL caps it. */
	start(&p, RESP, "a.example.com", DNS_T_A, 1, 1);
	rr(&p, NULL, DNS_T_CNAME, DNS_C_IN, 7);
	name(&p, "b.example.com");
	rd_end(&p);
	soa(&p, 300, 60);
	parse(&p, "a.example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_NODATA);
	assert_int_equal(ttl, 7);
}

static void test_negative(void **state)
{
	struct pkt p;
	(void)state;
	start(&p, RESP | DNS_R_NXDOMAIN, "nx.example.com", DNS_T_TXT, 0, 1);
	soa(&p, 300, 60);
	parse(&p, "nx.example.com", DNS_T_TXT);
	assert_int_equal(ans.status, SPF_ANS_NXDOMAIN);
	assert_int_equal(ans.n, 0);
	assert_int_equal(ttl, 60);

	start(&p, RESP, "nodata.example.com", DNS_T_TXT, 0, 1);
	soa(&p, 30, 600);
	parse(&p, "nodata.example.com", DNS_T_TXT);
	assert_int_equal(ans.status, SPF_ANS_NODATA);
	assert_int_equal(ttl, 30);

	/* Without a SOA a negative answer must not be cached. */
	start(&p, RESP | DNS_R_NXDOMAIN, "nx.example.com", DNS_T_TXT, 0, 0);
	parse(&p, "nx.example.com", DNS_T_TXT);
	assert_int_equal(ans.status, SPF_ANS_NXDOMAIN);
	assert_int_equal(ttl, 0);
}

static void test_errors(void **state)
{
	struct pkt p;
	(void)state;
	start(&p, DNS_F_QR | DNS_R_SERVFAIL, "example.com", DNS_T_A, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	assert_int_equal(ttl, 0);
	start(&p, DNS_F_QR | DNS_R_REFUSED, "example.com", DNS_T_A, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	start(&p, RESP | DNS_F_TC, "example.com", DNS_T_A, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	/* An answer to another question, or a query, is no answer. */
	start(&p, RESP, "example.org", DNS_T_A, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	start(&p, RESP, "example.com", DNS_T_AAAA, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	start(&p, DNS_F_RD, "example.com", DNS_T_A, 0, 0);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	/* An A of 5 bytes; a TXT string running past its rdata. */
	start(&p, RESP, "example.com", DNS_T_A, 1, 0);
	rr(&p, NULL, DNS_T_A, DNS_C_IN, 1);
	u32(&p, 1);
	u8(&p, 1);
	rd_end(&p);
	parse(&p, "example.com", DNS_T_A);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	start(&p, RESP, "example.com", DNS_T_TXT, 1, 0);
	rr(&p, NULL, DNS_T_TXT, DNS_C_IN, 1);
	u8(&p, 9);
	u8(&p, 'x');
	rd_end(&p);
	parse(&p, "example.com", DNS_T_TXT);
	assert_int_equal(ans.status, SPF_ANS_ERROR);
	/* Every prefix of a good answer is an error or the same answer. */
	start(&p, RESP, "example.com", DNS_T_MX, 1, 0);
	rr(&p, NULL, DNS_T_MX, DNS_C_IN, 100);
	u16(&p, 10);
	name(&p, "mx1.example.com");
	rd_end(&p);
	size_t full = p.n;
	for (size_t cut = 0; cut < full; cut++) {
		p.n = cut;
		parse(&p, "example.com", DNS_T_MX);
		assert_int_equal(ans.status, SPF_ANS_ERROR);
	}
	uint8_t w[DNSWIRE_NAME_MAX];
	assert_int_equal(spf_dns_parse(p.b, full, w, 0, DNS_T_MX, &ans, &ttl), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_and_ttl),
		cmocka_unit_test(test_txt_mx_ptr),
		cmocka_unit_test(test_cname),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
