/*
 * fuzz_listans: libFuzzer target for zones/listans, the parser of what an
 * upstream list answers.
 *
 * Input: one selector byte, then a packet as if a list sent it. The selector
 * picks the question type (A or TXT) and the question name: the packet's own
 * (so the parser gets past the question check) or a fixed one. Checks: the
 * parse never fails, its result is within bounds, an answer that matched the
 * exact name no longer matches when one letter's case differs (DNS 0x20),
 * TC is never accepted, and whatever was accepted survives the cache
 * encoding unchanged. The rest of the packet is also decoded as if it came
 * from the cache (Redis), and a successful decode re-encodes to the same
 * bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zones/dnswire.h"
#include "zones/listans.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENC_MAX (2 + 4 * LISTANS_MAX_A + LISTANS_TXT_MAX)

static const uint8_t fixed_name[] = "\x01" "2" "\x01" "0" "\x01" "0" "\x03" "127"
				    "\x02" "bl" "\x07" "example";

static void check_bounds(const struct listans *a, uint16_t qtype)
{
	CHECK(a->status <= LISTANS_BAD && a->status != LISTANS_TIMEOUT);
	CHECK(a->n_a <= LISTANS_MAX_A);
	CHECK(a->txt_len <= LISTANS_TXT_MAX);
	switch (a->status) {
	case LISTANS_RECORDS:
		CHECK(a->rcode == DNS_R_NOERROR && a->has_ttl);
		CHECK(a->ttl <= 0x7fffffffu);
		/* A TXT record longer than the room left is not kept (cut at
		 * a record boundary), so TXT may keep nothing. */
		if (qtype == DNS_T_A)
			CHECK(a->n_a > 0 && a->txt_len == 0);
		else if (qtype == DNS_T_TXT)
			CHECK(a->n_a == 0);
		else
			CHECK(a->n_a == 0 && a->txt_len == 0);
		break;
	case LISTANS_NXDOMAIN:
		CHECK(a->rcode == DNS_R_NXDOMAIN);
		CHECK(a->n_a == 0 && a->txt_len == 0);
		break;
	case LISTANS_NODATA:
		CHECK(a->rcode == DNS_R_NOERROR);
		CHECK(a->n_a == 0 && a->txt_len == 0);
		break;
	case LISTANS_SERVFAIL:
		CHECK(a->rcode != DNS_R_NOERROR && a->rcode != DNS_R_NXDOMAIN);
		break;
	default:
		break;
	}
}

static void check_same(const struct listans *a, const struct listans *b)
{
	CHECK(a->status == b->status);
	CHECK(a->rcode == b->rcode || a->status == LISTANS_RECORDS);
	CHECK(a->n_a == b->n_a);
	CHECK(memcmp(a->a, b->a, 4u * a->n_a) == 0);
	CHECK(a->txt_len == b->txt_len);
	CHECK(memcmp(a->txt, b->txt, a->txt_len) == 0);
}

/* What listans_encode of a parsed answer gives must decode to the same. */
static void check_round_trip(const struct listans *a)
{
	uint8_t enc[ENC_MAX];
	int n = listans_encode(a, enc, sizeof enc);
	CHECK(n >= 2 && (size_t)n <= sizeof enc);
	struct listans back;
	CHECK(listans_decode(enc, (size_t)n, &back) == 0);
	CHECK(!back.has_ttl && back.ttl == 0);
	check_same(a, &back);
	/* One byte short never fits. */
	CHECK(listans_encode(a, enc, (size_t)n - 1) == -ENOSPC);
}

/* Cache bytes from anywhere (Redis): decode, and what decodes re-encodes
 * byte for byte. */
static void check_decode(const uint8_t *buf, size_t len)
{
	struct listans a;
	int rc = listans_decode(buf, len, &a);
	if (rc < 0) {
		CHECK(rc == -EBADMSG && a.status == LISTANS_BAD);
		return;
	}
	CHECK(rc == 0 && a.status <= LISTANS_BAD);
	CHECK(a.n_a <= LISTANS_MAX_A && a.txt_len <= LISTANS_TXT_MAX);
	uint8_t enc[ENC_MAX];
	int n = listans_encode(&a, enc, sizeof enc);
	CHECK(n == (int)len && memcmp(enc, buf, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *pkt = data + 1;
	size_t len = size - 1;
	uint16_t qtype = (sel & 1) ? DNS_T_TXT : DNS_T_A;

	uint8_t qname[DNSWIRE_NAME_MAX];
	size_t qname_len = sizeof fixed_name;
	memcpy(qname, fixed_name, sizeof fixed_name);
	struct dnswire_reader r;
	if (!(sel & 2) && dnswire_reader_init(&r, pkt, len) == 0 && r.qname_len) {
		qname_len = r.qname_len;
		memcpy(qname, r.qname, qname_len);
		if (sel & 4)
			qtype = r.qtype;
	}

	struct listans a;
	CHECK(listans_parse(pkt, len, qname, qname_len, qtype, &a) == 0);
	check_bounds(&a, qtype);
	if (a.status != LISTANS_BAD) {
		CHECK(len >= DNSWIRE_HEADER_LEN && !(pkt[2] & (DNS_F_TC >> 8)));
		CHECK(pkt[2] & (DNS_F_QR >> 8));
		check_round_trip(&a);

		/* 0x20: the same answer to a name differing in one letter's case
		 * is refused. */
		for (size_t i = 0; i < qname_len; i++) {
			uint8_t c = qname[i] | 0x20;
			if (c >= 'a' && c <= 'z') {
				qname[i] ^= 0x20;
				struct listans other;
				CHECK(listans_parse(pkt, len, qname, qname_len, qtype, &other) == 0);
				CHECK(other.status == LISTANS_BAD);
				qname[i] ^= 0x20;
				break;
			}
		}
		/* The same bytes parsed again give the same answer. */
		struct listans again;
		CHECK(listans_parse(pkt, len, qname, qname_len, qtype, &again) == 0);
		check_same(&a, &again);
		CHECK(a.ttl == again.ttl && a.has_ttl == again.has_ttl);
	}
	check_decode(pkt, len);
	return 0;
}
