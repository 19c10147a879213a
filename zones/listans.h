/*
 * listans: what one upstream list answered for one question, parsed from the
 * wire, checked against the question, and encoded compactly for the cache.
 *
 * No I/O. The resolver sends a case-randomised question (DNS 0x20) and passes
 * the exact name it sent: an answer whose question differs by even one letter's
 * case is refused, which makes off-path spoofing through c-ares' single port
 * and weak IDs much harder.
 */
#ifndef RBLMUX_ZONES_LISTANS_H
#define RBLMUX_ZONES_LISTANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LISTANS_MAX_A 16
/* Raw TXT rdata kept per answer (each RR as u16 length + rdata). Lists answer
 * one short TXT; longer answers are cut at a record boundary. */
#define LISTANS_TXT_MAX 1024

enum listans_status {
	LISTANS_NXDOMAIN = 0, /* not listed */
	LISTANS_NODATA = 1,   /* the name exists but has no record of the type: not listed */
	LISTANS_RECORDS = 2,  /* A (or TXT) records: listed, unless the codes say "error" */
	LISTANS_SERVFAIL = 3, /* SERVFAIL, REFUSED, or another failing rcode */
	LISTANS_TIMEOUT = 4,  /* no answer in time (set by the resolver, never parsed) */
	LISTANS_BAD = 5,      /* garbage, truncated, or an answer to another question */
};

struct listans {
	uint8_t status;        /* enum listans_status */
	uint8_t rcode;         /* as received (0 when none) */
	uint8_t n_a;
	uint8_t a[LISTANS_MAX_A][4];
	uint16_t txt_len;      /* bytes used in txt */
	uint8_t txt[LISTANS_TXT_MAX]; /* for TXT questions: [u16 rdlen][rdata] ... */
	uint32_t ttl;          /* smallest TTL of the records used; for NXDOMAIN and
			        * NODATA min(SOA TTL, SOA minimum) (RFC 2308) */
	bool has_ttl;          /* false when the answer carried no TTL (no SOA) */
};

/*
 * Parse an upstream answer to (qname, qtype), where qname is the exact wire
 * name that was sent (case matters: DNS 0x20).
 * Returns 0 with *out filled. A message that is not a well-formed response to
 * that exact question gives status LISTANS_BAD (still returning 0): callers
 * treat it like a failure. CNAME chains inside the answer are followed (at most
 * 8 links) when collecting A or TXT records. Records of the wrong class or
 * owner are ignored. TC set: LISTANS_BAD (c-ares retries over TCP itself).
 * Any malformed record anywhere in the message (A rdata not 4 bytes, TXT
 * strings overrunning their rdata, a bad SOA in the authority section, a CNAME
 * chain longer than 8 links or looping) also gives LISTANS_BAD. An extended
 * rcode (from the OPT record) other than NOERROR gives LISTANS_SERVFAIL, and
 * out->rcode holds the full rcode (capped at 255). TTLs with the top bit set
 * count as 0 (RFC 2181 §8). For A questions the first LISTANS_MAX_A records
 * are kept; for TXT questions each record's rdata is kept in txt[].
 */
int listans_parse(const uint8_t *pkt, size_t len, const uint8_t *qname,
		  size_t qname_len, uint16_t qtype, struct listans *out);

/*
 * Encode an answer for the cache: a few bytes for NXDOMAIN, 1 + 4n for A
 * records (+ the TXT bytes). TTL and expiry are not encoded (the cache keeps
 * them). Returns the length, -ENOSPC, or -EINVAL for a struct that cannot be
 * encoded (status out of range, RECORDS with a non-zero rcode, n_a or txt_len
 * too large, txt not [u16 rdlen][valid TXT rdata] ...).
 */
int listans_encode(const struct listans *a, uint8_t *buf, size_t cap);

/* Decode what listans_encode wrote, checking every byte (the input may come
 * from Redis). ttl is 0 and has_ttl false. Returns 0, or -EBADMSG with
 * out->status LISTANS_BAD. */
int listans_decode(const uint8_t *buf, size_t len, struct listans *out);

/* A short word for a status, for logs and TXT ("timeout", "servfail", ...). */
const char *listans_status_name(enum listans_status s);

#endif
