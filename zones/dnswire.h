/*
 * dnswire: a bounds-checked DNS message reader and writer (RFC 1035, RFC 6891).
 *
 * No allocation, no I/O. Every reader checks each byte it touches against the
 * packet length; every writer checks the buffer capacity and reports overflow
 * instead of writing past the end. Names are handled in uncompressed wire form
 * (length-prefixed labels ending in a zero byte), at most DNSWIRE_NAME_MAX bytes.
 */
#ifndef RBLMUX_ZONES_DNSWIRE_H
#define RBLMUX_ZONES_DNSWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSWIRE_HEADER_LEN 12
#define DNSWIRE_NAME_MAX 255
#define DNSWIRE_LABELS_MAX 128
#define DNSWIRE_UDP_MIN 512
/* Local/experimental EDNS option (RFC 6891 §9: 65001-65534) carrying rblmux's
 * diagnostics: a client that sends it (empty) gets it back with text such as
 * "tier=mem age=12 lat_us=0". Used by `rblmux check`; dig can ask with
 * +ednsopt=65301. */
#define DNSWIRE_EDNS_OPT_DIAG 65301
/* Longest diagnostic text sent back; dnswire_write_response reserves room for
 * it under the client's size, so longer text is cut to this many bytes. */
#define DNSWIRE_DIAG_MAX 240

enum dns_type {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_OPT = 41,
	DNS_T_ANY = 255,
};

enum { DNS_C_IN = 1, DNS_C_ANY = 255 };

enum dns_rcode {
	DNS_R_NOERROR = 0,
	DNS_R_FORMERR = 1,
	DNS_R_SERVFAIL = 2,
	DNS_R_NXDOMAIN = 3,
	DNS_R_NOTIMP = 4,
	DNS_R_REFUSED = 5,
};
/* Extended rcode (RFC 6891 §9): the low 4 bits go in the header, the upper 8
 * in the OPT record's TTL field; see dnswire_write_badvers. */
#define DNS_R_BADVERS 16

enum { DNS_OP_QUERY = 0 };

/* Header flag bits in the second 16-bit word. */
#define DNS_F_QR 0x8000u
#define DNS_F_AA 0x0400u
#define DNS_F_TC 0x0200u
#define DNS_F_RD 0x0100u
#define DNS_F_RA 0x0080u
#define DNS_F_AD 0x0020u
#define DNS_F_CD 0x0010u
#define DNS_OPCODE(flags) (((flags) >> 11) & 0x0fu)

/* A parsed client query. The name is kept twice: as received (case preserved,
 * to echo it back) and lowercased (to match). */
struct dnswire_query {
	uint16_t id;
	uint16_t flags;            /* raw header flags word */
	uint16_t qdcount;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t qname[DNSWIRE_NAME_MAX];    /* wire form, case as received */
	uint8_t qname_lc[DNSWIRE_NAME_MAX]; /* wire form, ASCII lowercased */
	uint16_t qname_len;        /* bytes in qname, including the root label */
	uint8_t nlabels;           /* labels, not counting the root */
	uint8_t label_off[DNSWIRE_LABELS_MAX]; /* offset of each label's length byte in qname */
	bool has_edns;
	uint8_t edns_version;
	bool edns_do;
	uint16_t edns_udp_size;    /* as the client sent it, raised to 512 when
				    * smaller (RFC 6891 §6.2.5); 0 without EDNS */
	bool want_diag;            /* client sent DNSWIRE_EDNS_OPT_DIAG */
	bool bad_edns;             /* malformed or duplicate OPT: answer FORMERR */
};

/*
 * Parse a query packet.
 * Returns 0 on success;
 *   -EBADMSG when the header was readable but the rest is malformed (the
 *            caller answers FORMERR; q->id, q->flags are valid);
 *   -EINVAL  when the packet is too short for a header, or is a response
 *            (QR set): the caller drops it silently.
 * A query with qdcount != 1 is -EBADMSG. The question is valid on success,
 * and also on -EBADMSG when q->qname_len != 0 (e.g. a bad OPT record after a
 * good question), so the FORMERR can echo it.
 * The question name must be uncompressed: it is the first name in the packet,
 * so a pointer could only point into the header; any pointer there is
 * -EBADMSG. Answer and authority records a client sends are skipped (checked);
 * an OPT record there, a second OPT, an OPT whose owner is not the root or
 * whose options overrun its rdata set bad_edns and give -EBADMSG. Bytes after
 * the last record are ignored.
 */
int dnswire_parse_query(const uint8_t *pkt, size_t len, struct dnswire_query *q);

/* True when name is exactly one well-formed uncompressed wire-form name of
 * len bytes (labels <= 63, ending at the root, at most 255 bytes). */
bool dnswire_name_valid(const uint8_t *name, size_t len);

/* Lowercase ASCII letters of a wire-form name in place. */
void dnswire_name_lower(uint8_t *name, size_t len);

/*
 * Convert a wire-form name to presentation form ("a.b.c", no trailing dot;
 * "." for the root). Bytes outside [-0-9A-Za-z_] and dots inside labels are
 * escaped as \DDD or \. as in RFC 1035 master files.
 * Returns the length written (excluding NUL), -ENOSPC, or -EINVAL when name
 * is not a well-formed wire name of exactly len bytes.
 */
int dnswire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap);

/*
 * Convert presentation form ("a.b.c" or "a.b.c.", "\." escapes a dot,
 * "\DDD" a byte) to wire form. Returns the wire length, -EINVAL (empty
 * text, empty label, label > 63 or name > 255 bytes, bad escape) or -ENOSPC
 * (cap too small).
 */
int dnswire_name_from_text(const char *text, uint8_t *out, size_t cap);

/* ---------------------------------------------------------------- writer */

struct dnswire_writer {
	uint8_t *buf;
	size_t cap;      /* hard capacity of buf */
	size_t limit;    /* soft limit: records past it set truncated (UDP size) */
	size_t len;
	uint16_t counts[4]; /* qd, an, ns, ar */
	bool truncated;  /* a record did not fit under limit and was not written */
	size_t opt_reserve; /* bytes kept free under limit for the OPT record */
};

enum dnswire_section { DNSWIRE_QD = 0, DNSWIRE_AN = 1, DNSWIRE_NS = 2, DNSWIRE_AR = 3 };

/* Offset of the question name in every message we write: right after the header.
 * Owner names of answer records are compression pointers to it. */
#define DNSWIRE_QNAME_OFF DNSWIRE_HEADER_LEN

/*
 * Start a response to q in buf: copies id, opcode and RD, sets QR (and AA when
 * aa is true), the rcode, and echoes the question (case preserved) when
 * q->qname_len != 0. limit is the size the client can receive (512, the
 * client's EDNS size, or 65535 over TCP), clamped to cap; when the client
 * used EDNS, room for the OPT record is reserved under limit (11 bytes,
 * plus 4 + DNSWIRE_DIAG_MAX when the client asked for diagnostics).
 * Returns 0 or -ENOSPC (cap too small for header and question).
 */
int dnswire_write_response(struct dnswire_writer *w, uint8_t *buf, size_t cap,
			   size_t limit, const struct dnswire_query *q,
			   enum dns_rcode rcode, bool aa);

/*
 * Append a resource record. owner_off is the offset of the owner name already
 * in the message (DNSWIRE_QNAME_OFF, or the offset of a suffix of it), written
 * as a compression pointer. Records go in section order: callers write all of
 * AN, then NS, then AR.
 * Returns 0; -EMSGSIZE when the record would pass the soft limit (the writer
 * sets truncated, writes nothing; the caller sets TC for UDP or stops);
 * -ENOSPC when it would pass cap; -EINVAL for a bad owner_off, a section out
 * of order or rdata over 65535 bytes.
 * Once truncated is set, every further record gets -EMSGSIZE (no partial
 * RRsets after a gap); only the OPT record still goes in. An additional-section
 * record that does not fit is dropped without setting truncated (RFC 2181 §9).
 */
int dnswire_write_a(struct dnswire_writer *w, enum dnswire_section sec,
		    uint16_t owner_off, uint32_t ttl, const uint8_t addr[4]);
/* TXT rdata from a byte string of any length: split into <=255-byte strings. */
int dnswire_write_txt(struct dnswire_writer *w, enum dnswire_section sec,
		      uint16_t owner_off, uint32_t ttl, const char *txt, size_t len);
/* TXT rdata with several character-strings (each <= 255 bytes, checked;
 * n >= 1). */
int dnswire_write_txt_multi(struct dnswire_writer *w, enum dnswire_section sec,
			    uint16_t owner_off, uint32_t ttl,
			    const char *const *strs, const size_t *lens, size_t n);
/* NS rdata: target is an uncompressed wire-form name. */
int dnswire_write_ns(struct dnswire_writer *w, enum dnswire_section sec,
		     uint16_t owner_off, uint32_t ttl,
		     const uint8_t *target, size_t target_len);
struct dnswire_soa {
	const uint8_t *mname; size_t mname_len; /* wire form */
	const uint8_t *rname; size_t rname_len; /* wire form */
	uint32_t serial, refresh, retry, expire, minimum;
};
int dnswire_write_soa(struct dnswire_writer *w, enum dnswire_section sec,
		      uint16_t owner_off, uint32_t ttl, const struct dnswire_soa *soa);
/* Any record type with raw, already-valid rdata (no names inside to compress). */
int dnswire_write_rdata(struct dnswire_writer *w, enum dnswire_section sec,
			uint16_t owner_off, uint16_t type, uint32_t ttl,
			const uint8_t *rdata, uint16_t rdlen);

/*
 * Append the OPT record (when the query had EDNS) and, when diag_txt is not
 * NULL and q->want_diag, the DNSWIRE_EDNS_OPT_DIAG option with that text.
 * Uses the space reserved by dnswire_write_response. Advertises our UDP size
 * udp_size, EDNS version 0, and echoes the DO bit (RFC 3225). Diagnostic text
 * is cut to DNSWIRE_DIAG_MAX bytes. Does nothing without EDNS.
 * Returns 0 or -ENOSPC.
 */
int dnswire_write_opt(struct dnswire_writer *w, const struct dnswire_query *q,
		      uint16_t udp_size, const char *diag_txt);

/*
 * Answer a query whose EDNS version we don't speak (q->edns_version > 0,
 * RFC 6891 §6.1.3): sets the header rcode to BADVERS' low 4 bits (0) and
 * writes the OPT record carrying its upper 8 bits, with version 0. Call it
 * instead of dnswire_write_opt, on a response started with no records.
 * Returns 0 or -ENOSPC.
 */
int dnswire_write_badvers(struct dnswire_writer *w, const struct dnswire_query *q,
			  uint16_t udp_size);

/*
 * Finish: write the counts and flags into the header, set TC when truncated.
 * Returns the message length.
 */
size_t dnswire_finish(struct dnswire_writer *w);

/* Set the rcode of a message being written (e.g. to SERVFAIL). */
void dnswire_set_rcode(struct dnswire_writer *w, enum dns_rcode rcode);

/* ------------------------------------------------------ query for upstream */

/*
 * Build a recursive query (RD set, id 0: c-ares assigns the id) for name
 * (wire form) and qtype, with an EDNS0 OPT advertising udp_size (0: no EDNS).
 * Returns the length, -ENOSPC, or -EINVAL when name is not well-formed.
 */
int dnswire_build_query(uint8_t *buf, size_t cap, const uint8_t *name,
			size_t name_len, uint16_t qtype, uint16_t udp_size);

/*
 * Randomise the case of the ASCII letters of a wire-form name (DNS 0x20),
 * taking one bit of entropy per letter from rnd (repeated as needed).
 */
void dnswire_name_randomize_case(uint8_t *name, size_t len, const uint8_t *rnd,
				 size_t rnd_len);

/* ----------------------------------------------------------- reader */

/* One resource record as found in a message. Names stay in the packet;
 * rdata_off is the offset of the rdata in the packet (for names in rdata). */
struct dnswire_rr {
	enum dnswire_section section;
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	uint16_t rdlen;
	size_t owner_off;      /* offset of the owner name in the packet */
	size_t rdata_off;
	const uint8_t *rdata;
};

struct dnswire_reader {
	const uint8_t *pkt;
	size_t len;
	size_t pos;
	uint16_t id;
	uint16_t flags;
	uint16_t counts[4];
	uint16_t section_left[4];
	int section;
	uint8_t qname[DNSWIRE_NAME_MAX]; /* first question, case as in the packet */
	uint16_t qname_len;             /* 0 when qdcount == 0 */
	uint16_t qtype, qclass;
};

/*
 * Start reading a message: the header and the question section (every
 * question is checked; the first is copied to r->qname).
 * Returns 0 or -EBADMSG.
 */
int dnswire_reader_init(struct dnswire_reader *r, const uint8_t *pkt, size_t len);

/* Next record, in section order. Returns 1 with *rr filled, 0 at the end,
 * -EBADMSG on a malformed record (and on every call after it). The owner name
 * is checked, following pointers. */
int dnswire_reader_next(struct dnswire_reader *r, struct dnswire_rr *rr);

/*
 * Read a possibly compressed name at off in pkt into out (wire form,
 * uncompressed). Follows at most 64 pointers and only backwards: each pointer
 * must point before the start of the part of the name it continues, so loops
 * are impossible. Labels of type 0x40 and 0x80 are refused.
 * Returns the wire length written, -EBADMSG on a malformed name, -ENOSPC when
 * cap is too small for a valid name. out may be NULL to only check the name
 * and measure it. *next_off (may be NULL) is set to the offset just after the
 * name at off.
 */
int dnswire_read_name(const uint8_t *pkt, size_t len, size_t off, uint8_t *out,
		      size_t cap, size_t *next_off);

/*
 * The next answer-section record of class IN owned by name (compared without
 * case). Returns 1 with *rr, 0 at the end of the answer section, -EBADMSG.
 */
int dnswire_next_answer_for(struct dnswire_reader *r, const uint8_t *name,
			    size_t name_len, struct dnswire_rr *rr);

/*
 * A name in rdata that must fill it exactly (CNAME, PTR, NS). Returns its
 * wire length in out (DNSWIRE_NAME_MAX bytes) or -EBADMSG.
 */
int dnswire_read_rdata_name(const uint8_t *pkt, const struct dnswire_rr *rr,
			    uint8_t *out);

#define DNSWIRE_CNAME_LINKS_MAX 8
/*
 * Follow the CNAME chain from name (updated in place to its end) through the
 * answer section of the message read by start (which is not advanced).
 * Returns the links followed, or -EBADMSG (bad rdata, a chain longer than
 * DNSWIRE_CNAME_LINKS_MAX, loops included). *min_ttl is lowered to the
 * smallest CNAME TTL (TTLs with the top bit set count as 0, RFC 2181 §8).
 */
int dnswire_follow_cnames(const struct dnswire_reader *start, uint8_t *name,
			  size_t *name_len, uint32_t *min_ttl);

/* Compare two wire-form names: case-insensitively (exact == false) or byte
 * for byte (exact == true). Returns true when equal. */
bool dnswire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b,
			size_t blen, bool exact);

#endif
