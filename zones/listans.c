/*
 * listans: one upstream list's answer, checked against the question we sent.
 *
 * Parsing makes one pass over every record to reject malformed messages and
 * pick up the SOA and the OPT's extended rcode, then rescans the (short)
 * answer section to follow CNAMEs and collect the records of the final name.
 *
 * Cache encoding (untrusted on the way back in: it may come from Redis):
 *   byte 0: status (upper 4 bits zero)
 *   RECORDS:      byte 1: n_a (<= LISTANS_MAX_A), 4 * n_a address bytes, then
 *                 the TXT bytes ([u16 rdlen][rdata] ...) up to the end;
 *                 the rcode is NOERROR by definition
 *   other status: byte 1: rcode; nothing else
 */
#include "zones/listans.h"

#include <errno.h>
#include <string.h>

#include "zones/dnswire.h"

#define TTL_MAX 0x7fffffffu
#define SOA_FIXED_LEN 20
#define ENC_HEADER_LEN 2

/* RFC 2181 §8: a TTL with the top bit set means zero. */
static uint32_t sane_ttl(uint32_t ttl)
{
	return ttl > TTL_MAX ? 0 : ttl;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One or more character-strings filling rdata exactly (RFC 1035 §3.3.14). */
static bool txt_rdata_valid(const uint8_t *rdata, size_t rdlen)
{
	size_t p = 0;

	if (rdlen == 0)
		return false;
	while (p < rdlen)
		p += 1u + rdata[p];
	return p == rdlen;
}

/* A sequence of [u16 rdlen][valid TXT rdata] filling buf exactly. */
static bool txt_store_valid(const uint8_t *buf, size_t len)
{
	size_t p = 0;

	while (p < len) {
		if (len - p < 2)
			return false;
		size_t rdlen = get16(buf + p);
		p += 2;
		if (len - p < rdlen || !txt_rdata_valid(buf + p, rdlen))
			return false;
		p += rdlen;
	}
	return true;
}

/* ------------------------------------------------------------ parse */

/* What the pass over all records found besides the answers. */
struct answer_extras {
	bool has_soa;
	uint32_t soa_ttl;   /* min(SOA TTL, SOA minimum) */
	uint8_t ext_rcode;  /* upper 8 bits of the rcode, from an OPT record */
};

static bool is_response_to(const struct dnswire_reader *r, const uint8_t *qname,
			   size_t qname_len, uint16_t qtype)
{
	return (r->flags & DNS_F_QR) && DNS_OPCODE(r->flags) == DNS_OP_QUERY &&
	       !(r->flags & DNS_F_TC) && r->counts[DNSWIRE_QD] == 1 &&
	       r->qtype == qtype && r->qclass == DNS_C_IN &&
	       dnswire_name_equal(r->qname, r->qname_len, qname, qname_len, true);
}

/* SOA rdata: two names and 20 bytes, exactly. Returns the minimum or -EBADMSG. */
static int64_t soa_minimum(const uint8_t *pkt, const struct dnswire_rr *rr)
{
	size_t end = rr->rdata_off + rr->rdlen, p;

	if (dnswire_read_name(pkt, end, rr->rdata_off, NULL, 0, &p) < 0 ||
	    dnswire_read_name(pkt, end, p, NULL, 0, &p) < 0 ||
	    end - p != SOA_FIXED_LEN)
		return -EBADMSG;
	return get32(pkt + p + 16);
}

/* Check every record; note the first SOA in the authority section and any
 * extended rcode. A records must have 4 bytes of rdata wherever they are. */
static int scan_all_records(struct dnswire_reader r, struct answer_extras *x)
{
	struct dnswire_rr rr;
	int rc;

	x->has_soa = false;
	x->soa_ttl = 0;
	x->ext_rcode = 0;
	while ((rc = dnswire_reader_next(&r, &rr)) == 1) {
		if (rr.type == DNS_T_OPT && rr.section == DNSWIRE_AR) {
			x->ext_rcode = (uint8_t)(rr.ttl >> 24);
			continue;
		}
		if (rr.rclass != DNS_C_IN)
			continue;
		if (rr.type == DNS_T_A && rr.rdlen != 4)
			return -EBADMSG;
		if (rr.type == DNS_T_SOA && rr.section == DNSWIRE_NS) {
			int64_t minimum = soa_minimum(r.pkt, &rr);
			if (minimum < 0)
				return -EBADMSG;
			if (!x->has_soa) {
				x->has_soa = true;
				x->soa_ttl = min_u32(sane_ttl(rr.ttl), sane_ttl((uint32_t)minimum));
			}
		}
	}
	return rc;
}

static void keep_txt(struct listans *out, const struct dnswire_rr *rr)
{
	if ((size_t)LISTANS_TXT_MAX - out->txt_len < 2u + rr->rdlen)
		return; /* cut at a record boundary */
	out->txt[out->txt_len] = (uint8_t)(rr->rdlen >> 8);
	out->txt[out->txt_len + 1] = (uint8_t)rr->rdlen;
	memcpy(out->txt + out->txt_len + 2, rr->rdata, rr->rdlen);
	out->txt_len = (uint16_t)(out->txt_len + 2 + rr->rdlen);
}

/* Collect the records of qtype owned by name. Returns how many there were
 * (kept or not), or -EBADMSG. *ttl gets their smallest TTL. */
static int collect_records(const struct dnswire_reader *start, const uint8_t *name,
			   size_t name_len, uint16_t qtype, struct listans *out,
			   uint32_t *ttl)
{
	struct dnswire_reader r = *start;
	struct dnswire_rr rr;
	int rc, found = 0;

	while ((rc = dnswire_next_answer_for(&r, name, name_len, &rr)) == 1) {
		if (rr.type != qtype)
			continue;
		if (qtype == DNS_T_A && out->n_a < LISTANS_MAX_A)
			memcpy(out->a[out->n_a++], rr.rdata, 4);
		if (qtype == DNS_T_TXT) {
			if (!txt_rdata_valid(rr.rdata, rr.rdlen))
				return -EBADMSG;
			keep_txt(out, &rr);
		}
		*ttl = min_u32(*ttl, sane_ttl(rr.ttl));
		found++;
	}
	return rc < 0 ? rc : found;
}

static void set_bad(struct listans *out)
{
	memset(out, 0, sizeof *out);
	out->status = LISTANS_BAD;
}

static void set_negative(struct listans *out, enum listans_status status,
			 const struct answer_extras *x)
{
	out->status = (uint8_t)status;
	out->has_ttl = x->has_soa;
	out->ttl = x->soa_ttl;
}

/* NOERROR: records of qtype at qname or at the end of its CNAME chain. */
static int parse_noerror(const struct dnswire_reader *r, const uint8_t *qname,
			 size_t qname_len, uint16_t qtype,
			 const struct answer_extras *x, struct listans *out)
{
	uint8_t name[DNSWIRE_NAME_MAX];
	size_t name_len = qname_len;
	uint32_t ttl = TTL_MAX;
	int found;

	memcpy(name, qname, qname_len);
	if (qtype != DNS_T_CNAME && dnswire_follow_cnames(r, name, &name_len, &ttl) < 0)
		return -EBADMSG;
	found = collect_records(r, name, name_len, qtype, out, &ttl);
	if (found < 0)
		return found;
	if (found == 0) {
		set_negative(out, LISTANS_NODATA, x);
		return 0;
	}
	out->status = LISTANS_RECORDS;
	out->ttl = ttl;
	out->has_ttl = true;
	return 0;
}

int listans_parse(const uint8_t *pkt, size_t len, const uint8_t *qname,
		  size_t qname_len, uint16_t qtype, struct listans *out)
{
	struct dnswire_reader r;
	struct answer_extras x;

	set_bad(out);
	if (qname_len == 0 || qname_len > DNSWIRE_NAME_MAX ||
	    dnswire_reader_init(&r, pkt, len) < 0 ||
	    !is_response_to(&r, qname, qname_len, qtype) ||
	    scan_all_records(r, &x) < 0)
		return 0;

	unsigned rcode = (unsigned)x.ext_rcode << 4 | (r.flags & 0x0fu);
	out->rcode = (uint8_t)(rcode > 0xff ? 0xff : rcode);
	switch (rcode) {
	case DNS_R_NOERROR:
		if (parse_noerror(&r, qname, qname_len, qtype, &x, out) < 0)
			set_bad(out);
		break;
	case DNS_R_NXDOMAIN:
		set_negative(out, LISTANS_NXDOMAIN, &x);
		break;
	default:
		out->status = LISTANS_SERVFAIL;
		break;
	}
	return 0;
}

/* ------------------------------------------------------------ cache form */

int listans_encode(const struct listans *a, uint8_t *buf, size_t cap)
{
	size_t need;

	if (a->status > LISTANS_BAD)
		return -EINVAL;
	if (a->status != LISTANS_RECORDS) {
		if (cap < ENC_HEADER_LEN)
			return -ENOSPC;
		buf[0] = a->status;
		buf[1] = a->rcode;
		return ENC_HEADER_LEN;
	}
	if (a->rcode != DNS_R_NOERROR || a->n_a > LISTANS_MAX_A ||
	    a->txt_len > LISTANS_TXT_MAX || !txt_store_valid(a->txt, a->txt_len))
		return -EINVAL;
	need = ENC_HEADER_LEN + 4u * a->n_a + a->txt_len;
	if (need > cap)
		return -ENOSPC;
	buf[0] = a->status;
	buf[1] = a->n_a;
	memcpy(buf + ENC_HEADER_LEN, a->a, 4u * a->n_a);
	memcpy(buf + ENC_HEADER_LEN + 4u * a->n_a, a->txt, a->txt_len);
	return (int)need;
}

static int decode_records(const uint8_t *buf, size_t len, struct listans *out)
{
	size_t n_a = buf[1];
	size_t txt_off = ENC_HEADER_LEN + 4 * n_a;

	if (n_a > LISTANS_MAX_A || len < txt_off || len - txt_off > LISTANS_TXT_MAX ||
	    !txt_store_valid(buf + txt_off, len - txt_off))
		return -EBADMSG;
	out->n_a = (uint8_t)n_a;
	memcpy(out->a, buf + ENC_HEADER_LEN, 4 * n_a);
	out->txt_len = (uint16_t)(len - txt_off);
	memcpy(out->txt, buf + txt_off, out->txt_len);
	return 0;
}

int listans_decode(const uint8_t *buf, size_t len, struct listans *out)
{
	/* Decoding runs once per list per answer on the warm path: reset what
	 * the counts cover, not the whole TXT store. */
	out->status = LISTANS_BAD;
	out->rcode = 0;
	out->n_a = 0;
	out->txt_len = 0;
	out->ttl = 0;
	out->has_ttl = false;
	if (len < ENC_HEADER_LEN || buf[0] > LISTANS_BAD)
		goto fail;
	if (buf[0] == LISTANS_RECORDS) {
		if (decode_records(buf, len, out) < 0)
			goto fail;
	} else {
		/* Any rcode: the resolver sets SERVFAIL or TIMEOUT on its own. */
		if (len != ENC_HEADER_LEN)
			goto fail;
		out->rcode = buf[1];
	}
	out->status = buf[0];
	return 0;
fail:
	set_bad(out);
	return -EBADMSG;
}

const char *listans_status_name(enum listans_status s)
{
	switch (s) {
	case LISTANS_NXDOMAIN: return "nxdomain";
	case LISTANS_NODATA: return "nodata";
	case LISTANS_RECORDS: return "records";
	case LISTANS_SERVFAIL: return "servfail";
	case LISTANS_TIMEOUT: return "timeout";
	case LISTANS_BAD: return "bad";
	}
	return "unknown";
}
