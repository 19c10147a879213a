/*
 * ptrclass: what a reverse-DNS (PTR) name says about the host behind it
 * (SPEC §2, the `<ip>.ptr.<apex>` view).
 *
 * Pure: takes one PTR name and, when known, the address it was looked up
 * for, and tells whether the name looks like a dynamic/residential pool, a
 * generic but static name (business line, hosting or cloud default name) or a
 * properly named host. No I/O, no allocation, no global state; a hand-written
 * tokenizer, no regex library.
 *
 * Signals, all taken from the name's labels left of its registered domain
 * unless said otherwise:
 *  - the address embedded in the name: decimal (dashed, dotted, underscored,
 *    zero-padded, forward, reversed or in another order), the last two or
 *    three octets, hexadecimal (either byte order), IPv6 (32 nibbles or eight
 *    groups);
 *  - keywords of ISP naming conventions (dyn, dhcp, pool, ppp, dsl, cable,
 *    cpe, cust, res, mobile, ...), static/business/hosting markers, and
 *    mail-host markers (mx, mail, smtp, out, relay, ...);
 *  - label structure: long numbers, MAC addresses, hex blobs.
 * Mail-host markers only count when nothing in the name says "access line":
 * big senders put their address in the name (out203-205-221-155.mail.qq.com)
 * and must not be flagged for it.
 *
 * The flag bits are SPEC's: the resolver adds 1 (no PTR) and 2 (FCrDNS
 * fails) itself.
 */
#ifndef RBLMUX_ZONES_PTRCLASS_H
#define RBLMUX_ZONES_PTRCLASS_H

#include <stddef.h>
#include <stdint.h>

#define PTRCLASS_F_DYNAMIC 4   /* dynamic/residential-looking name */
#define PTRCLASS_F_EMBEDS  8   /* the name embeds the address (not set for
				* mail-host names, which do so by design) */
#define PTRCLASS_F_STATIC  16  /* generic but static: business line,
				* hosting/cloud default name */

#define PTRCLASS_EXPLAIN_MAX 200   /* explanation length limit, without NUL */

enum ptrclass_level {
	PTRCLASS_CONSERVATIVE = 0,  /* flags dynamic only on two agreeing signals */
	PTRCLASS_MODERATE = 1,      /* the default */
	PTRCLASS_AGGRESSIVE = 2,    /* any generic-looking access name */
};

enum ptrclass_class {
	PTRCLASS_UNKNOWN = 0,   /* some generic evidence, not enough to decide */
	PTRCLASS_DYNAMIC,       /* dynamic / residential access line */
	PTRCLASS_STATIC,        /* generic but static */
	PTRCLASS_NAMED,         /* properly named host (mail host or other) */
};

/* How the address appears in the name (strongest form found). */
enum ptrclass_addr_form {
	PTRCLASS_ADDR_NONE = 0,
	PTRCLASS_ADDR_LAST,       /* last octet only, trailing digits of the host label */
	PTRCLASS_ADDR_CONCAT,     /* last two octets glued together ("m15112") */
	PTRCLASS_ADDR_PART2,      /* last two octets as separate numbers */
	PTRCLASS_ADDR_PART3,      /* three octets as separate numbers */
	PTRCLASS_ADDR_LIKE,       /* four octet-sized numbers, not (known to be) the address */
	PTRCLASS_ADDR_FULL,       /* all four octets, decimal, any separator or padding */
	PTRCLASS_ADDR_REVERSED,   /* all four octets, decimal, reversed */
	PTRCLASS_ADDR_HEX,        /* eight hex digits, either byte order */
	PTRCLASS_ADDR_IPV6,       /* the IPv6 address, nibbles or groups */
};

/* Signal bits (ptrclass_result.signals). */
#define PTRSIG_ADDR        (1u << 0)   /* full address embedded (any form) */
#define PTRSIG_ADDR_PART   (1u << 1)   /* part of the address embedded */
#define PTRSIG_ADDR_LIKE   (1u << 2)   /* address-like numbers */
#define PTRSIG_HEX_LIKE    (1u << 3)   /* an 8-digit hex blob that is not the address */
#define PTRSIG_MAC         (1u << 4)   /* a MAC address (a CPE's) */
/* LONGNUM and NUMBERED only when the address does not explain the digits. */
#define PTRSIG_LONGNUM     (1u << 5)   /* a run of 5+ digits in the host label */
#define PTRSIG_NUMBERED    (1u << 12)  /* host label carries a 2+ digit number */
#define PTRSIG_KW_STRONG   (1u << 6)   /* dyn, dynamic, dhcp, dial, ppp, pool, ... */
#define PTRSIG_KW_ACCESS   (1u << 7)   /* dsl, cable, cpe, cust, res, mobile, ... */
#define PTRSIG_STATIC      (1u << 8)   /* static/business/server marker */
#define PTRSIG_HOSTING     (1u << 9)   /* hosting/cloud provider's domain */
#define PTRSIG_MAILHOST    (1u << 10)  /* mail-host marker, and the rest agrees */
#define PTRSIG_MAIL_IGNORED (1u << 11) /* mail-host marker overruled by access keywords */

struct ptrclass_result {
	enum ptrclass_class cls;
	int flags;                  /* PTRCLASS_F_* */
	int score;                  /* dynamic evidence, in points (the last-octet
				     * point is not given at conservative) */
	unsigned signals;           /* PTRSIG_* */
	enum ptrclass_addr_form addr_form;
	char keyword[16];           /* first access keyword found, "" if none */
	char static_marker[24];     /* static/hosting marker or domain, "" if none */
	char mail_marker[16];       /* mail-host marker, "" if none */
};

/*
 * Classify one PTR name. name: presentation form, any case, optional
 * trailing dot. family: AF_INET or AF_INET6 with addr (4 or 16 bytes,
 * network order) the address the PTR was looked up for; 0 and NULL when
 * unknown (then embedding can only be guessed: PTRSIG_ADDR_LIKE).
 * Returns 0, or -EINVAL for a NULL argument, an unknown level or family,
 * or a name that is not a hostname (empty, too long, empty label, a byte
 * other than letter, digit, '-', '_', '.').
 */
int ptrclass_classify(const char *name, int family, const uint8_t *addr,
		      enum ptrclass_level level, struct ptrclass_result *out);

/*
 * The TXT explanation, e.g.
 *   dynamic: host-31-6-170-11.dynamic.mm.pl (embeds address; keyword "dynamic")
 * ASCII, at most PTRCLASS_EXPLAIN_MAX bytes plus NUL and never more than
 * len - 1; an overlong name is shortened with "...". Returns the length
 * written, or -EINVAL (NULL argument) / -ENOSPC (len < 2).
 */
int ptrclass_explain(const struct ptrclass_result *res, const char *name,
		     char *buf, size_t len);

/* "conservative", "moderate", "aggressive" (any case). 0 or -EINVAL. */
int ptrclass_level_parse(const char *text, enum ptrclass_level *out);

/* The class's name as used in explanations: "dynamic", "generic static",
 * "named host", "unknown". */
const char *ptrclass_class_name(enum ptrclass_class cls);

#endif
