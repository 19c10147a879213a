/*
 * spf: rblmuxd's side of SPF: checks, the helper process, its DNS, the
 * verdict cache.
 *
 * A check lives from spf_check to its verdict: in s->checks (ordered by
 * deadline: every check of a service has the same time limit, so that is
 * the order they came in), in the key table (identical checks join it) and
 * the id table (the helper names checks by id), and in s->queue until it is
 * sent to a helper. A helper's messages are trusted for nothing: a check id
 * it names must be one it was given, its questions are capped per check,
 * and anything malformed gets it killed.
 *
 * DNS questions of the helper are answered through upstream_query_raw (the
 * packet, its question checked) and read with zones/spf_dns.
 */
#include "resolver/spf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resolver/log.h"
#include "resolver/spfipc.h"
#include "zones/dnswire.h"
#include "zones/spf_dns.h"

#ifndef RBLMUX_LIBEXECDIR
#define RBLMUX_LIBEXECDIR "/usr/local/libexec"
#endif
#define HELPER_NAME "rblmux-spf"

#define DEFAULT_THREADS 64
#define DEFAULT_DNS_TIMEOUT_MS 1500
#define DEFAULT_TIME_LIMIT_MS 2000
#define DEFAULT_TTL_S 300
#define DEFAULT_ERROR_TTL_S 30
#define DEFAULT_MAX_PENDING 4096
#define HASH_SIZE 1024
/* The evaluator asks at most SPF_EVAL_MAX_QUESTIONS; a helper asking more
 * for one check is not running it. */
#define QUESTION_CAP (SPF_EVAL_MAX_QUESTIONS + 10)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
/* A helper that lets this many checks in a row run out of time without
 * sending a single result is stuck (its threads are): it is restarted. */
#define STUCK_TIMEOUTS 16
/* A helper that lived this long was fine: the next restart is quick. */
#define HELPER_STABLE_MS 30000
#define CACHE_VALUE_VERSION 1
/* zone id 0 (no list has it), then 'S' 'P'. */
#define KEY_PREFIX_LEN 4
#define KEY_MAX (KEY_PREFIX_LEN + 1 + 16 + 1 + 255 + DNSWIRE_NAME_MAX)

struct link {
	struct link *prev, *next;
};

static void list_init(struct link *h)
{
	h->prev = h->next = h;
}

static bool list_empty(const struct link *h)
{
	return h->next == h;
}

static void list_push(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void list_del(struct link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct waiter {
	struct waiter *next;
	spf_done_cb cb;
	void *arg;
	uint64_t start_ns;
};

struct check {
	struct link order;          /* s->checks */
	struct link queue;          /* s->queue until sent */
	struct check *key_next, *id_next;
	uint32_t id, key_hash;
	uint32_t helper_gen;        /* the helper it was sent to (0: not sent) */
	uint64_t deadline_ms;
	uint32_t min_ttl;           /* of the DNS answers used */
	bool dns_error;             /* an answer failed: the verdict is short-lived */
	bool cache_wait;            /* an asynchronous cache get is out */
	unsigned questions;
	struct waiter *waiters;     /* most recent first */
	uint16_t key_len;
	uint8_t key[KEY_MAX];
	uint16_t rkey_len;          /* 0: not in the shared tier */
	char rkey[CACHE_KEY_MAX];
	char ip_text[INET6_ADDRSTRLEN];
	struct spfipc_check msg;
};

struct helper {
	struct spf_service *s;
	uv_process_t proc;
	uv_pipe_t pipe;
	uint32_t gen;
	int pid;
	unsigned open;              /* handles not closed yet */
	unsigned silent_timeouts;   /* checks timed out since its last result */
	bool ready, exited, killed, closing, pipe_closed;
	uint64_t started_ms;
	struct spfipc_rbuf rb;
};

struct opts {
	char *helper_path;
	char **helper_args;
	unsigned threads;
	char *user;
	struct upstream_pool *up;
	char *servers;
	uint32_t dns_timeout_ms, time_limit_ms, ttl_max_s, error_ttl_s;
	struct cache_tier *cache, *shared;
	char *receiver;
	unsigned max_pending;
};

struct spf_service {
	uv_loop_t *loop;
	struct opts o;
	struct helper *helper;      /* the running (or starting) helper */
	uint32_t gen;
	uv_timer_t restart_timer, deadline_timer;
	unsigned backoff_ms;
	struct link checks;
	struct link queue;
	struct check *by_key[HASH_SIZE];
	struct check *by_id[HASH_SIZE];
	uint32_t next_id;
	unsigned open_handles;
	unsigned async_out;         /* DNS questions and cache gets not back yet */
	bool stopping;
	struct spf_stats st;
	struct spf_answer ans;      /* scratch */
	uint8_t frame[SPFIPC_FRAME_MAX];
};

static void helper_spawn(struct spf_service *s);
static void send_queued(struct spf_service *s);

/* ------------------------------------------------------------- options */

static void opts_free(struct opts *o)
{
	free(o->helper_path);
	if (o->helper_args)
		for (char **a = o->helper_args; *a; a++)
			free(*a);
	free(o->helper_args);
	free(o->user);
	free(o->servers);
	free(o->receiver);
	memset(o, 0, sizeof(*o));
}

static int opts_copy(struct opts *o, const struct spf_options *in)
{
	size_t nargs = 0;
	memset(o, 0, sizeof(*o));
	if (in->helper_args)
		while (in->helper_args[nargs])
			nargs++;
	o->helper_path = strdup(in->helper_path);
	o->helper_args = calloc(nargs + 1, sizeof(char *));
	o->user = strdup(in->helper_user ? in->helper_user : "nobody");
	o->servers = strdup(in->servers_csv && in->servers_csv[0] ? in->servers_csv : "system");
	o->receiver = strdup(in->receiver ? in->receiver : "unknown");
	if (!o->helper_path || !o->helper_args || !o->user || !o->servers || !o->receiver)
		goto fail;
	for (size_t i = 0; i < nargs; i++)
		if (!(o->helper_args[i] = strdup(in->helper_args[i])))
			goto fail;
	o->threads = in->helper_threads ? in->helper_threads : DEFAULT_THREADS;
	o->up = in->up;
	o->dns_timeout_ms = in->dns_timeout_ms ? in->dns_timeout_ms : DEFAULT_DNS_TIMEOUT_MS;
	o->time_limit_ms = in->time_limit_ms ? in->time_limit_ms : DEFAULT_TIME_LIMIT_MS;
	o->ttl_max_s = in->ttl_max_s ? in->ttl_max_s : DEFAULT_TTL_S;
	o->error_ttl_s = in->error_ttl_s ? in->error_ttl_s : DEFAULT_ERROR_TTL_S;
	o->cache = in->cache;
	o->shared = in->shared;
	o->max_pending = in->max_pending ? in->max_pending : DEFAULT_MAX_PENDING;
	return 0;

fail:
	opts_free(o);
	return -ENOMEM;
}

/* ------------------------------------------------------------- lifetime */

static void maybe_free(struct spf_service *s)
{
	if (!s->stopping || s->open_handles || s->async_out || s->helper)
		return;
	opts_free(&s->o);
	free(s);
}

static void service_handle_closed(uv_handle_t *h)
{
	struct spf_service *s = h->data;
	s->open_handles--;
	maybe_free(s);
}

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

/* --------------------------------------------------------------- tables */

static uint32_t key_hash(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static struct check *find_key(struct spf_service *s, const uint8_t *key, size_t len,
			      uint32_t hash)
{
	for (struct check *c = s->by_key[hash % HASH_SIZE]; c; c = c->key_next)
		if (c->key_hash == hash && c->key_len == len && memcmp(c->key, key, len) == 0)
			return c;
	return NULL;
}

static struct check *find_id(struct spf_service *s, uint32_t id)
{
	for (struct check *c = s->by_id[id % HASH_SIZE]; c; c = c->id_next)
		if (c->id == id)
			return c;
	return NULL;
}

static void unlink_from(struct check **head, struct check *c, bool by_key)
{
	for (struct check **p = head; *p; p = by_key ? &(*p)->key_next : &(*p)->id_next) {
		if (*p == c) {
			*p = by_key ? c->key_next : c->id_next;
			return;
		}
	}
}

/* ------------------------------------------------------------- verdicts */

static void verdict_local(struct spf_verdict *v, enum spf_result r, uint32_t ttl,
			  const char *domain, const char *ip, const char *reason)
{
	v->result = r;
	v->ttl = ttl;
	v->source = SPF_SRC_LOCAL;
	v->latency_us = 0;
	spf_eval_format_txt(v->txt, sizeof(v->txt), r, domain, ip, NULL, reason);
}

/* Answer every waiter and free the check. */
static void finish_check(struct spf_service *s, struct check *c, struct spf_verdict *v)
{
	list_del(&c->order);
	list_del(&c->queue);
	unlink_from(&s->by_key[c->key_hash % HASH_SIZE], c, true);
	unlink_from(&s->by_id[c->id % HASH_SIZE], c, false);
	s->st.pending--;
	uint8_t source = v->source;
	uint64_t end = now_ns();
	/* Oldest waiter first; it is the one that started the evaluation. */
	struct waiter *w = c->waiters, *rev = NULL;
	while (w) {
		struct waiter *next = w->next;
		w->next = rev;
		rev = w;
		w = next;
	}
	bool first = true;
	while (rev) {
		struct waiter *next = rev->next;
		v->source = first || source != SPF_SRC_HELPER ? source : SPF_SRC_COALESCED;
		v->latency_us = (end - rev->start_ns) / 1000;
		first = false;
		rev->cb(rev->arg, v);
		free(rev);
		rev = next;
	}
	free(c);
}

static const char *check_domain_text(const struct check *c)
{
	return c->msg.domain;
}

static void finish_local(struct spf_service *s, struct check *c, enum spf_result r,
			 const char *reason)
{
	struct spf_verdict v;
	verdict_local(&v, r, s->o.error_ttl_s, check_domain_text(c), c->ip_text, reason);
	finish_check(s, c, &v);
}

/* Cache value: version, result, TXT length, TXT. */
static void cache_store(struct spf_service *s, const struct check *c,
			const struct spf_verdict *v)
{
	uint8_t val[3 + SPF_TXT_MAX];
	size_t tl = strlen(v->txt);
	if (v->ttl == 0)
		return;
	val[0] = CACHE_VALUE_VERSION;
	val[1] = (uint8_t)v->result;
	val[2] = (uint8_t)tl;
	memcpy(val + 3, v->txt, tl);
	uint32_t now = (uint32_t)time(NULL);
	if (s->o.cache && c->key_len <= CACHE_KEY_MAX)
		s->o.cache->ops->put(s->o.cache, c->key, c->key_len, val, 3 + tl, now,
				     now + v->ttl, now + v->ttl);
	if (s->o.shared && c->rkey_len)
		s->o.shared->ops->put(s->o.shared, (const uint8_t *)c->rkey, c->rkey_len, val,
				      3 + tl, now, now + v->ttl, now + v->ttl);
}

/* A cached value, checked byte by byte (it may come from another host). */
static bool cache_decode(const struct cache_item *it, uint32_t now, struct spf_verdict *v)
{
	if (it->len < 3 || it->value[0] != CACHE_VALUE_VERSION || it->value[1] < SPF_PASS ||
	    it->value[1] > SPF_TEMPERROR || it->value[2] > SPF_TXT_MAX ||
	    it->len != 3u + it->value[2] || it->expire <= now)
		return false;
	for (unsigned i = 0; i < it->value[2]; i++)
		if (it->value[3 + i] < 0x20 || it->value[3 + i] > 0x7e)
			return false;
	v->result = (enum spf_result)it->value[1];
	v->ttl = it->expire - now;
	v->source = SPF_SRC_CACHE;
	v->latency_us = 0;
	memcpy(v->txt, it->value + 3, it->value[2]);
	v->txt[it->value[2]] = '\0';
	return true;
}

/* --------------------------------------------------------------- helper */

struct wreq {
	uv_write_t req;
	struct helper *h;
	uint8_t data[];
};

static void helper_kill(struct helper *h, const char *why)
{
	h->ready = false;
	if (h->killed || h->exited)
		return;
	h->killed = true;
	if (!h->s->stopping)
		log_warn("SPF helper (pid %d): %s: killing it", h->pid, why);
	uv_process_kill(&h->proc, SIGKILL);
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *w = CONTAINER(req, struct wreq, req);
	if (status < 0 && status != UV_ECANCELED)
		helper_kill(w->h, "write failed");
	free(w);
}

static void helper_write(struct helper *h, const uint8_t *data, size_t len)
{
	if (h->pipe_closed || h->exited)
		return;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int n = uv_try_write((uv_stream_t *)&h->pipe, &b, 1);
	if (n == (int)len)
		return;
	if (n < 0 && n != UV_EAGAIN) {
		helper_kill(h, uv_strerror(n));
		return;
	}
	size_t done = n > 0 ? (size_t)n : 0;
	struct wreq *w = malloc(sizeof(*w) + len - done);
	if (!w) {
		helper_kill(h, "out of memory");
		return;
	}
	w->h = h;
	memcpy(w->data, data + done, len - done);
	b = uv_buf_init((char *)w->data, (unsigned)(len - done));
	int rc = uv_write(&w->req, (uv_stream_t *)&h->pipe, &b, 1, write_cb);
	if (rc < 0) {
		free(w);
		helper_kill(h, uv_strerror(rc));
	}
}

static void helper_handle_closed(uv_handle_t *handle)
{
	struct helper *h = handle->data;
	struct spf_service *s = h->s;
	s->open_handles--;
	if (--h->open == 0) {
		free(h);
		maybe_free(s);
	}
}

static void helper_close_pipe(struct helper *h)
{
	if (h->pipe_closed)
		return;
	h->pipe_closed = true;
	h->ready = false;
	uv_close((uv_handle_t *)&h->pipe, helper_handle_closed);
}

/* Only once the process has exited (or never started): a process handle
 * closed earlier would leave the child unreaped. */
static void helper_close(struct helper *h)
{
	if (h->closing)
		return;
	h->closing = true;
	helper_close_pipe(h);
	uv_close((uv_handle_t *)&h->proc, helper_handle_closed);
}

/* Checks the dead helper held are answered; unsent ones wait for the next. */
static void fail_checks_of(struct spf_service *s, uint32_t gen, const char *why)
{
	struct link *l = s->checks.next;
	while (l != &s->checks) {
		struct check *c = CONTAINER(l, struct check, order);
		l = l->next;
		if (c->helper_gen == gen)
			finish_local(s, c, SPF_TEMPERROR, why);
	}
}

static void restart_cb(uv_timer_t *t)
{
	helper_spawn(t->data);
}

static void schedule_restart(struct spf_service *s, uint64_t lived_ms)
{
	if (s->stopping)
		return;
	if (lived_ms >= HELPER_STABLE_MS)
		s->backoff_ms = BACKOFF_MIN_MS;
	uv_timer_start(&s->restart_timer, restart_cb, s->backoff_ms, 0);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

static void helper_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct helper *h = proc->data;
	struct spf_service *s = h->s;
	h->exited = true;
	h->ready = false;
	s->st.helper_deaths++;
	if (!s->stopping) {
		if (term_signal)
			log_warn("SPF helper (pid %d) killed by signal %d: restarting it",
				 h->pid, term_signal);
		else
			log_warn("SPF helper (pid %d) exited with status %lld: restarting it",
				 h->pid, (long long)status);
	}
	uint64_t lived = uv_now(s->loop) - h->started_ms;
	if (s->helper == h) {
		s->helper = NULL;
		fail_checks_of(s, h->gen, "the SPF helper stopped");
		schedule_restart(s, lived);
	}
	helper_close(h);
}

static void on_hello(struct helper *h, const uint8_t *frame, size_t len)
{
	uint32_t version;
	if (spfipc_decode_hello(frame, len, &version) < 0 || h->ready ||
	    version != SPFIPC_VERSION) {
		helper_kill(h, "bad hello");
		return;
	}
	h->ready = true;
	send_queued(h->s);
}

static void send_error_answer(struct spf_service *s, struct helper *h, uint32_t check_id,
			      uint32_t seq)
{
	struct spf_answer *a = &s->ans;
	a->status = SPF_ANS_ERROR;
	a->n = a->n_total = 0;
	a->data_len = 0;
	int len = spfipc_encode_answer(s->frame, sizeof(s->frame), check_id, seq, a);
	if (len > 0)
		helper_write(h, s->frame, (size_t)len);
}

struct dnsq {
	struct spf_service *s;
	uint32_t check_id, seq, helper_gen;
	uint16_t qtype;
	uint8_t name_len;
	uint8_t name[DNSWIRE_NAME_MAX];
};

static void dns_done(void *arg, enum listans_status status, const uint8_t *pkt,
		     size_t len, uint64_t latency_us)
{
	struct dnsq *d = arg;
	struct spf_service *s = d->s;
	struct spf_answer *a = &s->ans;
	uint32_t ttl = 0;

	s->async_out--;
	a->n = a->n_total = 0;
	a->data_len = 0;
	a->status = SPF_ANS_ERROR;
	/* The packet is there when it answers the exact question; its rcode,
	 * CNAMEs and records are read here, whatever listans made of it. */
	(void)status;
	if (pkt && spf_dns_parse(pkt, len, d->name, d->name_len, d->qtype, a, &ttl) < 0)
		a->status = SPF_ANS_ERROR;
	struct check *c = find_id(s, d->check_id);
	if (c && c->helper_gen == d->helper_gen) {
		if (a->status == SPF_ANS_ERROR)
			c->dns_error = true;
		else if (ttl < c->min_ttl)
			c->min_ttl = ttl;
	}
	struct helper *h = s->helper;
	if (h && h->gen == d->helper_gen && h->ready) {
		int flen = spfipc_encode_answer(s->frame, sizeof(s->frame), d->check_id, d->seq, a);
		if (flen > 0)
			helper_write(h, s->frame, (size_t)flen);
		else
			send_error_answer(s, h, d->check_id, d->seq);
	}
	free(d);
	maybe_free(s);
}

static bool qtype_allowed(uint16_t t)
{
	return t == DNS_T_A || t == DNS_T_AAAA || t == DNS_T_MX || t == DNS_T_PTR ||
	       t == DNS_T_TXT;
}

static void on_query(struct helper *h, const uint8_t *frame, size_t len)
{
	struct spf_service *s = h->s;
	struct spfipc_query q;
	if (spfipc_decode_query(frame, len, &q) < 0) {
		helper_kill(h, "malformed question");
		return;
	}
	struct check *c = find_id(s, q.check_id);
	if (!qtype_allowed(q.qtype) || !c || c->helper_gen != h->gen ||
	    ++c->questions > QUESTION_CAP) {
		s->st.refused++;
		send_error_answer(s, h, q.check_id, q.seq);
		return;
	}
	struct dnsq *d = malloc(sizeof(*d));
	if (!d) {
		send_error_answer(s, h, q.check_id, q.seq);
		return;
	}
	d->s = s;
	d->check_id = q.check_id;
	d->seq = q.seq;
	d->helper_gen = h->gen;
	d->qtype = q.qtype;
	d->name_len = q.name_len;
	memcpy(d->name, q.name, q.name_len);
	if (upstream_query_raw(s->o.up, s->o.servers, s->o.dns_timeout_ms, d->name, d->name_len,
			       d->qtype, dns_done, d) < 0) {
		free(d);
		c->dns_error = true;
		send_error_answer(s, h, q.check_id, q.seq);
		return;
	}
	s->async_out++;
	s->st.questions++;
}

static void on_result(struct helper *h, const uint8_t *frame, size_t len)
{
	struct spf_service *s = h->s;
	struct spfipc_result r;
	if (spfipc_decode_result(frame, len, &r) < 0) {
		helper_kill(h, "malformed result");
		return;
	}
	h->silent_timeouts = 0;
	struct check *c = find_id(s, r.check_id);
	if (!c || c->helper_gen != h->gen)
		return; /* answered already: it ran out of time */
	s->st.results++;
	struct spf_verdict v;
	v.result = (enum spf_result)r.result;
	v.source = SPF_SRC_HELPER;
	uint32_t ttl = c->min_ttl < s->o.ttl_max_s ? c->min_ttl : s->o.ttl_max_s;
	if ((c->dns_error || v.result == SPF_TEMPERROR) && ttl > s->o.error_ttl_s)
		ttl = s->o.error_ttl_s;
	v.ttl = ttl;
	spf_eval_format_txt(v.txt, sizeof(v.txt), v.result, check_domain_text(c), c->ip_text,
			    r.has_explanation ? r.explanation : NULL, r.reason);
	if (v.result != SPF_TEMPERROR && !c->dns_error)
		cache_store(s, c, &v);
	finish_check(s, c, &v);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct helper *h = handle->data;
	size_t space;
	uint8_t *p = spfipc_rbuf_space(&h->rb, &space);
	*buf = uv_buf_init((char *)p, (unsigned)space);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct helper *h = stream->data;
	const uint8_t *frame;
	int n;

	if (nread < 0) {
		uv_read_stop(stream);
		helper_kill(h, nread == UV_EOF ? "closed its socket" : uv_strerror((int)nread));
		return;
	}
	spfipc_rbuf_commit(&h->rb, (size_t)nread);
	while (!h->killed && !h->exited && (n = spfipc_rbuf_next(&h->rb, &frame)) != 0) {
		if (n < 0) {
			helper_kill(h, "broken stream");
			return;
		}
		uint8_t type = spfipc_frame_type(frame);
		if (type == SPFIPC_HELLO) {
			on_hello(h, frame, (size_t)n);
		} else if (!h->ready) {
			helper_kill(h, "spoke before hello");
		} else if (type == SPFIPC_DNS_QUERY) {
			on_query(h, frame, (size_t)n);
		} else if (type == SPFIPC_RESULT) {
			on_result(h, frame, (size_t)n);
		} else {
			helper_kill(h, "unknown message");
		}
	}
}

static void helper_spawn(struct spf_service *s)
{
	char threads[16];
	const char *argv[64];
	size_t ac = 0;
	struct helper *h;
	int rc;

	if (s->stopping || s->helper)
		return;
	h = calloc(1, sizeof(*h));
	if (!h) {
		log_err("SPF helper: out of memory");
		schedule_restart(s, 0);
		return;
	}
	h->s = s;
	if (++s->gen == 0)
		s->gen = 1;
	h->gen = s->gen;
	snprintf(threads, sizeof(threads), "%u", s->o.threads);
	argv[ac++] = s->o.helper_path;
	argv[ac++] = "-t";
	argv[ac++] = threads;
	argv[ac++] = "-u";
	argv[ac++] = s->o.user;
	for (char **a = s->o.helper_args; *a && ac < 63; a++)
		argv[ac++] = *a;
	argv[ac] = NULL;
	/* The helper needs nothing from the environment. */
	char *env[] = { NULL };

	uv_pipe_init(s->loop, &h->pipe, 0);
	h->pipe.data = h;
	uv_stdio_container_t stdio[3];
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&h->pipe;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	uv_process_options_t po;
	memset(&po, 0, sizeof(po));
	po.exit_cb = helper_exit_cb;
	po.file = s->o.helper_path;
	po.args = (char **)argv;
	po.env = env;
	po.stdio_count = 3;
	po.stdio = stdio;
	h->proc.data = h;
	h->open = 2;
	s->open_handles += 2;
	h->started_ms = uv_now(s->loop);
	rc = uv_spawn(s->loop, &h->proc, &po);
	if (rc < 0) {
		log_err("cannot start the SPF helper %s: %s", s->o.helper_path, uv_strerror(rc));
		h->exited = true;
		helper_close(h);
		schedule_restart(s, 0);
		return;
	}
	h->pid = h->proc.pid;
	s->helper = h;
	s->st.helper_starts++;
	rc = uv_read_start((uv_stream_t *)&h->pipe, alloc_cb, read_cb);
	if (rc < 0)
		helper_kill(h, uv_strerror(rc));
}

/* ---------------------------------------------------------------- checks */

static void send_queued(struct spf_service *s)
{
	struct helper *h = s->helper;
	while (h && h->ready && !list_empty(&s->queue)) {
		struct check *c = CONTAINER(s->queue.next, struct check, queue);
		list_del(&c->queue);
		c->helper_gen = h->gen;
		/* What is left of the time limit: the helper stops by then. */
		uint64_t now = uv_now(s->loop);
		c->msg.time_limit_ms = c->deadline_ms > now ? (uint32_t)(c->deadline_ms - now) : 1;
		int len = spfipc_encode_check(s->frame, sizeof(s->frame), &c->msg);
		if (len < 0) {
			finish_local(s, c, SPF_TEMPERROR, "cannot send the check");
			continue;
		}
		s->st.evaluations++;
		helper_write(h, s->frame, (size_t)len);
	}
}

static void deadline_cb(uv_timer_t *t);

static void deadline_arm(struct spf_service *s)
{
	if (list_empty(&s->checks)) {
		uv_timer_stop(&s->deadline_timer);
		return;
	}
	struct check *c = CONTAINER(s->checks.next, struct check, order);
	uint64_t now = uv_now(s->loop);
	uv_timer_start(&s->deadline_timer, deadline_cb,
		       c->deadline_ms > now ? c->deadline_ms - now : 0, 0);
}

static void deadline_cb(uv_timer_t *t)
{
	struct spf_service *s = t->data;
	uint64_t now = uv_now(s->loop);
	char why[64];
	while (!list_empty(&s->checks)) {
		struct check *c = CONTAINER(s->checks.next, struct check, order);
		if (c->deadline_ms > now)
			break;
		s->st.timeouts++;
		struct helper *h = s->helper;
		if (h && c->helper_gen == h->gen && ++h->silent_timeouts >= STUCK_TIMEOUTS)
			helper_kill(h, "no result for many checks in a row");
		if (!c->helper_gen && !(s->helper && s->helper->ready))
			snprintf(why, sizeof(why), "the SPF helper is not running");
		else
			snprintf(why, sizeof(why), "no verdict within %u ms", s->o.time_limit_ms);
		finish_local(s, c, SPF_TEMPERROR, why);
	}
	deadline_arm(s);
}

struct cache_wait {
	struct spf_service *s;
	uint32_t id;
};

static void verdict_cache_cb(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct cache_wait *cw = arg;
	struct spf_service *s = cw->s;
	struct check *c = find_id(s, cw->id);
	s->async_out--;
	free(cw);
	if (c && c->cache_wait) {
		struct spf_verdict v;
		uint32_t now = (uint32_t)time(NULL);
		c->cache_wait = false;
		if (status == CACHE_HIT && cache_decode(item, now, &v)) {
			s->st.cache_hits++;
			/* Kept in this process too, until the shared entry expires. */
			if (s->o.cache && c->key_len <= CACHE_KEY_MAX)
				s->o.cache->ops->put(s->o.cache, c->key, c->key_len, item->value,
						     item->len, now, item->expire, item->expire);
			finish_check(s, c, &v);
		} else {
			list_push(&s->queue, &c->queue);
			send_queued(s);
		}
	}
	maybe_free(s);
}

/* The primary tier answers at once; one that would not is a miss. */
static void ignore_cache_cb(void *arg, enum cache_status status, const struct cache_item *item)
{
	(void)arg;
	(void)status;
	(void)item;
}

/* The shared tier's key: "spf:<address>:<local part>@<domain>", the local
 * part with bytes outside visible ASCII (and '\\') as \xHH. Returns its
 * length, 0 when it does not fit. */
static size_t shared_key(char *out, const char *ip, const uint8_t *lp, size_t lp_len,
			 const char *domain)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = (size_t)snprintf(out, CACHE_KEY_MAX, "spf:%s:", ip);
	if (lp_len == 0) {
		lp = (const uint8_t *)"postmaster";
		lp_len = 10;
	}
	for (size_t i = 0; i < lp_len && o + 4 < CACHE_KEY_MAX; i++) {
		if (lp[i] > 0x20 && lp[i] < 0x7f && lp[i] != '\\') {
			out[o++] = (char)lp[i];
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[lp[i] >> 4];
			out[o++] = hex[lp[i] & 15];
		}
	}
	int n = snprintf(out + o, CACHE_KEY_MAX - o, "@%s", domain);
	if (n < 0 || o + (size_t)n >= CACHE_KEY_MAX)
		return 0;
	return o + (size_t)n;
}

/* Text of a wire domain for the helper: labels joined by '.'. A label
 * holding a dot or a byte outside visible ASCII names no domain anyone can
 * publish SPF for. */
static bool domain_text(const uint8_t *w, size_t wl, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < wl && w[i]) {
		uint8_t l = w[i];
		if (l > 63 || i + 1 + l >= wl)
			return false;
		if (o && o + 1 < cap)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			uint8_t c = w[i + 1 + k];
			if (c <= 0x20 || c >= 0x7f || c == '.' || o + 1 >= cap)
				return false;
			out[o++] = (char)c;
		}
		i += 1 + (size_t)l;
	}
	if (o == 0 || i + 1 != wl)
		return false;
	out[o] = '\0';
	return true;
}

int spf_check(struct spf_service *s, const struct spf_request *req,
	      spf_done_cb cb, void *arg, struct spf_verdict *now)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct check *c;
	int family = req->family;
	const uint8_t *ip = req->ip;
	char domain[SPFIPC_TEXT_MAX + 1];
	char ip_text[INET6_ADDRSTRLEN];

	if (!s || s->stopping)
		return -ESHUTDOWN;
	if ((family != AF_INET && family != AF_INET6) || !req->domain || req->domain_len < 2 ||
	    req->domain_len > DNSWIRE_NAME_MAX || !cb || !now ||
	    (req->local_part_len && !req->local_part) || req->local_part_len > SPFIPC_TEXT_MAX)
		return -EINVAL;
	s->st.checks++;
	if (family == AF_INET6 && memcmp(ip, mapped, 12) == 0) {
		family = AF_INET;
		ip += 12;
	}
	inet_ntop(family, ip, ip_text, sizeof(ip_text));
	if (!domain_text(req->domain, req->domain_len, domain, sizeof(domain))) {
		char shown[4 * DNSWIRE_NAME_MAX + 1];
		if (dnswire_name_to_text(req->domain, req->domain_len, shown, sizeof(shown)) < 0)
			snprintf(shown, sizeof(shown), "?");
		verdict_local(now, SPF_NONE, s->o.ttl_max_s, shown, ip_text,
			      "not a valid domain name");
		return 1;
	}
	if (req->local_part_len && memchr(req->local_part, 0, req->local_part_len)) {
		verdict_local(now, SPF_NONE, s->o.ttl_max_s, domain, ip_text,
			      "not a valid local part");
		return 1;
	}

	/* The key: zone id 0, 'S' 'P', address, local part, domain (lowercase). */
	uint8_t key[KEY_MAX];
	size_t kl = 0;
	key[kl++] = 0;
	key[kl++] = 0;
	key[kl++] = 'S';
	key[kl++] = 'P';
	key[kl++] = (uint8_t)family;
	memcpy(key + kl, ip, family == AF_INET ? 4 : 16);
	kl += family == AF_INET ? 4 : 16;
	key[kl++] = (uint8_t)req->local_part_len;
	if (req->local_part_len)
		memcpy(key + kl, req->local_part, req->local_part_len);
	kl += req->local_part_len;
	memcpy(key + kl, req->domain, req->domain_len);
	dnswire_name_lower(key + kl, req->domain_len);
	kl += req->domain_len;
	uint32_t hash = key_hash(key, kl);

	struct cache_tier *cache = kl <= CACHE_KEY_MAX ? s->o.cache : NULL;
	struct cache_wait *cw = NULL;
	bool async = false;
	char rkey[CACHE_KEY_MAX];
	size_t rkl = s->o.shared ? shared_key(rkey, ip_text, req->local_part,
					      req->local_part_len, domain) : 0;
	c = find_key(s, key, kl, hash);
	if (!c && (cache || rkl)) {
		struct cache_item item;
		uint32_t t = (uint32_t)time(NULL);
		if (cache && cache->ops->get(cache, key, kl, t, &item, ignore_cache_cb, NULL) ==
			     CACHE_HIT && cache_decode(&item, t, now)) {
			s->st.cache_hits++;
			return 1;
		}
		cw = rkl ? malloc(sizeof(*cw)) : NULL;
		if (cw) {
			cw->s = s;
			cw->id = 0;
			int st = s->o.shared->ops->get(s->o.shared, (const uint8_t *)rkey, rkl, t,
						       &item, verdict_cache_cb, cw);
			if (st == -EINPROGRESS) {
				async = true;
				s->async_out++;
			} else {
				free(cw);
				cw = NULL;
				if (st == CACHE_HIT && cache_decode(&item, t, now)) {
					s->st.cache_hits++;
					return 1;
				}
			}
		}
	}

	struct waiter *w = malloc(sizeof(*w));
	if (!w)
		goto overload;
	w->cb = cb;
	w->arg = arg;
	w->start_ns = now_ns();
	if (c) {
		w->next = c->waiters;
		c->waiters = w;
		s->st.coalesced++;
		return 0;
	}
	if (s->st.pending >= s->o.max_pending || !(c = calloc(1, sizeof(*c)))) {
		free(w);
		goto overload;
	}
	w->next = NULL;
	c->waiters = w;
	if (++s->next_id == 0)
		s->next_id = 1;
	c->id = s->next_id;
	c->key_hash = hash;
	c->key_len = (uint16_t)kl;
	memcpy(c->key, key, kl);
	c->rkey_len = (uint16_t)rkl;
	memcpy(c->rkey, rkey, rkl);
	c->min_ttl = UINT32_MAX;
	c->deadline_ms = uv_now(s->loop) + s->o.time_limit_ms;
	snprintf(c->ip_text, sizeof(c->ip_text), "%s", ip_text);
	c->msg.id = c->id;
	c->msg.family = (uint8_t)family;
	memcpy(c->msg.ip, ip, family == AF_INET ? 4 : 16);
	c->msg.now = (uint32_t)time(NULL);
	snprintf(c->msg.domain, sizeof(c->msg.domain), "%s", domain);
	if (req->local_part_len)
		memcpy(c->msg.local_part, req->local_part, req->local_part_len);
	c->msg.local_part[req->local_part_len] = '\0';
	/* SPEC §2: the HELO name used for %{h} is the domain. */
	snprintf(c->msg.helo, sizeof(c->msg.helo), "%s", domain);
	snprintf(c->msg.receiver, sizeof(c->msg.receiver), "%s", s->o.receiver);
	list_init(&c->queue);
	list_push(&s->checks, &c->order);
	c->key_next = s->by_key[hash % HASH_SIZE];
	s->by_key[hash % HASH_SIZE] = c;
	c->id_next = s->by_id[c->id % HASH_SIZE];
	s->by_id[c->id % HASH_SIZE] = c;
	s->st.pending++;
	if (!uv_is_active((uv_handle_t *)&s->deadline_timer))
		deadline_arm(s);
	if (async) {
		cw->id = c->id;
		c->cache_wait = true;
	} else {
		list_push(&s->queue, &c->queue);
		send_queued(s);
	}
	return 0;

overload:
	if (async)
		cw->id = 0; /* its answer finds no check */
	verdict_local(now, SPF_TEMPERROR, s->o.error_ttl_s, domain, ip_text,
		      "too many SPF checks at once");
	return 1;
}

/* ------------------------------------------------------------- service */

int spf_service_start(uv_loop_t *loop, const struct spf_options *opt,
		      struct spf_service **out)
{
	if (!loop || !opt || !out || !opt->helper_path)
		return -EINVAL;
	if (!opt->up)
		return -EINVAL;
	struct spf_service *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (opts_copy(&s->o, opt) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->loop = loop;
	s->backoff_ms = BACKOFF_MIN_MS;
	list_init(&s->checks);
	list_init(&s->queue);
	uv_timer_init(loop, &s->restart_timer);
	uv_timer_init(loop, &s->deadline_timer);
	s->restart_timer.data = s;
	s->deadline_timer.data = s;
	s->open_handles = 2;
	helper_spawn(s);
	*out = s;
	return 0;
}

int spf_service_set_options(struct spf_service *s, const struct spf_options *opt)
{
	struct opts o;
	if (!opt->helper_path)
		return -EINVAL;
	if (opts_copy(&o, opt) < 0)
		return -ENOMEM;
	opts_free(&s->o);
	s->o = o;
	return 0;
}

void spf_service_stop(struct spf_service *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	while (!list_empty(&s->checks)) {
		struct check *c = CONTAINER(s->checks.next, struct check, order);
		finish_local(s, c, SPF_TEMPERROR, "rblmuxd is stopping");
	}
	if (s->helper) {
		/* Its exit is still awaited: the process handle closes then. */
		helper_kill(s->helper, "stopping");
		helper_close_pipe(s->helper);
	}
	uv_close((uv_handle_t *)&s->restart_timer, service_handle_closed);
	uv_close((uv_handle_t *)&s->deadline_timer, service_handle_closed);
}

void spf_service_stats(const struct spf_service *s, struct spf_stats *out)
{
	*out = s->st;
}

int spf_service_helper_pid(const struct spf_service *s)
{
	return s->helper && !s->helper->exited ? s->helper->pid : 0;
}

bool spf_service_ready(const struct spf_service *s)
{
	return s->helper && s->helper->ready;
}


int spf_default_helper_path(char *out, size_t cap)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			slash[1] = '\0';
			int len = snprintf(out, cap, "%s%s", self, HELPER_NAME);
			if (len < 0 || (size_t)len >= cap)
				return -ENOSPC;
			if (access(out, X_OK) == 0)
				return 0;
		}
	}
	int len = snprintf(out, cap, "%s/%s", RBLMUX_LIBEXECDIR, HELPER_NAME);
	if (len < 0 || (size_t)len >= cap)
		return -ENOSPC;
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}
