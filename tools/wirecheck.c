/*
 * wirecheck: drive zones/dnswire and zones/listans from the command line, so
 * that tests can check them against an independent DNS implementation
 * (dnspython). One hex-encoded message per stdin line, one result per line.
 *
 *   wirecheck [--a N] [--txt N] [--tcp]
 *       queries in, responses out: every answer holds N A records (default
 *       2), a TXT of N bytes (default 300) and a two-string TXT; the authority
 *       section an NS and a SOA; the additional section an A record and the
 *       OPT (with diagnostics when asked). "DROP" when the query is dropped.
 *   wirecheck --listans QNAME QTYPE
 *       upstream answers in, listans_parse results out (after an
 *       encode/decode round trip, which must give the same answer back).
 *   wirecheck --build QNAME QTYPE UDPSIZE
 *       print dnswire_build_query's query, no input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zones/dnswire.h"
#include "zones/listans.h"

#define MSG_MAX 65535
#define OUR_UDP_SIZE 1232
#define DIAG_TEXT "tier=test age=0 lat_us=0"

struct respond_opts {
	unsigned n_a;
	size_t txt_len;
	bool tcp;
};

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode a hex line (trailing whitespace allowed). Returns bytes or -EINVAL. */
static long hex_decode(const char *line, uint8_t *out, size_t cap)
{
	size_t n = strcspn(line, " \t\r\n");
	if (n % 2 || n / 2 > cap)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_value(line[i]), lo = hex_value(line[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static void hex_print(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
}

static int parse_qtype(const char *s)
{
	static const struct { const char *name; int type; } types[] = {
		{ "A", DNS_T_A }, { "NS", DNS_T_NS }, { "CNAME", DNS_T_CNAME },
		{ "SOA", DNS_T_SOA }, { "PTR", DNS_T_PTR }, { "MX", DNS_T_MX },
		{ "TXT", DNS_T_TXT }, { "AAAA", DNS_T_AAAA }, { "ANY", DNS_T_ANY },
	};
	char *end;
	long v;

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(s, types[i].name) == 0)
			return types[i].type;
	v = strtol(s, &end, 10);
	return *s && !*end && v > 0 && v <= 0xffff ? (int)v : -EINVAL;
}

/* ------------------------------------------------------------ responses */

/* Offset of the question's last label: the "zone" the NS and SOA belong to. */
static uint16_t zone_owner_off(const struct dnswire_query *q)
{
	if (q->nlabels == 0)
		return DNSWIRE_QNAME_OFF;
	return (uint16_t)(DNSWIRE_QNAME_OFF + q->label_off[q->nlabels - 1]);
}

/* Every record call may be refused for size (-EMSGSIZE): that is the point. */
static int keep_going(int rc)
{
	return rc == 0 || rc == -EMSGSIZE ? 0 : rc;
}

static int write_answers(struct dnswire_writer *w, const struct respond_opts *o)
{
	static const char *const strs[] = { "alpha", "beta" };
	static const size_t lens[] = { 5, 4 };
	char txt[MSG_MAX];
	int rc = 0;

	for (unsigned i = 0; i < o->n_a && rc == 0; i++) {
		uint8_t addr[4] = { 127, 0, (uint8_t)((i + 2) >> 8), (uint8_t)(i + 2) };
		rc = keep_going(dnswire_write_a(w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 300, addr));
	}
	for (size_t i = 0; i < o->txt_len; i++)
		txt[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
	if (rc == 0)
		rc = keep_going(dnswire_write_txt(w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 300,
						  txt, o->txt_len));
	if (rc == 0)
		rc = keep_going(dnswire_write_txt_multi(w, DNSWIRE_AN, DNSWIRE_QNAME_OFF,
							300, strs, lens, 2));
	return rc;
}

static int write_authority(struct dnswire_writer *w, const struct dnswire_query *q)
{
	static const uint8_t ns1[] = "\3ns1\7example\3net";
	static const uint8_t hostmaster[] = "\12hostmaster\7example\3net";
	struct dnswire_soa soa = {
		.mname = ns1, .mname_len = sizeof ns1,
		.rname = hostmaster, .rname_len = sizeof hostmaster,
		.serial = 2024010101, .refresh = 3600, .retry = 600,
		.expire = 86400, .minimum = 300,
	};
	uint16_t zone = zone_owner_off(q);
	int rc = keep_going(dnswire_write_ns(w, DNSWIRE_NS, zone, 3600, ns1, sizeof ns1));

	if (rc == 0)
		rc = keep_going(dnswire_write_soa(w, DNSWIRE_NS, zone, 3600, &soa));
	return rc;
}

static int write_answer(struct dnswire_writer *w, const struct dnswire_query *q,
			const struct respond_opts *o)
{
	static const uint8_t glue[4] = { 192, 0, 2, 53 };
	int rc = write_answers(w, o);

	if (rc == 0)
		rc = write_authority(w, q);
	if (rc == 0)
		rc = keep_going(dnswire_write_a(w, DNSWIRE_AR, DNSWIRE_QNAME_OFF, 60, glue));
	if (rc == 0)
		rc = dnswire_write_opt(w, q, OUR_UDP_SIZE, DIAG_TEXT);
	return rc;
}

/* Build the response to one query; returns its length, 0 to drop, or < 0. */
static int respond(const uint8_t *pkt, size_t len, const struct respond_opts *o,
		   uint8_t *out)
{
	struct dnswire_query q;
	struct dnswire_writer w;
	int parsed = dnswire_parse_query(pkt, len, &q);
	size_t limit = o->tcp ? MSG_MAX : q.has_edns ? q.edns_udp_size : DNSWIRE_UDP_MIN;
	int rc;

	if (parsed == -EINVAL)
		return 0;
	if (parsed < 0) {
		rc = dnswire_write_response(&w, out, MSG_MAX, limit, &q, DNS_R_FORMERR, false);
		if (rc == 0 && !q.bad_edns)
			rc = dnswire_write_opt(&w, &q, OUR_UDP_SIZE, NULL);
	} else if (DNS_OPCODE(q.flags) != DNS_OP_QUERY) {
		rc = dnswire_write_response(&w, out, MSG_MAX, limit, &q, DNS_R_NOTIMP, false);
	} else if (q.has_edns && q.edns_version > 0) {
		rc = dnswire_write_response(&w, out, MSG_MAX, limit, &q, DNS_R_NOERROR, false);
		if (rc == 0)
			rc = dnswire_write_badvers(&w, &q, OUR_UDP_SIZE);
	} else {
		rc = dnswire_write_response(&w, out, MSG_MAX, limit, &q, DNS_R_NOERROR, true);
		if (rc == 0)
			rc = write_answer(&w, &q, o);
	}
	return rc < 0 ? rc : (int)dnswire_finish(&w);
}

static int run_respond(const struct respond_opts *o)
{
	static uint8_t pkt[MSG_MAX], out[MSG_MAX];
	char *line = NULL;
	size_t line_cap = 0;
	int status = 0;

	while (getline(&line, &line_cap, stdin) > 0) {
		long len = hex_decode(line, pkt, sizeof pkt);
		int n = len < 0 ? (int)len : respond(pkt, (size_t)len, o, out);
		if (n < 0) {
			printf("ERROR %s\n", strerror(-n));
			status = 1;
		} else if (n == 0) {
			printf("DROP\n");
		} else {
			hex_print(out, (size_t)n);
			printf("\n");
		}
	}
	free(line);
	return status;
}

/* ------------------------------------------------------------ listans */

static bool listans_same(const struct listans *a, const struct listans *b)
{
	return a->status == b->status && a->rcode == b->rcode && a->n_a == b->n_a &&
	       memcmp(a->a, b->a, 4u * a->n_a) == 0 && a->txt_len == b->txt_len &&
	       memcmp(a->txt, b->txt, a->txt_len) == 0;
}

static void print_listans(const struct listans *la)
{
	printf("status=%s rcode=%u ttl=%u has_ttl=%d a=",
	       listans_status_name((enum listans_status)la->status), la->rcode,
	       la->ttl, la->has_ttl);
	if (la->n_a == 0)
		printf("-");
	for (unsigned i = 0; i < la->n_a; i++)
		printf("%s%u.%u.%u.%u", i ? "," : "", la->a[i][0], la->a[i][1],
		       la->a[i][2], la->a[i][3]);
	printf(" txt=");
	if (la->txt_len == 0)
		printf("-");
	hex_print(la->txt, la->txt_len);
}

static int check_listans(const uint8_t *pkt, size_t len, const uint8_t *qname,
			 size_t qname_len, uint16_t qtype)
{
	static struct listans la, back;
	uint8_t enc[2 + 4 * LISTANS_MAX_A + LISTANS_TXT_MAX];
	int n;

	listans_parse(pkt, len, qname, qname_len, qtype, &la);
	n = listans_encode(&la, enc, sizeof enc);
	if (n < 0 || listans_decode(enc, (size_t)n, &back) < 0 || !listans_same(&la, &back)) {
		printf("ROUNDTRIP-MISMATCH\n");
		return 1;
	}
	print_listans(&la);
	printf(" enc=");
	hex_print(enc, (size_t)n);
	printf("\n");
	return 0;
}

static int run_listans(const char *qname_text, const char *qtype_text)
{
	static uint8_t pkt[MSG_MAX];
	uint8_t qname[DNSWIRE_NAME_MAX];
	int qname_len = dnswire_name_from_text(qname_text, qname, sizeof qname);
	int qtype = parse_qtype(qtype_text);
	char *line = NULL;
	size_t line_cap = 0;
	int status = 0;

	if (qname_len < 0 || qtype < 0) {
		fprintf(stderr, "wirecheck: bad name or type\n");
		return 2;
	}
	while (getline(&line, &line_cap, stdin) > 0) {
		long len = hex_decode(line, pkt, sizeof pkt);
		if (len < 0) {
			printf("ERROR %s\n", strerror(EINVAL));
			status = 1;
			continue;
		}
		status |= check_listans(pkt, (size_t)len, qname, (size_t)qname_len,
					(uint16_t)qtype);
	}
	free(line);
	return status;
}

static int run_build(const char *qname_text, const char *qtype_text, const char *udp_text)
{
	uint8_t qname[DNSWIRE_NAME_MAX], out[512];
	int qname_len = dnswire_name_from_text(qname_text, qname, sizeof qname);
	int qtype = parse_qtype(qtype_text);
	long udp = strtol(udp_text, NULL, 10);
	int n;

	if (qname_len < 0 || qtype < 0 || udp < 0 || udp > 0xffff) {
		fprintf(stderr, "wirecheck: bad name, type or size\n");
		return 2;
	}
	n = dnswire_build_query(out, sizeof out, qname, (size_t)qname_len,
				(uint16_t)qtype, (uint16_t)udp);
	if (n < 0) {
		fprintf(stderr, "wirecheck: %s\n", strerror(-n));
		return 1;
	}
	hex_print(out, (size_t)n);
	printf("\n");
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: wirecheck [--a N] [--txt N] [--tcp]\n"
			"       wirecheck --listans QNAME QTYPE\n"
			"       wirecheck --build QNAME QTYPE UDPSIZE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct respond_opts o = { .n_a = 2, .txt_len = 300, .tcp = false };

	if (argc == 4 && strcmp(argv[1], "--listans") == 0)
		return run_listans(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--build") == 0)
		return run_build(argv[2], argv[3], argv[4]);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcp") == 0) {
			o.tcp = true;
		} else if (strcmp(argv[i], "--a") == 0 && i + 1 < argc) {
			o.n_a = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--txt") == 0 && i + 1 < argc) {
			o.txt_len = strtoul(argv[++i], NULL, 10);
			if (o.txt_len > 60000)
				return usage();
		} else {
			return usage();
		}
	}
	return run_respond(&o);
}
