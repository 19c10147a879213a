/* Unit tests for zones/dnswire: parsing, writing and reading DNS messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "zones/dnswire.h"

/* ------------------------------------------------------------ packet builder */

struct pkt {
	uint8_t b[4096];
	size_t n;
};

static void p_u8(struct pkt *p, uint8_t v)
{
	assert_true(p->n < sizeof p->b);
	p->b[p->n++] = v;
}

static void p_u16(struct pkt *p, uint16_t v)
{
	p_u8(p, (uint8_t)(v >> 8));
	p_u8(p, (uint8_t)v);
}

static void p_u32(struct pkt *p, uint32_t v)
{
	p_u16(p, (uint16_t)(v >> 16));
	p_u16(p, (uint16_t)v);
}

static void p_bytes(struct pkt *p, const void *data, size_t len)
{
	assert_true(p->n + len <= sizeof p->b);
	if (len)
		memcpy(p->b + p->n, data, len);
	p->n += len;
}

static void p_name(struct pkt *p, const char *text)
{
	uint8_t wire[DNSWIRE_NAME_MAX];
	int n = dnswire_name_from_text(text, wire, sizeof wire);
	assert_true(n > 0);
	p_bytes(p, wire, (size_t)n);
}

static void p_header(struct pkt *p, uint16_t id, uint16_t flags, uint16_t qd,
		     uint16_t an, uint16_t ns, uint16_t ar)
{
	p->n = 0;
	p_u16(p, id);
	p_u16(p, flags);
	p_u16(p, qd);
	p_u16(p, an);
	p_u16(p, ns);
	p_u16(p, ar);
}

static void p_question(struct pkt *p, const char *name, uint16_t type)
{
	p_name(p, name);
	p_u16(p, type);
	p_u16(p, DNS_C_IN);
}

/* An OPT record: root owner, udp size, ttl (ext rcode, version, flags). */
static void p_opt(struct pkt *p, uint16_t udp, uint32_t ttl, const void *rdata,
		  uint16_t rdlen)
{
	p_u8(p, 0);
	p_u16(p, DNS_T_OPT);
	p_u16(p, udp);
	p_u32(p, ttl);
	p_u16(p, rdlen);
	p_bytes(p, rdata, rdlen);
}

static const uint8_t diag_option[] = { 0xff, 0x15, 0x00, 0x00 }; /* 65301, empty */

/* A query for name/type; udp 0 means no EDNS. */
static void build_query_pkt(struct pkt *p, const char *name, uint16_t type,
			    uint16_t udp, bool diag)
{
	p_header(p, 0x1234, DNS_F_RD, 1, 0, 0, udp ? 1 : 0);
	p_question(p, name, type);
	if (udp)
		p_opt(p, udp, 0, diag_option, diag ? sizeof diag_option : 0);
}

static void parse_ok(struct dnswire_query *q, const char *name, uint16_t type,
		     uint16_t udp, bool diag)
{
	struct pkt p;
	build_query_pkt(&p, name, type, udp, diag);
	assert_int_equal(dnswire_parse_query(p.b, p.n, q), 0);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

/* ------------------------------------------------------------ parse_query */

static void test_parse_plain_query(void **state)
{
	struct dnswire_query q;
	(void)state;

	parse_ok(&q, "4.3.2.1.RbLmux.Internal", DNS_T_TXT, 0, false);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.flags, DNS_F_RD);
	assert_int_equal(q.qdcount, 1);
	assert_int_equal(q.qtype, DNS_T_TXT);
	assert_int_equal(q.qclass, DNS_C_IN);
	assert_int_equal(q.qname_len, 25);
	assert_memory_equal(q.qname, "\0014\0013\0012\0011\006RbLmux\010Internal", 25);
	assert_memory_equal(q.qname_lc, "\0014\0013\0012\0011\006rblmux\010internal", 25);
	assert_int_equal(q.nlabels, 6);
	const uint8_t offs[] = { 0, 2, 4, 6, 8, 15 };
	assert_memory_equal(q.label_off, offs, sizeof offs);
	assert_false(q.has_edns);
	assert_int_equal(q.edns_udp_size, 0);
	assert_false(q.want_diag);
	assert_false(q.bad_edns);
}

static void test_parse_root_query(void **state)
{
	struct dnswire_query q;
	(void)state;

	parse_ok(&q, ".", DNS_T_NS, 0, false);
	assert_int_equal(q.qname_len, 1);
	assert_int_equal(q.qname[0], 0);
	assert_int_equal(q.nlabels, 0);
}

static void test_parse_edns(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	parse_ok(&q, "a.b", DNS_T_A, 1232, true);
	assert_true(q.has_edns);
	assert_int_equal(q.edns_udp_size, 1232);
	assert_int_equal(q.edns_version, 0);
	assert_false(q.edns_do);
	assert_true(q.want_diag);
	assert_false(q.bad_edns);

	/* version 1, DO set, another option before ours */
	const uint8_t opts[] = { 0x00, 0x0a, 0x00, 0x02, 0xaa, 0xbb, 0xff, 0x15, 0x00, 0x01, 0x00 };
	p_header(&p, 7, 0, 1, 0, 0, 1);
	p_question(&p, "a.b", DNS_T_A);
	p_opt(&p, 4096, 0x00018000, opts, sizeof opts);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(q.edns_udp_size, 4096);
	assert_int_equal(q.edns_version, 1);
	assert_true(q.edns_do);
	assert_true(q.want_diag);
}

static void test_parse_edns_other_option_only(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	const uint8_t cookie[] = { 0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8 };
	(void)state;

	p_header(&p, 7, 0, 1, 0, 0, 1);
	p_question(&p, "a.b", DNS_T_A);
	p_opt(&p, 1400, 0, cookie, sizeof cookie);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_true(q.has_edns);
	assert_false(q.want_diag);
}

static void test_parse_edns_small_size_raised(void **state)
{
	struct dnswire_query q;
	(void)state;

	parse_ok(&q, "a.b", DNS_T_A, 100, false);
	assert_int_equal(q.edns_udp_size, 512);
	parse_ok(&q, "a.b", DNS_T_A, 511, false);
	assert_int_equal(q.edns_udp_size, 512);
	parse_ok(&q, "a.b", DNS_T_A, 513, false);
	assert_int_equal(q.edns_udp_size, 513);
}

static void test_parse_short_header(void **state)
{
	struct dnswire_query q;
	uint8_t b[12] = { 0 };
	(void)state;

	for (size_t n = 0; n < sizeof b; n++)
		assert_int_equal(dnswire_parse_query(b, n, &q), -EINVAL);
}

static void test_parse_response_dropped(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 9, DNS_F_QR, 1, 0, 0, 0);
	p_question(&p, "a.b", DNS_T_A);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EINVAL);
}

static void test_parse_qdcount(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 9, 0, 0, 0, 0, 0);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
	assert_int_equal(q.id, 9);
	assert_int_equal(q.qname_len, 0);

	p_header(&p, 9, 0, 2, 0, 0, 0);
	p_question(&p, "a.b", DNS_T_A);
	p_question(&p, "c.d", DNS_T_A);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
	assert_int_equal(q.qname_len, 0);
	assert_int_equal(q.qdcount, 2);
}

/* Every prefix of a valid query is rejected, and the right way. */
static void test_parse_every_truncation(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	build_query_pkt(&p, "www.example.com", DNS_T_A, 1232, true);
	for (size_t n = 0; n < p.n; n++) {
		int rc = dnswire_parse_query(p.b, n, &q);
		assert_int_equal(rc, n < DNSWIRE_HEADER_LEN ? -EINVAL : -EBADMSG);
	}
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
}

static void test_parse_truncated_question_keeps_id(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	build_query_pkt(&p, "example.com", DNS_T_A, 0, false);
	assert_int_equal(dnswire_parse_query(p.b, p.n - 2, &q), -EBADMSG);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.qname_len, 0);
}

static void test_parse_question_pointer_refused(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_u8(&p, 1);
	p_u8(&p, 'a');
	p_u16(&p, 0xc000); /* to the header */
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_u16(&p, 0xc00c); /* to itself */
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
}

static void p_label_of(struct pkt *p, size_t len, char c)
{
	p_u8(p, (uint8_t)len);
	for (size_t i = 0; i < len; i++)
		p_u8(p, (uint8_t)c);
}

static void test_parse_label_length(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_label_of(&p, 63, 'x');
	p_u8(&p, 0);
	p_u32(&p, 0x00010001);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(q.qname_len, 65);

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_label_of(&p, 64, 'x');
	p_u8(&p, 0);
	p_u32(&p, 0x00010001);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
}

static void test_parse_reserved_label_types(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	for (unsigned type = 0x40; type <= 0x80; type += 0x40) {
		p_header(&p, 1, 0, 1, 0, 0, 0);
		p_u8(&p, (uint8_t)(type | 1));
		p_u8(&p, 'a');
		p_u8(&p, 0);
		p_u32(&p, 0x00010001);
		assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
	}
}

/* A name of exactly total bytes: labels of 63 and one shorter label. */
static void p_long_name(struct pkt *p, size_t total)
{
	size_t left = total - 1;
	while (left > 0) {
		size_t l = left > 64 ? 63 : left - 1;
		p_label_of(p, l, 'a');
		left -= l + 1;
	}
	p_u8(p, 0);
}

static void test_parse_name_length(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_long_name(&p, 255);
	p_u32(&p, 0x00010001);
	assert_int_equal(p.n, 12 + 255 + 4);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(q.qname_len, 255);
	assert_int_equal(q.nlabels, 4);

	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_long_name(&p, 256);
	p_u32(&p, 0x00010001);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);

	/* 127 one-letter labels: 255 bytes, the most labels a name can have */
	p_header(&p, 1, 0, 1, 0, 0, 0);
	for (int i = 0; i < 127; i++)
		p_label_of(&p, 1, 'Z');
	p_u8(&p, 0);
	p_u32(&p, 0x00010001);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(q.nlabels, 127);
	assert_int_equal(q.label_off[126], 252);
	assert_int_equal(q.qname_lc[253], 'z');
}

static void assert_bad_edns(const struct pkt *p)
{
	struct dnswire_query q;
	assert_int_equal(dnswire_parse_query(p->b, p->n, &q), -EBADMSG);
	assert_true(q.bad_edns);
	assert_int_equal(q.qname_len, 3); /* question still there for the FORMERR */
	assert_int_equal(q.qtype, DNS_T_A);
}

static void test_parse_opt_bad_owner(void **state)
{
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 1);
	p_question(&p, "a", DNS_T_A);
	p_name(&p, "a");
	p_u16(&p, DNS_T_OPT);
	p_u16(&p, 1232);
	p_u32(&p, 0);
	p_u16(&p, 0);
	assert_bad_edns(&p);

	/* a pointer to the root byte of the question is not a root owner */
	p_header(&p, 1, 0, 1, 0, 0, 1);
	p_question(&p, "a", DNS_T_A);
	p_u16(&p, 0xc00e);
	p_u16(&p, DNS_T_OPT);
	p_u16(&p, 1232);
	p_u32(&p, 0);
	p_u16(&p, 0);
	assert_bad_edns(&p);
}

static void test_parse_opt_bad_options(void **state)
{
	struct pkt p;
	const uint8_t overrun[] = { 0xff, 0x15, 0x00, 0x05, 'x' };
	const uint8_t trailing[] = { 0xff, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00 };
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 1);
	p_question(&p, "a", DNS_T_A);
	p_opt(&p, 1232, 0, overrun, sizeof overrun);
	assert_bad_edns(&p);

	/* 1 to 3 bytes too few for an option header, alone or after an option */
	for (uint16_t n = 1; n <= 3; n++) {
		p_header(&p, 1, 0, 1, 0, 0, 1);
		p_question(&p, "a", DNS_T_A);
		p_opt(&p, 1232, 0, trailing, n);
		assert_bad_edns(&p);
		p_header(&p, 1, 0, 1, 0, 0, 1);
		p_question(&p, "a", DNS_T_A);
		p_opt(&p, 1232, 0, trailing, (uint16_t)(4 + n));
		assert_bad_edns(&p);
	}
}

static void test_parse_two_opts(void **state)
{
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 0, 0, 2);
	p_question(&p, "a", DNS_T_A);
	p_opt(&p, 1232, 0, NULL, 0);
	p_opt(&p, 1232, 0, NULL, 0);
	assert_bad_edns(&p);
}

static void test_parse_opt_outside_additional(void **state)
{
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 1, 0, 0);
	p_question(&p, "a", DNS_T_A);
	p_opt(&p, 1232, 0, NULL, 0);
	assert_bad_edns(&p);

	p_header(&p, 1, 0, 1, 0, 1, 0);
	p_question(&p, "a", DNS_T_A);
	p_opt(&p, 1232, 0, NULL, 0);
	assert_bad_edns(&p);
}

static void test_parse_skips_client_records(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	p_header(&p, 1, 0, 1, 1, 1, 2);
	p_question(&p, "a.example", DNS_T_A);
	/* answer: compressed owner, A */
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 60);
	p_u16(&p, 4);
	p_u32(&p, 0x7f000002);
	/* authority: owner "example" through a pointer into the question */
	p_u16(&p, 0xc00e);
	p_u16(&p, DNS_T_NS);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 60);
	p_u16(&p, 2);
	p_u16(&p, 0xc00e);
	/* additional: an A record, then the OPT */
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 60);
	p_u16(&p, 4);
	p_u32(&p, 0x7f000003);
	p_opt(&p, 2048, 0, diag_option, sizeof diag_option);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_true(q.has_edns);
	assert_true(q.want_diag);
	assert_int_equal(q.edns_udp_size, 2048);

	/* trailing bytes after the last record are ignored */
	p_u8(&p, 0xde);
	p_u8(&p, 0xad);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
}

static void test_parse_bad_client_record(void **state)
{
	struct dnswire_query q;
	struct pkt p;
	(void)state;

	/* answer record with rdlength past the end */
	p_header(&p, 1, 0, 1, 1, 0, 0);
	p_question(&p, "a", DNS_T_A);
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 60);
	p_u16(&p, 5);
	p_u32(&p, 0x7f000002);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
	assert_false(q.bad_edns);
	assert_int_equal(q.qname_len, 3);

	/* counts promise more records than there are */
	p_header(&p, 1, 0, 1, 0, 0, 3);
	p_question(&p, "a", DNS_T_A);
	p_opt(&p, 1232, 0, NULL, 0);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);

	/* forward pointer in a record owner */
	p_header(&p, 1, 0, 1, 1, 0, 0);
	p_question(&p, "a", DNS_T_A);
	p_u16(&p, 0xc000 | (uint16_t)(p.n + 2));
	p_u8(&p, 0);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 60);
	p_u16(&p, 0);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
}

/* ------------------------------------------------------------ read_name */

static void test_read_name_compressed(void **state)
{
	struct pkt p;
	uint8_t out[DNSWIRE_NAME_MAX];
	size_t next = 0;
	(void)state;

	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_name(&p, "example.com");     /* 12 */
	size_t www = p.n;
	p_u8(&p, 3);
	p_bytes(&p, "www", 3);
	p_u16(&p, 0xc00c);             /* www.example.com */
	size_t mail = p.n;
	p_u8(&p, 4);
	p_bytes(&p, "mail", 4);
	p_u16(&p, (uint16_t)(0xc000 | www)); /* mail.www.example.com, two hops */
	p_u8(&p, 0xee);

	int n = dnswire_read_name(p.b, p.n, mail, out, sizeof out, &next);
	assert_int_equal(n, 22);
	assert_memory_equal(out, "\004mail\003www\007example\003com", 22);
	assert_int_equal(next, mail + 7);

	n = dnswire_read_name(p.b, p.n, 12, out, sizeof out, &next);
	assert_int_equal(n, 13);
	assert_int_equal(next, 25);

	/* NULL out only measures */
	assert_int_equal(dnswire_read_name(p.b, p.n, www, NULL, 0, &next), 17);
	assert_int_equal(next, www + 6);

	/* too small an output buffer */
	assert_int_equal(dnswire_read_name(p.b, p.n, mail, out, 21, NULL), -ENOSPC);
	assert_int_equal(dnswire_read_name(p.b, p.n, mail, out, 22, NULL), 22);
}

static void test_read_name_bad_pointers(void **state)
{
	struct pkt p;
	(void)state;

	/* self loop */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u16(&p, 0xc00c);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);

	/* label then a pointer back to the start of the same name */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 1);
	p_u8(&p, 'a');
	p_u16(&p, 0xc00c);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);

	/* forward pointer */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u16(&p, 0xc00e);
	p_u8(&p, 0);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);

	/* two names pointing at each other: the second hop goes forward */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 1);
	p_u8(&p, 'a');
	p_u16(&p, 0xc010); /* 14 -> 16 */
	p_u8(&p, 1);
	p_u8(&p, 'b');
	p_u16(&p, 0xc00c); /* 18 -> 12 */
	assert_int_equal(dnswire_read_name(p.b, p.n, 16, NULL, 0, NULL), -EBADMSG);

	/* pointer cut in half, label cut short, pointer past the end */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 0xc0);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 5);
	p_bytes(&p, "abc", 3);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);
	uint8_t out[DNSWIRE_NAME_MAX];
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, out, sizeof out, NULL), -EBADMSG);
	assert_int_equal(dnswire_read_name(p.b, p.n, 99, out, sizeof out, NULL), -EBADMSG);

	/* 0x40 and 0x80 label types */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 0x41);
	p_u8(&p, 'a');
	p_u8(&p, 0);
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);
	p.b[12] = 0x81;
	assert_int_equal(dnswire_read_name(p.b, p.n, 12, NULL, 0, NULL), -EBADMSG);
}

/* A chain of pointers, each to the one before: the name at 12 + 2k takes k hops. */
static void test_read_name_hop_limit(void **state)
{
	struct pkt p;
	uint8_t out[DNSWIRE_NAME_MAX];
	size_t next;
	(void)state;

	p_header(&p, 0, 0, 0, 0, 0, 0);
	p_u8(&p, 0);
	p_u8(&p, 0); /* padding so pointers sit at even offsets from 14 */
	for (int k = 1; k <= 70; k++)
		p_u16(&p, (uint16_t)(0xc000 | (p.n - 2)));
	/* the pointer at 14 points to 12 (root); at 14 + 2(k-1) it takes k hops */
	assert_int_equal(dnswire_read_name(p.b, p.n, 14 + 2 * 63, out, sizeof out, &next), 1);
	assert_int_equal(next, 14 + 2 * 63 + 2);
	assert_int_equal(dnswire_read_name(p.b, p.n, 14 + 2 * 64, out, sizeof out, NULL), -EBADMSG);
}

static void test_read_name_too_long_via_pointers(void **state)
{
	struct pkt p;
	uint8_t out[DNSWIRE_NAME_MAX];
	(void)state;

	/* 12: 3 labels of 63 + root = 193 bytes; then 61 bytes of label before it */
	p_header(&p, 0, 0, 0, 0, 0, 0);
	for (int i = 0; i < 3; i++)
		p_label_of(&p, 63, 'a');
	p_u8(&p, 0);
	size_t ok = p.n;
	p_label_of(&p, 60, 'b');       /* 61 + 193 = 254 */
	p_u16(&p, 0xc00c);
	size_t bad = p.n;
	p_label_of(&p, 61, 'c');       /* 62 + 193 = 255 */
	p_u16(&p, 0xc00c);
	size_t worse = p.n;
	p_label_of(&p, 62, 'd');       /* 63 + 193 = 256 */
	p_u16(&p, 0xc00c);
	assert_int_equal(dnswire_read_name(p.b, p.n, ok, out, sizeof out, NULL), 254);
	assert_int_equal(dnswire_read_name(p.b, p.n, bad, out, sizeof out, NULL), 255);
	assert_int_equal(dnswire_read_name(p.b, p.n, worse, out, sizeof out, NULL), -EBADMSG);
	assert_int_equal(dnswire_read_name(p.b, p.n, worse, NULL, 0, NULL), -EBADMSG);
}

/* ------------------------------------------------------------ name helpers */

static void test_name_valid(void **state)
{
	static const uint8_t ok[] = "\x03" "www" "\x07" "example" "\x03" "com";
	uint8_t long_label[66] = { 64 };
	uint8_t too_long[258];
	(void)state;

	assert_true(dnswire_name_valid(ok, sizeof(ok)));
	assert_true(dnswire_name_valid((const uint8_t *)"", 1));
	/* trailing byte after the root, a missing root, a cut label */
	assert_false(dnswire_name_valid(ok, sizeof(ok) - 1));
	assert_false(dnswire_name_valid((const uint8_t *)"\x03www\x00x", 6));
	assert_false(dnswire_name_valid((const uint8_t *)"\x05ww", 4));
	assert_false(dnswire_name_valid(ok, 0));
	assert_false(dnswire_name_valid(NULL, 1));
	assert_false(dnswire_name_valid(long_label, sizeof(long_label)));
	for (size_t i = 0; i + 2 < sizeof(too_long); i += 2) {
		too_long[i] = 1;
		too_long[i + 1] = 'a';
	}
	too_long[sizeof(too_long) - 2] = 0;
	assert_false(dnswire_name_valid(too_long, sizeof(too_long) - 1));
}

static void test_name_lower_and_equal(void **state)
{
	uint8_t a[] = "\003WwW\007ExAmPlE\003com";
	const uint8_t b[] = "\003www\007example\003COM";
	const uint8_t c[] = "\003www\007example\003con";
	(void)state;

	assert_true(dnswire_name_equal(a, sizeof a, b, sizeof b, false));
	assert_false(dnswire_name_equal(a, sizeof a, b, sizeof b, true));
	assert_false(dnswire_name_equal(a, sizeof a, c, sizeof c, false));
	assert_false(dnswire_name_equal(a, sizeof a, b, sizeof b - 1, false));
	dnswire_name_lower(a, sizeof a);
	assert_memory_equal(a, "\003www\007example\003com", sizeof a);
	assert_true(dnswire_name_equal(a, sizeof a, a, sizeof a, true));
	/* '@' and '[' sit next to the letters and stay as they are */
	uint8_t edge[] = "\002@[";
	dnswire_name_lower(edge, sizeof edge);
	assert_memory_equal(edge, "\002@[", sizeof edge);
}

static void test_name_to_text(void **state)
{
	char out[1100];
	(void)state;

	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\003Foo\003bar", 9, out, sizeof out), 7);
	assert_string_equal(out, "Foo.bar");
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"", 1, out, sizeof out), 1);
	assert_string_equal(out, ".");
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\005a.b \\\003_-9", 11, out, sizeof out), 16);
	assert_string_equal(out, "a\\.b\\032\\092._-9");

	/* exactly enough room, and one byte less */
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\003Foo\003bar", 9, out, 8), 7);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\003Foo\003bar", 9, out, 7), -ENOSPC);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"", 1, out, 1), -ENOSPC);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\001\377", 3, out, 4), -ENOSPC);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\001\377", 3, out, 5), 4);
	assert_string_equal(out, "\\255");

	/* malformed: label past the end, missing root, extra bytes, pointer */
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\005ab", 3, out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\002ab", 3, out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\001a\0\0", 4, out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_to_text((const uint8_t *)"\300\014", 2, out, sizeof out), -EINVAL);
}

static void test_name_from_text(void **state)
{
	uint8_t out[DNSWIRE_NAME_MAX];
	char text[400];
	(void)state;

	assert_int_equal(dnswire_name_from_text("Foo.bar", out, sizeof out), 9);
	assert_memory_equal(out, "\003Foo\003bar", 9);
	assert_int_equal(dnswire_name_from_text("Foo.bar.", out, sizeof out), 9);
	assert_memory_equal(out, "\003Foo\003bar", 9);
	assert_int_equal(dnswire_name_from_text(".", out, sizeof out), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(dnswire_name_from_text("a\\.b\\032\\\\.c", out, sizeof out), 9);
	assert_memory_equal(out, "\005a.b \\\001c", 9);
	assert_int_equal(dnswire_name_from_text("\\000\\255", out, sizeof out), 4);
	assert_memory_equal(out, "\002\000\377", 4);

	assert_int_equal(dnswire_name_from_text("", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("a..b", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text(".a", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("a..", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("a\\", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("a\\25", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("a\\256", out, sizeof out), -EINVAL);
	assert_int_equal(dnswire_name_from_text("Foo.bar", out, 8), -ENOSPC);
	assert_int_equal(dnswire_name_from_text("Foo.bar", out, 9), 9);

	/* label of 63 and 64 */
	memset(text, 'x', 64);
	text[63] = 0;
	assert_int_equal(dnswire_name_from_text(text, out, sizeof out), 65);
	text[63] = 'x';
	text[64] = 0;
	assert_int_equal(dnswire_name_from_text(text, out, sizeof out), -EINVAL);

	/* 255 and 256 bytes in wire form: 63.63.63.61 and 63.63.63.62 */
	for (int with_dot = 0; with_dot <= 1; with_dot++) {
		size_t n = 0;
		for (int l = 0; l < 3; l++) {
			memset(text + n, 'a', 63);
			n += 63;
			text[n++] = '.';
		}
		memset(text + n, 'b', 61);
		n += 61;
		if (with_dot)
			text[n++] = '.';
		text[n] = 0;
		assert_int_equal(dnswire_name_from_text(text, out, sizeof out), 255);
		memmove(text + n - with_dot + 1, text + n - with_dot, (size_t)with_dot + 1);
		text[n - with_dot] = 'b';
		assert_int_equal(dnswire_name_from_text(text, out, sizeof out), -EINVAL);
	}
}

/* Every byte value survives wire -> text -> wire. */
static void test_name_text_round_trip(void **state)
{
	uint8_t wire[3] = { 1, 0, 0 }, back[DNSWIRE_NAME_MAX];
	char text[16];
	(void)state;

	for (int c = 0; c < 256; c++) {
		wire[1] = (uint8_t)c;
		assert_true(dnswire_name_to_text(wire, 3, text, sizeof text) > 0);
		assert_int_equal(dnswire_name_from_text(text, back, sizeof back), 3);
		assert_memory_equal(back, wire, 3);
	}
}

static void test_randomize_case(void **state)
{
	uint8_t name[] = "\007example\0031-2\003com";
	const uint8_t rnd[] = { 0x05 }; /* bits 1,0,1,0,0,0,0,0 repeating */
	(void)state;

	dnswire_name_randomize_case(name, sizeof name, rnd, sizeof rnd);
	assert_memory_equal(name, "\007ExAmple\0031-2\003cOm", sizeof name);
	assert_true(dnswire_name_equal(name, sizeof name,
				       (const uint8_t *)"\007example\0031-2\003com",
				       sizeof name, false));

	uint8_t same[] = "\003abc";
	dnswire_name_randomize_case(same, sizeof same, NULL, 0);
	assert_memory_equal(same, "\003abc", sizeof same);

	const uint8_t ones[] = { 0xff };
	uint8_t up[] = "\003aBc";
	dnswire_name_randomize_case(up, sizeof up, ones, 1);
	assert_memory_equal(up, "\003ABC", sizeof up);
}

/* ------------------------------------------------------------ build_query */

static void test_build_query(void **state)
{
	uint8_t buf[512];
	const uint8_t name[] = "\003Foo\003bar";
	struct dnswire_query q;
	struct dnswire_reader r;
	(void)state;

	int n = dnswire_build_query(buf, sizeof buf, name, sizeof name, DNS_T_TXT, 1232);
	assert_int_equal(n, 12 + 9 + 4 + 11);
	assert_int_equal(dnswire_parse_query(buf, (size_t)n, &q), 0);
	assert_int_equal(q.id, 0);
	assert_int_equal(q.flags, DNS_F_RD);
	assert_int_equal(q.qtype, DNS_T_TXT);
	assert_int_equal(q.qclass, DNS_C_IN);
	assert_memory_equal(q.qname, name, sizeof name);
	assert_true(q.has_edns);
	assert_int_equal(q.edns_udp_size, 1232);
	assert_false(q.edns_do);
	assert_int_equal(dnswire_reader_init(&r, buf, (size_t)n), 0);
	assert_int_equal(r.counts[DNSWIRE_AR], 1);

	n = dnswire_build_query(buf, sizeof buf, name, sizeof name, DNS_T_A, 0);
	assert_int_equal(n, 12 + 9 + 4);
	assert_int_equal(dnswire_parse_query(buf, (size_t)n, &q), 0);
	assert_false(q.has_edns);

	assert_int_equal(dnswire_build_query(buf, 36, name, sizeof name, DNS_T_A, 1232), 36);
	assert_int_equal(dnswire_build_query(buf, 35, name, sizeof name, DNS_T_A, 1232), -ENOSPC);
	assert_int_equal(dnswire_build_query(buf, sizeof buf, name, sizeof name - 1, DNS_T_A, 0),
			 -EINVAL);
	assert_int_equal(dnswire_build_query(buf, sizeof buf, (const uint8_t *)"\300\014", 2,
					     DNS_T_A, 0), -EINVAL);
}

/* ------------------------------------------------------------ writer */

static uint8_t out[65535];

static void test_write_header_and_question(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	struct pkt p;
	(void)state;

	build_query_pkt(&p, "MiXeD.Case", DNS_T_A, 0, false);
	p.b[2] |= 0x10; /* opcode 2 in the flags word: 0x1000 */
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, DNS_R_NXDOMAIN, true), 0);
	size_t n = dnswire_finish(&w);
	assert_int_equal(n, 12 + 12 + 4);
	assert_int_equal(rd16(out), 0x1234);
	assert_int_equal(rd16(out + 2), DNS_F_QR | 0x1000 | DNS_F_AA | DNS_F_RD | DNS_R_NXDOMAIN);
	assert_int_equal(rd16(out + 4), 1);
	assert_int_equal(rd16(out + 6), 0);
	assert_int_equal(rd16(out + 10), 0);
	assert_memory_equal(out + 12, "\005MiXeD\004Case", 12);
	assert_int_equal(rd16(out + 24), DNS_T_A);
	assert_int_equal(rd16(out + 26), DNS_C_IN);

	dnswire_set_rcode(&w, DNS_R_SERVFAIL);
	dnswire_finish(&w);
	assert_int_equal(rd16(out + 2), DNS_F_QR | 0x1000 | DNS_F_AA | DNS_F_RD | DNS_R_SERVFAIL);
}

static void test_write_without_question(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	struct pkt p;
	(void)state;

	p_header(&p, 77, 0, 0, 0, 0, 0);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), -EBADMSG);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, DNS_R_FORMERR, false), 0);
	assert_int_equal(dnswire_finish(&w), 12);
	assert_int_equal(rd16(out), 77);
	assert_int_equal(rd16(out + 2), DNS_F_QR | DNS_R_FORMERR);
	assert_int_equal(rd16(out + 4), 0);
}

static void test_write_cap_too_small(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	(void)state;

	parse_ok(&q, "abc", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, 12 + 5 + 3, 512, &q, 0, true), -ENOSPC);
	assert_int_equal(dnswire_write_response(&w, out, 12 + 5 + 4, 512, &q, 0, true), 0);
	assert_int_equal(w.limit, 21);
}

static void test_write_a(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 127, 0, 0, 2 };
	(void)state;

	parse_ok(&q, "x", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 3600, addr), 0);
	size_t n = dnswire_finish(&w);
	assert_int_equal(n, 12 + 3 + 4 + 16);
	const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 127, 0, 0, 2 };
	assert_memory_equal(out + 19, rr, sizeof rr);
	assert_int_equal(rd16(out + 6), 1);
}

/* A TXT of len bytes: the rdata is the expected strings. */
static void check_txt_split(size_t len, size_t nstrings)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	char txt[700];

	for (size_t i = 0; i < len; i++)
		txt[i] = (char)('a' + i % 26);
	parse_ok(&q, "t", DNS_T_TXT, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 65535, &q, 0, true), 0);
	assert_int_equal(dnswire_write_txt(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, txt, len), 0);
	size_t n = dnswire_finish(&w);
	const uint8_t *rd = out + 19 + 12;
	assert_int_equal(rd16(out + 19 + 10), len + nstrings);
	assert_int_equal(n, 19 + 12 + len + nstrings);
	size_t off = 0, done = 0;
	for (size_t s = 0; s < nstrings; s++) {
		size_t want = len - done > 255 ? 255 : len - done;
		assert_int_equal(rd[off], want);
		assert_memory_equal(rd + off + 1, txt + done, want);
		off += 1 + want;
		done += want;
	}
	assert_int_equal(done, len);
}

static void test_write_txt_split(void **state)
{
	(void)state;
	check_txt_split(0, 1);
	check_txt_split(1, 1);
	check_txt_split(255, 1);
	check_txt_split(256, 2);
	check_txt_split(510, 2);
	check_txt_split(511, 3);
	check_txt_split(600, 3);
}

static void test_write_txt_multi(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	char big[256];
	const char *strs[] = { "ab", "", big };
	size_t lens[] = { 2, 0, 255 };
	(void)state;

	memset(big, 'z', sizeof big);
	parse_ok(&q, "t", DNS_T_TXT, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 65535, &q, 0, true), 0);
	assert_int_equal(dnswire_write_txt_multi(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, strs, lens, 3), 0);
	const uint8_t *rd = out + 19 + 12;
	assert_int_equal(rd16(rd - 2), 3 + 1 + 256);
	assert_memory_equal(rd, "\002ab\000\377zz", 7);

	lens[2] = 256;
	assert_int_equal(dnswire_write_txt_multi(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, strs, lens, 3),
			 -EINVAL);
	assert_int_equal(dnswire_write_txt_multi(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, strs, lens, 0),
			 -EINVAL);
	assert_int_equal(w.counts[DNSWIRE_AN], 1);
}

static void test_write_ns_soa_rdata(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t ns[] = "\002ns\001x";
	const struct dnswire_soa soa = {
		.mname = ns, .mname_len = sizeof ns,
		.rname = (const uint8_t *)"\001h\001x", .rname_len = 5,
		.serial = 1, .refresh = 2, .retry = 3, .expire = 4, .minimum = 5,
	};
	const uint8_t mx[] = { 0, 10, 0 };
	(void)state;

	parse_ok(&q, "a.x", DNS_T_SOA, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, 0, true), 0);
	/* "x" is the last label, at 12 + 2 */
	assert_int_equal(dnswire_write_soa(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF + 2, 60, &soa), 0);
	assert_int_equal(dnswire_write_ns(&w, DNSWIRE_NS, DNSWIRE_QNAME_OFF + 2, 60, ns, sizeof ns), 0);
	assert_int_equal(dnswire_write_rdata(&w, DNSWIRE_AR, DNSWIRE_QNAME_OFF, DNS_T_MX, 60, mx, 3), 0);
	size_t n = dnswire_finish(&w);

	struct dnswire_reader r;
	struct dnswire_rr rr;
	uint8_t name[DNSWIRE_NAME_MAX];
	assert_int_equal(dnswire_reader_init(&r, out, n), 0);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(rr.type, DNS_T_SOA);
	assert_int_equal(rr.section, DNSWIRE_AN);
	assert_int_equal(rr.rdlen, 6 + 5 + 20);
	assert_memory_equal(rr.rdata, "\002ns\001x\000\001h\001x\000", 11);
	assert_int_equal(rd32(rr.rdata + 11), 1);
	assert_int_equal(rd32(rr.rdata + 27), 5);
	assert_int_equal(dnswire_read_name(out, n, rr.owner_off, name, sizeof name, NULL), 3);
	assert_memory_equal(name, "\001x", 3);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(rr.type, DNS_T_NS);
	assert_int_equal(rr.section, DNSWIRE_NS);
	assert_int_equal(rr.ttl, 60);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(rr.type, DNS_T_MX);
	assert_int_equal(rr.section, DNSWIRE_AR);
	assert_int_equal(rr.rclass, DNS_C_IN);
	assert_int_equal(dnswire_reader_next(&r, &rr), 0);
	assert_int_equal(dnswire_reader_next(&r, &rr), 0);

	/* malformed names are refused */
	assert_int_equal(dnswire_write_ns(&w, DNSWIRE_AR, DNSWIRE_QNAME_OFF, 60, ns, sizeof ns - 1), -EINVAL);
}

static void test_write_bad_arguments(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 1, 2, 3, 4 };
	(void)state;

	parse_ok(&q, "x", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, 5, 60, addr), -EINVAL);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, (uint16_t)w.len, 60, addr), -EINVAL);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_QD, DNSWIRE_QNAME_OFF, 60, addr), -EINVAL);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_NS, DNSWIRE_QNAME_OFF, 60, addr), 0);
	/* answer after authority: out of order */
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), -EINVAL);
	assert_int_equal(w.counts[DNSWIRE_AN], 0);
	assert_int_equal(w.counts[DNSWIRE_NS], 1);
}

/* Without EDNS the soft limit is the limit itself: a record that ends
 * exactly on it fits, one byte more does not. */
static void test_write_soft_limit_boundary(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 1, 2, 3, 4 };
	(void)state;

	parse_ok(&q, "foo", DNS_T_A, 0, false); /* header + question = 21 */
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 16, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), 0);
	assert_false(w.truncated);
	assert_int_equal(dnswire_finish(&w), 37);
	assert_int_equal(rd16(out + 2) & DNS_F_TC, 0);

	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 15, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
	assert_true(w.truncated);
	assert_int_equal(dnswire_finish(&w), 21);
	assert_int_equal(rd16(out + 2) & DNS_F_TC, DNS_F_TC);
	assert_int_equal(rd16(out + 6), 0);

	/* the limit is clamped to cap */
	assert_int_equal(dnswire_write_response(&w, out, 36, 512, &q, 0, true), 0);
	assert_int_equal(w.limit, 36);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
}

/* With EDNS, 11 bytes stay free for the OPT: it always fits, and the
 * message then ends exactly on the limit. */
static void test_write_opt_reserve_boundary(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 1, 2, 3, 4 };
	(void)state;

	parse_ok(&q, "foo", DNS_T_A, 1232, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 16 + 11, &q, 0, true), 0);
	assert_int_equal(w.opt_reserve, 11);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), 0);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, "ignored: not asked"), 0);
	assert_int_equal(dnswire_finish(&w), 48);
	assert_int_equal(rd16(out + 10), 1);
	const uint8_t opt[] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0 };
	assert_memory_equal(out + 37, opt, sizeof opt);

	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 16 + 10, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, NULL), 0);
	assert_int_equal(dnswire_finish(&w), 32);
	assert_int_equal(rd16(out + 2) & DNS_F_TC, DNS_F_TC);
}

static void test_write_opt_diag(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	struct dnswire_reader r;
	struct dnswire_rr rr;
	char longtxt[DNSWIRE_DIAG_MAX + 36];
	(void)state;

	memset(longtxt, 'd', sizeof longtxt - 1);
	longtxt[sizeof longtxt - 1] = 0;
	parse_ok(&q, "foo", DNS_T_A, 512, true);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, 0, true), 0);
	assert_int_equal(w.opt_reserve, 11 + 4 + DNSWIRE_DIAG_MAX);
	/* fill up to the reserve with TXT: what is left under 512 after the
	 * header and question, the reserve and the record's fixed 12 bytes */
	size_t rdata = 512 - w.opt_reserve - w.len - 12;
	size_t txt_len = rdata - (rdata > 256 ? 2 : 1);
	char txt[512];
	memset(txt, 't', sizeof txt);
	assert_int_equal(dnswire_write_txt(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, txt, txt_len), 0);
	assert_int_equal(w.len, 512 - w.opt_reserve);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, longtxt), 0);
	size_t n = dnswire_finish(&w);
	assert_int_equal(n, 512);
	assert_int_equal(dnswire_reader_init(&r, out, n), 0);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(rr.type, DNS_T_OPT);
	assert_int_equal(rr.rdlen, 4 + DNSWIRE_DIAG_MAX);
	assert_int_equal(rd16(rr.rdata), DNSWIRE_EDNS_OPT_DIAG);
	assert_int_equal(rd16(rr.rdata + 2), DNSWIRE_DIAG_MAX);
	assert_int_equal(rr.rdata[4 + DNSWIRE_DIAG_MAX - 1], 'd');

	/* short text, DO echoed */
	struct pkt p;
	p_header(&p, 1, 0, 1, 0, 0, 1);
	p_question(&p, "foo", DNS_T_A);
	p_opt(&p, 4096, 0x8000, diag_option, sizeof diag_option);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, q.edns_udp_size, &q, 0, true), 0);
	assert_int_equal(dnswire_write_opt(&w, &q, 1400, "tier=mem"), 0);
	n = dnswire_finish(&w);
	assert_int_equal(n, 21 + 11 + 4 + 8);
	assert_int_equal(rd16(out + 21 + 3), 1400);
	assert_int_equal(rd32(out + 21 + 5), 0x8000);
	assert_memory_equal(out + 21 + 15, "tier=mem", 8);

	/* no EDNS: nothing written */
	parse_ok(&q, "foo", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 512, &q, 0, true), 0);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, "x"), 0);
	assert_int_equal(dnswire_finish(&w), 21);
	assert_int_equal(rd16(out + 10), 0);
}

static void test_write_stops_after_truncation(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 1, 2, 3, 4 };
	char txt[100] = { 0 };
	(void)state;

	parse_ok(&q, "foo", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 16 + 40, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), 0);
	assert_int_equal(dnswire_write_txt(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, txt, 100), -EMSGSIZE);
	/* the A record would still fit, but the answer already has a gap */
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_NS, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
	assert_int_equal(dnswire_finish(&w), 37);
	assert_int_equal(rd16(out + 6), 1);
}

static void test_write_additional_overflow_not_truncated(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	const uint8_t addr[4] = { 1, 2, 3, 4 };
	(void)state;

	parse_ok(&q, "foo", DNS_T_A, 0, false);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, 21 + 16 + 8, &q, 0, true), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr), 0);
	assert_int_equal(dnswire_write_a(&w, DNSWIRE_AR, DNSWIRE_QNAME_OFF, 60, addr), -EMSGSIZE);
	assert_false(w.truncated);
	dnswire_finish(&w);
	assert_int_equal(rd16(out + 2) & DNS_F_TC, 0);
}

static void test_write_badvers(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	struct pkt p;
	(void)state;

	p_header(&p, 5, 0, 1, 0, 0, 1);
	p_question(&p, "foo", DNS_T_A);
	p_opt(&p, 1232, 0x00018000, NULL, 0);
	assert_int_equal(dnswire_parse_query(p.b, p.n, &q), 0);
	assert_int_equal(q.edns_version, 1);
	assert_int_equal(dnswire_write_response(&w, out, sizeof out, q.edns_udp_size, &q,
						DNS_R_NOERROR, true), 0);
	assert_int_equal(dnswire_write_badvers(&w, &q, 1232), 0);
	size_t n = dnswire_finish(&w);
	assert_int_equal(n, 21 + 11);
	assert_int_equal(rd16(out + 2) & 0x0f, 0);
	assert_int_equal(out[21 + 5], 1); /* extended rcode: 16 >> 4 */
	assert_int_equal(out[21 + 6], 0); /* version 0 */
	assert_int_equal(rd16(out + 21 + 7), 0x8000);
	assert_int_equal(rd16(out + 10), 1);
}

static void test_write_opt_hard_cap(void **state)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	(void)state;

	parse_ok(&q, "foo", DNS_T_A, 1232, false);
	assert_int_equal(dnswire_write_response(&w, out, 21 + 10, 512, &q, 0, true), 0);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, NULL), -ENOSPC);
	assert_int_equal(dnswire_write_response(&w, out, 21 + 11, 512, &q, 0, true), 0);
	assert_int_equal(dnswire_write_opt(&w, &q, 1232, NULL), 0);
}

/* ------------------------------------------------------------ reader */

static void test_reader_questions(void **state)
{
	struct dnswire_reader r;
	struct dnswire_rr rr;
	struct pkt p;
	(void)state;

	p_header(&p, 3, DNS_F_QR, 2, 0, 0, 0);
	p_question(&p, "Ab.c", DNS_T_TXT);
	p_u8(&p, 1);
	p_u8(&p, 'x');
	p_u16(&p, 0xc00f); /* x.c */
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	assert_int_equal(dnswire_reader_init(&r, p.b, p.n), 0);
	assert_int_equal(r.id, 3);
	assert_int_equal(r.qname_len, 6);
	assert_memory_equal(r.qname, "\002Ab\001c", 6);
	assert_int_equal(r.qtype, DNS_T_TXT);
	assert_int_equal(dnswire_reader_next(&r, &rr), 0);

	assert_int_equal(dnswire_reader_init(&r, p.b, p.n - 1), -EBADMSG);
	assert_int_equal(dnswire_reader_init(&r, p.b, 11), -EBADMSG);

	p_header(&p, 3, DNS_F_QR, 0, 0, 0, 0);
	assert_int_equal(dnswire_reader_init(&r, p.b, p.n), 0);
	assert_int_equal(r.qname_len, 0);
}

static void test_reader_bad_record_is_sticky(void **state)
{
	struct dnswire_reader r;
	struct dnswire_rr rr;
	struct pkt p;
	(void)state;

	p_header(&p, 3, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, "a", DNS_T_A);
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 0x80000000u);
	p_u16(&p, 4);
	p_u32(&p, 0x7f000002);
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_A);
	p_u16(&p, DNS_C_IN);
	p_u32(&p, 1);
	p_u16(&p, 4);
	p_u16(&p, 0x7f00); /* rdata cut short */
	assert_int_equal(dnswire_reader_init(&r, p.b, p.n), 0);
	assert_int_equal(dnswire_reader_next(&r, &rr), 1);
	assert_int_equal(rr.ttl, 0x80000000u);
	assert_int_equal(rr.owner_off, 12 + 3 + 4);
	assert_int_equal(rr.rdata_off, 12 + 3 + 4 + 12);
	assert_int_equal(rd32(rr.rdata), 0x7f000002);
	assert_int_equal(dnswire_reader_next(&r, &rr), -EBADMSG);
	assert_int_equal(dnswire_reader_next(&r, &rr), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_parse_plain_query),
		cmocka_unit_test(test_parse_root_query),
		cmocka_unit_test(test_parse_edns),
		cmocka_unit_test(test_parse_edns_other_option_only),
		cmocka_unit_test(test_parse_edns_small_size_raised),
		cmocka_unit_test(test_parse_short_header),
		cmocka_unit_test(test_parse_response_dropped),
		cmocka_unit_test(test_parse_qdcount),
		cmocka_unit_test(test_parse_every_truncation),
		cmocka_unit_test(test_parse_truncated_question_keeps_id),
		cmocka_unit_test(test_parse_question_pointer_refused),
		cmocka_unit_test(test_parse_label_length),
		cmocka_unit_test(test_parse_reserved_label_types),
		cmocka_unit_test(test_parse_name_length),
		cmocka_unit_test(test_parse_opt_bad_owner),
		cmocka_unit_test(test_parse_opt_bad_options),
		cmocka_unit_test(test_parse_two_opts),
		cmocka_unit_test(test_parse_opt_outside_additional),
		cmocka_unit_test(test_parse_skips_client_records),
		cmocka_unit_test(test_parse_bad_client_record),
		cmocka_unit_test(test_read_name_compressed),
		cmocka_unit_test(test_read_name_bad_pointers),
		cmocka_unit_test(test_read_name_hop_limit),
		cmocka_unit_test(test_read_name_too_long_via_pointers),
		cmocka_unit_test(test_name_lower_and_equal),
		cmocka_unit_test(test_name_to_text),
		cmocka_unit_test(test_name_from_text),
		cmocka_unit_test(test_name_text_round_trip),
		cmocka_unit_test(test_randomize_case),
		cmocka_unit_test(test_build_query),
		cmocka_unit_test(test_write_header_and_question),
		cmocka_unit_test(test_write_without_question),
		cmocka_unit_test(test_write_cap_too_small),
		cmocka_unit_test(test_write_a),
		cmocka_unit_test(test_write_txt_split),
		cmocka_unit_test(test_write_txt_multi),
		cmocka_unit_test(test_write_ns_soa_rdata),
		cmocka_unit_test(test_write_bad_arguments),
		cmocka_unit_test(test_write_soft_limit_boundary),
		cmocka_unit_test(test_write_opt_reserve_boundary),
		cmocka_unit_test(test_write_opt_diag),
		cmocka_unit_test(test_write_stops_after_truncation),
		cmocka_unit_test(test_write_additional_overflow_not_truncated),
		cmocka_unit_test(test_write_badvers),
		cmocka_unit_test(test_write_opt_hard_cap),
		cmocka_unit_test(test_reader_questions),
		cmocka_unit_test(test_reader_bad_record_is_sticky),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
