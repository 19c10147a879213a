/*
 * spf_eval: SPF check_host() (RFC 7208), pure.
 *
 * SPF records are written by whoever sends the mail, so everything here is
 * bounded: record length and term count, macro expansion, DNS-querying terms
 * across the whole evaluation (includes and redirects too), void lookups,
 * MX and PTR names, and the total number of DNS questions. The evaluator does
 * no I/O: each DNS question goes through a callback, which is synchronous
 * (rblmux runs this inside its isolated helper process, where a blocked
 * thread harms nobody) and decides about time limits itself.
 *
 * Names cross the callback in uncompressed wire form, so that a label built
 * by macro expansion (which may hold '\' or other odd bytes) is asked
 * exactly as built, with no text-escaping layer in between.
 */
#ifndef RBLMUX_ZONES_SPF_EVAL_H
#define RBLMUX_ZONES_SPF_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* check_host() results; the numbers are the SPEC's 127.0.4.<r> codes. */
enum spf_result {
	SPF_PASS = 1,
	SPF_FAIL = 2,
	SPF_SOFTFAIL = 3,
	SPF_NEUTRAL = 4,
	SPF_NONE = 5,
	SPF_PERMERROR = 6,
	SPF_TEMPERROR = 7,
};

/* RFC 7208 §4.6.4 */
#define SPF_EVAL_MAX_DNS_TERMS 10  /* include a mx ptr exists redirect */
#define SPF_EVAL_MAX_VOID 2        /* terms whose lookup was NXDOMAIN or NODATA */
#define SPF_EVAL_MAX_NAMES 10      /* MX names (more: permerror), PTR names (rest ignored) */
/* Every question of one evaluation: the limits above allow about 125. */
#define SPF_EVAL_MAX_QUESTIONS 150
/* A record longer than this is a permerror: a TXT that big does not even fit
 * one UDP answer, and rblmux must bound what it parses. */
#define SPF_EVAL_RECORD_MAX 4096
#define SPF_EVAL_TERMS_MAX 512
/* Text after macro expansion, before a domain is cut to 253 bytes. */
#define SPF_EVAL_EXPAND_MAX 4096
#define SPF_EVAL_EXP_MAX 512       /* explanation text kept */
#define SPF_EVAL_REASON_MAX 160

/* ------------------------------------------------------------------ DNS */

enum spf_answer_status {
	SPF_ANS_RECORDS = 0,  /* NOERROR with records (n may still be 0) */
	SPF_ANS_NODATA = 1,   /* NOERROR, no record of the type */
	SPF_ANS_NXDOMAIN = 2,
	SPF_ANS_ERROR = 3,    /* SERVFAIL, timeout, refused, bad answer: temperror */
};

#define SPF_ANS_MAX_RR 128
#define SPF_ANS_DATA_MAX 16384

/* One record of an answer: its bytes are data[off .. off+len). A: 4 bytes;
 * AAAA: 16; TXT: the RR's character-strings concatenated (RFC 7208 §3.3);
 * MX: the exchange (wire name), pref its preference; PTR: the name (wire). */
struct spf_answer_rr {
	uint32_t off;
	uint16_t len;
	uint16_t pref;
};

struct spf_answer {
	uint8_t status;          /* enum spf_answer_status */
	uint16_t n;              /* records kept in rr[] */
	uint16_t n_total;        /* records in the answer (> n when some did not fit) */
	uint32_t data_len;
	struct spf_answer_rr rr[SPF_ANS_MAX_RR];
	uint8_t data[SPF_ANS_DATA_MAX];
};

/* Ask (name, qtype) and fill *out; returns 0, or a negative errno when it
 * could not ask (then the question counts as SPF_ANS_ERROR). qtype is one of
 * 1 (A), 12 (PTR), 15 (MX), 16 (TXT), 28 (AAAA). */
typedef int (*spf_eval_dns_fn)(void *arg, const uint8_t *name, size_t name_len,
			       uint16_t qtype, struct spf_answer *out);

/* Append one record to an answer (builders and tests). Returns 0, or -ENOSPC
 * when it did not fit (n_total still counts it). */
int spf_answer_add(struct spf_answer *a, const void *data, size_t len,
		   uint16_t pref);

/* ----------------------------------------------------------- evaluation */

struct spf_eval_req {
	int family;                /* AF_INET or AF_INET6 */
	uint8_t ip[16];            /* network order; an IPv4-mapped IPv6 address
				    * is checked as IPv4 */
	const char *domain;        /* <domain> of check_host: the MAIL FROM domain */
	const char *local_part;    /* NULL or "": postmaster (RFC 7208 §4.3) */
	const char *helo;          /* %{h}; NULL: the domain */
	const char *receiver;      /* %{r}; NULL: "unknown" */
	uint32_t now;              /* %{t} */
	spf_eval_dns_fn dns;
	void *dns_arg;
};

struct spf_eval_out {
	enum spf_result result;
	/* For SPF_FAIL: the domain's own explanation (exp=), expanded; empty
	 * when it gave none or it could not be used (then the receiver's
	 * default applies). Printable ASCII. */
	bool has_explanation;
	char explanation[SPF_EVAL_EXP_MAX];
	/* A short, printable reason: the mechanism that matched, or what went
	 * wrong ("too many DNS lookups", "syntax error: ...", ...). */
	char reason[SPF_EVAL_REASON_MAX];
	unsigned dns_terms;        /* DNS-querying terms evaluated */
	unsigned void_lookups;
	unsigned questions;        /* DNS questions asked */
};

/*
 * Run check_host(ip, domain, sender) with the limits above. Always fills
 * *out; returns out->result. Never fails otherwise: a memory shortage is a
 * temperror.
 */
enum spf_result spf_eval_check_host(const struct spf_eval_req *req,
				    struct spf_eval_out *out);

/* ------------------------------------------------------------- answers */

/* The spf. view's TXT is one character-string: under 255 bytes. */
#define SPF_EVAL_TXT_MAX 254

/*
 * The TXT answer of the spf. view, a Received-SPF header value (RFC 7208
 * §9.1): the result, then a comment. A fail's comment is explanation when
 * not NULL (the domain's exp=), else "<domain>: <ip> is not a permitted
 * sender"; pass, softfail and neutral say so in the same form; none,
 * permerror and temperror give "<domain>: <reason>". Bytes outside
 * printable ASCII become '?', parentheses and backslashes are escaped
 * (RFC 5322 quoted-pair); a comment too long is cut and ends in "...".
 * Writes at most min(cap - 1, SPF_EVAL_TXT_MAX) bytes and a NUL; returns
 * the length.
 */
size_t spf_eval_format_txt(char *out, size_t cap, enum spf_result r, const char *domain,
			   const char *ip_text, const char *explanation,
			   const char *reason);

/* "pass", "fail", ... ("?" for a value out of range). */
const char *spf_result_name(enum spf_result r);

/* Parse "pass".."temperror" (case-insensitive). Returns the result or 0. */
enum spf_result spf_result_from_name(const char *name);

#endif
