/*
 * fuzz_query: libFuzzer target for the client side of zones/dnswire.
 *
 * Feeds raw bytes to dnswire_parse_query as if a client sent them, then does
 * what the resolver does with a parsed question: writes an answer (records
 * picked from the query's own bytes) under a size limit, and checks the answer
 * is well-formed DNS by reading it back with dnswire_reader: same id and
 * question (case preserved), counts that match the records, nothing past the
 * limit, TC exactly when a record was refused for size.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zones/dnswire.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t localhost_wire[] = "\x09localhost";

static void check_query(const struct dnswire_query *q)
{
	CHECK(q->qname_len <= DNSWIRE_NAME_MAX);
	if (!q->qname_len)
		return;
	/* The names are well-formed wire names of exactly qname_len bytes. */
	uint8_t lc[DNSWIRE_NAME_MAX];
	memcpy(lc, q->qname, q->qname_len);
	dnswire_name_lower(lc, q->qname_len);
	CHECK(memcmp(lc, q->qname_lc, q->qname_len) == 0);
	CHECK(dnswire_name_equal(q->qname, q->qname_len, q->qname_lc, q->qname_len, false));
	CHECK(dnswire_read_name(q->qname, q->qname_len, 0, NULL, 0, NULL) ==
	      (int)q->qname_len);
	CHECK(q->nlabels < DNSWIRE_LABELS_MAX);
	size_t off = 0;
	for (unsigned i = 0; i < q->nlabels; i++) {
		CHECK(q->label_off[i] == off);
		off += 1u + q->qname[off];
	}
	CHECK(off == (size_t)q->qname_len - 1 && q->qname[off] == 0);
	if (q->has_edns)
		CHECK(q->edns_udp_size >= DNSWIRE_UDP_MIN);
	else
		CHECK(q->edns_udp_size == 0);

	/* Text form and back gives the same name. */
	char text[4 * DNSWIRE_NAME_MAX + 2];
	int n = dnswire_name_to_text(q->qname, q->qname_len, text, sizeof text);
	CHECK(n > 0 && (size_t)n == strlen(text));
	uint8_t back[DNSWIRE_NAME_MAX];
	int m = dnswire_name_from_text(text, back, sizeof back);
	CHECK(m == (int)q->qname_len && memcmp(back, q->qname, q->qname_len) == 0);
}

/* Read a written answer back and check it against the query and the writer. */
static void check_answer(const struct dnswire_query *q, const struct dnswire_writer *w,
			 const uint8_t *msg, size_t len, size_t limit)
{
	struct dnswire_reader r;
	CHECK(dnswire_reader_init(&r, msg, len) == 0);
	CHECK(r.id == q->id);
	CHECK(r.flags & DNS_F_QR);
	CHECK(!!(r.flags & DNS_F_TC) == w->truncated);
	CHECK(DNS_OPCODE(r.flags) == DNS_OPCODE(q->flags));
	CHECK(r.qname_len == q->qname_len);
	if (q->qname_len) {
		CHECK(memcmp(r.qname, q->qname, q->qname_len) == 0);
		CHECK(r.qtype == q->qtype && r.qclass == q->qclass);
	}
	unsigned seen[4] = { r.counts[DNSWIRE_QD], 0, 0, 0 };
	struct dnswire_rr rr;
	int rc;
	int last_sec = DNSWIRE_AN;
	while ((rc = dnswire_reader_next(&r, &rr)) == 1) {
		CHECK(rr.section >= DNSWIRE_AN && rr.section <= DNSWIRE_AR);
		CHECK((int)rr.section >= last_sec);
		last_sec = rr.section;
		seen[rr.section]++;
		CHECK(rr.rdata_off + rr.rdlen <= len);
		if (rr.type == DNS_T_OPT)
			continue;
		uint8_t owner[DNSWIRE_NAME_MAX];
		int n = dnswire_read_name(msg, len, rr.owner_off, owner, sizeof owner, NULL);
		CHECK(n > 0);
		if (rr.type == DNS_T_A)
			CHECK(rr.rdlen == 4);
	}
	CHECK(rc == 0);
	for (int s = 0; s < 4; s++)
		CHECK(seen[s] == w->counts[s]);
	/* The room for the OPT record is kept under the limit, so the answer
	 * fits whenever the bare question and that room do. */
	size_t base = DNSWIRE_HEADER_LEN + (q->qname_len ? q->qname_len + 4u : 0u);
	if (base + w->opt_reserve <= limit)
		CHECK(len <= limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnswire_query q;
	int rc = dnswire_parse_query(data, size, &q);
	CHECK(rc == 0 || rc == -EBADMSG || rc == -EINVAL);
	if (rc == -EINVAL)
		return 0;
	check_query(&q);

	/* Choices come from the query id, so every input is one fixed answer. */
	static uint8_t buf[65536 + 2];
	size_t limits[4] = { DNSWIRE_UDP_MIN, q.edns_udp_size ? q.edns_udp_size : 512,
			     65535, 40 + (q.id & 0xff) };
	size_t limit = limits[q.id & 3];
	size_t cap = (q.id & 0x8000) ? sizeof buf : 64 + (size_t)(q.id >> 8 & 0x3f) * 8;
	enum dns_rcode rcode = rc < 0 ? DNS_R_FORMERR : (enum dns_rcode)((q.id >> 4) % 6);
	struct dnswire_writer w;
	if (dnswire_write_response(&w, buf, cap, limit, &q, rcode, q.id & 0x10) < 0) {
		CHECK(cap < DNSWIRE_HEADER_LEN + q.qname_len + 4u);
		return 0;
	}
	if (rc == 0 && q.qname_len) {
		/* A's from the packet's bytes, then TXT of the packet itself, an SOA
		 * in authority: more than fits at small limits. */
		unsigned na = (q.id >> 2) & 0x1f;
		for (unsigned i = 0; i < na; i++) {
			uint8_t addr[4] = { 127, 0, (uint8_t)i, (uint8_t)size };
			int wr = dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr);
			CHECK(wr == 0 || wr == -EMSGSIZE || wr == -ENOSPC);
		}
		int wr = dnswire_write_txt(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60,
					   (const char *)data, size);
		CHECK(wr == 0 || wr == -EMSGSIZE || wr == -ENOSPC || size > 65535);
		struct dnswire_soa soa = {
			.mname = localhost_wire, .mname_len = sizeof localhost_wire,
			.rname = q.qname, .rname_len = q.qname_len,
			.serial = 1, .refresh = 3600, .retry = 600, .expire = 86400,
			.minimum = 60,
		};
		wr = dnswire_write_soa(&w, DNSWIRE_NS, DNSWIRE_QNAME_OFF, 60, &soa);
		CHECK(wr == 0 || wr == -EMSGSIZE || wr == -ENOSPC);
		/* Going back to an earlier section is refused. */
		uint8_t addr[4] = { 127, 0, 0, 2 };
		if (w.counts[DNSWIRE_NS])
			CHECK(dnswire_write_a(&w, DNSWIRE_AN, DNSWIRE_QNAME_OFF, 60, addr) < 0);
		/* Bad owner offsets are refused, never written. */
		CHECK(dnswire_write_a(&w, DNSWIRE_AR, (uint16_t)(w.len + 2), 60, addr) < 0);
	}
	size_t before = w.len;
	const char *diag = (q.id & 0x40) ? "tier=mem age=12 lat_us=0" : NULL;
	int orc = (q.has_edns && q.edns_version > 0) ?
		dnswire_write_badvers(&w, &q, 1232) : dnswire_write_opt(&w, &q, 1232, diag);
	CHECK(orc == 0 || orc == -ENOSPC);
	CHECK(q.has_edns || w.len == before);
	size_t len = dnswire_finish(&w);
	CHECK(len == w.len && len <= cap);
	check_answer(&q, &w, buf, len, limit < cap ? limit : cap);
	return 0;
}
