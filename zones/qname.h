/*
 * qname: what a question name inside rblmux's synthetic zone means.
 *
 * Pure: takes a lowercased wire-form name and the zone's configuration, and
 * says which view it names and which IP address or domain it carries. The
 * views and name forms are those of SPEC §2.
 */
#ifndef RBLMUX_ZONES_QNAME_H
#define RBLMUX_ZONES_QNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zones/dnswire.h"

enum qname_view {
	QV_OUTSIDE = 0,   /* not inside the apex: REFUSED */
	QV_NXDOMAIN,      /* inside the apex, names nothing: NXDOMAIN + SOA */
	QV_ENT,           /* an empty non-terminal (e.g. "score.<apex>", "3.2.1.<apex>"):
			   * NOERROR/NODATA + SOA, so that QNAME-minimising resolvers
			   * (RFC 8020, RFC 9156) keep asking below it */
	QV_APEX,          /* <apex> */
	QV_COMBINED,      /* <ip>.<apex> */
	QV_SCORE,         /* <ip>.score.<apex> */
	QV_SOURCE,        /* <ip>.<source>.<apex> or <domain>.<source>.<apex> */
	QV_RHS,           /* <domain>.rhs.<apex> */
	QV_PTR,           /* <ip>.ptr.<apex> */
	QV_SPF,           /* <ip>.<domain>.spf.<apex> or <ip>.<domain>.<lp>._l.spf.<apex> */
	QV_HEALTH,        /* health.<apex> */
};

/* Source types (SPEC §3 "type"). */
enum qname_src_type {
	QSRC_IP = 0,      /* IPv4 and IPv6 */
	QSRC_IP4 = 1,
	QSRC_IP6 = 2,
	QSRC_DOMAIN = 3,
};

struct qname_source {
	const char *name;          /* the source's label, lowercase */
	enum qname_src_type type;
};

struct qname_zone {
	const uint8_t *apex;       /* wire form, lowercase */
	size_t apex_len;
	const struct qname_source *sources;
	size_t nsources;
};

struct qname_addr {
	int family;                /* AF_INET or AF_INET6 */
	uint8_t addr[16];          /* network order; 4 bytes used for AF_INET */
};

struct qname_result {
	enum qname_view view;
	uint16_t apex_off;         /* offset of the apex inside the name (for
				    * compression pointers: DNSWIRE_QNAME_OFF + apex_off) */
	struct qname_addr ip;      /* COMBINED, SCORE, SOURCE (ip types), PTR, SPF */
	int source;                /* SOURCE: index into zone->sources, else -1 */
	/* RHS, SOURCE of type domain, SPF: the domain, wire form, lowercase */
	uint8_t domain[DNSWIRE_NAME_MAX];
	uint16_t domain_len;
	/* SPF with "_l": the local part, raw bytes (may contain '.') */
	char local_part[64];
	uint8_t local_part_len;
	bool has_local_part;
	/* RFC 5782 test points, on COMBINED and SCORE (and "test"/"invalid" on RHS):
	 * 0 none, 1 the always-NXDOMAIN point, 2 the always-listed point */
	uint8_t test_point;
};

/*
 * Classify name (wire form, already lowercased, len bytes with the root label).
 * Returns 0 with *out filled (view QV_OUTSIDE for names outside the apex);
 * -EINVAL on a malformed wire name.
 *
 * IPv4 addresses are 4 reversed decimal labels 0-255 without leading zeros
 * ("01" is not an octet); IPv6 are 32 reversed single-hex-digit labels. A
 * shorter run of octets or nibbles right under a view is an empty
 * non-terminal. For SPF, the first 32 labels are read as IPv6 nibbles when
 * they all are nibbles and a domain follows, else the first 4 as IPv4.
 * An ip4 source asked about an IPv6 address (or ip6 about IPv4) is NXDOMAIN.
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are returned as AF_INET.
 */
int qname_classify(const uint8_t *name, size_t len, const struct qname_zone *zone,
		   struct qname_result *out);

/*
 * Write the DNSBL form of an address in front of suffix (wire form):
 * "4.3.2.1" + suffix for IPv4, 32 nibbles + suffix for IPv6 (RFC 5782 §2).
 * Returns the wire length or -ENOSPC (-EINVAL for an unknown family).
 */
int qname_build_ip(const struct qname_addr *ip, const uint8_t *suffix,
		   size_t suffix_len, uint8_t *out, size_t cap);

/* Same for a domain source: domain + suffix. Returns the length or -ENOSPC. */
int qname_build_domain(const uint8_t *domain, size_t domain_len,
		       const uint8_t *suffix, size_t suffix_len, uint8_t *out,
		       size_t cap);

/* True when name is a valid source name: one label of letters, digits and
 * '-', starting with a letter, and none of the view names. A single hex
 * digit ("a".."f") is refused too: it reads as an IPv6 nibble. */
bool qname_valid_source_name(const char *name);

#endif
