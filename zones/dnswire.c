/*
 * dnswire: bounds-checked DNS message reading and writing.
 *
 * Two facts keep the hot paths short:
 * - a label length byte is at most 63, below 'A' (65), so lowercasing or
 *   comparing a whole wire-form name byte by byte never alters its structure;
 * - every pointer we accept points before the part of the name it continues,
 *   so following pointers always moves backwards and cannot loop.
 */
#include "zones/dnswire.h"

#include <errno.h>
#include <string.h>

#define LABEL_MAX 63
#define PTR_HOPS_MAX 64
#define PTR_OFF_MAX 0x3fffu
#define RR_FIXED_LEN 10          /* type, class, ttl, rdlength */
#define QUESTION_FIXED_LEN 4     /* qtype, qclass */
#define OPT_RR_LEN 11            /* root owner + RR_FIXED_LEN, no options */
#define EDNS_OPTION_HDR_LEN 4    /* option code, option length */
#define EDNS_DO 0x8000u
#define TXT_STRING_MAX 255
#define RDLEN_MAX 0xffffu
#define SOA_FIXED_LEN 20         /* serial, refresh, retry, expire, minimum */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Branch-free so that loops over names vectorise. */
static inline uint8_t ascii_lower(uint8_t c)
{
	return (uint8_t)(c + (((uint8_t)(c - 'A') < 26u) << 5));
}

/* Eight bytes at a time (SWAR): a byte becomes lowercase when it is in
 * 'A'..'Z'; bytes >= 0x80 never match. No carry crosses a byte: each sum
 * stays below 0x100. */
static inline uint64_t ascii_lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
	uint64_t low7 = x & ~high;
	uint64_t at_least_A = low7 + ones * (0x80 - 'A');
	uint64_t above_Z = low7 + ones * (0x7f - 'Z');
	uint64_t upper = at_least_A & ~above_Z & ~x & high;

	return x | upper >> 2;
}

static void lower_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, src + i, 8);
		x = ascii_lower8(x);
		memcpy(dst + i, &x, 8);
	}
	for (; i < n; i++)
		dst[i] = ascii_lower(src[i]);
}

/* Length of the wire-form name at the start of name (at most len bytes),
 * or -EINVAL when it is not one well-formed uncompressed name. */
static int wire_name_len(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	while (pos < len && pos < DNSWIRE_NAME_MAX) {
		uint8_t c = name[pos];
		if (c == 0)
			return (int)pos + 1;
		if (c > LABEL_MAX)
			return -EINVAL;
		pos += 1u + c;
	}
	return -EINVAL;
}

bool dnswire_name_valid(const uint8_t *name, size_t len)
{
	return name && wire_name_len(name, len) == (int)len;
}

/* ------------------------------------------------------------ names */

int dnswire_read_name(const uint8_t *pkt, size_t len, size_t off, uint8_t *out,
		      size_t cap, size_t *next_off)
{
	size_t pos = off, seg_start = off, out_len = 0, end = 0;
	unsigned hops = 0;

	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = pkt[pos];
		if (c == 0)
			break;
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -EBADMSG;
			size_t target = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			if (target >= seg_start || ++hops > PTR_HOPS_MAX)
				return -EBADMSG;
			if (hops == 1)
				end = pos + 2;
			pos = seg_start = target;
			continue;
		}
		if (c > LABEL_MAX)
			return -EBADMSG; /* 0x40 (extended) and 0x80 (reserved) label types */
		/* Room for this label and at least the root label after it. */
		if (out_len + 1u + c + 1u > DNSWIRE_NAME_MAX)
			return -EBADMSG;
		if (out) {
			if (pos + 1u + c > len)
				return -EBADMSG;
			if (out_len + 1u + c > cap)
				return -ENOSPC;
			memcpy(out + out_len, pkt + pos, 1u + c);
		}
		out_len += 1u + c;
		pos += 1u + c;
	}
	if (out) {
		if (out_len + 1 > cap)
			return -ENOSPC;
		out[out_len] = 0;
	}
	if (hops == 0)
		end = pos + 1;
	if (next_off)
		*next_off = end;
	return (int)out_len + 1;
}

void dnswire_name_lower(uint8_t *name, size_t len)
{
	lower_copy(name, name, len);
}

bool dnswire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b,
			size_t blen, bool exact)
{
	if (alen != blen)
		return false;
	if (exact)
		return memcmp(a, b, alen) == 0;
	uint8_t diff = 0;
	for (size_t i = 0; i < alen; i++)
		diff |= ascii_lower(a[i]) ^ ascii_lower(b[i]);
	return diff == 0;
}

static bool text_char_plain(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Append the presentation form of one label byte; returns chars written or
 * -ENOSPC (keeping one byte for the NUL). */
static int text_put_byte(char *out, size_t cap, size_t o, uint8_t c)
{
	if (text_char_plain(c)) {
		if (o + 1 >= cap)
			return -ENOSPC;
		out[o] = (char)c;
		return 1;
	}
	if (c == '.') {
		if (o + 2 >= cap)
			return -ENOSPC;
		out[o] = '\\';
		out[o + 1] = '.';
		return 2;
	}
	if (o + 4 >= cap)
		return -ENOSPC;
	out[o] = '\\';
	out[o + 1] = (char)('0' + c / 100);
	out[o + 2] = (char)('0' + c / 10 % 10);
	out[o + 3] = (char)('0' + c % 10);
	return 4;
}

int dnswire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	size_t o = 0, pos = 0;

	if (wire_name_len(name, len) != (int)len)
		return -EINVAL;
	if (cap == 0)
		return -ENOSPC;
	if (len == 1) {
		if (cap < 2)
			return -ENOSPC;
		out[0] = '.';
		out[1] = 0;
		return 1;
	}
	while (name[pos] != 0) {
		uint8_t l = name[pos];
		if (o > 0) {
			if (o + 1 >= cap)
				return -ENOSPC;
			out[o++] = '.';
		}
		for (size_t i = pos + 1; i <= pos + l; i++) {
			int n = text_put_byte(out, cap, o, name[i]);
			if (n < 0)
				return n;
			o += (size_t)n;
		}
		pos += 1u + l;
	}
	out[o] = 0;
	return (int)o;
}

/* Read one possibly escaped character of presentation text at *s, advancing
 * *s. Returns the byte or -EINVAL. */
static int text_get_char(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;

	if (p[0] != '\\') {
		*s += 1;
		return p[0];
	}
	if (p[1] == 0)
		return -EINVAL;
	if (p[1] < '0' || p[1] > '9') {
		*s += 2;
		return p[1];
	}
	for (int i = 1; i <= 3; i++)
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
	int v = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
	if (v > 255)
		return -EINVAL;
	*s += 4;
	return v;
}

int dnswire_name_from_text(const char *text, uint8_t *out, size_t cap)
{
	uint8_t tmp[DNSWIRE_NAME_MAX];
	size_t len_pos = 0, n = 1; /* tmp[len_pos]: length byte of the open label */

	if (text[0] == 0)
		return -EINVAL;
	if (strcmp(text, ".") == 0) {
		tmp[0] = 0;
	} else {
		while (*text) {
			if (*text == '.') {
				if (n - len_pos - 1 == 0 || n >= DNSWIRE_NAME_MAX)
					return -EINVAL;
				tmp[len_pos] = (uint8_t)(n - len_pos - 1);
				len_pos = n++;
				text++;
				continue;
			}
			int c = text_get_char(&text);
			/* Keep a byte free for the root label. */
			if (c < 0 || n - len_pos - 1 == LABEL_MAX || n + 1 >= DNSWIRE_NAME_MAX)
				return -EINVAL;
			tmp[n++] = (uint8_t)c;
		}
		if (n - len_pos - 1 > 0) {
			tmp[len_pos] = (uint8_t)(n - len_pos - 1);
			tmp[n++] = 0;
		} else {
			tmp[len_pos] = 0; /* trailing dot: the open label is the root */
		}
	}
	if (n > cap)
		return -ENOSPC;
	memcpy(out, tmp, n);
	return (int)n;
}

void dnswire_name_randomize_case(uint8_t *name, size_t len, const uint8_t *rnd,
				 size_t rnd_len)
{
	size_t bit = 0;

	if (rnd_len == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		uint8_t lower = name[i] | 0x20;
		if ((uint8_t)(lower - 'a') >= 26u)
			continue;
		bool upper = (rnd[(bit >> 3) % rnd_len] >> (bit & 7)) & 1;
		name[i] = upper ? (uint8_t)(lower & ~0x20) : lower;
		bit++;
	}
}

/* ------------------------------------------------------------ records */

/* Read the record at *pos (owner name checked, rdata inside the packet) and
 * advance *pos past it. */
static int read_rr(const uint8_t *pkt, size_t len, size_t *pos, struct dnswire_rr *rr)
{
	size_t p;
	int rc = dnswire_read_name(pkt, len, *pos, NULL, 0, &p);

	if (rc < 0)
		return rc;
	if (len - p < RR_FIXED_LEN)
		return -EBADMSG;
	rr->owner_off = *pos;
	rr->type = get16(pkt + p);
	rr->rclass = get16(pkt + p + 2);
	rr->ttl = get32(pkt + p + 4);
	rr->rdlen = get16(pkt + p + 8);
	p += RR_FIXED_LEN;
	if (len - p < rr->rdlen)
		return -EBADMSG;
	rr->rdata_off = p;
	rr->rdata = pkt + p;
	*pos = p + rr->rdlen;
	return 0;
}

/* ------------------------------------------------------------ queries */

/* The question name: uncompressed labels only (see dnswire.h). */
static int parse_question(const uint8_t *pkt, size_t len, size_t *pos,
			  struct dnswire_query *q)
{
	const size_t start = *pos;
	size_t p = start;
	unsigned nlabels = 0;

	for (;;) {
		if (p >= len)
			return -EBADMSG;
		uint8_t c = pkt[p];
		if (c == 0)
			break;
		if (c > LABEL_MAX)
			return -EBADMSG; /* pointer or reserved label type */
		/* At most 254 bytes of labels, so at most 127 labels. */
		if (p - start + 1u + c >= DNSWIRE_NAME_MAX)
			return -EBADMSG;
		q->label_off[nlabels++] = (uint8_t)(p - start);
		p += 1u + c;
	}
	size_t name_len = p - start + 1;
	if (len - p - 1 < QUESTION_FIXED_LEN)
		return -EBADMSG;
	memcpy(q->qname, pkt + start, name_len);
	lower_copy(q->qname_lc, pkt + start, name_len);
	q->qname_len = (uint16_t)name_len;
	q->nlabels = (uint8_t)nlabels;
	q->qtype = get16(pkt + p + 1);
	q->qclass = get16(pkt + p + 3);
	*pos = p + 1 + QUESTION_FIXED_LEN;
	return 0;
}

/* Walk the options of an OPT record's rdata; they must fill it exactly. */
static int parse_edns_options(const uint8_t *rdata, size_t rdlen, struct dnswire_query *q)
{
	size_t p = 0;

	while (rdlen - p >= EDNS_OPTION_HDR_LEN) {
		uint16_t code = get16(rdata + p);
		uint16_t olen = get16(rdata + p + 2);
		p += EDNS_OPTION_HDR_LEN;
		if (rdlen - p < olen)
			return -EBADMSG;
		if (code == DNSWIRE_EDNS_OPT_DIAG)
			q->want_diag = true;
		p += olen;
	}
	return p == rdlen ? 0 : -EBADMSG;
}

static int parse_opt(const uint8_t *pkt, const struct dnswire_rr *rr,
		     struct dnswire_query *q)
{
	if (q->has_edns || pkt[rr->owner_off] != 0)
		return -EBADMSG;
	q->has_edns = true;
	q->edns_udp_size = rr->rclass < DNSWIRE_UDP_MIN ? DNSWIRE_UDP_MIN : rr->rclass;
	q->edns_version = (uint8_t)(rr->ttl >> 16);
	q->edns_do = (rr->ttl & EDNS_DO) != 0;
	return parse_edns_options(rr->rdata, rr->rdlen, q);
}

/* Records after the question: skip answer and authority (a client has no
 * business sending any, but they are checked and cannot hide an OPT), then
 * find the OPT record in the additional section. */
static int parse_query_records(const uint8_t *pkt, size_t len, size_t pos,
			       struct dnswire_query *q)
{
	unsigned before_ar = (unsigned)get16(pkt + 6) + get16(pkt + 8);
	unsigned arcount = get16(pkt + 10);
	struct dnswire_rr rr;

	for (unsigned i = 0; i < before_ar + arcount; i++) {
		if (read_rr(pkt, len, &pos, &rr) < 0)
			return -EBADMSG;
		if (rr.type != DNS_T_OPT)
			continue;
		if (i < before_ar || parse_opt(pkt, &rr, q) < 0) {
			q->bad_edns = true;
			return -EBADMSG;
		}
	}
	return 0;
}

int dnswire_parse_query(const uint8_t *pkt, size_t len, struct dnswire_query *q)
{
	size_t pos = DNSWIRE_HEADER_LEN;
	int rc;

	q->id = q->flags = q->qdcount = 0;
	q->qtype = q->qclass = 0;
	q->qname_len = 0;
	q->nlabels = 0;
	q->has_edns = q->edns_do = q->want_diag = q->bad_edns = false;
	q->edns_version = 0;
	q->edns_udp_size = 0;
	if (len < DNSWIRE_HEADER_LEN)
		return -EINVAL;
	q->id = get16(pkt);
	q->flags = get16(pkt + 2);
	q->qdcount = get16(pkt + 4);
	if (q->flags & DNS_F_QR)
		return -EINVAL;
	if (q->qdcount != 1)
		return -EBADMSG;
	rc = parse_question(pkt, len, &pos, q);
	if (rc < 0)
		return rc;
	return parse_query_records(pkt, len, pos, q);
}

/* ------------------------------------------------------------ writer */

int dnswire_write_response(struct dnswire_writer *w, uint8_t *buf, size_t cap,
			   size_t limit, const struct dnswire_query *q,
			   enum dns_rcode rcode, bool aa)
{
	size_t question_len = q->qname_len ? q->qname_len + (size_t)QUESTION_FIXED_LEN : 0;
	uint16_t flags = DNS_F_QR | (q->flags & (0x7800u | DNS_F_RD)) |
			 (aa ? DNS_F_AA : 0u) | ((unsigned)rcode & 0x0fu);

	if (cap < DNSWIRE_HEADER_LEN + question_len)
		return -ENOSPC;
	w->buf = buf;
	w->cap = cap;
	w->limit = limit < cap ? limit : cap;
	w->len = DNSWIRE_HEADER_LEN;
	memset(w->counts, 0, sizeof w->counts);
	w->truncated = false;
	w->opt_reserve = 0;
	if (q->has_edns)
		w->opt_reserve = OPT_RR_LEN +
			(q->want_diag ? EDNS_OPTION_HDR_LEN + DNSWIRE_DIAG_MAX : 0u);

	put16(buf, q->id);
	put16(buf + 2, flags);
	memset(buf + 4, 0, DNSWIRE_HEADER_LEN - 4);
	if (q->qname_len) {
		uint8_t *p = buf + DNSWIRE_HEADER_LEN;
		memcpy(p, q->qname, q->qname_len);
		put16(p + q->qname_len, q->qtype);
		put16(p + q->qname_len + 2, q->qclass);
		w->len += question_len;
		w->counts[DNSWIRE_QD] = 1;
	}
	return 0;
}

static bool section_in_order(const struct dnswire_writer *w, enum dnswire_section sec)
{
	if (sec < DNSWIRE_AN || sec > DNSWIRE_AR)
		return false;
	for (int s = sec + 1; s <= DNSWIRE_AR; s++)
		if (w->counts[s])
			return false;
	return true;
}

/*
 * Check that a record with rdlen bytes of rdata fits, write its owner pointer
 * and fixed fields, account for it, and return where its rdata goes in *rdata.
 */
static int rr_begin(struct dnswire_writer *w, enum dnswire_section sec,
		    uint16_t owner_off, uint16_t type, uint32_t ttl, size_t rdlen,
		    uint8_t **rdata)
{
	size_t need = 2 + RR_FIXED_LEN + rdlen;
	size_t soft_end = w->limit > w->opt_reserve ? w->limit - w->opt_reserve : 0;

	if (!section_in_order(w, sec) || owner_off < DNSWIRE_HEADER_LEN ||
	    owner_off >= w->len || owner_off > PTR_OFF_MAX || rdlen > RDLEN_MAX)
		return -EINVAL;
	if (w->truncated)
		return -EMSGSIZE;
	if (w->len + need > soft_end) {
		if (sec != DNSWIRE_AR)
			w->truncated = true;
		return -EMSGSIZE;
	}
	/* Only reachable when a caller raised w->limit past cap by hand. */
	if (w->len + need > w->cap)
		return -ENOSPC;
	uint8_t *p = w->buf + w->len;
	put16(p, (uint16_t)(0xc000u | owner_off));
	put16(p + 2, type);
	put16(p + 4, DNS_C_IN);
	put32(p + 6, ttl);
	put16(p + 10, (uint16_t)rdlen);
	*rdata = p + 12;
	w->len += need;
	w->counts[sec]++;
	return 0;
}

int dnswire_write_rdata(struct dnswire_writer *w, enum dnswire_section sec,
			uint16_t owner_off, uint16_t type, uint32_t ttl,
			const uint8_t *rdata, uint16_t rdlen)
{
	uint8_t *p;
	int rc = rr_begin(w, sec, owner_off, type, ttl, rdlen, &p);

	if (rc == 0 && rdlen)
		memcpy(p, rdata, rdlen);
	return rc;
}

int dnswire_write_a(struct dnswire_writer *w, enum dnswire_section sec,
		    uint16_t owner_off, uint32_t ttl, const uint8_t addr[4])
{
	return dnswire_write_rdata(w, sec, owner_off, DNS_T_A, ttl, addr, 4);
}

int dnswire_write_txt(struct dnswire_writer *w, enum dnswire_section sec,
		      uint16_t owner_off, uint32_t ttl, const char *txt, size_t len)
{
	/* An empty text is one empty character-string. */
	size_t nstrings = len == 0 ? 1 : (len + TXT_STRING_MAX - 1) / TXT_STRING_MAX;
	uint8_t *p;
	int rc;

	rc = rr_begin(w, sec, owner_off, DNS_T_TXT, ttl, len + nstrings, &p);
	if (rc < 0)
		return rc;
	for (size_t done = 0, i = 0; i < nstrings; i++) {
		size_t chunk = len - done < TXT_STRING_MAX ? len - done : TXT_STRING_MAX;
		*p++ = (uint8_t)chunk;
		if (chunk)
			memcpy(p, txt + done, chunk);
		p += chunk;
		done += chunk;
	}
	return 0;
}

int dnswire_write_txt_multi(struct dnswire_writer *w, enum dnswire_section sec,
			    uint16_t owner_off, uint32_t ttl,
			    const char *const *strs, const size_t *lens, size_t n)
{
	size_t rdlen = 0;
	uint8_t *p;
	int rc;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] > TXT_STRING_MAX)
			return -EINVAL;
		rdlen += 1 + lens[i];
		if (rdlen > RDLEN_MAX)
			return -EINVAL;
	}
	rc = rr_begin(w, sec, owner_off, DNS_T_TXT, ttl, rdlen, &p);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		*p++ = (uint8_t)lens[i];
		if (lens[i])
			memcpy(p, strs[i], lens[i]);
		p += lens[i];
	}
	return 0;
}

int dnswire_write_ns(struct dnswire_writer *w, enum dnswire_section sec,
		     uint16_t owner_off, uint32_t ttl,
		     const uint8_t *target, size_t target_len)
{
	if (wire_name_len(target, target_len) != (int)target_len)
		return -EINVAL;
	return dnswire_write_rdata(w, sec, owner_off, DNS_T_NS, ttl, target,
				   (uint16_t)target_len);
}

int dnswire_write_soa(struct dnswire_writer *w, enum dnswire_section sec,
		      uint16_t owner_off, uint32_t ttl, const struct dnswire_soa *soa)
{
	uint8_t *p;
	int rc;

	if (wire_name_len(soa->mname, soa->mname_len) != (int)soa->mname_len ||
	    wire_name_len(soa->rname, soa->rname_len) != (int)soa->rname_len)
		return -EINVAL;
	rc = rr_begin(w, sec, owner_off, DNS_T_SOA, ttl,
		      soa->mname_len + soa->rname_len + SOA_FIXED_LEN, &p);
	if (rc < 0)
		return rc;
	memcpy(p, soa->mname, soa->mname_len);
	p += soa->mname_len;
	memcpy(p, soa->rname, soa->rname_len);
	p += soa->rname_len;
	put32(p, soa->serial);
	put32(p + 4, soa->refresh);
	put32(p + 8, soa->retry);
	put32(p + 12, soa->expire);
	put32(p + 16, soa->minimum);
	return 0;
}

/* The OPT record; ext_rcode is the upper 8 bits of a 12-bit rcode. */
static int write_opt_record(struct dnswire_writer *w, const struct dnswire_query *q,
			    uint16_t udp_size, const char *diag_txt, uint8_t ext_rcode)
{
	bool with_diag = diag_txt && q->want_diag;
	size_t diag_len = with_diag ? strnlen(diag_txt, DNSWIRE_DIAG_MAX) : 0;
	size_t rdlen = with_diag ? EDNS_OPTION_HDR_LEN + diag_len : 0;

	if (!q->has_edns)
		return 0;
	if (w->len + OPT_RR_LEN + rdlen > w->cap)
		return -ENOSPC;
	uint8_t *p = w->buf + w->len;
	p[0] = 0;
	put16(p + 1, DNS_T_OPT);
	put16(p + 3, udp_size);
	p[5] = ext_rcode;
	p[6] = 0; /* version */
	put16(p + 7, q->edns_do ? EDNS_DO : 0);
	put16(p + 9, (uint16_t)rdlen);
	if (with_diag) {
		put16(p + 11, DNSWIRE_EDNS_OPT_DIAG);
		put16(p + 13, (uint16_t)diag_len);
		memcpy(p + 15, diag_txt, diag_len);
	}
	w->len += OPT_RR_LEN + rdlen;
	w->counts[DNSWIRE_AR]++;
	return 0;
}

int dnswire_write_opt(struct dnswire_writer *w, const struct dnswire_query *q,
		      uint16_t udp_size, const char *diag_txt)
{
	return write_opt_record(w, q, udp_size, diag_txt, 0);
}

int dnswire_write_badvers(struct dnswire_writer *w, const struct dnswire_query *q,
			  uint16_t udp_size)
{
	dnswire_set_rcode(w, (enum dns_rcode)(DNS_R_BADVERS & 0x0f));
	return write_opt_record(w, q, udp_size, NULL, DNS_R_BADVERS >> 4);
}

void dnswire_set_rcode(struct dnswire_writer *w, enum dns_rcode rcode)
{
	w->buf[3] = (uint8_t)((w->buf[3] & 0xf0u) | ((unsigned)rcode & 0x0fu));
}

size_t dnswire_finish(struct dnswire_writer *w)
{
	if (w->truncated)
		w->buf[2] |= DNS_F_TC >> 8;
	for (int s = 0; s < 4; s++)
		put16(w->buf + 4 + 2 * s, w->counts[s]);
	return w->len;
}

/* ------------------------------------------------------ query for upstream */

int dnswire_build_query(uint8_t *buf, size_t cap, const uint8_t *name,
			size_t name_len, uint16_t qtype, uint16_t udp_size)
{
	size_t need = DNSWIRE_HEADER_LEN + name_len + QUESTION_FIXED_LEN +
		      (udp_size ? OPT_RR_LEN : 0u);

	if (wire_name_len(name, name_len) != (int)name_len)
		return -EINVAL;
	if (need > cap)
		return -ENOSPC;
	memset(buf, 0, DNSWIRE_HEADER_LEN);
	put16(buf + 2, DNS_F_RD);
	put16(buf + 4, 1);
	uint8_t *p = buf + DNSWIRE_HEADER_LEN;
	memcpy(p, name, name_len);
	p += name_len;
	put16(p, qtype);
	put16(p + 2, DNS_C_IN);
	p += QUESTION_FIXED_LEN;
	if (udp_size) {
		put16(buf + 10, 1);
		memset(p, 0, OPT_RR_LEN);
		put16(p + 1, DNS_T_OPT);
		put16(p + 3, udp_size);
	}
	return (int)need;
}

/* ----------------------------------------------------------- reader */

int dnswire_reader_init(struct dnswire_reader *r, const uint8_t *pkt, size_t len)
{
	size_t pos = DNSWIRE_HEADER_LEN;

	r->pkt = pkt;
	r->len = len;
	r->qname_len = 0;
	r->qtype = r->qclass = 0;
	if (len < DNSWIRE_HEADER_LEN)
		return -EBADMSG;
	r->id = get16(pkt);
	r->flags = get16(pkt + 2);
	for (int s = 0; s < 4; s++)
		r->counts[s] = r->section_left[s] = get16(pkt + 4 + 2 * s);
	for (unsigned i = 0; i < r->counts[DNSWIRE_QD]; i++) {
		uint8_t *out = i == 0 ? r->qname : NULL;
		int n = dnswire_read_name(pkt, len, pos, out, sizeof r->qname, &pos);
		if (n < 0 || len - pos < QUESTION_FIXED_LEN)
			return -EBADMSG;
		if (i == 0) {
			r->qname_len = (uint16_t)n;
			r->qtype = get16(pkt + pos);
			r->qclass = get16(pkt + pos + 2);
		}
		pos += QUESTION_FIXED_LEN;
	}
	r->section_left[DNSWIRE_QD] = 0;
	r->section = DNSWIRE_AN;
	r->pos = pos;
	return 0;
}

int dnswire_reader_next(struct dnswire_reader *r, struct dnswire_rr *rr)
{
	while (r->section <= DNSWIRE_AR && r->section_left[r->section] == 0)
		r->section++;
	if (r->section > DNSWIRE_AR)
		return 0;
	if (read_rr(r->pkt, r->len, &r->pos, rr) < 0) {
		r->pos = r->len; /* every later call fails too */
		return -EBADMSG;
	}
	rr->section = (enum dnswire_section)r->section;
	r->section_left[r->section]--;
	return 1;
}

/* ------------------------------------------------------ answer walking */

int dnswire_next_answer_for(struct dnswire_reader *r, const uint8_t *name,
			    size_t name_len, struct dnswire_rr *rr)
{
	uint8_t owner[DNSWIRE_NAME_MAX];
	int rc;

	while ((rc = dnswire_reader_next(r, rr)) == 1) {
		if (rr->section != DNSWIRE_AN)
			return 0;
		if (rr->rclass != DNS_C_IN)
			continue;
		int n = dnswire_read_name(r->pkt, r->len, rr->owner_off, owner,
					  sizeof owner, NULL);
		if (n < 0)
			return -EBADMSG;
		if (dnswire_name_equal(owner, (size_t)n, name, name_len, false))
			return 1;
	}
	return rc;
}

int dnswire_read_rdata_name(const uint8_t *pkt, const struct dnswire_rr *rr,
			    uint8_t *out)
{
	size_t end;
	int n = dnswire_read_name(pkt, rr->rdata_off + rr->rdlen, rr->rdata_off, out,
				  DNSWIRE_NAME_MAX, &end);
	if (n < 0 || end != rr->rdata_off + (size_t)rr->rdlen)
		return -EBADMSG;
	return n;
}

int dnswire_follow_cnames(const struct dnswire_reader *start, uint8_t *name,
			  size_t *name_len, uint32_t *min_ttl)
{
	for (int links = 0;; links++) {
		struct dnswire_reader r = *start;
		struct dnswire_rr rr;
		int rc;

		while ((rc = dnswire_next_answer_for(&r, name, *name_len, &rr)) == 1 &&
		       rr.type != DNS_T_CNAME)
			;
		if (rc <= 0)
			return rc < 0 ? rc : links;
		if (links == DNSWIRE_CNAME_LINKS_MAX)
			return -EBADMSG;
		int n = dnswire_read_rdata_name(r.pkt, &rr, name);
		if (n < 0)
			return n;
		*name_len = (size_t)n;
		uint32_t ttl = rr.ttl > INT32_MAX ? 0 : rr.ttl;
		if (ttl < *min_ttl)
			*min_ttl = ttl;
	}
}
