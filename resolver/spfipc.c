#include "resolver/spfipc.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------- writing */

struct wbuf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

static void put(struct wbuf *w, const void *data, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

static void put8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 2);
}

static void put32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 4);
}

/* A string field: at most max bytes, no NUL (it came from a C string). */
static bool put_str(struct wbuf *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return false;
	put16(w, (uint16_t)n);
	put(w, s, n);
	return true;
}

static void frame_begin(struct wbuf *w, uint8_t *buf, size_t cap, uint8_t type)
{
	w->p = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
	put32(w, 0);
	put8(w, type);
}

static int frame_end(struct wbuf *w)
{
	if (w->overflow)
		return -ENOSPC;
	if (w->len > SPFIPC_FRAME_MAX)
		return -EINVAL;
	uint32_t body = (uint32_t)(w->len - 4);
	w->p[0] = (uint8_t)(body >> 24);
	w->p[1] = (uint8_t)(body >> 16);
	w->p[2] = (uint8_t)(body >> 8);
	w->p[3] = (uint8_t)body;
	return (int)w->len;
}

int spfipc_encode_hello(uint8_t *buf, size_t cap, uint32_t version)
{
	struct wbuf w;
	frame_begin(&w, buf, cap, SPFIPC_HELLO);
	put32(&w, version);
	return frame_end(&w);
}

int spfipc_encode_check(uint8_t *buf, size_t cap, const struct spfipc_check *c)
{
	struct wbuf w;
	if (c->family != AF_INET && c->family != AF_INET6)
		return -EINVAL;
	frame_begin(&w, buf, cap, SPFIPC_CHECK);
	put32(&w, c->id);
	put8(&w, c->family);
	put(&w, c->ip, 16);
	put32(&w, c->now);
	put32(&w, c->time_limit_ms);
	if (!put_str(&w, c->domain, SPFIPC_TEXT_MAX) ||
	    !put_str(&w, c->local_part, SPFIPC_TEXT_MAX) ||
	    !put_str(&w, c->helo, SPFIPC_TEXT_MAX) ||
	    !put_str(&w, c->receiver, SPFIPC_TEXT_MAX))
		return -EINVAL;
	return frame_end(&w);
}

int spfipc_encode_query(uint8_t *buf, size_t cap, const struct spfipc_query *q)
{
	struct wbuf w;
	if (!dnswire_name_valid(q->name, q->name_len))
		return -EINVAL;
	frame_begin(&w, buf, cap, SPFIPC_DNS_QUERY);
	put32(&w, q->check_id);
	put32(&w, q->seq);
	put16(&w, q->qtype);
	put8(&w, q->name_len);
	put(&w, q->name, q->name_len);
	return frame_end(&w);
}

int spfipc_encode_answer(uint8_t *buf, size_t cap, uint32_t check_id, uint32_t seq,
			 const struct spf_answer *a)
{
	struct wbuf w;
	if (a->status > SPF_ANS_ERROR || a->n > SPF_ANS_MAX_RR || a->n_total < a->n ||
	    a->data_len > SPF_ANS_DATA_MAX)
		return -EINVAL;
	frame_begin(&w, buf, cap, SPFIPC_DNS_ANSWER);
	put32(&w, check_id);
	put32(&w, seq);
	put8(&w, a->status);
	put16(&w, a->n);
	put16(&w, a->n_total);
	for (unsigned i = 0; i < a->n; i++) {
		const struct spf_answer_rr *rr = &a->rr[i];
		if (rr->off > a->data_len || rr->len > a->data_len - rr->off)
			return -EINVAL;
		put16(&w, rr->pref);
		put16(&w, rr->len);
		put(&w, a->data + rr->off, rr->len);
	}
	return frame_end(&w);
}

int spfipc_encode_result(uint8_t *buf, size_t cap, const struct spfipc_result *r)
{
	struct wbuf w;
	if (r->result < SPF_PASS || r->result > SPF_TEMPERROR)
		return -EINVAL;
	frame_begin(&w, buf, cap, SPFIPC_RESULT);
	put32(&w, r->check_id);
	put8(&w, r->result);
	put8(&w, r->has_explanation ? 1 : 0);
	put16(&w, r->dns_terms);
	put16(&w, r->void_lookups);
	put16(&w, r->questions);
	if (!put_str(&w, r->explanation, SPF_EVAL_EXP_MAX - 1) ||
	    !put_str(&w, r->reason, SPF_EVAL_REASON_MAX - 1))
		return -EINVAL;
	return frame_end(&w);
}

/* ------------------------------------------------------------- reading */

struct rdr {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static void rdr_init(struct rdr *r, const uint8_t *frame, size_t len, uint8_t type)
{
	r->p = frame;
	r->len = len;
	r->pos = SPFIPC_HEADER_LEN;
	r->bad = len < SPFIPC_HEADER_LEN || spfipc_frame_len(frame, len) != (int)len ||
		 frame[4] != type;
}

static const uint8_t *get(struct rdr *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint8_t get8(struct rdr *r)
{
	const uint8_t *p = get(r, 1);
	return p ? p[0] : 0;
}

static uint16_t get16(struct rdr *r)
{
	const uint8_t *p = get(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get32(struct rdr *r)
{
	const uint8_t *p = get(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

/* A string field into out (cap includes the NUL): no NUL inside, fits. */
static void get_str(struct rdr *r, char *out, size_t cap)
{
	uint16_t n = get16(r);
	const uint8_t *p = get(r, n);
	out[0] = '\0';
	if (!p)
		return;
	if (n >= cap || memchr(p, 0, n)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static int rdr_end(const struct rdr *r)
{
	return r->bad || r->pos != r->len ? -EBADMSG : 0;
}

int spfipc_frame_len(const uint8_t *buf, size_t len)
{
	if (len < 4)
		return 0;
	uint32_t body = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
			(uint32_t)buf[2] << 8 | buf[3];
	if (body < 1 || body > SPFIPC_FRAME_MAX - 4)
		return -EBADMSG;
	if (len < 4 + (size_t)body)
		return 0;
	return (int)(4 + body);
}

int spfipc_decode_hello(const uint8_t *frame, size_t len, uint32_t *version)
{
	struct rdr r;
	rdr_init(&r, frame, len, SPFIPC_HELLO);
	*version = get32(&r);
	return rdr_end(&r);
}

int spfipc_decode_check(const uint8_t *frame, size_t len, struct spfipc_check *out)
{
	struct rdr r;
	rdr_init(&r, frame, len, SPFIPC_CHECK);
	memset(out, 0, sizeof(*out));
	out->id = get32(&r);
	out->family = get8(&r);
	const uint8_t *ip = get(&r, 16);
	if (ip)
		memcpy(out->ip, ip, 16);
	out->now = get32(&r);
	out->time_limit_ms = get32(&r);
	get_str(&r, out->domain, sizeof(out->domain));
	get_str(&r, out->local_part, sizeof(out->local_part));
	get_str(&r, out->helo, sizeof(out->helo));
	get_str(&r, out->receiver, sizeof(out->receiver));
	if (out->family != AF_INET && out->family != AF_INET6)
		return -EBADMSG;
	return rdr_end(&r);
}

int spfipc_decode_query(const uint8_t *frame, size_t len, struct spfipc_query *out)
{
	struct rdr r;
	rdr_init(&r, frame, len, SPFIPC_DNS_QUERY);
	memset(out, 0, sizeof(*out));
	out->check_id = get32(&r);
	out->seq = get32(&r);
	out->qtype = get16(&r);
	out->name_len = get8(&r);
	const uint8_t *name = get(&r, out->name_len);
	if (name)
		memcpy(out->name, name, out->name_len);
	if (rdr_end(&r) < 0 || !dnswire_name_valid(out->name, out->name_len))
		return -EBADMSG;
	return 0;
}

int spfipc_decode_answer(const uint8_t *frame, size_t len, uint32_t *check_id,
			 uint32_t *seq, struct spf_answer *out)
{
	struct rdr r;
	rdr_init(&r, frame, len, SPFIPC_DNS_ANSWER);
	out->n = out->n_total = 0;
	out->data_len = 0;
	*check_id = get32(&r);
	*seq = get32(&r);
	out->status = get8(&r);
	uint16_t n = get16(&r);
	uint16_t n_total = get16(&r);
	if (r.bad || out->status > SPF_ANS_ERROR || n > SPF_ANS_MAX_RR || n_total < n)
		return -EBADMSG;
	for (unsigned i = 0; i < n; i++) {
		uint16_t pref = get16(&r);
		uint16_t rlen = get16(&r);
		const uint8_t *data = get(&r, rlen);
		if (!data || spf_answer_add(out, data, rlen, pref) < 0)
			return -EBADMSG;
	}
	out->n_total = n_total;
	return rdr_end(&r);
}

int spfipc_decode_result(const uint8_t *frame, size_t len, struct spfipc_result *out)
{
	struct rdr r;
	rdr_init(&r, frame, len, SPFIPC_RESULT);
	memset(out, 0, sizeof(*out));
	out->check_id = get32(&r);
	out->result = get8(&r);
	uint8_t flags = get8(&r);
	out->has_explanation = flags & 1;
	out->dns_terms = get16(&r);
	out->void_lookups = get16(&r);
	out->questions = get16(&r);
	get_str(&r, out->explanation, sizeof(out->explanation));
	get_str(&r, out->reason, sizeof(out->reason));
	if (out->result < SPF_PASS || out->result > SPF_TEMPERROR || flags > 1)
		return -EBADMSG;
	return rdr_end(&r);
}

/* -------------------------------------------------------------- stream */

uint8_t *spfipc_rbuf_space(struct spfipc_rbuf *rb, size_t *space)
{
	if (rb->last) {
		rb->start += rb->last;
		rb->last = 0;
	}
	if (rb->start > 0) {
		memmove(rb->buf, rb->buf + rb->start, rb->end - rb->start);
		rb->end -= rb->start;
		rb->start = 0;
	}
	*space = sizeof(rb->buf) - rb->end;
	return rb->buf + rb->end;
}

void spfipc_rbuf_commit(struct spfipc_rbuf *rb, size_t n)
{
	rb->end += n;
}

int spfipc_rbuf_next(struct spfipc_rbuf *rb, const uint8_t **frame)
{
	rb->start += rb->last;
	rb->last = 0;
	int n = spfipc_frame_len(rb->buf + rb->start, rb->end - rb->start);
	if (n <= 0)
		return n;
	rb->last = (size_t)n;
	*frame = rb->buf + rb->start;
	return n;
}
