#include "zones/spf_dns.h"

#include <errno.h>
#include <string.h>

#include "zones/dnswire.h"

/* Answer records looked at; more are ignored (an SPF-sized answer has far
 * fewer, and the evaluator keeps at most SPF_ANS_MAX_RR). */
#define RR_SCAN_MAX 512

struct rr_ref {
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	size_t owner_off, rdata_off;
};

static uint32_t rr_ttl(uint32_t ttl)
{
	/* RFC 2181 §8: a TTL with the top bit set means zero. */
	return ttl & 0x80000000u ? 0 : ttl;
}

static void set_error(struct spf_answer *out, uint32_t *ttl)
{
	out->status = SPF_ANS_ERROR;
	out->n = out->n_total = 0;
	out->data_len = 0;
	*ttl = 0;
}

static bool owner_is(const uint8_t *pkt, size_t len, const struct rr_ref *rr,
		     const uint8_t *name, size_t name_len)
{
	uint8_t owner[DNSWIRE_NAME_MAX];
	int n = dnswire_read_name(pkt, len, rr->owner_off, owner, sizeof(owner), NULL);
	return n > 0 && dnswire_name_equal(owner, (size_t)n, name, name_len, false);
}

/* One record's data as the evaluator wants it. Returns 0, or -EBADMSG. */
static int add_record(const uint8_t *pkt, size_t len, const struct rr_ref *rr,
		      struct spf_answer *out)
{
	const uint8_t *rd = pkt + rr->rdata_off;
	uint8_t buf[SPF_ANS_DATA_MAX];
	uint8_t name[DNSWIRE_NAME_MAX];
	size_t n = 0;
	int nl;

	switch (rr->type) {
	case DNS_T_A:
		if (rr->rdlen != 4)
			return -EBADMSG;
		spf_answer_add(out, rd, 4, 0);
		return 0;
	case DNS_T_AAAA:
		if (rr->rdlen != 16)
			return -EBADMSG;
		spf_answer_add(out, rd, 16, 0);
		return 0;
	case DNS_T_TXT:
		/* RFC 7208 §3.3: the strings of one record are joined. */
		for (size_t i = 0; i < rr->rdlen;) {
			size_t sl = rd[i];
			if (i + 1 + sl > rr->rdlen)
				return -EBADMSG;
			if (n + sl > sizeof(buf)) {
				/* Counted, not kept: the evaluator then knows a
				 * record is missing. */
				if (out->n_total < UINT16_MAX)
					out->n_total++;
				return 0;
			}
			memcpy(buf + n, rd + i + 1, sl);
			n += sl;
			i += 1 + sl;
		}
		spf_answer_add(out, buf, n, 0);
		return 0;
	case DNS_T_MX:
		if (rr->rdlen < 3)
			return -EBADMSG;
		nl = dnswire_read_name(pkt, len, rr->rdata_off + 2, name, sizeof(name), NULL);
		if (nl < 0)
			return -EBADMSG;
		spf_answer_add(out, name, (size_t)nl, (uint16_t)(rd[0] << 8 | rd[1]));
		return 0;
	case DNS_T_PTR:
		nl = dnswire_read_name(pkt, len, rr->rdata_off, name, sizeof(name), NULL);
		if (nl < 0)
			return -EBADMSG;
		spf_answer_add(out, name, (size_t)nl, 0);
		return 0;
	}
	return 0;
}

/* min(SOA TTL, SOA minimum) of the authority section's SOA, 0 without. */
static uint32_t negative_ttl(const uint8_t *pkt, size_t len, const struct rr_ref *soa)
{
	size_t off;
	if (!soa)
		return 0;
	if (dnswire_read_name(pkt, len, soa->rdata_off, NULL, 0, &off) < 0 ||
	    dnswire_read_name(pkt, len, off, NULL, 0, &off) < 0 ||
	    off + 20 > soa->rdata_off + soa->rdlen)
		return 0;
	const uint8_t *m = pkt + off + 16;
	uint32_t minimum = rr_ttl((uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
				  (uint32_t)m[2] << 8 | m[3]);
	uint32_t ttl = rr_ttl(soa->ttl);
	return ttl < minimum ? ttl : minimum;
}

int spf_dns_parse(const uint8_t *pkt, size_t len, const uint8_t *qname,
		  size_t qname_len, uint16_t qtype, struct spf_answer *out,
		  uint32_t *ttl)
{
	static __thread struct rr_ref rrs[RR_SCAN_MAX];
	struct dnswire_reader r;
	struct dnswire_rr rr;
	const struct rr_ref *soa = NULL;
	struct rr_ref soa_ref;
	unsigned nrr = 0;
	uint8_t cur[DNSWIRE_NAME_MAX];
	size_t cur_len;
	uint32_t min_ttl = UINT32_MAX;
	int rc;

	if (!qname || qname_len == 0 || qname_len > DNSWIRE_NAME_MAX)
		return -EINVAL;
	out->n = out->n_total = 0;
	out->data_len = 0;
	if (dnswire_reader_init(&r, pkt, len) < 0 || !(r.flags & DNS_F_QR) ||
	    (r.flags & DNS_F_TC) || r.counts[DNSWIRE_QD] != 1 || r.qtype != qtype ||
	    !dnswire_name_equal(r.qname, r.qname_len, qname, qname_len, false)) {
		set_error(out, ttl);
		return 0;
	}
	while ((rc = dnswire_reader_next(&r, &rr)) > 0) {
		if (rr.rclass != DNS_C_IN)
			continue;
		if (rr.section == DNSWIRE_AN && nrr < RR_SCAN_MAX) {
			rrs[nrr++] = (struct rr_ref){ rr.type, rr_ttl(rr.ttl), rr.rdlen,
						      rr.owner_off, rr.rdata_off };
		} else if (rr.section == DNSWIRE_NS && rr.type == DNS_T_SOA && !soa) {
			soa_ref = (struct rr_ref){ rr.type, rr.ttl, rr.rdlen, rr.owner_off,
						   rr.rdata_off };
			soa = &soa_ref;
		}
	}
	if (rc < 0) {
		set_error(out, ttl);
		return 0;
	}
	unsigned rcode = r.flags & 0x0f;
	if (rcode == DNS_R_NXDOMAIN) {
		out->status = SPF_ANS_NXDOMAIN;
		*ttl = negative_ttl(pkt, len, soa);
		return 0;
	}
	if (rcode != DNS_R_NOERROR) {
		set_error(out, ttl);
		return 0;
	}

	memcpy(cur, qname, qname_len);
	cur_len = qname_len;
	for (unsigned links = 0;; links++) {
		bool found = false;
		const struct rr_ref *cname = NULL;
		for (unsigned i = 0; i < nrr; i++) {
			if (rrs[i].type != qtype && rrs[i].type != DNS_T_CNAME)
				continue;
			if (!owner_is(pkt, len, &rrs[i], cur, cur_len))
				continue;
			if (rrs[i].type == DNS_T_CNAME) {
				if (!cname)
					cname = &rrs[i];
				continue;
			}
			if (add_record(pkt, len, &rrs[i], out) < 0) {
				set_error(out, ttl);
				return 0;
			}
			if (rrs[i].ttl < min_ttl)
				min_ttl = rrs[i].ttl;
			found = true;
		}
		if (found || !cname || qtype == DNS_T_CNAME)
			break;
		if (links >= SPF_DNS_CNAME_MAX) {
			set_error(out, ttl);
			return 0;
		}
		int n = dnswire_read_name(pkt, len, cname->rdata_off, cur, sizeof(cur), NULL);
		if (n < 0) {
			set_error(out, ttl);
			return 0;
		}
		cur_len = (size_t)n;
		if (cname->ttl < min_ttl)
			min_ttl = cname->ttl;
	}
	if (out->n_total == 0) {
		out->status = SPF_ANS_NODATA;
		*ttl = negative_ttl(pkt, len, soa);
		if (min_ttl < *ttl)
			*ttl = min_ttl;
		return 0;
	}
	out->status = SPF_ANS_RECORDS;
	*ttl = min_ttl;
	return 0;
}
