/*
 * spfipc: the protocol between rblmuxd and its SPF helper (rblmux-spf), over
 * one stream socket (a socketpair; the helper's stdin).
 *
 * Every message is a frame: a 4-byte big-endian length of what follows, a
 * 1-byte type, then the type's fields (integers big-endian, strings as a
 * 2-byte length and bytes, never a NUL inside). Frames are at most
 * SPFIPC_FRAME_MAX bytes; a peer that sends anything malformed is a broken
 * peer (rblmuxd kills the helper and starts another).
 *
 *   helper -> rblmuxd  HELLO      version
 *   rblmuxd -> helper  CHECK      id, client address, domain, local part,
 *                                 HELO name, receiver, time, time limit
 *   helper -> rblmuxd  DNS_QUERY  check id, sequence number, qtype, name
 *   rblmuxd -> helper  DNS_ANSWER check id, sequence number, the records
 *                                 already parsed (zones/spf_eval's
 *                                 struct spf_answer): the helper never
 *                                 reads a DNS packet
 *   helper -> rblmuxd  RESULT     check id, result, explanation, reason,
 *                                 counters
 *
 * Any number of checks run at once; DNS questions of one check are asked
 * one at a time. Encoding and decoding are pure (no I/O), so both ends and
 * the tests share them.
 */
#ifndef RBLMUX_RESOLVER_SPFIPC_H
#define RBLMUX_RESOLVER_SPFIPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zones/dnswire.h"
#include "zones/spf_eval.h"

#define SPFIPC_VERSION 1
#define SPFIPC_HEADER_LEN 5
/* A DNS answer of SPF_ANS_DATA_MAX bytes with every record's header. */
#define SPFIPC_FRAME_MAX (SPFIPC_HEADER_LEN + 16 + SPF_ANS_DATA_MAX + 4 * SPF_ANS_MAX_RR)
#define SPFIPC_TEXT_MAX 255   /* domain, HELO, receiver, local part */

enum spfipc_type {
	SPFIPC_HELLO = 1,
	SPFIPC_CHECK = 2,
	SPFIPC_DNS_QUERY = 3,
	SPFIPC_DNS_ANSWER = 4,
	SPFIPC_RESULT = 5,
};

struct spfipc_check {
	uint32_t id;
	uint8_t family;                 /* AF_INET or AF_INET6 */
	uint8_t ip[16];
	uint32_t now;                   /* %{t} */
	uint32_t time_limit_ms;         /* the helper gives up (temperror) after it */
	char domain[SPFIPC_TEXT_MAX + 1];
	char local_part[SPFIPC_TEXT_MAX + 1];
	char helo[SPFIPC_TEXT_MAX + 1];
	char receiver[SPFIPC_TEXT_MAX + 1];
};

struct spfipc_query {
	uint32_t check_id;
	uint32_t seq;
	uint16_t qtype;
	uint8_t name_len;
	uint8_t name[DNSWIRE_NAME_MAX]; /* wire form, checked well-formed */
};

struct spfipc_result {
	uint32_t check_id;
	uint8_t result;                 /* enum spf_result */
	bool has_explanation;
	uint16_t dns_terms, void_lookups, questions;
	char explanation[SPF_EVAL_EXP_MAX];
	char reason[SPF_EVAL_REASON_MAX];
};

/*
 * Encoders: write one whole frame to buf. Return its length, -ENOSPC when
 * cap is too small, -EINVAL for values that cannot be sent (a string too
 * long or holding a NUL, a bad family, a malformed name, an answer out of
 * bounds).
 */
int spfipc_encode_hello(uint8_t *buf, size_t cap, uint32_t version);
int spfipc_encode_check(uint8_t *buf, size_t cap, const struct spfipc_check *c);
int spfipc_encode_query(uint8_t *buf, size_t cap, const struct spfipc_query *q);
int spfipc_encode_answer(uint8_t *buf, size_t cap, uint32_t check_id, uint32_t seq,
			 const struct spf_answer *a);
int spfipc_encode_result(uint8_t *buf, size_t cap, const struct spfipc_result *r);

/*
 * How long the frame at the start of buf is: > 0 when all of it is there,
 * 0 when more bytes are needed, -EBADMSG when its length field is out of
 * range (shorter than a type byte or over SPFIPC_FRAME_MAX).
 */
int spfipc_frame_len(const uint8_t *buf, size_t len);

/* The type byte of a complete frame. */
static inline uint8_t spfipc_frame_type(const uint8_t *frame)
{
	return frame[4];
}

/*
 * Decoders: frame is one complete frame of the right type (as measured by
 * spfipc_frame_len). Every field is checked; trailing bytes are an error.
 * Return 0, or -EBADMSG.
 */
int spfipc_decode_hello(const uint8_t *frame, size_t len, uint32_t *version);
int spfipc_decode_check(const uint8_t *frame, size_t len, struct spfipc_check *out);
int spfipc_decode_query(const uint8_t *frame, size_t len, struct spfipc_query *out);
int spfipc_decode_answer(const uint8_t *frame, size_t len, uint32_t *check_id,
			 uint32_t *seq, struct spf_answer *out);
int spfipc_decode_result(const uint8_t *frame, size_t len, struct spfipc_result *out);

/* Accumulates stream bytes and hands out whole frames. Zero it to start. */
struct spfipc_rbuf {
	size_t start, end;  /* unconsumed bytes: buf[start .. end) */
	size_t last;        /* length of the frame handed out last */
	uint8_t buf[2 * SPFIPC_FRAME_MAX];
};

/*
 * Where to read more bytes into: *space bytes are free at the returned
 * pointer (at least SPFIPC_FRAME_MAX once every complete frame was taken
 * with spfipc_rbuf_next).
 */
uint8_t *spfipc_rbuf_space(struct spfipc_rbuf *rb, size_t *space);

/* n bytes were written at the space pointer. */
void spfipc_rbuf_commit(struct spfipc_rbuf *rb, size_t n);

/*
 * The next complete frame: returns its length with *frame pointing at it
 * (valid until the next call to any spfipc_rbuf function), 0 when none is
 * complete, -EBADMSG when the stream is broken. Each call consumes the frame
 * it handed out before.
 */
int spfipc_rbuf_next(struct spfipc_rbuf *rb, const uint8_t **frame);

#endif
