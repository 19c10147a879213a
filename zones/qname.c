/*
 * qname: classify question names inside the synthetic zone (SPEC §2).
 *
 * The name is split into labels once; everything else works on the labels
 * below the apex, read from the apex outwards ("under[0]" is the label right
 * under the apex), because every view is chosen by that first label.
 *
 * Empty non-terminals: a name is QV_ENT when some valid name exists strictly
 * below it, so that QNAME-minimising resolvers (RFC 8020, RFC 9156) are not
 * told "nothing exists here" on their way down. Hence:
 *   - "<view>.<apex>" and "<source>.<apex>" (nothing below the label) are ENT;
 *   - 1-3 octet labels, or 1-31 nibble labels, under an IP view are ENT, as
 *     long as the view accepts the family they lead to;
 *   - domain views (rhs, domain sources) have no ENT below the view label:
 *     every name there is itself a valid domain;
 *   - under "spf", every name that is not a complete SPF question is an ENT
 *     when an IP (and, for "_l", a domain) could still be put in front of it
 *     within the 255-byte limit: "<domain>.spf", "1.2.3.4.spf" (the domain may
 *     well be "1.2.3.4") and "lp._l.spf" all have valid names below them.
 *     So a missing domain is an ENT, not NXDOMAIN: answering NXDOMAIN there
 *     would be a false denial of everything below it.
 */
#include "zones/qname.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define QNAME_V4_LABELS 4
#define QNAME_V6_LABELS 32
/* Wire bytes of the shortest IPv4 in front of a name: "\1d\1d\1d\1d". */
#define QNAME_SHORTEST_IP 8
/* Wire bytes of the shortest label ("\1x"). */
#define QNAME_SHORTEST_LABEL 2

struct label {
	const uint8_t *p;
	uint8_t len;
	uint8_t off;
};

struct split_name {
	struct label lab[DNSWIRE_LABELS_MAX];
	size_t n; /* labels, not counting the root */
};

static const char *const view_labels[] = { "score", "ptr", "spf", "rhs", "health" };

/* Split a wire name into labels; -EINVAL unless it is exactly len bytes of
 * uncompressed labels ending in the root. */
static int split(const uint8_t *name, size_t len, struct split_name *s)
{
	size_t off = 0;

	if (name == NULL || len == 0 || len > DNSWIRE_NAME_MAX)
		return -EINVAL;
	s->n = 0;
	while (off < len) {
		uint8_t l = name[off];

		if (l == 0)
			return off + 1 == len ? 0 : -EINVAL;
		/* 0x40/0x80 bits: compression pointers or extended types */
		if (l > 63 || off + 1 + l >= len || s->n >= DNSWIRE_LABELS_MAX)
			return -EINVAL;
		s->lab[s->n].p = name + off + 1;
		s->lab[s->n].len = l;
		s->lab[s->n].off = (uint8_t)off;
		s->n++;
		off += 1u + l;
	}
	return -EINVAL;
}

static bool label_is(const struct label *l, const char *word)
{
	size_t n = strlen(word);

	return l->len == n && memcmp(l->p, word, n) == 0;
}

/* A decimal octet 0-255 without leading zeros. */
static bool octet_value(const struct label *l, uint8_t *out)
{
	unsigned v = 0;

	if (l->len == 0 || l->len > 3 || (l->len > 1 && l->p[0] == '0'))
		return false;
	for (size_t i = 0; i < l->len; i++) {
		if (l->p[i] < '0' || l->p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(l->p[i] - '0');
	}
	if (v > 255)
		return false;
	*out = (uint8_t)v;
	return true;
}

/* One lowercase hex digit (the name is already lowercased). */
static bool nibble_value(const struct label *l, uint8_t *out)
{
	uint8_t c;

	if (l->len != 1)
		return false;
	c = l->p[0];
	if (c >= '0' && c <= '9')
		*out = (uint8_t)(c - '0');
	else if (c >= 'a' && c <= 'f')
		*out = (uint8_t)(c - 'a' + 10);
	else
		return false;
	return true;
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

enum ip_parse {
	IP_NONE = 0,  /* no address starts like this: NXDOMAIN */
	IP_PARTIAL,   /* a prefix of an address the view accepts: ENT */
	IP_FULL,      /* a whole address the view accepts */
};

#define FAM_V4 1u
#define FAM_V6 2u

/*
 * Read an address from labels given most significant first (from the apex
 * outwards): lab[0] is the label next to the view. families says which
 * families the view accepts; an IPv4-mapped IPv6 address is IPv4.
 */
static enum ip_parse parse_ip(const struct label *const *lab, size_t n,
			      unsigned families, struct qname_addr *out)
{
	uint8_t v4[4], nib[QNAME_V6_LABELS];
	bool all_octets = n <= QNAME_V4_LABELS, all_nibbles = n <= QNAME_V6_LABELS;
	bool v6_ok, mapped_prefix;

	for (size_t i = 0; i < n && (all_octets || all_nibbles); i++) {
		if (all_octets && !octet_value(lab[i], &v4[i]))
			all_octets = false;
		if (all_nibbles && !nibble_value(lab[i], &nib[i]))
			all_nibbles = false;
	}
	if (n == 0)
		return IP_PARTIAL;
	if (all_octets && n == QNAME_V4_LABELS && (families & FAM_V4)) {
		out->family = AF_INET;
		memset(out->addr, 0, sizeof(out->addr));
		memcpy(out->addr, v4, 4);
		return IP_FULL;
	}
	if (all_octets && n < QNAME_V4_LABELS && (families & FAM_V4))
		return IP_PARTIAL;
	if (!all_nibbles)
		return IP_NONE;

	/* Would these nibbles (so far) still be an IPv4-mapped address? */
	mapped_prefix = true;
	for (size_t i = 0; i < n && i < 2 * sizeof(v4mapped_prefix); i++) {
		uint8_t want = v4mapped_prefix[i / 2];

		want = (i % 2 == 0) ? (uint8_t)(want >> 4) : (uint8_t)(want & 0x0f);
		if (nib[i] != want) {
			mapped_prefix = false;
			break;
		}
	}
	v6_ok = (families & FAM_V6) || (mapped_prefix && (families & FAM_V4));
	if (!v6_ok)
		return IP_NONE;
	if (n < QNAME_V6_LABELS)
		return IP_PARTIAL;
	if (mapped_prefix) {
		if (!(families & FAM_V4))
			return IP_NONE;
		out->family = AF_INET;
		memset(out->addr, 0, sizeof(out->addr));
		for (size_t i = 0; i < 4; i++)
			out->addr[i] = (uint8_t)(nib[24 + 2 * i] << 4 | nib[25 + 2 * i]);
		return IP_FULL;
	}
	out->family = AF_INET6;
	for (size_t i = 0; i < 16; i++)
		out->addr[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
	return IP_FULL;
}

/* RFC 5782 §5 test points: 127.0.0.2 always listed, 127.0.0.1 never (their
 * IPv6 forms ::ffff:7f00:2 and ::ffff:7f00:1 arrive here as IPv4). */
static uint8_t ip_test_point(const struct qname_addr *ip)
{
	if (ip->family != AF_INET || ip->addr[0] != 127 || ip->addr[1] != 0 ||
	    ip->addr[2] != 0)
		return 0;
	return ip->addr[3] == 2 ? 2 : ip->addr[3] == 1 ? 1 : 0;
}

/* Copy labels [first, last) of s (leftmost first) as a wire-form domain. */
static void copy_domain(const struct split_name *s, size_t first, size_t last,
			struct qname_result *out)
{
	size_t len = 0;

	for (size_t i = first; i < last; i++) {
		out->domain[len] = s->lab[i].len;
		memcpy(out->domain + len + 1, s->lab[i].p, s->lab[i].len);
		len += 1u + s->lab[i].len;
	}
	out->domain[len++] = 0;
	out->domain_len = (uint16_t)len;
}

/*
 * Views whose labels below the view label carry only an address (combined,
 * score, ptr, ip sources). The labels are s->lab[0 .. n), leftmost first.
 */
static void classify_ip(const struct split_name *s, size_t n, unsigned families,
			enum qname_view view, struct qname_result *out)
{
	const struct label *msb_first[QNAME_V6_LABELS];

	if (n > QNAME_V6_LABELS) {
		out->view = QV_NXDOMAIN;
		return;
	}
	for (size_t i = 0; i < n; i++)
		msb_first[i] = &s->lab[n - 1 - i];
	switch (parse_ip(msb_first, n, families, &out->ip)) {
	case IP_FULL:
		out->view = view;
		break;
	case IP_PARTIAL:
		out->view = QV_ENT;
		break;
	default:
		out->view = QV_NXDOMAIN;
		break;
	}
}

/*
 * "<ip>.<domain>.spf" or "<ip>.<domain>.<lp>._l.spf". s->lab[0 .. n) are the
 * labels left of "spf"; name_len is the whole name's wire length (for the
 * "could something valid exist below" test).
 */
static void classify_spf(const struct split_name *s, size_t n, size_t name_len,
			 struct qname_result *out)
{
	const struct label *msb_first[QNAME_V6_LABELS];
	size_t body = n;         /* labels holding the IP and the domain */
	size_t need_below = QNAME_SHORTEST_IP; /* to make it a question */
	size_t ip_labels = 0;

	if (n >= 1 && label_is(&s->lab[n - 1], "_l")) {
		if (n == 1)
			need_below += QNAME_SHORTEST_LABEL; /* the local part */
		body = n >= 2 ? n - 2 : 0;
	}
	if (body == 0)
		need_below += QNAME_SHORTEST_LABEL;         /* the domain */

	/* The header's rule: 32 nibbles when they all are and a domain follows,
	 * else 4 octets when they are and a domain follows. Read in the name's
	 * order, so the labels are reversed for parse_ip. */
	if (body > QNAME_V6_LABELS) {
		for (size_t i = 0; i < QNAME_V6_LABELS; i++)
			msb_first[i] = &s->lab[QNAME_V6_LABELS - 1 - i];
		if (parse_ip(msb_first, QNAME_V6_LABELS, FAM_V4 | FAM_V6, &out->ip) == IP_FULL)
			ip_labels = QNAME_V6_LABELS;
	}
	if (ip_labels == 0 && body > QNAME_V4_LABELS) {
		for (size_t i = 0; i < QNAME_V4_LABELS; i++)
			msb_first[i] = &s->lab[QNAME_V4_LABELS - 1 - i];
		if (parse_ip(msb_first, QNAME_V4_LABELS, FAM_V4, &out->ip) == IP_FULL)
			ip_labels = QNAME_V4_LABELS;
	}

	if (ip_labels == 0) {
		memset(&out->ip, 0, sizeof(out->ip));
		/* Not a question, but a prefix of one when an IP still fits. */
		out->view = name_len + need_below <= DNSWIRE_NAME_MAX ? QV_ENT : QV_NXDOMAIN;
		return;
	}
	out->view = QV_SPF;
	copy_domain(s, ip_labels, body, out);
	if (body != n) {
		const struct label *lp = &s->lab[n - 2];

		memcpy(out->local_part, lp->p, lp->len);
		out->local_part[lp->len] = '\0';
		out->local_part_len = lp->len;
		out->has_local_part = true;
	}
}

static int find_source(const struct qname_zone *zone, const struct label *l)
{
	for (size_t i = 0; i < zone->nsources; i++) {
		const char *name = zone->sources[i].name;

		if (name != NULL && label_is(l, name))
			return (int)i;
	}
	return -1;
}

static unsigned source_families(enum qname_src_type t)
{
	switch (t) {
	case QSRC_IP4:
		return FAM_V4;
	case QSRC_IP6:
		return FAM_V6;
	default:
		return FAM_V4 | FAM_V6;
	}
}

int qname_classify(const uint8_t *name, size_t len, const struct qname_zone *zone,
		   struct qname_result *out)
{
	struct split_name s;
	size_t apex_off, below; /* labels left of the apex */
	const struct label *top;
	int src;
	int rc;

	if (out == NULL || zone == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->source = -1;
	out->view = QV_OUTSIDE;
	rc = split(name, len, &s);
	if (rc < 0)
		return rc;

	/* The apex must start on a label boundary: "xrblmux.internal" is not in
	 * "rblmux.internal". Names and apex are both lowercase, so bytes compare. */
	if (zone->apex == NULL || zone->apex_len == 0 || zone->apex_len > len)
		return 0;
	apex_off = len - zone->apex_len;
	for (below = 0; below < s.n && s.lab[below].off < apex_off; below++)
		;
	if (below < s.n ? s.lab[below].off != apex_off : apex_off != len - 1)
		return 0;
	if (memcmp(name + apex_off, zone->apex, zone->apex_len) != 0)
		return 0;
	out->apex_off = (uint16_t)apex_off;

	if (below == 0) {
		out->view = QV_APEX;
		return 0;
	}
	top = &s.lab[below - 1];

	/* View labels first, then sources: qname_valid_source_name keeps them
	 * apart, and neither can be mistaken for a full address. */
	if (label_is(top, "health")) {
		out->view = below == 1 ? QV_HEALTH : QV_NXDOMAIN;
	} else if (label_is(top, "score")) {
		classify_ip(&s, below - 1, FAM_V4 | FAM_V6, QV_SCORE, out);
		if (out->view == QV_SCORE)
			out->test_point = ip_test_point(&out->ip);
	} else if (label_is(top, "ptr")) {
		classify_ip(&s, below - 1, FAM_V4 | FAM_V6, QV_PTR, out);
	} else if (label_is(top, "rhs")) {
		if (below == 1) {
			out->view = QV_ENT;
		} else {
			out->view = QV_RHS;
			copy_domain(&s, 0, below - 1, out);
			/* RFC 5782 §5: domain lists list "test" and never "invalid". */
			if (below == 2 && label_is(&s.lab[0], "test"))
				out->test_point = 2;
			else if (below == 2 && label_is(&s.lab[0], "invalid"))
				out->test_point = 1;
		}
	} else if (label_is(top, "spf")) {
		classify_spf(&s, below - 1, len, out);
	} else if ((src = find_source(zone, top)) >= 0) {
		enum qname_src_type type = zone->sources[src].type;

		if (below == 1) {
			out->view = QV_ENT;
		} else if (type == QSRC_DOMAIN) {
			out->view = QV_SOURCE;
			copy_domain(&s, 0, below - 1, out);
		} else {
			classify_ip(&s, below - 1, source_families(type), QV_SOURCE, out);
		}
		if (out->view == QV_SOURCE)
			out->source = src;
	} else {
		classify_ip(&s, below, FAM_V4 | FAM_V6, QV_COMBINED, out);
		if (out->view == QV_COMBINED)
			out->test_point = ip_test_point(&out->ip);
	}
	if (out->view != QV_COMBINED && out->view != QV_SCORE && out->view != QV_SOURCE &&
	    out->view != QV_PTR && out->view != QV_SPF)
		memset(&out->ip, 0, sizeof(out->ip));
	return 0;
}

static const char hex_digits[] = "0123456789abcdef";

/*
 * Not in the contract's list of errors: -EINVAL for a family other than
 * AF_INET/AF_INET6 or a suffix that is not a wire name ending in the root.
 */
int qname_build_ip(const struct qname_addr *ip, const uint8_t *suffix,
		   size_t suffix_len, uint8_t *out, size_t cap)
{
	uint8_t tmp[2 * QNAME_V6_LABELS];
	size_t len = 0;

	if (ip == NULL || suffix == NULL || suffix_len == 0 || suffix[suffix_len - 1] != 0)
		return -EINVAL;
	if (ip->family == AF_INET) {
		for (int i = 3; i >= 0; i--) {
			uint8_t v = ip->addr[i];
			size_t at = len++;

			if (v >= 100)
				tmp[len++] = (uint8_t)('0' + v / 100);
			if (v >= 10)
				tmp[len++] = (uint8_t)('0' + v / 10 % 10);
			tmp[len++] = (uint8_t)('0' + v % 10);
			tmp[at] = (uint8_t)(len - at - 1);
		}
	} else if (ip->family == AF_INET6) {
		for (int i = 15; i >= 0; i--) {
			tmp[len++] = 1;
			tmp[len++] = (uint8_t)hex_digits[ip->addr[i] & 0x0f];
			tmp[len++] = 1;
			tmp[len++] = (uint8_t)hex_digits[ip->addr[i] >> 4];
		}
	} else {
		return -EINVAL;
	}
	if (len + suffix_len > DNSWIRE_NAME_MAX || len + suffix_len > cap)
		return -ENOSPC;
	memcpy(out, tmp, len);
	memcpy(out + len, suffix, suffix_len);
	return (int)(len + suffix_len);
}

int qname_build_domain(const uint8_t *domain, size_t domain_len,
		       const uint8_t *suffix, size_t suffix_len, uint8_t *out,
		       size_t cap)
{
	size_t head;

	if (domain == NULL || domain_len == 0 || domain[domain_len - 1] != 0 ||
	    suffix == NULL || suffix_len == 0 || suffix[suffix_len - 1] != 0)
		return -EINVAL;
	head = domain_len - 1; /* the domain without its root label */
	if (head + suffix_len > DNSWIRE_NAME_MAX || head + suffix_len > cap)
		return -ENOSPC;
	memmove(out, domain, head);
	memcpy(out + head, suffix, suffix_len);
	return (int)(head + suffix_len);
}

/*
 * Beyond the SPEC's rule, a single hex digit ("a".."f") is refused too: it
 * would be read as the first nibble of an IPv6 address, so "<nibbles>.f.<apex>"
 * would mean a source for some names and the combined view for others.
 */
bool qname_valid_source_name(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	if (n == 1 && ((name[0] >= 'a' && name[0] <= 'f') || (name[0] >= 'A' && name[0] <= 'F')))
		return false;
	for (size_t i = 0; i < sizeof(view_labels) / sizeof(view_labels[0]); i++)
		if (strcasecmp(name, view_labels[i]) == 0)
			return false;
	return true;
}
