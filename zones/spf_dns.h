/*
 * spf_dns: the records of one DNS answer as SPF evaluation needs them.
 *
 * Pure. rblmuxd reads the upstream packet here, on its own side, and hands
 * the isolated SPF helper only the parsed records (zones/spf_eval.h's
 * struct spf_answer): the helper never parses a DNS message.
 */
#ifndef RBLMUX_ZONES_SPF_DNS_H
#define RBLMUX_ZONES_SPF_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "zones/spf_eval.h"

/* CNAME links followed inside one answer. */
#define SPF_DNS_CNAME_MAX 8

/*
 * Parse pkt, an answer to (qname, qtype) (qname in wire form; its question
 * is compared case-insensitively: the resolver checked the exact case
 * already). Fills *out:
 *   NOERROR with records of qtype at qname or at the end of its CNAME chain:
 *     SPF_ANS_RECORDS, one spf_answer_rr per record: A 4 bytes, AAAA 16, TXT
 *     the character-strings concatenated, MX preference and exchange, PTR
 *     the name (names uncompressed, wire form);
 *   NOERROR without: SPF_ANS_NODATA; NXDOMAIN: SPF_ANS_NXDOMAIN;
 *   any other rcode, TC set, a question that differs, a malformed record, a
 *   CNAME loop or a chain over SPF_DNS_CNAME_MAX: SPF_ANS_ERROR.
 * *ttl: the smallest TTL of the records used (CNAMEs included); for
 * NXDOMAIN and NODATA min(SOA TTL, SOA minimum) (RFC 2308), 0 without a
 * SOA (such an answer must not be cached); 0 for errors.
 * Returns 0, or -EINVAL for a bad qname.
 */
int spf_dns_parse(const uint8_t *pkt, size_t len, const uint8_t *qname,
		  size_t qname_len, uint16_t qtype, struct spf_answer *out,
		  uint32_t *ttl);

#endif
